"""A synchronous OCI distribution (Docker registry v2) client: auth, manifests, blobs, tags.

One :class:`RegistryClient` talks to one registry. Everything it returns is verified: a manifest's
bytes hash to the digest asked for and to ``Docker-Content-Digest``; a blob's bytes hash to its
digest and have the expected size. Authentication follows docker: anonymous until the registry
answers 401, then HTTP Basic or the bearer-token flow (tokens cached per scope), retrying once.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import BinaryIO, Final, NoReturn, TypeVar

import httpx

from notar import __version__
from notar.registry.auth import TokenCache, merge_scopes, parse_www_authenticate, pull_scope, push_scope
from notar.registry.credentials import CredentialProvider, Credentials
from notar.registry.digest import DigestHasher, compute_digest, validate_digest
from notar.registry.errors import (
    AuthenticationError,
    BlobNotFoundError,
    DigestMismatchError,
    ErrorDetail,
    InvalidDigestError,
    ManifestNotFoundError,
    NotFoundError,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
    RepositoryNotFoundError,
    UnsupportedManifestError,
)
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    MANIFEST_MEDIA_TYPES,
    SCHEMA1_MEDIA_TYPES,
    SCHEMA1_REFUSAL,
    Descriptor,
    Manifest,
    json_object,
    manifest_media_type,
    media_type_of,
)
from notar.registry.reference import (
    DEFAULT_DOMAIN,
    LEGACY_DEFAULT_DOMAIN,
    Reference,
    is_insecure_registry,
    parse_reference,
    registry_base_url,
    validate_domain,
    validate_repository,
    validate_tag,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_MANIFEST_SIZE",
    "USER_AGENT",
    "RegistryClient",
]

log = logging.getLogger(__name__)

USER_AGENT: Final = f"notar/{__version__}"
DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=15.0)
MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024  # distribution's own limit
DEFAULT_CHUNK_SIZE: Final = 8 * 1024 * 1024  # blobs up to this size go in one PUT
MAX_REDIRECTS: Final = 10
OAUTH_CLIENT_ID: Final = "notar"

_MAX_ERROR_BODY: Final = 64 * 1024
_MAX_TOKEN_BODY: Final = 1024 * 1024
_MAX_TAGS_BODY: Final = 16 * 1024 * 1024
_MAX_TAG_PAGES: Final = 10_000
_ACCEPT: Final = ", ".join(ACCEPTED_MANIFEST_TYPES)
_OCTET_STREAM: Final = "application/octet-stream"
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_LINK_NEXT_RE: Final = re.compile(r'<([^>]*)>\s*;[^,]*?\brel\s*=\s*"?next"?', re.IGNORECASE)

_E = TypeVar("_E", bound=RegistryError)


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))


def _ssl_verify(verify: bool | str | os.PathLike[str] | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    return ssl.create_default_context(cafile=os.fspath(verify))


def _is_digest(ref: str) -> bool:
    return ":" in ref


def _check_ref(ref: str) -> str:
    """A manifest reference: a tag or a digest."""
    return validate_digest(ref) if _is_digest(ref) else validate_tag(ref)


def _show(repo: str, ref: str) -> str:
    return f"{repo}{'@' if _is_digest(ref) else ':'}{ref}"


def _algorithm(digest: str) -> str:
    return digest.partition(":")[0]


def _content_length(resp: httpx.Response) -> int | None:
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


def _read_exactly(source: BinaryIO, n: int) -> bytes:
    """Read ``n`` bytes (fewer only at end of file), looping over short reads."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        chunk = source.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class RegistryClient:
    """Client for one registry.

    ``registry`` is a registry domain as in image references (``docker.io``, ``ghcr.io``,
    ``127.0.0.1:5000``) or an explicit base URL (``http://127.0.0.1:5000``). Without a scheme, HTTPS
    is used except for loopback registries and those in ``insecure_registries`` (host[:port] or
    CIDR), like docker. ``verify`` is ``True``, ``False``, a CA bundle path or an ``SSLContext``.

    ``credentials`` is a :class:`~notar.registry.credentials.CredentialProvider` (e.g.
    :class:`~notar.registry.credentials.DockerConfigCredentials`), fixed
    :class:`~notar.registry.credentials.Credentials`, or None for anonymous access. The provider is
    asked once, when the registry first demands authentication.

    For tests and embedding, pass ``transport`` (any ``httpx.BaseTransport``) or a ready ``client``
    (e.g. starlette's ``TestClient``); a passed client is not closed by :meth:`close`. Redirects are
    followed here (GET/HEAD only, http(s) only, never from https to http, ``Authorization`` only to
    the registry's own origin), so the client's ``follow_redirects`` setting does not matter.
    Thread-safe; use it as a context manager.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: CredentialProvider | Credentials | None = None,
        insecure_registries: Iterable[str] = (),
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._insecure = tuple(insecure_registries)
        if registry.startswith(("http://", "https://")):
            url = httpx.URL(registry)
            if url.path not in ("", "/") or url.query or url.fragment:
                raise ValueError(f"registry URL must not have a path, query or fragment: {registry!r}")
            self.domain = url.netloc.decode("ascii")
            self.base_url = registry_base_url(registry)
        else:
            self.domain = validate_domain(registry)
            if self.domain == LEGACY_DEFAULT_DOMAIN:
                self.domain = DEFAULT_DOMAIN
            self.base_url = registry_base_url(self.domain, insecure_registries=self._insecure)
        self._origin = _origin(httpx.URL(self.base_url))
        self.max_manifest_size = max_manifest_size
        self._provider = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._auth_scheme: str | None = None  # "basic" or "bearer", once the registry has asked
        self._tokens = TokenCache(clock)
        self._lock = threading.Lock()
        if client is not None:
            if transport is not None:
                raise TypeError("pass either client= or transport=, not both")
            self._http, self._owns_http = client, False
        else:
            self._http = httpx.Client(
                transport=transport, verify=_ssl_verify(verify), timeout=timeout, follow_redirects=False
            )
            self._owns_http = True

    @classmethod
    def for_reference(cls, reference: Reference | str, **kwargs: object) -> RegistryClient:
        """A client for the registry of ``reference`` (keyword arguments as for the constructor)."""
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        return cls(ref.domain, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ registry

    def ping(self) -> None:
        """Check that a v2 registry answers ``GET /v2/`` (authenticating if it asks); raise otherwise."""
        what = "GET /v2/"
        with contextlib.closing(self._request("GET", f"{self.base_url}/v2/", scopes=(), what=what)) as resp:
            if resp.status_code == 404:
                resp.close()
                raise self._err(
                    RegistryProtocolError, what, "404: this is not a registry v2 API", status_code=404
                )
            if resp.status_code != 200:
                self._fail(resp, what)

    def tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        """All tags of ``repo``, following ``Link: <...>; rel="next"`` pages of ``page_size`` tags."""
        repo = validate_repository(repo)
        what = f"list tags of {repo}"
        url = httpx.URL(f"{self.base_url}/v2/{repo}/tags/list")
        if page_size is not None:
            if page_size <= 0:
                raise ValueError("page_size must be positive")
            url = url.copy_merge_params({"n": str(page_size)})
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            seen.add(str(url))
            with contextlib.closing(self._request("GET", url, scopes=[pull_scope(repo)], what=what)) as resp:
                if resp.status_code != 200:
                    self._fail(resp, what, not_found=RepositoryNotFoundError)
                body = self._read_capped(resp, _MAX_TAGS_BODY, what)
                link, page_url = resp.headers.get("link"), resp.url
            tags.extend(self._parse_tags(body, what))
            match = _LINK_NEXT_RE.search(link or "")
            if match is None:
                return tags
            url = self._join(page_url, match.group(1), what)
            if str(url) in seen:
                raise self._err(RegistryProtocolError, what, "the pagination links loop")
        raise self._err(RegistryProtocolError, what, f"more than {_MAX_TAG_PAGES} pages")

    def _parse_tags(self, body: bytes, what: str) -> list[str]:
        value = json_object(body)
        if value is None:
            raise self._err(RegistryProtocolError, what, "the answer is not a JSON object")
        tags = value.get("tags")
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self._err(RegistryProtocolError, what, "'tags' is not a list of strings")
        return tags

    # ------------------------------------------------------------------ manifests

    def head_manifest(self, repo: str, ref: str) -> Descriptor:
        """Media type, digest and size of a manifest, without its body.

        For a tag the digest is the registry's ``Docker-Content-Digest``, which cannot be checked
        without the body: use :meth:`get_manifest` for anything that is signed or trusted.
        """
        repo, ref = validate_repository(repo), _check_ref(ref)
        what = f"HEAD manifest {_show(repo, ref)}"
        url = f"{self.base_url}/v2/{repo}/manifests/{ref}"
        resp = self._request("HEAD", url, scopes=[pull_scope(repo)], what=what, headers={"Accept": _ACCEPT})
        with contextlib.closing(resp):
            if resp.status_code != 200:
                self._fail(resp, what, not_found=ManifestNotFoundError)
        media_type = media_type_of(resp.headers.get("content-type"))
        if media_type in SCHEMA1_MEDIA_TYPES:
            raise self._schema1(what)
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise self._err(UnsupportedManifestError, what, f"unsupported manifest media type {media_type!r}")
        size = resp.headers.get("content-length", "").strip()
        if not size.isdigit():
            raise self._err(RegistryProtocolError, what, "no Content-Length")
        digest = self._header_digest(resp.headers, what)
        if _is_digest(ref):
            if digest is not None and digest != ref:
                raise self._err(DigestMismatchError, what, f"Docker-Content-Digest is {digest}")
            digest = ref
        if digest is None:
            raise self._err(RegistryProtocolError, what, "no Docker-Content-Digest header")
        return Descriptor(media_type=media_type, digest=digest, size=int(size))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """Fetch a manifest by tag or digest, verified.

        Accepts Docker schema 2 manifests and manifest lists, OCI manifests and indexes; refuses
        schema 1. The bytes must hash to ``ref`` when it is a digest and to ``Docker-Content-Digest``
        when the registry sends it, else :class:`DigestMismatchError`. The returned digest is
        ``ref`` for a digest, else the sha256 of the bytes received.
        """
        repo, ref = validate_repository(repo), _check_ref(ref)
        what = f"GET manifest {_show(repo, ref)}"
        url = f"{self.base_url}/v2/{repo}/manifests/{ref}"
        resp = self._request("GET", url, scopes=[pull_scope(repo)], what=what, headers={"Accept": _ACCEPT})
        with contextlib.closing(resp):
            if resp.status_code != 200:
                self._fail(resp, what, not_found=ManifestNotFoundError)
            data = self._read_capped(resp, self.max_manifest_size, what)
        try:
            media_type = manifest_media_type(resp.headers.get("content-type"), data)
        except RegistryProtocolError as e:  # UnsupportedManifestError too: the same class, with our names
            raise self._err(type(e), what, str(e)) from None
        header_digest = self._header_digest(resp.headers, what)
        if header_digest is not None and compute_digest(data, _algorithm(header_digest)) != header_digest:
            raise self._err(
                DigestMismatchError,
                what,
                f"Docker-Content-Digest says {header_digest} but the manifest received hashes to "
                f"{compute_digest(data, _algorithm(header_digest))}",
            )
        digest = compute_digest(data)
        if _is_digest(ref):
            actual = compute_digest(data, _algorithm(ref))
            if actual != ref:
                raise self._err(DigestMismatchError, what, f"the manifest received hashes to {actual}")
            digest = ref
        return Manifest(digest=digest, size=len(data), media_type=media_type, data=data)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or under its digest; returns its digest."""
        repo, ref = validate_repository(repo), _check_ref(ref)
        what = f"PUT manifest {_show(repo, ref)}"
        if media_type_of(media_type) in SCHEMA1_MEDIA_TYPES:
            raise self._schema1(what)
        if len(data) > self.max_manifest_size:
            raise ValueError(f"manifest is {len(data)} bytes; the limit is {self.max_manifest_size}")
        digest = ref if _is_digest(ref) else compute_digest(data)
        if compute_digest(data, _algorithm(digest)) != digest:
            raise DigestMismatchError(f"{what}: the manifest does not hash to {ref}")
        url = f"{self.base_url}/v2/{repo}/manifests/{ref}"
        headers = {"Content-Type": media_type}
        resp = self._request("PUT", url, scopes=[push_scope(repo)], what=what, headers=headers, content=data)
        with contextlib.closing(resp):
            if resp.status_code not in (200, 201):
                self._fail(resp, what, not_found=RepositoryNotFoundError)
        stored = self._header_digest(resp.headers, what)
        if stored is not None and compute_digest(data, _algorithm(stored)) != stored:
            raise self._err(DigestMismatchError, what, f"the registry stored it as {stored}, not {digest}")
        return digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete manifest ``digest`` (which untags every tag pointing at it)."""
        repo, digest = validate_repository(repo), validate_digest(digest)
        what = f"DELETE manifest {repo}@{digest}"
        url = f"{self.base_url}/v2/{repo}/manifests/{digest}"
        with contextlib.closing(self._request("DELETE", url, scopes=[push_scope(repo)], what=what)) as resp:
            if resp.status_code not in (200, 202, 204):
                self._fail(resp, what, not_found=ManifestNotFoundError)

    # ------------------------------------------------------------------ blobs

    def blob_exists(self, repo: str, digest: str) -> int | None:
        """The size of blob ``digest`` in ``repo``, or None if the registry does not have it there."""
        repo, digest = validate_repository(repo), validate_digest(digest)
        return self._head_blob(repo, digest, [pull_scope(repo)])

    def _head_blob(self, repo: str, digest: str, scopes: Sequence[str]) -> int | None:
        what = f"HEAD blob {repo}@{digest}"
        url = f"{self.base_url}/v2/{repo}/blobs/{digest}"
        with contextlib.closing(self._request("HEAD", url, scopes=scopes, what=what)) as resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                self._fail(resp, what)
        size = resp.headers.get("content-length", "").strip()
        if not size.isdigit():
            raise self._err(RegistryProtocolError, what, "no Content-Length")
        answered = self._header_digest(resp.headers, what)
        if answered is not None and answered != digest:
            raise self._err(RegistryProtocolError, what, f"the registry answered for {answered}")
        return int(size)

    def get_blob(self, repo: str, digest: str, dest: BinaryIO, *, expected_size: int | None = None) -> int:
        """Stream blob ``digest`` into ``dest``, checking its size and digest; returns the size.

        Too many or too few bytes, or other content, raise :class:`DigestMismatchError`. After any
        error ``dest`` may hold unverified data and must be discarded (write to a temporary file and
        rename it only when this returns).
        """
        repo, digest = validate_repository(repo), validate_digest(digest)
        what = f"GET blob {repo}@{digest}"
        hasher = DigestHasher.for_digest(digest)
        url = f"{self.base_url}/v2/{repo}/blobs/{digest}"
        with contextlib.closing(self._request("GET", url, scopes=[pull_scope(repo)], what=what)) as resp:
            if resp.status_code != 200:
                self._fail(resp, what, not_found=BlobNotFoundError)
            announced = _content_length(resp)
            if expected_size is not None and announced is not None and announced != expected_size:
                raise self._err(
                    DigestMismatchError, what, f"{announced} bytes announced, {expected_size} expected"
                )
            limit = expected_size if expected_size is not None else announced
            try:
                for chunk in resp.iter_bytes():
                    if limit is not None and hasher.size + len(chunk) > limit:
                        raise self._err(DigestMismatchError, what, f"more than the expected {limit} bytes")
                    hasher.update(chunk)
                    dest.write(chunk)
            except httpx.HTTPError as e:
                raise self._err(
                    RegistryUnavailableError, what, f"broken off after {hasher.size} bytes: {e}"
                ) from e
        if limit is not None and hasher.size != limit:
            raise self._err(DigestMismatchError, what, f"truncated: {hasher.size} of {limit} bytes")
        if hasher.digest() != digest:
            raise self._err(DigestMismatchError, what, f"the content received hashes to {hasher.digest()}")
        return hasher.size

    def push_blob(
        self,
        repo: str,
        digest: str,
        source: BinaryIO | bytes,
        size: int,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        mount_from: str | None = None,
        skip_existing: bool = True,
    ) -> str:
        """Upload ``size`` bytes from ``source`` as blob ``digest``; returns the digest.

        Does nothing if the registry already has the blob (``skip_existing``). With ``mount_from``
        (another repository of this registry) it first asks for a cross-repository mount. Blobs of
        at most ``chunk_size`` bytes go in one PUT; larger ones in PATCH requests of ``chunk_size``
        bytes with ``Content-Range``, then a closing PUT. The content is hashed as it is read, and
        the upload is abandoned, never committed, if it does not match ``digest`` and ``size``.
        """
        repo, digest = validate_repository(repo), validate_digest(digest)
        if size < 0 or chunk_size <= 0:
            raise ValueError("size must be >= 0 and chunk_size > 0")
        what = f"push blob {repo}@{digest}"
        stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
        scopes = [push_scope(repo)]
        if mount_from is not None:
            scopes.append(pull_scope(validate_repository(mount_from)))
        if skip_existing:
            existing = self._head_blob(repo, digest, scopes)
            if existing is not None:
                if existing != size:
                    raise self._err(DigestMismatchError, what, f"the registry has it with {existing} bytes")
                return digest
        start = httpx.URL(f"{self.base_url}/v2/{repo}/blobs/uploads/")
        if mount_from is not None:
            start = start.copy_merge_params({"mount": digest, "from": mount_from})
        with contextlib.closing(self._request("POST", start, scopes=scopes, what=what, content=b"")) as resp:
            if mount_from is not None and resp.status_code == 201:
                self._check_stored(resp, digest, what)
                return digest
            if resp.status_code != 202:
                self._fail(resp, what, not_found=RepositoryNotFoundError)
            location = self._location(resp, what)
        try:
            hasher = DigestHasher.for_digest(digest)
            body = b""
            if size <= chunk_size:
                body = _read_exactly(stream, size)
                hasher.update(body)
                self._check_source(hasher, digest, size, what)
            else:
                location = self._upload_chunks(
                    location, stream, hasher, (digest, size, chunk_size), scopes, what
                )
            final = location.copy_merge_params({"digest": digest})
            headers = {"Content-Type": _OCTET_STREAM}
            resp = self._request("PUT", final, scopes=scopes, what=what, headers=headers, content=body)
            with contextlib.closing(resp):
                if resp.status_code not in (201, 204):
                    self._fail(resp, what, not_found=BlobNotFoundError)
            self._check_stored(resp, digest, what)
        except Exception:  # not on Ctrl-C: no network call while interrupted
            self._cancel_upload(location, scopes)
            raise
        return digest

    def _upload_chunks(
        self,
        location: httpx.URL,
        stream: BinaryIO,
        hasher: DigestHasher,
        target: tuple[str, int, int],
        scopes: Sequence[str],
        what: str,
    ) -> httpx.URL:
        """PATCH ``stream`` in chunks; returns the upload URL for the closing PUT."""
        digest, size, chunk_size = target
        offset = 0
        while offset < size:
            chunk = _read_exactly(stream, min(chunk_size, size - offset))
            hasher.update(chunk)
            end = offset + len(chunk)
            if not chunk or end == size:
                self._check_source(hasher, digest, size, what)  # before the last chunk leaves
            headers = {"Content-Type": _OCTET_STREAM, "Content-Range": f"{offset}-{end - 1}"}
            resp = self._request("PATCH", location, scopes=scopes, what=what, headers=headers, content=chunk)
            with contextlib.closing(resp):
                if resp.status_code != 202:
                    self._fail(resp, what, not_found=BlobNotFoundError)
                location = self._location(resp, what)
            received = resp.headers.get("range")
            if received is not None and received.strip() != f"0-{end - 1}":
                raise self._err(
                    RegistryProtocolError, what, f"after {end} bytes it reports Range {received!r}"
                )
            offset = end
        return location

    @staticmethod
    def _check_source(hasher: DigestHasher, digest: str, size: int, what: str) -> None:
        if hasher.size != size:
            raise DigestMismatchError(f"{what}: the source has {hasher.size} bytes, not {size}")
        if hasher.digest() != digest:
            raise DigestMismatchError(f"{what}: the source hashes to {hasher.digest()}")

    def _check_stored(self, resp: httpx.Response, digest: str, what: str) -> None:
        stored = self._header_digest(resp.headers, what)
        if stored is not None and stored != digest:
            raise self._err(DigestMismatchError, what, f"the registry stored it as {stored}")

    def _cancel_upload(self, location: httpx.URL, scopes: Sequence[str]) -> None:
        """Best effort: ask the registry to drop an abandoned upload session."""
        try:
            self._request("DELETE", location, scopes=scopes, what="cancel upload").close()
        except RegistryError as e:  # the original error matters more
            log.debug("cancelling an upload at %s failed: %s", self.base_url, e)

    # ------------------------------------------------------------------ HTTP, redirects, errors

    def _request(
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
            self._fail(resp, what, scope=scope_key)
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
                raise self._err(RegistryUnavailableError, what, f"timed out ({type(e).__name__})") from e
            except httpx.HTTPError as e:
                raise self._err(RegistryUnavailableError, what, f"cannot connect: {e}") from e
            if resp.status_code not in _REDIRECTS or method not in ("GET", "HEAD"):
                return resp
            location = resp.headers.get("location")
            resp.close()
            if not location:
                raise self._err(RegistryProtocolError, what, "redirect without a Location")
            target = self._join(url, location, what)
            if url.scheme == "https" and target.scheme == "http":
                raise self._err(RegistryProtocolError, what, "refusing a redirect from https to plain http")
            url = target
        raise self._err(RegistryProtocolError, what, f"more than {MAX_REDIRECTS} redirects")

    def _join(self, base: httpx.URL, location: str, what: str) -> httpx.URL:
        """Resolve a Location/Link URL; only http(s) targets are allowed."""
        try:
            target = base.join(location)
        except httpx.InvalidURL as e:
            raise self._err(RegistryProtocolError, what, f"bad URL {location[:200]!r}: {e}") from e
        if target.scheme not in ("http", "https"):
            raise self._err(RegistryProtocolError, what, f"refusing to follow a {target.scheme}: URL")
        return target

    def _location(self, resp: httpx.Response, what: str) -> httpx.URL:
        location = resp.headers.get("location")
        if not location:
            raise self._err(RegistryProtocolError, what, "no Location header")
        return self._join(resp.url, location, what)

    def _err(
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

    def _fail(
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
        raise self._err(cls, what, text, status_code=status, details=details)

    def _read_capped(self, resp: httpx.Response, cap: int, what: str) -> bytes:
        """The whole body, at most ``cap`` bytes, exactly as long as ``Content-Length`` announced."""
        announced = _content_length(resp)
        if announced is not None and announced > cap:
            raise self._err(RegistryProtocolError, what, f"{announced} bytes is more than the limit of {cap}")
        buf = bytearray()
        try:
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > cap:
                    raise self._err(RegistryProtocolError, what, f"more than the limit of {cap} bytes")
        except httpx.HTTPError as e:
            raise self._err(RegistryUnavailableError, what, f"broken off while reading: {e}") from e
        if announced is not None and len(buf) != announced:
            raise self._err(RegistryProtocolError, what, f"{announced} bytes announced, {len(buf)} sent")
        return bytes(buf)

    def _header_digest(self, headers: httpx.Headers, what: str) -> str | None:
        value = headers.get("docker-content-digest")
        if value is None:
            return None
        try:
            return validate_digest(value.strip())
        except InvalidDigestError:
            raise self._err(
                RegistryProtocolError, what, f"bad Docker-Content-Digest {value[:100]!r}"
            ) from None

    def _schema1(self, what: str) -> UnsupportedManifestError:
        return self._err(UnsupportedManifestError, what, SCHEMA1_REFUSAL)

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
            raise self._err(RegistryProtocolError, what, f"malformed WWW-Authenticate: {e}") from e
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
                raise self._err(
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
            raise self._err(
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
            raise self._err(RegistryProtocolError, what, f"Bearer challenge with a bad realm {realm!r}")
        realm_netloc = realm_url.netloc.decode("ascii")
        server = f"token server {realm_url.scheme}://{realm_netloc}{realm_url.path}"
        scope_text = " ".join(scopes) or "(none)"
        has_secret = creds is not None and (bool(creds.identity_token) or creds.has_password)
        if (
            has_secret
            and realm_url.scheme != "https"
            and not is_insecure_registry(realm_netloc, self._insecure)
        ):
            raise self._err(
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
                body = self._read_capped(resp, _MAX_TOKEN_BODY, f"{what}, {server}")
        except httpx.HTTPError as e:
            raise self._err(RegistryUnavailableError, what, f"cannot reach {server}: {e}") from e
        if resp.status_code != 200:
            details = _parse_errors(body)
            text = f"{server} refused {who} for scope {scope_text}: HTTP {resp.status_code}"
            text += f": {'; '.join(map(str, details))}" if details else ""
            unavailable = resp.status_code == 429 or resp.status_code >= 500
            cls = RegistryUnavailableError if unavailable else AuthenticationError
            raise self._err(cls, what, text, status_code=resp.status_code, details=details)
        value = json_object(body)
        if value is None:
            raise self._err(
                RegistryProtocolError, what, f"{server} answered something other than a JSON object"
            )
        token = value.get("token") or value.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._err(RegistryProtocolError, what, f"{server} answered without a token")
        expires_in = value.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return token, float(expires_in)
        return token, None
