"""The Notary v1 HTTP API, client side: fetch metadata with size caps, publish, keys, delete."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from notar import __version__
from notar.client import _http
from notar.client.errors import (
    PermissionDeniedError,
    PublishRejectedError,
    RepositoryExistsError,
    TrustServerError,
    TrustServerUnavailableError,
    VersionConflictError,
)
from notar.client.sources import MetadataNotFoundError, metadata_name, not_found, too_large
from notar.crypto import CryptoError, PublicKey

if TYPE_CHECKING:
    import httpx

__all__ = [
    "encode_update",
    "MAX_KEY_BYTES",
    "MAX_ROOT_BYTES",
    "MAX_TIMESTAMP_BYTES",
    "MetadataNotFoundError",
    "TrustServer",
]

MAX_ROOT_BYTES = 100 * 1024 * 1024  # notary's cap when the size is unknown
MAX_TIMESTAMP_BYTES = 1024 * 1024
MAX_KEY_BYTES = 256 * 1024
_MAX_ERROR_BYTES = 64 * 1024


class TrustServer:
    """One trust server (notary-server or notar server).

    Its requests go through *http* when given (an ``httpx.Client``: tests' in-process apps, the gateway's
    deadline transport), else through an ``httpx.Client`` with *auth* when that is given, else through the
    standard library's HTTP client (:mod:`notar.client._http`, ADR 0011), with the same TLS (*verify*: True
    for certifi's CAs, False, a CA file or directory, an ``ssl.SSLContext``), *timeout*, no proxies from the
    environment and no redirects.
    """

    def __init__(
        self,
        url: str,
        *,
        verify: Any = True,
        auth: httpx.Auth | None = None,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"notar/{__version__}"}
        self._http: httpx.Client | _http.Client
        self._transport_errors: tuple[type[Exception], ...]
        if http is None and auth is None:
            self._http = _http.Client(
                verify=verify, timeout=timeout, headers=headers, https=self.url.startswith("https:")
            )
            self._transport_errors = (_http.TransportError,)
            return
        import httpx

        self._http = http or httpx.Client(
            verify=verify,
            auth=auth,
            timeout=timeout,
            follow_redirects=False,
            headers=headers,
            trust_env=False,
        )
        self._transport_errors = (httpx.TransportError,)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrustServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, gun: str, tail: str) -> str:
        return f"{self.url}/v2/{quote(gun, safe='/:@')}/_trust/{tail}"

    def _request(self, method: str, url: str, **kw: Any) -> _http.Response:
        try:
            return self._http.request(method, url, **kw)
        except self._transport_errors as e:
            raise TrustServerUnavailableError(f"error contacting trust server {self.url}: {e}") from e

    def _fail(self, response: _http.Response, what: str) -> TrustServerError:
        status = response.status_code
        detail = _error_text(response)
        if status in (401, 403):
            return PermissionDeniedError(
                f"you are not authorized to {what} on {self.url}: server returned {status}{detail}"
            )
        if status >= 500:
            return TrustServerUnavailableError(f"trust server {self.url} failed to {what}: {status}{detail}")
        if status == 404:
            return MetadataNotFoundError(f"{what}: not found on {self.url}")
        if status == 400 and "VERSION" in _error_codes(response):
            return VersionConflictError(f"trust server {self.url} rejected the request to {what}{detail}")
        return PublishRejectedError(f"trust server {self.url} rejected the request to {what}{detail}")

    # -- reads ------------------------------------------------------------------------------------------
    def get(
        self, gun: str, role: str, *, max_bytes: int, checksum: str | None = None, version: int | None = None
    ) -> bytes:
        """A metadata file, read up to *max_bytes* (a larger answer is refused: endless-data attack)."""
        name = metadata_name(role, checksum=checksum, version=version)
        url = self._url(gun, "tuf/" + name)
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    raise not_found(gun, role, name, self.url, current=checksum is None and version is None)
                if response.status_code != 200:
                    response.read()
                    raise self._fail(response, f"fetch {name} of {gun}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise too_large(name, max_bytes)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(name, max_bytes)
                    chunks.append(chunk)
                return b"".join(chunks)
        except self._transport_errors as e:
            raise TrustServerUnavailableError(f"error contacting trust server {self.url}: {e}") from e

    def get_key(self, gun: str, role: str, *, rotate: bool = False) -> PublicKey:
        """The server-held key for *role* (``timestamp`` or ``snapshot``); *rotate* asks for a new one."""
        response = self._request("POST" if rotate else "GET", self._url(gun, f"tuf/{role}.key"))
        if response.status_code != 200:
            raise self._fail(response, f"get the {role} key of {gun}")
        if len(response.content) > MAX_KEY_BYTES:
            raise TrustServerError("trust server returned a bad response: key is too large")
        try:
            return PublicKey.from_dict(json.loads(response.content))
        except (ValueError, CryptoError, RecursionError) as e:
            raise TrustServerError(f"trust server returned a malformed {role} key: {e}") from e

    # -- writes -----------------------------------------------------------------------------------------
    def publish(self, gun: str, files: Mapping[str, bytes]) -> None:
        """POST one atomic multipart update (one part per role, as the Go client sends it)."""
        body, content_type = encode_update(files)
        response = self._request(
            "POST", self._url(gun, "tuf/"), content=body, headers={"Content-Type": content_type}
        )
        if response.status_code != 200:
            raise self._fail(response, f"publish trust data for {gun}")

    def import_repository(self, gun: str, body: bytes, *, force: bool = False) -> dict[str, Any]:
        """POST a repository moved from another server to notar's import endpoint; its JSON answer."""
        url = self._url(gun, "import") + ("?force=true" if force else "")
        response = self._request("POST", url, content=body, headers={"Content-Type": "application/json"})
        if response.status_code == 409:
            raise RepositoryExistsError(f"{self.url} refused the import: {_error_detail(response)}")
        if response.status_code != 200:
            raise self._fail(response, f"import trust data for {gun}")
        try:
            answer = json.loads(response.content[:_MAX_ERROR_BYTES])
        except (ValueError, RecursionError) as e:
            raise TrustServerError(f"trust server {self.url} answered the import with no JSON") from e
        return answer if isinstance(answer, dict) else {}

    def accepts_import(self, gun: str) -> bool:
        """Whether this server has notar's import endpoint (a Go notary-server answers 404 there)."""
        response = self._request(
            "POST", self._url(gun, "import"), content=b"{}", headers={"Content-Type": "application/json"}
        )
        if response.status_code in (401, 403):
            raise self._fail(response, f"import trust data for {gun}")
        return response.status_code == 400  # notar: MALFORMED_JSON for the empty probe

    def delete(self, gun: str) -> None:
        response = self._request("DELETE", self._url(gun, "tuf/"))
        if response.status_code != 200:
            raise self._fail(response, f"delete trust data of {gun}")


