"""An in-process fake registry and token server (starlette), for what a real registry cannot do.

The real ``docker-registry`` proves interoperability; this fake serves the attacks and the auth
flows: a registry that lies about digests, truncates blobs, redirects to ``file:``, demands
bearer tokens from a token server that checks Basic credentials, and so on.

Everything is one ASGI app, reached through starlette's ``TestClient`` (an ``httpx.Client``):
requests for ``auth.test`` go to the token server, everything else to the registry. Tests
override any endpoint with ``fake.override(method, path, responder)``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from notar.registry import Credentials, RegistryClient

REGISTRY_HOST = "registry.test"
AUTH_HOST = "auth.test"
REALM = f"https://{AUTH_HOST}/token"

Responder = Callable[[Request], Response]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors_body(code: str, message: str, detail: object = None) -> dict[str, object]:
    return {"errors": [{"code": code, "message": message, "detail": detail}]}


@dataclass
class Seen:
    """One request as the fake saw it."""

    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeRegistry:
    """State and behaviour of the fake; see the module docstring."""

    auth: Literal["none", "bearer", "basic"] = "none"
    users: dict[str, str] = field(default_factory=lambda: {"alice": "correct horse battery staple"})
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # identity token -> user
    allow_anonymous: bool = True
    token_ttl: int | None = 300
    token_field: str = "token"
    reject_all_tokens: bool = False
    challenge_scope: bool = True
    realm: str = REALM
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    overrides: dict[tuple[str, str], Responder] = field(default_factory=dict)
    tokens: dict[str, set[str]] = field(default_factory=dict)  # token -> granted scopes
    _counter: Iterator[int] = field(default_factory=itertools.count)

    # ---------------------------------------------------------------- setup helpers

    def add_manifest(self, repo: str, tag: str | None, data: bytes, media_type: str) -> str:
        digest = sha256(data)
        self.manifests[(repo, digest)] = (media_type, data)
        if tag is not None:
            self.manifests[(repo, tag)] = (media_type, data)
        return digest

    def add_blob(self, data: bytes) -> str:
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def override(self, method: str, path: str, responder: Responder) -> None:
        self.overrides[(method, path)] = responder

    def registry_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.host == REGISTRY_HOST]

    def token_requests(self) -> list[Seen]:
        return [r for r in self.requests if r.host == AUTH_HOST]

    # ---------------------------------------------------------------- the app

    def app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    @contextmanager
    def client(self, **kwargs: Any) -> Iterator[RegistryClient]:
        """A RegistryClient for ``registry.test`` over this app (lifespan run by ``with``)."""
        with TestClient(self.app()) as http, RegistryClient(REGISTRY_HOST, client=http, **kwargs) as c:
            yield c

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        host = request.headers.get("host", "").split(":")[0]
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        self.requests.append(Seen(request.method, host, request.url.path, query, dict(request.headers), body))
        override = self.overrides.get((request.method, request.url.path))
        if override is not None:
            return override(request)
        if host == AUTH_HOST:
            return self._token_endpoint(request, query, body)
        return self._registry(request, body)

    # ---------------------------------------------------------------- token server

    def _token_endpoint(self, request: Request, query: dict[str, list[str]], body: bytes) -> Response:
        if request.method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if (
                form.get("grant_type") != "refresh_token"
                or form.get("refresh_token") not in self.refresh_tokens
            ):
                return JSONResponse({"error": "invalid_grant", "error_description": "bad refresh token"}, 400)
            scopes = form.get("scope", "").split()
            return JSONResponse({"access_token": self._issue(scopes), "expires_in": self.token_ttl})
        auth = request.headers.get("authorization")
        if auth is None:
            if not self.allow_anonymous:
                return JSONResponse(errors_body("UNAUTHORIZED", "authentication required"), 401)
        else:
            user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            if self.users.get(user) != password:
                # a careless token server that echoes what it got: the client must not repeat it
                return JSONResponse(errors_body("UNAUTHORIZED", f"bad password {password!r} for {user}"), 401)
        answer: dict[str, object] = {self.token_field: self._issue(query.get("scope", []))}
        if self.token_ttl is not None:
            answer["expires_in"] = self.token_ttl
        return JSONResponse(answer)

    def _issue(self, scopes: list[str]) -> str:
        token = f"tok-{next(self._counter)}"
        granted: set[str] = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted.update(f"{kind}:{name}:{a}" for a in actions.split(","))
        self.tokens[token] = granted
        return token

    # ---------------------------------------------------------------- registry

    def _challenge(self, repo: str | None, action: str) -> Response:
        if self.auth == "basic":
            header = 'Basic realm="fake registry"'
        else:
            header = f'Bearer realm="{self.realm}",service="{REGISTRY_HOST}"'
            if self.challenge_scope and repo is not None:
                actions = "pull" if action == "pull" else "pull,push"
                header += f',scope="repository:{repo}:{actions}"'
        return JSONResponse(
            errors_body("UNAUTHORIZED", "authentication required"), 401, {"WWW-Authenticate": header}
        )

    def _authorised(self, request: Request, repo: str | None, action: str) -> bool:
        if self.auth == "none":
            return True
        auth = request.headers.get("authorization", "")
        if self.auth == "basic":
            if not auth.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return self.users.get(user) == password
        if not auth.startswith("Bearer ") or self.reject_all_tokens:
            return False
        granted = self.tokens.get(auth[7:])
        if granted is None:
            return False
        return repo is None or f"repository:{repo}:{action}" in granted

    def _registry(self, request: Request, body: bytes) -> Response:
        path, method = request.url.path, request.method
        if path == "/v2/":
            if not self._authorised(request, None, "pull"):
                return self._challenge(None, "pull")
            return JSONResponse({})
        m = re.fullmatch(r"/v2/(.+?)/(manifests|blobs|tags)/(.*)", path)
        if m is None:
            return JSONResponse(errors_body("UNSUPPORTED", "no such route"), 404)
        repo, kind, rest = m.groups()
        action = "pull" if method in ("GET", "HEAD") else "push"
        if not self._authorised(request, repo, action):
            return self._challenge(repo, action)
        if kind == "manifests":
            return self._manifest(request, repo, rest, body)
        if kind == "tags":
            return self._tags(request, repo)
        return self._blob(request, repo, rest, body)

    def _manifest(self, request: Request, repo: str, ref: str, body: bytes) -> Response:
        if request.method == "PUT":
            digest = self.add_manifest(
                repo, None if ":" in ref else ref, body, request.headers["content-type"]
            )
            return Response(status_code=201, headers={"Docker-Content-Digest": digest})
        entry = self.manifests.get((repo, ref))
        if entry is None:
            return JSONResponse(errors_body("MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref}), 404)
        media_type, data = entry
        headers = {"Docker-Content-Digest": sha256(data), "Content-Type": media_type}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return Response(b"", headers=headers)
        return Response(data, headers=headers)

    def _tags(self, request: Request, repo: str) -> Response:
        tags = sorted({ref for (r, ref) in self.manifests if r == repo and ":" not in ref})
        if not tags:
            return JSONResponse(errors_body("NAME_UNKNOWN", "repository name not known to registry"), 404)
        last = request.query_params.get("last")
        if last is not None:
            tags = [t for t in tags if t > last]
        n = request.query_params.get("n")
        headers = {}
        if n is not None and len(tags) > int(n):
            tags = tags[: int(n)]
            headers["Link"] = f'</v2/{repo}/tags/list?n={n}&last={tags[-1]}>; rel="next"'
        return JSONResponse({"name": repo, "tags": tags}, headers=headers)

    def _blob(self, request: Request, repo: str, rest: str, body: bytes) -> Response:
        method = request.method
        if rest == "uploads/" and method == "POST":
            mount, source = request.query_params.get("mount"), request.query_params.get("from")
            if mount is not None and source is not None and mount in self.blobs:
                return Response(status_code=201, headers={"Docker-Content-Digest": mount})
            upload = f"u{next(self._counter)}"
            self.uploads[upload] = bytearray()
            return Response(
                status_code=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{upload}?_state=s0"}
            )
        if rest.startswith("uploads/"):
            upload = rest.removeprefix("uploads/")
            buf = self.uploads.get(upload)
            if buf is None:
                return JSONResponse(errors_body("BLOB_UPLOAD_UNKNOWN", "blob upload unknown"), 404)
            if method == "DELETE":
                del self.uploads[upload]
                return Response(status_code=204)
            if method == "PATCH":
                start, _, _end = request.headers["content-range"].partition("-")
                if int(start) != len(buf):
                    return Response(status_code=416)
                buf += body
                location = f"/v2/{repo}/blobs/uploads/{upload}?_state=s{len(buf)}"
                return Response(status_code=202, headers={"Location": location, "Range": f"0-{len(buf) - 1}"})
            if method == "PUT":
                buf += body
                digest = request.query_params["digest"]
                if sha256(bytes(buf)) != digest:
                    return JSONResponse(errors_body("DIGEST_INVALID", "provided digest did not match"), 400)
                self.blobs[digest] = bytes(buf)
                del self.uploads[upload]
                return Response(status_code=201, headers={"Docker-Content-Digest": digest})
        data = self.blobs.get(rest)
        if data is None:
            return JSONResponse(errors_body("BLOB_UNKNOWN", "blob unknown to registry"), 404)
        headers = {"Docker-Content-Digest": rest, "Content-Type": "application/octet-stream"}
        if method == "HEAD":
            return Response(b"", headers={**headers, "Content-Length": str(len(data))})
        return Response(data, headers=headers)


def creds(user: str = "alice", password: str = "correct horse battery staple") -> Credentials:
    return Credentials(username=user, password=password)


def json_body(seen: Seen) -> object:
    return json.loads(seen.body)
