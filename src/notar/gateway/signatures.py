"""Notation and cosign signatures of a digest, read from the upstream registry and verified, cached briefly.

:class:`SignatureVerifier` answers one question: does manifest ``name@digest`` carry a valid signature of
one format? It reads what ``notar verify`` reads, through the gateway's own connection to the upstream
(:class:`UpstreamReads`, with the requesting client's ``Authorization``):

* **Notation** -- the referrers of the digest whose ``artifactType`` is Notation's: from the referrers API
  when the registry answers it and from the ``sha256-<hex>`` tag (tag schema) when it exists, both, so
  a signature is found whichever way its signer stored it; then each signature manifest (by digest,
  checked) and its envelope blob, at most :data:`MAX_SIGNATURES` of them. The verdict is
  :func:`notar.notation.verify_artifact`'s under the gateway's trust policy, for the statement that
  covers ``<GUN prefix>/<repository>`` (the name clients pull, as for v1): one signature that passes is
  enough; a statement with level ``skip`` passes without reading anything.
* **cosign** -- the ``sha256-<hex>.sig`` manifest and its simplesigning payloads (at most
  :data:`MAX_COSIGN_LAYERS`), each layer judged by :func:`notar.cosign.verify_signatures` with every
  key of the rule: one layer signed by one key, naming this digest, is enough.

Results (verified or not) are kept for ``ttl`` seconds per (format, repository, digest, keys) in a
bounded LRU (:data:`MAX_RESULTS`); a failure to read or verify (registry down, refused, too slow) is
never kept and fails the request closed. Like :class:`~notar.gateway.trust.TrustVerifier`, one check
runs at a time per key and everyone asking shares it, with ``timeout`` as the deadline of the whole
check (all its reads together); a ``fresh`` request (a push) does not take a check that began before
it. The shared check reads with the credentials of the request that started it.

Envelopes and payloads are parsed and verified in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx
from starlette.concurrency import run_in_threadpool

from notar._lru import LRUCache
from notar.cosign import CosignError, verify_signatures
from notar.gateway.errors import GatewayError
from notar.gateway.formats import Format
from notar.gateway.proxy import UpstreamProxy
from notar.notation import (
    Descriptor,
    Level,
    NoApplicablePolicyError,
    SignatureBlob,
    SignatureManifestError,
    parse_signature_manifest,
    verify_artifact,
)
from notar.notation.certs import subject_text
from notar.notation.manifest import check_blob
from notar.registry import InvalidDigestError, validate_digest
from notar.registry.manifest import (
    ACCEPTED_MANIFEST_TYPES,
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    MEDIA_TYPE_COSIGN_SIMPLESIGNING,
    MEDIA_TYPE_OCI_INDEX,
    json_object,
    media_type_of,
)
from notar.registry.referrers import Referrer, cosign_signature_tag, referrers_tag
from notar.signing.verification import CosignKey, NotationTrust

__all__ = [
    "MAX_RESULTS",
    "ReadProblem",
    "SignatureCheck",
    "SignatureVerifier",
    "UpstreamReads",
    "credentials",
]

log = logging.getLogger("notar.gateway")

MAX_RESULTS: Final = 10_000  # verification results kept (each a few hundred bytes)
MAX_SIGNATURES: Final = 100  # Notation signatures evaluated per digest, as notation verify
MAX_COSIGN_LAYERS: Final = 100
MAX_ENVELOPE_BYTES: Final = 4 * 1024 * 1024  # real envelopes are a few KiB; notation allows 32 MiB
MAX_PAYLOAD_BYTES: Final = 1024 * 1024
MAX_REFERRER_PAGES: Final = 10
READ_CONCURRENCY: Final = 8  # signature manifests and blobs fetched at once per check
GRACE: Final = 1.0  # seconds a waiter gives a check past its deadline to end with its own outcome
_CREDENTIAL_HEADERS: Final = (b"authorization", b"cookie", b"user-agent")
_ACCEPT_MANIFESTS: Final = ", ".join(ACCEPTED_MANIFEST_TYPES).encode()


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome for one format and digest: ``verified`` or not, why (one line), by whom."""

    format: Format
    verified: bool
    reason: str
    signer: str | None = None  # the certificate subject (Notation) or key file (cosign) that verified
    verified_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Fetched:
    """Manifest bytes as the registry returned them, with their digest and media type."""

    data: bytes
    digest: str
    media_type: str


