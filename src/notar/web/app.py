"""The read-only trust UI as an ASGI app: server-rendered pages and the JSON behind each of them.

Routes (``notar server`` forwards every path outside the Notary API here):

* ``GET /``                              repositories, searchable (``?q=``)
* ``GET /repositories/<gun>``            one repository: tags and their status, keys, signers, changes
* ``GET /api/repositories``              the listing as JSON (``?q=``, ``?limit=``)
* ``GET /api/repositories/<gun>``        the repository as JSON
* ``GET /static/...``                    CSS and a few lines of optional JavaScript

With token auth, a repository is shown only to a token with ``pull`` on it (the API's own check), and the
listing holds only such repositories. Pages never carry key material other than public key IDs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notar import __version__
from notar.registry import RegistryClient
from notar.server.app import valid_gun
from notar.server.auth import Access, TokenAuth
from notar.server.errors import ServerError
from notar.server.service import TrustService
from notar.server.storage import MAX_REPOSITORIES
from notar.signing.verification import CosignKey, NotationTrust
from notar.web.signatures import SignatureReader
from notar.web.trust import STATUS_LABELS, RepoSummaryView, RepoView, TrustReader

__all__ = ["create_web_app"]

_HERE = Path(__file__).resolve().parent
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _ago(when: datetime, now: datetime) -> str:
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    env.globals["STATUS_LABELS"] = STATUS_LABELS
    env.globals["version"] = __version__
    return env


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                if not scope.get("path", "").startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WebUI:
    """Handlers; all trust work happens in :class:`TrustReader` in the thread pool."""

    def __init__(self, reader: TrustReader, auth: TokenAuth | None) -> None:
        self.reader = reader
        self.auth = auth
        self.templates = _environment()

    # -- auth ------------------------------------------------------------------------------------------
    def _check(self, request: Request, gun: str) -> None:
        if self.auth is not None:
            self.auth.check(request.headers.get("authorization"), [Access("repository", gun, "pull")])

    def _may_pull(self, request: Request, gun: str) -> bool:
        try:
            self._check(request, gun)
        except ServerError:
            return False
        return True

    # -- rendering -------------------------------------------------------------------------------------
    def _html(
        self, name: str, code: int = 200, headers: dict[str, str] | None = None, **ctx: Any
    ) -> Response:
        now = datetime.now(UTC)
        body = self.templates.get_template(name).render(now=now, ago=lambda d: _ago(d, now), **ctx)
        return HTMLResponse(body, code, headers=headers)

    def _error(self, request: Request, e: ServerError, *, api: bool) -> Response:
        if api:
            return Response(e.body(), e.status, headers=e.headers, media_type="application/json")
        message = {401: "You are not allowed to see this repository: send a token with pull access."}.get(
            e.status, "No trust data here."
        )
        return self._html("error.html", e.status, headers=e.headers, status=e.status, message=message)

    # -- listing ---------------------------------------------------------------------------------------
    def _list(self, request: Request) -> tuple[str, list[RepoSummaryView], int]:
        query = request.query_params.get("q", "").strip()[:255]
        try:
            limit = max(1, min(MAX_LIMIT, int(request.query_params.get("limit", DEFAULT_LIMIT))))
        except ValueError:
            limit = DEFAULT_LIMIT
        service = self.reader.service
        fetch = MAX_REPOSITORIES if self.auth is not None else limit + 1
        rows = service._guard(lambda: service.store.list_repositories(query, fetch))
        rows = [r for r in rows if self._may_pull(request, r.gun)]
        more = len(rows) > limit
        views = [self.reader.summary(r.gun, r.updated_at) for r in rows[:limit]]
        return query, views, (limit if more else 0)

    async def index(self, request: Request) -> Response:
        try:
            query, views, more = await run_in_threadpool(self._list, request)
        except ServerError as e:
            return self._error(request, e, api=False)
        return self._html(
            "index.html",
            query=query,
            repos=views,
            more=more,
            auth=self.auth is not None,
            registry=self.reader.registry_url if self.reader.registry else None,
        )

    async def api_index(self, request: Request) -> Response:
        try:
            query, views, more = await run_in_threadpool(self._list, request)
        except ServerError as e:
            return self._error(request, e, api=True)
        return JSONResponse(
            {"query": query, "repositories": [v.to_json() for v in views], "truncated": bool(more)}
        )

    # -- one repository --------------------------------------------------------------------------------
    def _view(self, request: Request) -> RepoView:
        gun = request.path_params["gun"].strip("/")
        if not valid_gun(gun):
            raise ServerError("METADATA_NOT_FOUND", {})
        self._check(request, gun)  # before looking: the answer must not depend on the GUN existing
        view = self.reader.view(gun)
        if view is None:
            raise ServerError("METADATA_NOT_FOUND", {})
        return view

    async def repository(self, request: Request) -> Response:
        try:
            view = await run_in_threadpool(self._view, request)
        except ServerError as e:
            return self._error(request, e, api=False)
        return self._html("repository.html", repo=view, counts=view.counts())

    async def api_repository(self, request: Request) -> Response:
        try:
            view = await run_in_threadpool(self._view, request)
        except ServerError as e:
            return self._error(request, e, api=True)
        return Response(
            json.dumps(view.to_json(), separators=(",", ":")).encode(),
            media_type="application/json; charset=utf-8",
        )

    async def not_found(self, request: Request) -> Response:
        return self._html("error.html", 404, status=404, message="There is no page here.")


def create_web_app(
    service: TrustService,
    *,
    auth: TokenAuth | None = None,
    registry: RegistryClient | None = None,
    registry_url: str | None = None,
    notation: NotationTrust | None = None,
    cosign_keys: Sequence[CosignKey] = (),
) -> ASGIApp:
    """The UI over *service*. With *registry* (or *registry_url*), tags are compared with the registry and
    show their Notation / cosign signatures, verified under *notation* (a trust policy + store) and with
    *cosign_keys* when given."""
    if registry is None and registry_url:
        registry = RegistryClient(registry_url)
    signatures = None
    if registry is not None:
        host = urlsplit(registry.base_url).netloc
        signatures = SignatureReader(registry, registry_host=host, notation=notation, cosign_keys=cosign_keys)
    reader = TrustReader(service, registry=registry, registry_url=registry_url, signatures=signatures)
    ui = WebUI(reader, auth)
    app = Starlette(
        routes=[
            Route("/", ui.index, methods=["GET"]),
            Route("/repositories/{gun:path}", ui.repository, methods=["GET"]),
            Route("/api/repositories", ui.api_index, methods=["GET"]),
            Route("/api/repositories/{gun:path}", ui.api_repository, methods=["GET"]),
            Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
            Route("/{path:path}", ui.not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ],
    )
    return _SecurityHeaders(app)
