"""One registry's HTTP session: authentication, redirects, and the errors every request can end in.

:class:`RegistrySession` is what :class:`~notar.registry.client.RegistryClient` sends each request
through; it knows nothing of manifests or blobs. Authentication follows docker: anonymous until the
registry answers 401, then HTTP Basic or the bearer-token flow (tokens cached per scope in a
:class:`~notar.registry.auth.TokenCache`), retrying once. Redirects are followed here (GET/HEAD only,
http(s) only, never from https to http, ``Authorization`` only to the registry's own origin). Every error
names the registry and the operation; a secret of the credentials that a server echoes is masked.
The parts of authentication that need no network (challenges, scopes, the token cache) are in
:mod:`notar.registry.auth`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NoReturn, TypeVar

import httpx

from notar import __version__
from notar.registry.auth import TokenCache, merge_scopes, parse_www_authenticate
from notar.registry.credentials import CredentialProvider, Credentials
from notar.registry.digest import validate_digest
from notar.registry.errors import (
    AuthenticationError,
    ErrorDetail,
    InvalidDigestError,
    NotFoundError,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
)
from notar.registry.manifest import json_object
from notar.registry.reference import is_insecure_registry

__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "RegistrySession", "content_length", "http_client"]

log = logging.getLogger("notar.registry.client")  # one logger for the whole registry client

USER_AGENT: Final = f"notar/{__version__}"
DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=15.0)
MAX_REDIRECTS: Final = 10
OAUTH_CLIENT_ID: Final = "notar"

_MAX_ERROR_BODY: Final = 64 * 1024
_MAX_TOKEN_BODY: Final = 1024 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})

_E = TypeVar("_E", bound=RegistryError)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))


def http_client(
    *,
    verify: bool | str | os.PathLike[str] | ssl.SSLContext,
    timeout: httpx.Timeout | float | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    """An httpx client for a session: ``verify`` a bool, a CA bundle path or an ``SSLContext``; redirects
    are left to the session."""
    if not isinstance(verify, bool | ssl.SSLContext):
        verify = ssl.create_default_context(cafile=os.fspath(verify))
    return httpx.Client(transport=transport, verify=verify, timeout=timeout, follow_redirects=False)


def content_length(resp: httpx.Response) -> int | None:
    """The body size announced in ``Content-Length`` (None if absent, malformed or content-encoded)."""
    if resp.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None
    value = resp.headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def _parse_errors(body: bytes) -> list[ErrorDetail]:
    """The registry's ``{"errors": [...]}`` envelope (or an OAuth ``{"error": ...}``), else nothing."""
    value = json_object(body)
    if value is None:
        return []
    errors = value.get("errors")
    if isinstance(errors, list):
        out = []
        for item in errors:
            if isinstance(item, dict) and isinstance(item.get("code"), str):
                message = item.get("message")
                text = message if isinstance(message, str) else ""
                out.append(ErrorDetail(item["code"], text, item.get("detail")))
        return out
    error = value.get("error")
    if isinstance(error, str):
        description = value.get("error_description")
        return [ErrorDetail(error, description if isinstance(description, str) else "")]
    return []


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class RegistrySession:
    """Authenticated HTTP to the registry at ``base_url`` (``domain`` is its name in image references), sent
    through *http* (closed by :meth:`close` when ``owns_http``; see :func:`http_client`).

    ``credentials`` is a provider, fixed credentials or None (anonymous), as for
    :class:`~notar.registry.client.RegistryClient`, which makes the session; the provider is asked once, when
    the registry first demands authentication. Credentials go to a plain-http token server only if it is
    in ``insecure_registries``. Thread-safe.
    """

    def __init__(
        self,
        base_url: str,
        domain: str,
        http: httpx.Client,
        *,
        owns_http: bool,
        credentials: CredentialProvider | Credentials | None,
        insecure_registries: tuple[str, ...],
        clock: Callable[[], float],
    ) -> None:
        self.base_url = base_url
        self.domain = domain
        self._http, self._owns_http = http, owns_http
        self._insecure = insecure_registries
        self._origin = _origin(httpx.URL(base_url))
        self._provider = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._auth_scheme: str | None = None  # "basic" or "bearer", once the registry has asked
        self._tokens = TokenCache(clock)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # ------------------------------------------------------------------ requests, redirects

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        scopes: Sequence[str],
        what: str,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send with authentication, following redirects; returns an open streaming response.

        Raises for connection failures, 401/403 (after at most one authenticated retry), 429 and 5xx.
        The caller closes the response.
        """
        target = httpx.URL(url)
        scope_key = " ".join(merge_scopes(scopes))
        resp = self._send(method, target, headers, content, self._authorization(scope_key), what)
        if resp.status_code == 401:
            challenges = resp.headers.get_list("www-authenticate")
            resp.close()
            self._answer_challenge(challenges, scopes, scope_key, what)
            resp = self._send(method, target, headers, content, self._authorization(scope_key), what)
        if resp.status_code in (401, 403, 429) or resp.status_code >= 500:
            self.fail(resp, what, scope=scope_key)
        return resp

    def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        authorization: str | None,
        what: str,
    ) -> httpx.Response:
        common = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(common)
            if authorization is not None and _origin(url) == self._origin:
                sent["Authorization"] = authorization  # never to another origin
            request = self._http.build_request(method, url, headers=sent, content=content)
            log.debug("%s %s://%s%s", method, url.scheme, url.netloc.decode("ascii"), url.path)
            try:
                resp = self._http.send(request, stream=True, follow_redirects=False)
            except httpx.TimeoutException as e:
                raise self.error(RegistryUnavailableError, what, f"timed out ({type(e).__name__})") from e
            except httpx.HTTPError as e:
                raise self.error(RegistryUnavailableError, what, f"cannot connect: {e}") from e
            if resp.status_code not in _REDIRECTS or method not in ("GET", "HEAD"):
                return resp
            location = resp.headers.get("location")
            resp.close()
            if not location:
                raise self.error(RegistryProtocolError, what, "redirect without a Location")
            target = self.join(url, location, what)
            if url.scheme == "https" and target.scheme == "http":
                raise self.error(RegistryProtocolError, what, "refusing a redirect from https to plain http")
            url = target
        raise self.error(RegistryProtocolError, what, f"more than {MAX_REDIRECTS} redirects")

    def join(self, base: httpx.URL, location: str, what: str) -> httpx.URL:
        """Resolve a Location/Link URL; only http(s) targets are allowed."""
        try:
            target = base.join(location)
        except httpx.InvalidURL as e:
            raise self.error(RegistryProtocolError, what, f"bad URL {location[:200]!r}: {e}") from e
        if target.scheme not in ("http", "https"):
            raise self.error(RegistryProtocolError, what, f"refusing to follow a {target.scheme}: URL")
        return target

    def location(self, resp: httpx.Response, what: str) -> httpx.URL:
        """The response's ``Location``, resolved (an upload session's URL)."""
        location = resp.headers.get("location")
        if not location:
            raise self.error(RegistryProtocolError, what, "no Location header")
        return self.join(resp.url, location, what)

    # ------------------------------------------------------------------ errors, bodies, headers

    def error(
        self,
        cls: type[_E],
        what: str,
        text: str,
        *,
        status_code: int | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> _E:
        """An error ``cls`` whose message names this registry and the operation."""
        message = self._scrub(f"registry {self.base_url}: {what}: {text}")
        return cls(message, registry=self.base_url, status_code=status_code, details=details)

    def fail(
        self,
        resp: httpx.Response,
        what: str,
        *,
        not_found: type[NotFoundError] | None = None,
        scope: str | None = None,
    ) -> NoReturn:
        """Raise the error for an unexpected response (which is closed)."""
        status = resp.status_code
        body = b""
        if resp.request.method != "HEAD":
            with contextlib.suppress(httpx.HTTPError):
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_ERROR_BODY:
                        break
        resp.close()
        details = _parse_errors(body[:_MAX_ERROR_BODY])
        text = f"HTTP {status}" + (f": {'; '.join(map(str, details))}" if details else "")
        cls: type[RegistryError]
        if status in (401, 403):
            cls = AuthenticationError
            verb = "access denied" if status == 403 else "authentication failed"
            text = f"{verb} for scope {scope or '(none)'}: {text}"
        elif status == 404 and not_found is not None:
            cls = not_found
        elif status == 429 or status >= 500:
            cls = RegistryUnavailableError
        elif 400 <= status < 500:
            cls = RegistryError
        else:
            cls, text = RegistryProtocolError, f"unexpected {text}"
        raise self.error(cls, what, text, status_code=status, details=details)

    def read_capped(self, resp: httpx.Response, cap: int, what: str) -> bytes:
        """The whole body, at most ``cap`` bytes, exactly as long as ``Content-Length`` announced."""
        announced = content_length(resp)
        if announced is not None and announced > cap:
            raise self.error(
                RegistryProtocolError, what, f"{announced} bytes is more than the limit of {cap}"
            )
        buf = bytearray()
        try:
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > cap:
                    raise self.error(RegistryProtocolError, what, f"more than the limit of {cap} bytes")
        except httpx.HTTPError as e:
            raise self.error(RegistryUnavailableError, what, f"broken off while reading: {e}") from e
        if announced is not None and len(buf) != announced:
            raise self.error(RegistryProtocolError, what, f"{announced} bytes announced, {len(buf)} sent")
        return bytes(buf)

    def header_digest(self, headers: httpx.Headers, what: str) -> str | None:
        """The ``Docker-Content-Digest`` header, validated; None if absent."""
        value = headers.get("docker-content-digest")
        if value is None:
            return None
        try:
            return validate_digest(value.strip())
        except InvalidDigestError:
            raise self.error(
                RegistryProtocolError, what, f"bad Docker-Content-Digest {value[:100]!r}"
            ) from None

    # ------------------------------------------------------------------ authentication

    def _get_credentials(self) -> Credentials | None:
        with self._lock:
            if not self._credentials_loaded:
                provider = self._provider
                if provider is None or isinstance(provider, Credentials):
                    self._credentials = provider
                else:
                    self._credentials = provider.get_credentials(self.domain)
                self._credentials_loaded = True
            return self._credentials

    def _scrub(self, text: str) -> str:
        """``text`` with any secret of the loaded credentials masked (in case a server echoes one)."""
        creds = self._credentials
        if creds is not None:
            for secret in creds.secrets():
                text = text.replace(secret, "***")
        return text

    def _authorization(self, scope_key: str) -> str | None:
        with self._lock:
            scheme = self._auth_scheme
        if scheme == "basic":
            creds = self._get_credentials()
            return _basic(creds) if creds is not None and creds.has_password else None
        if scheme == "bearer":
            token = self._tokens.get(scope_key)
            return f"Bearer {token}" if token is not None else None
        return None

    def _answer_challenge(self, headers: list[str], scopes: Sequence[str], scope_key: str, what: str) -> None:
        """Act on a 401: get a bearer token for the scope, or switch to HTTP Basic."""
        try:
            challenges = parse_www_authenticate(headers)
        except ValueError as e:
            raise self.error(RegistryProtocolError, what, f"malformed WWW-Authenticate: {e}") from e
        by_scheme = {c.scheme: c for c in reversed(challenges)}  # the first of each scheme wins
        creds = self._get_credentials()
        if "bearer" in by_scheme:
            challenge = by_scheme["bearer"]
            wanted = merge_scopes([*challenge.scopes, *scopes])
            token, expires_in = self._fetch_token(challenge.realm, challenge.service, wanted, creds, what)
            self._tokens.put(scope_key, token, expires_in)
            with self._lock:
                self._auth_scheme = "bearer"
        elif "basic" in by_scheme:
            if creds is None or not creds.has_password:
                raise self.error(
                    AuthenticationError,
                    what,
                    f"the registry wants a user name and password (scope {scope_key or '(none)'}) "
                    f"and no credentials are configured for {self.domain}",
                    status_code=401,
                )
            with self._lock:
                self._auth_scheme = "basic"
        else:
            offered = ", ".join(sorted(by_scheme)) or "no scheme"
            raise self.error(
                AuthenticationError,
                what,
                f"401 with {offered}; notar speaks Bearer and Basic",
                status_code=401,
            )

    def _fetch_token(
        self, realm: str | None, service: str | None, scopes: list[str], creds: Credentials | None, what: str
    ) -> tuple[str, float | None]:
        """Get a bearer token for ``scopes`` from the token server (``realm``) of a challenge."""
        try:
            realm_url = httpx.URL(realm or "")
        except httpx.InvalidURL:
            realm_url = httpx.URL()
        if realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise self.error(RegistryProtocolError, what, f"Bearer challenge with a bad realm {realm!r}")
        realm_netloc = realm_url.netloc.decode("ascii")
        server = f"token server {realm_url.scheme}://{realm_netloc}{realm_url.path}"
        scope_text = " ".join(scopes) or "(none)"
        has_secret = creds is not None and (bool(creds.identity_token) or creds.has_password)
        if (
            has_secret
            and realm_url.scheme != "https"
            and not is_insecure_registry(realm_netloc, self._insecure)
        ):
            raise self.error(
                AuthenticationError, what, f"refusing to send credentials to {server} over plain http"
            )
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if creds is not None and creds.identity_token:  # OAuth2 refresh-token grant, as docker does
            form = {
                "grant_type": "refresh_token",
                "client_id": OAUTH_CLIENT_ID,
                "refresh_token": creds.identity_token,
            }
            form |= {"service": service} if service else {}
            form |= {"scope": " ".join(scopes)} if scopes else {}
            request = self._http.build_request("POST", realm_url, headers=headers, data=form)
            who = "the identity token"
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else []
            )
            params += [("scope", s) for s in scopes]
            who = "anonymous access"
            if creds is not None and creds.has_password:
                params.append(("account", creds.username))
                headers["Authorization"] = _basic(creds)
                who = f"user {creds.username!r}"
            request = self._http.build_request("GET", realm_url.copy_merge_params(params), headers=headers)
        log.debug("token request to %s for scope %s", server, scope_text)
        try:
            with contextlib.closing(self._http.send(request, stream=True, follow_redirects=False)) as resp:
                body = self.read_capped(resp, _MAX_TOKEN_BODY, f"{what}, {server}")
        except httpx.HTTPError as e:
            raise self.error(RegistryUnavailableError, what, f"cannot reach {server}: {e}") from e
        if resp.status_code != 200:
            details = _parse_errors(body)
            text = f"{server} refused {who} for scope {scope_text}: HTTP {resp.status_code}"
            text += f": {'; '.join(map(str, details))}" if details else ""
            unavailable = resp.status_code == 429 or resp.status_code >= 500
            cls = RegistryUnavailableError if unavailable else AuthenticationError
            raise self.error(cls, what, text, status_code=resp.status_code, details=details)
        value = json_object(body)
        if value is None:
            raise self.error(
                RegistryProtocolError, what, f"{server} answered something other than a JSON object"
            )
        token = value.get("token") or value.get("access_token")
        if not isinstance(token, str) or not token:
            raise self.error(RegistryProtocolError, what, f"{server} answered without a token")
        expires_in = value.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return token, float(expires_in)
        return token, None