def credentials(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's request headers a read on its behalf takes along (auth, cookies, user agent)."""
    return [(k.lower(), v) for k, v in headers if k.lower() in _CREDENTIAL_HEADERS]


class UpstreamReads:
    """Reads of manifests, small blobs and referrers lists from the upstream, through the gateway's proxy.

    Every answer is checked (digests, sizes, caps); a registry that refuses (401/403) or fails is a
    :class:`GatewayError`, a missing manifest or blob ``None``.
    """

    def __init__(self, proxy: UpstreamProxy, *, max_manifest_bytes: int) -> None:
        self.proxy = proxy
        self.max_manifest_bytes = max_manifest_bytes

    async def manifest(
        self, name: str, reference: str, headers: list[tuple[bytes, bytes]], *, accept: bytes | None = None
    ) -> Fetched | None:
        """``name:reference`` (a tag or a digest, then checked against the bytes); ``None`` on 404."""
        url = self.proxy.url(f"/v2/{name}/manifests/{reference}", b"")
        request_headers = [*headers, (b"accept", accept or _ACCEPT_MANIFESTS)]
        async with self.proxy.stream("GET", url, request_headers) as resp:
            if resp.status_code == 404:
                return None
            _check_status(resp, f"manifest {name}:{reference}")
            data = await _read_capped(resp, self.max_manifest_bytes, f"manifest {name}:{reference}")
            content_type = resp.headers.get("content-type", "")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in reference and reference != digest:
            raise GatewayError("DENIED", f"the registry returned {digest} for the manifest {reference}")
        body = json_object(data)
        field = body.get("mediaType") if body is not None else None
        media_type = field if isinstance(field, str) and field else media_type_of(content_type)
        return Fetched(data, digest, media_type)

    async def blob(
        self, name: str, digest: str, size: int, limit: int, headers: list[tuple[bytes, bytes]]
    ) -> bytes | None:
        """A small blob, checked against *digest* and *size* (at most *limit* bytes); ``None`` on 404.

        Redirects (a registry on object storage) are followed; httpx drops ``Authorization`` when one
        leaves the registry's origin.
        """
        what = f"blob {name}@{digest}"
        if size > limit:
            raise _TooLarge(f"{what} is {size} bytes; the limit is {limit}")
        url = self.proxy.url(f"/v2/{name}/blobs/{digest}", b"")
        http = self.proxy.http
        request = http.build_request("GET", url, headers=headers)
        try:
            resp = await http.send(request, stream=True, follow_redirects=True)
        except httpx.TimeoutException as e:
            raise GatewayError("UPSTREAM_TIMEOUT", f"the registry did not answer in time for {what}") from e
        except httpx.HTTPError as e:
            raise GatewayError("UPSTREAM_UNAVAILABLE", f"cannot read {what}: {type(e).__name__}: {e}") from e
        try:
            if resp.status_code == 404:
                return None
            _check_status(resp, what)
            data = await _read_capped(resp, limit, what)
        finally:
            await resp.aclose()
        if len(data) != size or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise _Mismatch(f"{what} does not match its digest and size")
        return data

    async def referrers(self, name: str, digest: str, headers: list[tuple[bytes, bytes]]) -> list[Referrer]:
        """The referrers of ``name@digest``: the referrers API's list (when the registry has the API) and
        the ``sha256-<hex>`` tag schema index (when the tag exists), first entry per digest."""
        entries: list[object] = []
        entries += await self._referrers_api(name, digest, headers)
        try:
            index = await self.manifest(
                name, referrers_tag(digest), headers, accept=MEDIA_TYPE_OCI_INDEX.encode()
            )
        except ReadProblem as e:
            log.info("%s:%s cannot be used: %s", name, referrers_tag(digest), e)
            index = None
        if index is not None:
            body = json_object(index.data)
            manifests = body.get("manifests") if body is not None else None
            if index.media_type == MEDIA_TYPE_OCI_INDEX and isinstance(manifests, list):
                entries += manifests
            else:
                log.info("%s:%s is not a referrers index; ignored", name, referrers_tag(digest))
        found: dict[str, Referrer] = {}
        for entry in entries:
            try:
                referrer = Referrer.from_json(entry)
            except (ValueError, InvalidDigestError):
                continue
            found.setdefault(referrer.digest, referrer)
        return list(found.values())

    async def _referrers_api(
        self, name: str, digest: str, headers: list[tuple[bytes, bytes]]
    ) -> list[object]:
        """The referrers API's entries, every page; ``[]`` when the registry does not have the API."""
        url: str | None = self.proxy.url(f"/v2/{name}/referrers/{digest}", b"")
        entries: list[object] = []
        for _ in range(MAX_REFERRER_PAGES):
            if url is None:
                break
            async with self.proxy.stream(
                "GET", url, [*headers, (b"accept", MEDIA_TYPE_OCI_INDEX.encode())]
            ) as resp:
                if (
                    resp.status_code != 200
                    or media_type_of(resp.headers.get("content-type")) != MEDIA_TYPE_OCI_INDEX
                ):
                    if resp.status_code in (401, 403) or resp.status_code >= 500:
                        _check_status(resp, f"referrers of {name}@{digest}")
                    return entries  # no referrers API (distribution answers 404)
                try:
                    data = await _read_capped(resp, self.max_manifest_bytes, f"referrers of {name}@{digest}")
                except ReadProblem as e:
                    log.info("%s", e)
                    return entries
                url = _next_page(self.proxy.upstream, resp.headers.get("link"))
            body = json_object(data)
            manifests = body.get("manifests") if body is not None else None
            if isinstance(manifests, list):
                entries += manifests
        return entries


class ReadProblem(Exception):
    """Something read for a signature cannot be used (too large, not what its descriptor says): that
    signature fails, not the check."""


class _TooLarge(ReadProblem):
    """Larger than the gateway reads."""


class _Mismatch(ReadProblem):
    """A blob that does not match its descriptor: that signature fails, not the check."""


def _next_page(upstream: str, link: str | None) -> str | None:
    if not link or 'rel="next"' not in link:
        return None
    target = link.split(";", 1)[0].strip().strip("<>")
    if target.startswith("/"):
        return upstream + target
    return target if target.startswith(upstream + "/") else None


def _check_status(resp: httpx.Response, what: str) -> None:
    status = resp.status_code
    if status == 200:
        return
    if status in (401, 403):
        raise GatewayError(
            "DENIED",
            f"the registry refused to let the gateway read {what} (HTTP {status}): signatures unverified",
        )
    if status == 429 or status >= 500:
        raise GatewayError("UPSTREAM_UNAVAILABLE", f"the registry answered {status} for {what}")
    raise GatewayError("UPSTREAM_UNAVAILABLE", f"unexpected answer {status} from the registry for {what}")


async def _read_capped(resp: httpx.Response, cap: int, what: str) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise _TooLarge(f"{what} is larger than {cap} bytes")
            chunks.append(chunk)
    except httpx.HTTPError as e:
        raise GatewayError("UPSTREAM_UNAVAILABLE", f"reading {what} failed: {e}") from e
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class _Running:
    task: asyncio.Task[SignatureCheck]
    started: float


class SignatureVerifier:
    """Checks of Notation and cosign signatures for the gateway (async entry point :meth:`check`).

    *notation* is the trust policy and store (``None``: Notation is not configured, and a check says so);
    *gun_prefix* makes the fully qualified repository the trust policy statements are matched against.
    """

    def __init__(
        self,
        reads: UpstreamReads,
        *,
        notation: NotationTrust | None,
        gun_prefix: str,
        ttl: float = 5.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reads = reads
        self.notation = notation
        self.gun_prefix = gun_prefix
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self.now = now
        self._results: LRUCache[Hashable, SignatureCheck] = LRUCache(MAX_RESULTS)
        self._running: dict[Hashable, _Running] = {}
        # (repository, digest) -> when signatures of it were last pushed through the gateway: results and
        # checks from before then are not used (bounded: a forgotten entry only means waiting out the TTL)
        self._changed: LRUCache[tuple[str, str], float] = LRUCache(MAX_RESULTS)
        self.checks = 0  # verifications run (tests, metrics)

    # -- shared, cached ---------------------------------------------------------------------------------
    async def check(
        self,
        fmt: Format,
        name: str,
        subject: Descriptor,
        *,
        keys: tuple[CosignKey, ...] = (),
        headers: list[tuple[bytes, bytes]] | None = None,
        max_age: float | None = None,
        fresh: bool = False,
    ) -> SignatureCheck:
        """Whether ``name@subject`` has a valid *fmt* signature (Notation or cosign; *keys* for cosign).

        Cached for at most ``max_age`` (default ``ttl``) seconds; ``fresh``: decided by a check that began
        after this call. Raises :class:`GatewayError` when no decision could be made (fail closed).
        """
        if fmt is Format.V1:
            raise ValueError("v1 is decided by the trust server (TrustVerifier)")
        changed = self._changed.peek((name, subject.digest))
        key: Hashable = (
            fmt,
            name,
            subject.digest,
            subject.media_type,
            subject.size,
            tuple(k.fingerprint for k in keys),
        )
        # not before this call (fresh), nor before the signatures last changed through the gateway
        bounds = [b for b in (self.clock() if fresh else None, changed) if b is not None]
        since = max(bounds) if bounds else None
        reads = credentials(headers or [])

        def make() -> Awaitable[SignatureCheck]:
            if fmt is Format.NOTATION:
                return self._notation(name, subject, reads)
            return self._cosign(name, subject.digest, keys, reads)

        while True:
            hit = self._cached(key, max_age, since, fresh)
            if hit is not None:
                return hit
            running = self._running.get(key)
            if running is None:
                running = self._start(key, make, f"{fmt} signatures of {name}@{subject.digest}")
            elif since is not None and running.started < since:
                await self._wait(running, name, subject.digest)
                continue
            await self._wait(running, name, subject.digest)
            if running.task.cancelled():
                raise GatewayError("TRUST_UNAVAILABLE", "cannot verify signatures: shutting down")
            return running.task.result()

    def forget(self, name: str, digest: str) -> None:
        """Signatures of ``name@digest`` changed (pushed through the gateway): decide on fresh reads."""
        self._changed.put((name, digest), self.clock())

    def _cached(
        self, key: Hashable, max_age: float | None, since: float | None, fresh: bool
    ) -> SignatureCheck | None:
        hit = self._results.peek(key)
        if hit is None or (since is not None and hit.verified_at < since):
            return None
        if fresh:
            return hit
        limit = self.ttl if max_age is None else min(max_age, self.ttl)
        return hit if self.clock() - hit.verified_at < limit else None

    def _start(self, key: Hashable, make: Callable[[], Awaitable[SignatureCheck]], what: str) -> _Running:
        started = self.clock()

        async def run() -> SignatureCheck:
            self.checks += 1
            try:
                async with asyncio.timeout(self.timeout):
                    outcome = await make()
            except TimeoutError:
                self._results.pop(key)
                raise GatewayError(
                    "TRUST_UNAVAILABLE",
                    f"cannot verify the {what}: the check did not finish within {self.timeout:g} s",
                ) from None
            except BaseException:
                self._results.pop(key)  # an older result is not used either
                raise
            else:
                result = SignatureCheck(
                    outcome.format, outcome.verified, outcome.reason, outcome.signer, started
                )
                self._results.put(key, result)
                return result
            finally:
                self._running.pop(key, None)

        task = asyncio.create_task(run(), name=f"signature check {what}")
        task.add_done_callback(_seen)
        running = self._running[key] = _Running(task, started)
        return running

    async def _wait(self, running: _Running, name: str, digest: str) -> None:
        if running.task.done():
            return
        done, _ = await asyncio.wait([running.task], timeout=self.timeout + GRACE)
        if not done:
            raise GatewayError(
                "TRUST_UNAVAILABLE",
                f"cannot verify the signatures of {name}@{digest}: no answer within {self.timeout:g} s",
            )

    # -- Notation ---------------------------------------------------------------------------------------
    async def _notation(
        self, name: str, subject: Descriptor, headers: list[tuple[bytes, bytes]]
    ) -> SignatureCheck:
        trust = self.notation
        if trust is None:
            return SignatureCheck(Format.NOTATION, False, "notation: the gateway has no trust policy")
        repository = f"{self.gun_prefix}/{name}"
        try:
            statement = trust.policy.statement_for(repository)
        except NoApplicablePolicyError:
            return SignatureCheck(
                Format.NOTATION, False, f"notation: no statement of {trust.source} covers {repository}"
            )
        if statement.level is Level.SKIP:
            return SignatureCheck(
                Format.NOTATION,
                True,
                f"notation: trust policy statement {statement.name!r} skips verification",
            )
        referrers = [
            r
            for r in await self.reads.referrers(name, subject.digest, headers)
            if r.artifact_type == ARTIFACT_TYPE_NOTATION_SIGNATURE
        ]
        if not referrers:
            return SignatureCheck(
                Format.NOTATION, False, f"notation: no signature is associated with {subject.digest}"
            )
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def fetch(referrer: Referrer) -> tuple[SignatureBlob, str | None]:
            async with limit:
                return await self._envelope(name, referrer, headers)

        fetched = await asyncio.gather(*(fetch(r) for r in referrers[:MAX_SIGNATURES]))
        problems = {blob.label: why for blob, why in fetched if why is not None}
        verdict = await run_in_threadpool(
            verify_artifact,
            [blob for blob, _ in fetched],
            subject=subject,
            repository=repository,
            policy=trust.policy,
            trust_store=trust.store,
            now=self.now(),
        )
        accepted = verdict.accepted
        if accepted is not None:
            signer = subject_text(accepted.envelope.leaf) if accepted.envelope is not None else None
            return SignatureCheck(Format.NOTATION, True, f"notation: {verdict.reason}", signer)
        reason = verdict.reason
        if problems:
            digest, why = next(iter(problems.items()))
            reason += f"; {digest}: {why}"
        return SignatureCheck(Format.NOTATION, False, f"notation: {reason}")

    async def _envelope(
        self, name: str, referrer: Referrer, headers: list[tuple[bytes, bytes]]
    ) -> tuple[SignatureBlob, str | None]:
        """One signature's envelope, or an empty blob (which fails at integrity) and why there is none."""
        nothing = SignatureBlob("", b"", referrer.digest)
        try:
            manifest = await self.reads.manifest(name, referrer.digest, headers)
            if manifest is None:
                return nothing, "the signature manifest is listed but not in the registry"
            parsed = parse_signature_manifest(manifest.data)
            envelope = parsed.envelope
            data = await self.reads.blob(name, envelope.digest, envelope.size, MAX_ENVELOPE_BYTES, headers)
            if data is None:
                return nothing, "the signature envelope blob is not in the registry"
            check_blob(envelope, data)
        except (SignatureManifestError, ReadProblem) as e:
            return nothing, str(e)
        return SignatureBlob(envelope.media_type, data, referrer.digest), None

    # -- cosign -----------------------------------------------------------------------------------------
    async def _cosign(
        self, name: str, digest: str, keys: tuple[CosignKey, ...], headers: list[tuple[bytes, bytes]]
    ) -> SignatureCheck:
        if not keys:
            return SignatureCheck(
                Format.COSIGN, False, "cosign: the gateway has no public key for this repository"
            )
        tag = cosign_signature_tag(digest)
        try:
            manifest = await self.reads.manifest(name, tag, headers)
        except ReadProblem as e:
            return SignatureCheck(Format.COSIGN, False, f"cosign: {e}")
        if manifest is None:
            return SignatureCheck(
                Format.COSIGN, False, f"cosign: no signature is associated with {digest} (no tag {tag})"
            )
        body = json_object(manifest.data)
        layers = body.get("layers") if body is not None else None
        payloads: dict[str, bytes] = {}
        for layer in (layers if isinstance(layers, list) else [])[:MAX_COSIGN_LAYERS]:
            if not isinstance(layer, dict) or layer.get("mediaType") != MEDIA_TYPE_COSIGN_SIMPLESIGNING:
                continue
            layer_digest, size = layer.get("digest"), layer.get("size")
            if not isinstance(layer_digest, str) or type(size) is not int or layer_digest in payloads:
                continue
            try:
                validate_digest(layer_digest)
                data = await self.reads.blob(name, layer_digest, size, MAX_PAYLOAD_BYTES, headers)
            except (InvalidDigestError, ReadProblem):
                continue
            if data is not None:
                payloads[layer_digest] = data

        def judge() -> SignatureCheck:
            first_problem = None
            for key in keys:
                try:
                    results = verify_signatures(manifest.data, payloads, key.key, digest=digest)
                except CosignError as e:
                    return SignatureCheck(Format.COSIGN, False, f"cosign: {tag}: {e}")
                for result in results:
                    if result.verified:
                        return SignatureCheck(
                            Format.COSIGN,
                            True,
                            f"cosign: layer {result.index} of {tag} verifies with {key.name}",
                            key.name,
                        )
                    if first_problem is None:
                        first_problem = str(result)
            why = f" ({first_problem})" if first_problem else " (it has no layers)"
            return SignatureCheck(
                Format.COSIGN, False, f"cosign: no layer of {tag} verifies with the configured key(s){why}"
            )

        return await run_in_threadpool(judge)


def _seen(task: asyncio.Task[SignatureCheck]) -> None:
    """Retrieve the outcome: every waiter may have given up before the check ended."""
    if not task.cancelled():
        task.exception()
