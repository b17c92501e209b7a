"""Blobs over a :class:`~notar.registry.session.RegistrySession`: existence, verified download, uploads.

What :class:`~notar.registry.client.RegistryClient`'s blob methods do, after checking their arguments:

* :func:`head_blob` -- the size of a blob the registry has (``Docker-Content-Digest`` must not name another);
* :func:`download_blob` -- a blob streamed into a file, its size and digest checked as it arrives;
* :func:`upload_blob` -- the distribution spec's upload session: an optional cross-repository mount, then one
  PUT, or PATCH requests with ``Content-Range`` and a closing PUT; the content is hashed as it is read and
  the upload is abandoned (its session cancelled), never committed, unless it matches its digest and size.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import BinaryIO, Final

import httpx

from notar.registry.digest import DigestHasher
from notar.registry.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
    RepositoryNotFoundError,
)
from notar.registry.session import RegistrySession, content_length

__all__ = ["download_blob", "head_blob", "upload_blob"]

log = logging.getLogger("notar.registry.client")  # one logger for the whole registry client

_OCTET_STREAM: Final = "application/octet-stream"


def head_blob(session: RegistrySession, repo: str, digest: str, scopes: Sequence[str]) -> int | None:
    """The size of blob *digest* in *repo*, or None if the registry does not have it there."""
    what = f"HEAD blob {repo}@{digest}"
    url = f"{session.base_url}/v2/{repo}/blobs/{digest}"
    with contextlib.closing(session.request("HEAD", url, scopes=scopes, what=what)) as resp:
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            session.fail(resp, what)
    size = resp.headers.get("content-length", "").strip()
    if not size.isdigit():
        raise session.error(RegistryProtocolError, what, "no Content-Length")
    answered = session.header_digest(resp.headers, what)
    if answered is not None and answered != digest:
        raise session.error(RegistryProtocolError, what, f"the registry answered for {answered}")
    return int(size)


def download_blob(
    session: RegistrySession,
    repo: str,
    digest: str,
    dest: BinaryIO,
    scopes: Sequence[str],
    expected_size: int | None,
) -> int:
    """Stream blob *digest* into *dest*, checking its size and digest; returns the size."""
    what = f"GET blob {repo}@{digest}"
    hasher = DigestHasher.for_digest(digest)
    url = f"{session.base_url}/v2/{repo}/blobs/{digest}"
    with contextlib.closing(session.request("GET", url, scopes=scopes, what=what)) as resp:
        if resp.status_code != 200:
            session.fail(resp, what, not_found=BlobNotFoundError)
        announced = content_length(resp)
        if expected_size is not None and announced is not None and announced != expected_size:
            raise session.error(
                DigestMismatchError, what, f"{announced} bytes announced, {expected_size} expected"
            )
        limit = expected_size if expected_size is not None else announced
        try:
            for chunk in resp.iter_bytes():
                if limit is not None and hasher.size + len(chunk) > limit:
                    raise session.error(DigestMismatchError, what, f"more than the expected {limit} bytes")
                hasher.update(chunk)
                dest.write(chunk)
        except httpx.HTTPError as e:
            raise session.error(
                RegistryUnavailableError, what, f"broken off after {hasher.size} bytes: {e}"
            ) from e
    if limit is not None and hasher.size != limit:
        raise session.error(DigestMismatchError, what, f"truncated: {hasher.size} of {limit} bytes")
    if hasher.digest() != digest:
        raise session.error(DigestMismatchError, what, f"the content received hashes to {hasher.digest()}")
    return hasher.size


def upload_blob(
    session: RegistrySession,
    repo: str,
    digest: str,
    stream: BinaryIO,
    size: int,
    *,
    scopes: Sequence[str],
    chunk_size: int,
    mount_from: str | None,
    skip_existing: bool,
) -> str:
    """Upload *size* bytes from *stream* as blob *digest* (arguments checked by the caller); returns the digest."""
    what = f"push blob {repo}@{digest}"
    if skip_existing:
        existing = head_blob(session, repo, digest, scopes)
        if existing is not None:
            if existing != size:
                raise session.error(DigestMismatchError, what, f"the registry has it with {existing} bytes")
            return digest
    start = httpx.URL(f"{session.base_url}/v2/{repo}/blobs/uploads/")
    if mount_from is not None:
        start = start.copy_merge_params({"mount": digest, "from": mount_from})
    with contextlib.closing(session.request("POST", start, scopes=scopes, what=what, content=b"")) as resp:
        if mount_from is not None and resp.status_code == 201:
            _check_stored(session, resp, digest, what)
            return digest
        if resp.status_code != 202:
            session.fail(resp, what, not_found=RepositoryNotFoundError)
        location = session.location(resp, what)
    try:
        hasher = DigestHasher.for_digest(digest)
        body = b""
        if size <= chunk_size:
            body = _read_exactly(stream, size)
            hasher.update(body)
            _check_source(hasher, digest, size, what)
        else:
            location = _upload_chunks(
                session, location, stream, hasher, (digest, size, chunk_size), scopes, what
            )
        final = location.copy_merge_params({"digest": digest})
        headers = {"Content-Type": _OCTET_STREAM}
        resp = session.request("PUT", final, scopes=scopes, what=what, headers=headers, content=body)
        with contextlib.closing(resp):
            if resp.status_code not in (201, 204):
                session.fail(resp, what, not_found=BlobNotFoundError)
        _check_stored(session, resp, digest, what)
    except Exception:  # not on Ctrl-C: no network call while interrupted
        _cancel_upload(session, location, scopes)
        raise
    return digest


def _upload_chunks(
    session: RegistrySession,
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
            _check_source(hasher, digest, size, what)  # before the last chunk leaves
        headers = {"Content-Type": _OCTET_STREAM, "Content-Range": f"{offset}-{end - 1}"}
        resp = session.request("PATCH", location, scopes=scopes, what=what, headers=headers, content=chunk)
        with contextlib.closing(resp):
            if resp.status_code != 202:
                session.fail(resp, what, not_found=BlobNotFoundError)
            location = session.location(resp, what)
        received = resp.headers.get("range")
        if received is not None and received.strip() != f"0-{end - 1}":
            raise session.error(
                RegistryProtocolError, what, f"after {end} bytes it reports Range {received!r}"
            )
        offset = end
    return location


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


def _check_source(hasher: DigestHasher, digest: str, size: int, what: str) -> None:
    if hasher.size != size:
        raise DigestMismatchError(f"{what}: the source has {hasher.size} bytes, not {size}")
    if hasher.digest() != digest:
        raise DigestMismatchError(f"{what}: the source hashes to {hasher.digest()}")


def _check_stored(session: RegistrySession, resp: httpx.Response, digest: str, what: str) -> None:
    stored = session.header_digest(resp.headers, what)
    if stored is not None and stored != digest:
        raise session.error(DigestMismatchError, what, f"the registry stored it as {stored}")


def _cancel_upload(session: RegistrySession, location: httpx.URL, scopes: Sequence[str]) -> None:
    """Best effort: ask the registry to drop an abandoned upload session."""
    try:
        session.request("DELETE", location, scopes=scopes, what="cancel upload").close()
    except RegistryError as e:  # the original error matters more
        log.debug("cancelling an upload at %s failed: %s", session.base_url, e)