def encode_update(files: Mapping[str, bytes], *, boundary: str | None = None) -> tuple[bytes, str]:
    """The multipart body of one update and its content type, as the Go client builds it: one part per
    role, field ``files``, ``filename`` = the role name, ``application/octet-stream``."""
    boundary = boundary or os.urandom(16).hex()  # random, as uuid4().hex was (uuid imports platform)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
        for role, data in files.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _error_codes(response: _http.Response) -> set[str]:
    """The ``code`` of each error in a notary error body (``{"errors": [{"code": ...}]}``)."""
    try:
        body = json.loads(response.content[:_MAX_ERROR_BYTES])
        return {str(e.get("code")) for e in body.get("errors") or [] if isinstance(e, dict)}
    except (ValueError, AttributeError, RecursionError, TypeError):
        return set()


def _error_detail(response: _http.Response) -> str:
    """The first error's ``detail`` when it is a sentence (notar's own errors), else its message."""
    try:
        first = json.loads(response.content[:_MAX_ERROR_BYTES])["errors"][0]
        detail = first.get("detail")
        return str(
            detail if isinstance(detail, str) and detail else first.get("message") or first.get("code")
        )
    except (ValueError, LookupError, AttributeError, RecursionError, TypeError):
        return f"status {response.status_code}"


def _error_text(response: _http.Response) -> str:
    try:
        body = json.loads(response.content[:_MAX_ERROR_BYTES])
        errors = body.get("errors") or []
        texts = []
        for e in errors:
            detail = e.get("detail")
            msg = e.get("message") or e.get("code")
            if isinstance(detail, dict) and isinstance(detail.get("Error"), dict):
                msg = f"{msg} {detail['Error'].get('Msg', '')}".strip()
            texts.append(str(msg))
        return (": " + "; ".join(texts)) if texts else ""
    except (ValueError, AttributeError, RecursionError):
        return ""
