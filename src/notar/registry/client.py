"""A synchronous OCI distribution (Docker registry v2) client: manifests, blobs, tags.

One :class:`RegistryClient` talks to one registry. Everything it returns is verified: a manifest's
bytes hash to the digest asked for and to ``Docker-Content-Digest``; a blob's bytes hash to its
digest and have the expected size. Every request goes through a
:class:`~notar.registry.session.RegistrySession`, which authenticates as docker does (anonymous until
the registry answers 401, then HTTP Basic or the bearer-token flow, retrying once), follows redirects
and turns failed answers into :class:`~notar.registry.errors.RegistryError` branches.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import BinaryIO, Final

import httpx

from notar.registry.auth import pull_scope, push_scope
from notar.registry.blobs import download_blob, head_blob, upload_blob
from notar.registry.credentials import CredentialProvider, Credentials
from notar.registry.digest import compute_digest, validate_digest
from notar.registry.errors import (
    DigestMismatchError,
    ManifestNotFoundError,
    RegistryProtocolError,
    RepositoryNotFoundError,
    UnsupportedManifestError,
)
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    MANIFEST_MEDIA_TYPES,
    MEDIA_TYPE_OCI_INDEX,
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
    parse_reference,
    registry_base_url,
    validate_domain,
    validate_repository,
    validate_tag,
)
from notar.registry.session import DEFAULT_TIMEOUT, USER_AGENT, RegistrySession, http_client

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_MANIFEST_SIZE",
    "USER_AGENT",
    "RegistryClient",
]

MAX_MANIFEST_SIZE: Final = 4 * 1024 * 1024  # distribution's own limit
DEFAULT_CHUNK_SIZE: Final = 8 * 1024 * 1024  # blobs up to this size go in one PUT

_MAX_TAGS_BODY: Final = 16 * 1024 * 1024
_MAX_TAG_PAGES: Final = 10_000
_ACCEPT: Final = ", ".join(ACCEPTED_MANIFEST_TYPES)
_MAX_REFERRER_PAGES: Final = 1_000
_MAX_ERROR_PROBE_BODY: Final = 64 * 1024
#: The digest the referrers API is probed with: no manifest has it, so the answer is an empty list.
_PROBE_DIGEST: Final = "sha256:" + "0" * 64
_LINK_NEXT_RE: Final = re.compile(r'<([^>]*)>\s*;[^,]*?\brel\s*=\s*"?next"?', re.IGNORECASE)


def _is_digest(ref: str) -> bool:
    return ":" in ref


def _check_ref(ref: str) -> str:
    """A manifest reference: a tag or a digest."""
    return validate_digest(ref) if _is_digest(ref) else validate_tag(ref)


def _show(repo: str, ref: str) -> str:
    return f"{repo}{'@' if _is_digest(ref) else ':'}{ref}"


def _algorithm(digest: str) -> str:
    return digest.partition(":")[0]


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

    For artifacts that refer to a manifest (signatures), :meth:`referrers_api_supported` probes the
    OCI referrers API once per client and :meth:`get_referrers` lists through it; the tag schema
    fallback and adding referrers are in :mod:`notar.registry.referrers`.
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
        insecure = tuple(insecure_registries)
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
            self.base_url = registry_base_url(self.domain, insecure_registries=insecure)
        self.max_manifest_size = max_manifest_size
        if client is not None and transport is not None:
            raise TypeError("pass either client= or transport=, not both")
        if client is None:  # ours, closed by close()
            http, owned = http_client(verify=verify, timeout=timeout, transport=transport), True
        else:
            http, owned = client, False
        self._session = RegistrySession(
            self.base_url,
            self.domain,
            http,
            owns_http=owned,
            credentials=credentials,
            insecure_registries=insecure,
            clock=clock,
        )
        self._referrers_api: bool | None = None  # the probe's answer, once known

    @classmethod
    def for_reference(cls, reference: Reference | str, **kwargs: object) -> RegistryClient:
        """A client for the registry of ``reference`` (keyword arguments as for the constructor)."""
        ref = parse_reference(reference) if isinstance(reference, str) else reference
        return cls(ref.domain, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

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
        with contextlib.closing(
            self._session.request("GET", f"{self.base_url}/v2/", scopes=(), what=what)
        ) as resp:
            if resp.status_code == 404:
                resp.close()
                raise self._session.error(
                    RegistryProtocolError, what, "404: this is not a registry v2 API", status_code=404
                )
            if resp.status_code != 200:
                self._session.fail(resp, what)

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
            with contextlib.closing(
                self._session.request("GET", url, scopes=[pull_scope(repo)], what=what)
            ) as resp:
                if resp.status_code != 200:
                    self._session.fail(resp, what, not_found=RepositoryNotFoundError)
                body = self._session.read_capped(resp, _MAX_TAGS_BODY, what)
                link, page_url = resp.headers.get("link"), resp.url
            tags.extend(self._parse_tags(body, what))
            match = _LINK_NEXT_RE.search(link or "")
            if match is None:
                return tags
            url = self._session.join(page_url, match.group(1), what)
            if str(url) in seen:
                raise self._session.error(RegistryProtocolError, what, "the pagination links loop")
        raise self._session.error(RegistryProtocolError, what, f"more than {_MAX_TAG_PAGES} pages")

    def _parse_tags(self, body: bytes, what: str) -> list[str]:
        value = json_object(body)
        if value is None:
            raise self._session.error(RegistryProtocolError, what, "the answer is not a JSON object")
        tags = value.get("tags")
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self._session.error(RegistryProtocolError, what, "'tags' is not a list of strings")
        return tags

    # ------------------------------------------------------------------ manifests

    def head_manifest(self, repo: str, ref: str) -> Descriptor:
        """Media type, digest and size of a manifest, without its body.

        For a tag the digest is the registry's ``Docker-Content-Digest``, which cannot be checked
        without the body: use :meth:`get_manifest` for anything that is signed or trusted.
        """
        ref, what, resp = self._ask_manifest("HEAD", repo, ref)
        resp.close()
        media_type = media_type_of(resp.headers.get("content-type"))
        if media_type in SCHEMA1_MEDIA_TYPES:
            raise self._schema1(what)
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise self._session.error(
                UnsupportedManifestError, what, f"unsupported manifest media type {media_type!r}"
            )
        size = resp.headers.get("content-length", "").strip()
        if not size.isdigit():
            raise self._session.error(RegistryProtocolError, what, "no Content-Length")
        digest = self._session.header_digest(resp.headers, what)
        if _is_digest(ref):
            if digest is not None and digest != ref:
                raise self._session.error(DigestMismatchError, what, f"Docker-Content-Digest is {digest}")
            digest = ref
        if digest is None:
            raise self._session.error(RegistryProtocolError, what, "no Docker-Content-Digest header")
        return Descriptor(media_type=media_type, digest=digest, size=int(size))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """Fetch a manifest by tag or digest, verified.

        Accepts Docker schema 2 manifests and manifest lists, OCI manifests and indexes; refuses
        schema 1. The bytes must hash to ``ref`` when it is a digest and to ``Docker-Content-Digest``
        when the registry sends it, else :class:`DigestMismatchError`. The returned digest is
        ``ref`` for a digest, else the sha256 of the bytes received.
        """
        ref, what, resp = self._ask_manifest("GET", repo, ref)
        with contextlib.closing(resp):
            data = self._session.read_capped(resp, self.max_manifest_size, what)
        try:
            media_type = manifest_media_type(resp.headers.get("content-type"), data)
        except RegistryProtocolError as e:  # UnsupportedManifestError too: the same class, with our names
            raise self._session.error(type(e), what, str(e)) from None
        header_digest = self._session.header_digest(resp.headers, what)
        if header_digest is not None and compute_digest(data, _algorithm(header_digest)) != header_digest:
            raise self._session.error(
                DigestMismatchError,
                what,
                f"Docker-Content-Digest says {header_digest} but the manifest received hashes to "
                f"{compute_digest(data, _algorithm(header_digest))}",
            )
        digest = compute_digest(data)
        if _is_digest(ref):
            actual = compute_digest(data, _algorithm(ref))
            if actual != ref:
                raise self._session.error(
                    DigestMismatchError, what, f"the manifest received hashes to {actual}"
                )
            digest = ref
        return Manifest(digest=digest, size=len(data), media_type=media_type, data=data)

    def _ask_manifest(self, method: str, repo: str, ref: str) -> tuple[str, str, httpx.Response]:
        """Send a manifest HEAD or GET (*repo* and *ref* checked); returns *ref*, the operation's name and
        the open 200 response, or raises (MANIFEST_UNKNOWN as :class:`ManifestNotFoundError`)."""
        repo, ref = validate_repository(repo), _check_ref(ref)
        what = f"{method} manifest {_show(repo, ref)}"
        url = f"{self.base_url}/v2/{repo}/manifests/{ref}"
        resp = self._session.request(
            method, url, scopes=[pull_scope(repo)], what=what, headers={"Accept": _ACCEPT}
        )
        if resp.status_code != 200:
            self._session.fail(resp, what, not_found=ManifestNotFoundError)  # closes it
        return ref, what, resp

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
        resp = self._session.request(
            "PUT", url, scopes=[push_scope(repo)], what=what, headers=headers, content=data
        )
        with contextlib.closing(resp):
            if resp.status_code not in (200, 201):
                self._session.fail(resp, what, not_found=RepositoryNotFoundError)
        stored = self._session.header_digest(resp.headers, what)
        if stored is not None and compute_digest(data, _algorithm(stored)) != stored:
            raise self._session.error(
                DigestMismatchError, what, f"the registry stored it as {stored}, not {digest}"
            )
        return digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete manifest ``digest`` (which untags every tag pointing at it)."""
        repo, digest = validate_repository(repo), validate_digest(digest)
        what = f"DELETE manifest {repo}@{digest}"
        url = f"{self.base_url}/v2/{repo}/manifests/{digest}"
        with contextlib.closing(
            self._session.request("DELETE", url, scopes=[push_scope(repo)], what=what)
        ) as resp:
            if resp.status_code not in (200, 202, 204):
                self._session.fail(resp, what, not_found=ManifestNotFoundError)

    # ------------------------------------------------------------------ blobs

    def blob_exists(self, repo: str, digest: str) -> int | None:
        """The size of blob ``digest`` in ``repo``, or None if the registry does not have it there."""
        repo, digest = validate_repository(repo), validate_digest(digest)
        return head_blob(self._session, repo, digest, [pull_scope(repo)])

    def get_blob(self, repo: str, digest: str, dest: BinaryIO, *, expected_size: int | None = None) -> int:
        """Stream blob ``digest`` into ``dest``, checking its size and digest; returns the size.

        Too many or too few bytes, or other content, raise :class:`DigestMismatchError`. After any
        error ``dest`` may hold unverified data and must be discarded (write to a temporary file and
        rename it only when this returns).
        """
        repo, digest = validate_repository(repo), validate_digest(digest)
        return download_blob(self._session, repo, digest, dest, [pull_scope(repo)], expected_size)

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
        stream = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
        scopes = [push_scope(repo)]
        if mount_from is not None:
            scopes.append(pull_scope(validate_repository(mount_from)))
        return upload_blob(
            self._session,
            repo,
            digest,
            stream,
            size,
            scopes=scopes,
            chunk_size=chunk_size,
            mount_from=mount_from,
            skip_existing=skip_existing,
        )

    # ------------------------------------------------------------------ referrers API

    def referrers_api_supported(self, repo: str) -> bool:
        """Whether the registry serves the OCI referrers API (``GET /v2/<repo>/referrers/<digest>``).

        Probed with the all-zero sha256 digest in ``repo``: a 200 answer with an OCI index content type
        means supported; any other answer (distribution 2.x and 3.x answer 404) means not. The answer is
        kept for the life of this client (one client is one registry), except a 404 that says only that
        ``repo`` does not exist (``NAME_UNKNOWN``), which proves nothing about the registry. 401/403,
        429 and 5xx raise as for any request.
        """
        cached = self._referrers_api
        if cached is not None:
            return cached
        repo = validate_repository(repo)
        what = f"probe the referrers API in {repo}"
        url = f"{self.base_url}/v2/{repo}/referrers/{_PROBE_DIGEST}"
        headers = {"Accept": MEDIA_TYPE_OCI_INDEX}
        with contextlib.closing(
            self._session.request("GET", url, scopes=[pull_scope(repo)], what=what, headers=headers)
        ) as resp:
            supported = (
                resp.status_code == 200
                and media_type_of(resp.headers.get("content-type")) == MEDIA_TYPE_OCI_INDEX
            )
            body = b""
            if not supported and resp.status_code == 404:  # only to tell NAME_UNKNOWN; never an error
                with contextlib.suppress(httpx.HTTPError):
                    for chunk in resp.iter_bytes():
                        body += chunk
                        if len(body) > _MAX_ERROR_PROBE_BODY:
                            break
        if resp.status_code == 404 and b"NAME_UNKNOWN" in body:
            return False
        self._referrers_api = supported
        return supported

    def get_referrers(self, repo: str, digest: str, *, artifact_type: str | None = None) -> list[object]:
        """The descriptors the referrers API lists for manifest ``digest`` (every page), as JSON values.

        ``artifact_type`` is passed as the ``artifactType`` filter, which a registry may ignore: the
        caller filters again. Each page must be an OCI index (at most ``max_manifest_size`` bytes) with a
        ``manifests`` list; pages are followed through ``Link: <...>; rel="next"``. Use only when
        :meth:`referrers_api_supported` says so (the API must not answer 404; here that raises
        :class:`RepositoryNotFoundError`).
        """
        repo, digest = validate_repository(repo), validate_digest(digest)
        what = f"list referrers of {repo}@{digest}"
        url = httpx.URL(f"{self.base_url}/v2/{repo}/referrers/{digest}")
        if artifact_type is not None:
            url = url.copy_merge_params({"artifactType": artifact_type})
        entries: list[object] = []
        seen: set[str] = set()
        for _ in range(_MAX_REFERRER_PAGES):
            seen.add(str(url))
            with contextlib.closing(
                self._session.request(
                    "GET", url, scopes=[pull_scope(repo)], what=what, headers={"Accept": MEDIA_TYPE_OCI_INDEX}
                )
            ) as resp:
                if resp.status_code != 200:
                    self._session.fail(resp, what, not_found=RepositoryNotFoundError)
                body = self._session.read_capped(resp, self.max_manifest_size, what)
                link, page_url = resp.headers.get("link"), resp.url
                content_type = media_type_of(resp.headers.get("content-type"))
            if content_type != MEDIA_TYPE_OCI_INDEX:
                raise self._session.error(
                    RegistryProtocolError,
                    what,
                    f"the answer is {content_type or 'untyped'}, not an OCI index",
                )
            value = json_object(body)
            manifests = value.get("manifests") if value is not None else None
            if not isinstance(manifests, list):
                raise self._session.error(RegistryProtocolError, what, "the answer has no manifests list")
            entries.extend(manifests)
            match = _LINK_NEXT_RE.search(link or "")
            if match is None:
                return entries
            url = self._session.join(page_url, match.group(1), what)
            if str(url) in seen:
                raise self._session.error(RegistryProtocolError, what, "the pagination links loop")
        raise self._session.error(RegistryProtocolError, what, f"more than {_MAX_REFERRER_PAGES} pages")

    def _schema1(self, what: str) -> UnsupportedManifestError:
        return self._session.error(UnsupportedManifestError, what, SCHEMA1_REFUSAL)
