"""Referrers: the manifests whose ``subject`` is a given manifest (signatures), found and added.

Reading -- :func:`list_referrers`
    Through the OCI referrers API when the registry has it (probed once per client by
    :meth:`~notar.registry.client.RegistryClient.referrers_api_supported`), else through the
    **referrers tag schema**: the tag ``sha256-<hex>`` of the subject digest holds an OCI index whose
    ``manifests`` are the referrers' descriptors (no such tag: no referrers). Either way the list can be
    filtered by ``artifactType``.

Adding -- :func:`add_referrer`
    PUT the artifact manifest (which names its ``subject``) by digest. With the API that is all. Without
    it, the manifest's descriptor (with its ``artifactType`` and the manifest's annotations) is merged
    into the ``sha256-<hex>`` index with :func:`update_tagged_manifest`.

cosign -- :func:`read_cosign_signatures`, :func:`append_cosign_signature`
    cosign's ``sha256-<hex>.sig`` tag holds an image manifest with one simplesigning layer per
    signature; appending goes through the same :func:`update_tagged_manifest`. The shape of that
    manifest is :mod:`notar.cosign`'s business: the caller passes the function that appends to it.

**The read-modify-write discipline** (:func:`update_tagged_manifest`). Both tags are shared documents on
registries without compare-and-swap (distribution ignores ``If-Match`` on a manifest PUT), written by
concurrent signers, notation, oras and cosign alike:

* merge into what is there: start from the document just read, add our entry only if it is absent, and
  keep every other entry exactly as found (cosign's, fields we do not know, all of it);
* verify: read the tag again right after our PUT and once more after a *settle* time; whenever our entry
  is missing, back off (exponential, jittered) and merge again into a fresh read, up to
  :attr:`RetryPolicy.max_writes` writes (then :class:`ConcurrentUpdateError`);
* ride out the registry's own race: distribution writes a tag's link file in place, so a read that
  meets a concurrent write of the same tag gets HTTP 500 (``invalid checksum digest format``, seen on
  docker-registry 2.8 with ten writers). A 5xx answer about the shared tag is retried after a backoff,
  :attr:`RetryPolicy.max_transient` times in a row; a registry that cannot be reached is not.

Why the settle time: a writer B that read the tag before our PUT and writes after it replaces our
document with one that lacks our entry, and B's own re-read shows B's entry, so B cannot notice; only we
can, by reading after B's write. B writes within its read-to-write window of its read, so a read one such
window after our PUT catches it; the settle time is a multiple of our own measured window (a registry is
about as slow for every client) with a floor. That is a bound on timing, not a lock: a writer stalled for
longer than the settle time between its read and its write can still drop an entry, and so can a writer
that does not re-read (notation, oras and cosign write once). A registry with the referrers API has no
such race: prefer one where many parties sign the same digest at once.

**The replaced index is left in the registry, not deleted.** Distribution's DELETE by digest removes the
manifest *and every tag pointing at it*; with concurrent writers the tag can point at those very bytes
again (a writer re-PUT them; an empty index is byte-identical for every subject), and proving that
nothing else references it would mean resolving every tag of the repository, still racily. An untagged
index of a few hundred bytes stays until ``registry garbage-collect --delete-untagged``; the digests are
returned (:attr:`TaggedUpdate.replaced`) for a caller that knows better.

Size: reading and adding referrers and cosign's ``.sig`` tag share one read-modify-write of a shared tag,
and the reasoning about races on it (below) applies to all of them.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final, NamedTuple, TypeVar

from notar.registry.client import RegistryClient
from notar.registry.digest import compute_digest, validate_digest
from notar.registry.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    ManifestNotFoundError,
    RegistryError,
    RegistryProtocolError,
    RegistryUnavailableError,
)
from notar.registry.manifest import (
    IMAGE_MEDIA_TYPES,
    MEDIA_TYPE_COSIGN_SIMPLESIGNING,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
    Descriptor,
    Manifest,
    json_object,
)

__all__ = [
    "DEFAULT_RETRY",
    "MAX_COSIGN_PAYLOAD_SIZE",
    "ConcurrentUpdateError",
    "CosignSignatures",
    "Referrer",
    "ReferrerAdded",
    "Referrers",
    "ReferrersSource",
    "RetryPolicy",
    "TaggedUpdate",
    "Update",
    "add_referrer",
    "append_cosign_signature",
    "cosign_signature_tag",
    "list_referrers",
    "read_cosign_signatures",
    "referrers_tag",
    "update_tagged_manifest",
]

log = logging.getLogger("notar.registry.client")
_T = TypeVar("_T")

#: cosign payloads (simplesigning JSON, a few hundred bytes) larger than this are not fetched.
MAX_COSIGN_PAYLOAD_SIZE: Final = 1024 * 1024
#: The config blob of a ``.sig`` manifest (one ``diff_ids`` entry per signature) is read up to this size.
_MAX_COSIGN_CONFIG_SIZE: Final = 4 * 1024 * 1024


class ConcurrentUpdateError(RegistryError):
    """Our entry kept disappearing from a shared tag: concurrent writers overwrote it too many times."""


class ReferrersSource(StrEnum):
    """Where a list of referrers came from."""

    API = "referrers API"
    TAG_SCHEMA = "referrers tag schema"


@dataclass(frozen=True)
class Referrer:
    """One referrer: the descriptor of a manifest whose ``subject`` is the manifest asked about."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: object) -> Referrer:
        """Read a descriptor of a referrers list; :class:`ValueError` (one line) if it is malformed."""
        if not isinstance(value, dict):
            raise ValueError("not a descriptor object")
        media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ValueError("mediaType must be a non-empty string")
        if not isinstance(digest, str):
            raise ValueError("digest must be a string")
        validate_digest(digest)
        if type(size) is not int or size < 0:
            raise ValueError("size must be a non-negative integer")
        artifact_type = value.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise ValueError("artifactType must be a string")
        annotations = value.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ValueError("annotations must map strings to strings")
        return cls(media_type, digest, size, artifact_type, dict(annotations))

    @classmethod
    def of_manifest(cls, data: bytes, media_type: str) -> tuple[Referrer, str]:
        """The referrer entry for artifact manifest *data* and the digest of its ``subject``.

        ``artifactType`` is the manifest's, else its config's media type (as the referrers API derives
        it); the annotations are the manifest's. :class:`RegistryProtocolError` without a usable
        ``subject``.
        """
        body = json_object(data)
        if body is None:
            raise RegistryProtocolError("the artifact manifest is not a JSON object")
        subject = body.get("subject")
        subject_digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(subject_digest, str):
            raise RegistryProtocolError("the artifact manifest has no subject descriptor with a digest")
        try:
            validate_digest(subject_digest)
        except InvalidDigestError as e:
            raise RegistryProtocolError(f"the artifact manifest's subject: {e}") from None
        artifact_type = body.get("artifactType")
        config = body.get("config")
        if artifact_type is None and isinstance(config, dict):
            artifact_type = config.get("mediaType")
        annotations = body.get("annotations") or {}
        if not isinstance(artifact_type, str | None) or not isinstance(annotations, dict):
            raise RegistryProtocolError("the artifact manifest's artifactType or annotations are malformed")
        referrer = cls(media_type, compute_digest(data), len(data), artifact_type, dict(annotations))
        return referrer, subject_digest

    @property
    def descriptor(self) -> Descriptor:
        """Media type, digest and size (to fetch the manifest)."""
        return Descriptor(self.media_type, self.digest, self.size)

    def to_json(self) -> dict[str, object]:
        """The index entry: ``mediaType``, ``digest``, ``size``, and ``artifactType``/``annotations`` when set."""
        out: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Referrers:
    """The referrers of ``subject`` (first entry per digest, in the registry's order).

    ``index`` is the tag schema index that was read (``None`` with the API, or when the tag does not
    exist); ``skipped`` has one line per malformed entry left out of ``referrers`` (and kept in the
    index: adding never drops entries).
    """

    subject: str
    source: ReferrersSource
    referrers: tuple[Referrer, ...]
    index: Manifest | None = None
    skipped: tuple[str, ...] = ()


class Update(NamedTuple):
    """A new version of a tagged document: its bytes and media type, and the blobs to push before it."""

    data: bytes
    media_type: str
    blobs: Mapping[str, bytes] = MappingProxyType({})


@dataclass(frozen=True)
class TaggedUpdate:
    """What :func:`update_tagged_manifest` did.

    ``digest`` is the document that was read holding our change (``None`` only when no change was
    needed and the tag does not exist); ``writes`` how many PUTs it took (0: the change was there
    already); ``replaced`` the digests of the documents those PUTs replaced, left in the registry.
    """

    tag: str
    digest: str | None
    writes: int
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReferrerAdded:
    """What :func:`add_referrer` did: the referrer, its subject, and how it was made findable."""

    referrer: Referrer
    subject: str
    source: ReferrersSource
    index: TaggedUpdate | None = None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How hard :func:`update_tagged_manifest` tries (times in seconds).

    After each PUT it waits ``max(settle, settle_factor * own read-to-write time)`` (at most
    ``max_settle``) before the confirming read; a lost write is retried after a jittered backoff of
    ``backoff * 2**(n-1)`` (at most ``max_backoff``), half fixed and half random, and so is a 5xx
    answer about the tag, up to ``max_transient`` times in a row. ``sleep``, ``clock`` and ``random``
    are injectable for tests.
    """

    max_writes: int = 10
    max_transient: int = 5
    backoff: float = 0.05
    max_backoff: float = 2.0
    settle: float = 0.2
    settle_factor: float = 3.0
    max_settle: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_writes < 1 or self.max_transient < 0:
            raise ValueError("max_writes must be at least 1 and max_transient not negative")
        if min(self.backoff, self.max_backoff, self.settle, self.settle_factor, self.max_settle) < 0:
            raise ValueError("times must not be negative")

    def backoff_after(self, writes: int) -> float:
        """The wait before merging again after our *writes*-th write was lost."""
        base = min(self.max_backoff, self.backoff * 2.0 ** max(0, writes - 1))
        return base / 2 + self.random() * base / 2

    def settle_after(self, window: float) -> float:
        """The wait before the confirming read, given our own read-to-write time."""
        return min(self.max_settle, max(self.settle, self.settle_factor * window))


DEFAULT_RETRY: Final = RetryPolicy()


# ---------------------------------------------------------------------------------------------- tags


def referrers_tag(digest: str) -> str:
    """The referrers tag schema tag of *digest*: ``<alg>-<hex>``, truncated to 32 and 64 characters."""
    algorithm, _, encoded = validate_digest(digest).partition(":")
    return f"{algorithm[:32]}-{encoded[:64]}"


def cosign_signature_tag(digest: str) -> str:
    """The tag cosign keeps the signatures of *digest* under: ``sha256-<hex>.sig``."""
    algorithm, _, encoded = validate_digest(digest).partition(":")
    return f"{algorithm}-{encoded}.sig"


# ------------------------------------------------------------------------------ read-modify-write


def _transient(error: RegistryUnavailableError) -> bool:
    """A 5xx answer (the registry's own race on the tag), not a registry that cannot be reached."""
    return error.status_code is not None and error.status_code >= 500


def _riding_out_5xx(retry: RetryPolicy, action: Callable[[], _T]) -> _T:
    """*action*, again after a backoff when the registry answers 5xx (at most ``retry.max_transient`` times)."""
    for attempt in range(1, retry.max_transient + 2):
        try:
            return action()
        except RegistryUnavailableError as e:
            if not _transient(e) or attempt > retry.max_transient:
                raise
            log.debug("%s; trying again", e)
            retry.sleep(retry.backoff_after(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _read_tagged(client: RegistryClient, repo: str, tag: str, retry: RetryPolicy) -> Manifest | None:
    def read() -> Manifest | None:
        try:
            return client.get_manifest(repo, tag)
        except ManifestNotFoundError:
            return None

    return _riding_out_5xx(retry, read)


def update_tagged_manifest(
    client: RegistryClient,
    repo: str,
    tag: str,
    change: Callable[[Manifest | None], Update | None],
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> TaggedUpdate:
    """Apply *change* to the manifest at ``repo:tag`` so that it survives concurrent writers.

    *change* gets the document as read (``None``: no such tag) and returns the new version, or ``None``
    when the document already holds the change (which is also how a re-read is confirmed). It must
    merge, never drop what others wrote, and must be cheap to call again: it runs on every read. Its
    errors propagate. See the module docstring for the discipline and its limits; raises
    :class:`ConcurrentUpdateError` after ``retry.max_writes`` lost writes.
    """
    writes = 0
    replaced: list[str] = []
    settle = retry.settle
    settled = False  # the confirming read after the settle time is done
    backed_off = False  # this read follows a backoff, so it may be written over
    while True:
        started = retry.clock()
        current = _read_tagged(client, repo, tag, retry)
        update = change(current)
        if update is None:
            if writes == 0 or settled:
                digest = current.digest if current is not None else None
                return TaggedUpdate(tag, digest, writes, tuple(replaced))
            retry.sleep(settle)
            settled, backed_off = True, False
            continue
        if writes > 0 and not backed_off:  # our write was lost: wait, then merge into a fresh read
            if writes >= retry.max_writes:
                raise ConcurrentUpdateError(
                    f"registry {client.base_url}: update {repo}:{tag}: our change was overwritten by "
                    f"concurrent writers {writes} times; giving up",
                    registry=client.base_url,
                )
            log.debug("%s:%s: write %d was lost, merging again", repo, tag, writes)
            retry.sleep(retry.backoff_after(writes))
            # seen missing: if a later read finds it back (another writer merged it in), wait a settle time
            # after that write too before trusting it
            settled, backed_off = False, True
            continue
        for digest, blob in update.blobs.items():
            client.push_blob(repo, digest, blob, len(blob))
        _riding_out_5xx(
            retry, functools.partial(client.put_manifest, repo, tag, update.data, update.media_type)
        )
        writes += 1
        if current is not None:
            replaced.append(current.digest)
        settle = retry.settle_after(retry.clock() - started)
        settled, backed_off = False, False


# --------------------------------------------------------------------------------------- referrers


def _parse_entries(entries: list[object], where: str) -> tuple[tuple[Referrer, ...], tuple[str, ...]]:
    referrers: dict[str, Referrer] = {}
    skipped: list[str] = []
    for i, entry in enumerate(entries):
        try:
            referrer = Referrer.from_json(entry)
        except ValueError as e:
            skipped.append(f"{where}: entry {i}: {e}")
            log.warning("%s: entry %d left out: %s", where, i, e)
            continue
        referrers.setdefault(referrer.digest, referrer)
    return tuple(referrers.values()), tuple(skipped)


def _index_entries(index: Manifest, where: str) -> list[object]:
    """The ``manifests`` of a tag schema index; refuses anything that is not an OCI index."""
    if index.media_type != MEDIA_TYPE_OCI_INDEX:
        raise RegistryProtocolError(f"{where} holds a {index.media_type}, not an OCI index")
    manifests = index.json().get("manifests")
    if manifests is None:
        return []
    if not isinstance(manifests, list):
        raise RegistryProtocolError(f"{where}: 'manifests' is not a list")
    return manifests


def list_referrers(
    client: RegistryClient, repo: str, digest: str, *, artifact_type: str | None = None
) -> Referrers:
    """The referrers of manifest *digest* in *repo*: referrers API if the registry has it, else tag schema.

    With *artifact_type*, only the referrers of that ``artifactType``. Malformed entries are left out and
    reported in :attr:`Referrers.skipped`.
    """
    validate_digest(digest)
    where = f"registry {client.base_url}: {repo}@{digest} referrers"
    index = None
    if client.referrers_api_supported(repo):
        source = ReferrersSource.API
        entries = client.get_referrers(repo, digest, artifact_type=artifact_type)
    else:
        source = ReferrersSource.TAG_SCHEMA
        tag = referrers_tag(digest)
        index = _read_tagged(client, repo, tag, DEFAULT_RETRY)
        entries = [] if index is None else _index_entries(index, f"registry {client.base_url}: {repo}:{tag}")
    referrers, skipped = _parse_entries(entries, where)
    if artifact_type is not None:
        referrers = tuple(r for r in referrers if r.artifact_type == artifact_type)
    return Referrers(digest, source, referrers, index, skipped)


def _add_to_index(entry: Referrer, where: str) -> Callable[[Manifest | None], Update | None]:
    """The change that appends *entry* to a tag schema index unless an entry has its digest."""

    def change(current: Manifest | None) -> Update | None:
        if current is None:
            document: dict[str, object] = {
                "schemaVersion": 2,
                "mediaType": MEDIA_TYPE_OCI_INDEX,
                "manifests": [],
            }
            manifests: list[object] = []
        else:
            manifests = _index_entries(current, where)
            document = current.json()
        if any(isinstance(m, dict) and m.get("digest") == entry.digest for m in manifests):
            return None
        document["manifests"] = [*manifests, entry.to_json()]
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return Update(data, MEDIA_TYPE_OCI_INDEX)

    return change


def add_referrer(
    client: RegistryClient,
    repo: str,
    manifest: bytes,
    *,
    media_type: str = MEDIA_TYPE_OCI_MANIFEST,
    blobs: Mapping[str, bytes] | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> ReferrerAdded:
    """Push artifact *manifest* (whose ``subject`` names the manifest it refers to) and make it findable.

    *blobs* (digest -> bytes: its config and layers) are pushed first, then the manifest by digest.
    With the referrers API that is all; without it, its descriptor is merged into the subject's
    ``sha256-<hex>`` index (:func:`update_tagged_manifest`, *retry*). Adding the same manifest again
    changes nothing.
    """
    referrer, subject = Referrer.of_manifest(manifest, media_type)
    for digest, blob in (blobs or {}).items():
        client.push_blob(repo, digest, blob, len(blob))
    client.put_manifest(repo, referrer.digest, manifest, media_type)
    if client.referrers_api_supported(repo):
        return ReferrerAdded(referrer, subject, ReferrersSource.API)
    tag = referrers_tag(subject)
    change = _add_to_index(referrer, f"registry {client.base_url}: {repo}:{tag}")
    update = update_tagged_manifest(client, repo, tag, change, retry=retry)
    return ReferrerAdded(referrer, subject, ReferrersSource.TAG_SCHEMA, update)


# ------------------------------------------------------------------------------------------ cosign


@dataclass(frozen=True)
class CosignSignatures:
    """cosign's ``.sig`` manifest of a digest (``None``: no such tag) and the payloads fetched for it.

    ``payloads`` maps layer digests to bytes for the simplesigning layers that could be fetched (within
    the size cap, present, matching their digest); ``missing`` says why the others were not.
    """

    tag: str
    manifest: Manifest | None
    payloads: Mapping[str, bytes] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)


def _layers(manifest: Manifest, where: str) -> list[object]:
    if manifest.media_type not in IMAGE_MEDIA_TYPES:
        raise RegistryProtocolError(f"{where} holds a {manifest.media_type}, not an image manifest")
    layers = manifest.json().get("layers")
    if not isinstance(layers, list):
        raise RegistryProtocolError(f"{where}: 'layers' is not a list")
    return layers


def _fetch_small_blob(client: RegistryClient, repo: str, desc: Descriptor) -> bytes:
    buf = io.BytesIO()
    client.get_blob(repo, desc.digest, buf, expected_size=desc.size)
    return buf.getvalue()


def read_cosign_signatures(
    client: RegistryClient,
    repo: str,
    digest: str,
    *,
    max_payload: int = MAX_COSIGN_PAYLOAD_SIZE,
    max_layers: int = 100,
) -> CosignSignatures:
    """cosign's ``sha256-<hex>.sig`` manifest for *digest* and the payload blobs of its simplesigning layers.

    At most *max_layers* payloads of at most *max_payload* bytes each are fetched; a missing or
    mismatching blob is recorded in :attr:`CosignSignatures.missing`, not raised (the verifier then
    reports that layer as unverified). The manifest is not judged here (:mod:`notar.cosign` does).
    """
    tag = cosign_signature_tag(digest)
    where = f"registry {client.base_url}: {repo}:{tag}"
    manifest = _read_tagged(client, repo, tag, DEFAULT_RETRY)
    if manifest is None:
        return CosignSignatures(tag, None)
    payloads: dict[str, bytes] = {}
    missing: dict[str, str] = {}
    for layer in _layers(manifest, where):
        if not isinstance(layer, dict) or layer.get("mediaType") != MEDIA_TYPE_COSIGN_SIMPLESIGNING:
            continue
        try:
            desc = Descriptor(
                MEDIA_TYPE_COSIGN_SIMPLESIGNING, str(layer.get("digest")), int(layer.get("size", -1))
            )
        except (ValueError, TypeError, InvalidDigestError):
            continue  # the verifier reports the malformed descriptor
        if desc.digest in payloads or desc.digest in missing:
            continue
        if len(payloads) + len(missing) >= max_layers:
            missing[desc.digest] = f"not fetched: more than {max_layers} signatures"
        elif desc.size > max_payload:
            missing[desc.digest] = f"not fetched: {desc.size} bytes is more than {max_payload}"
        else:
            try:
                payloads[desc.digest] = _fetch_small_blob(client, repo, desc)
            except (BlobNotFoundError, DigestMismatchError) as e:
                missing[desc.digest] = str(e)
    return CosignSignatures(tag, manifest, payloads, missing)


def append_cosign_signature(
    client: RegistryClient,
    repo: str,
    digest: str,
    append: Callable[[bytes | None, bytes | None], Update | None],
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> TaggedUpdate:
    """Add a signature to cosign's ``sha256-<hex>.sig`` manifest of *digest*, surviving concurrent writers.

    *append* gets the current ``.sig`` manifest bytes and its config blob (both ``None`` when the tag
    does not exist) and returns the new manifest with the blobs it adds (new config, payload), or
    ``None`` when the signature is there already -- e.g. around :func:`notar.cosign.append_signature`.
    It runs on every read (:func:`update_tagged_manifest`).
    """
    tag = cosign_signature_tag(digest)
    where = f"registry {client.base_url}: {repo}:{tag}"

    def change(current: Manifest | None) -> Update | None:
        if current is None:
            return append(None, None)
        _layers(current, where)  # an image manifest, or refuse to rewrite it
        config = current.json().get("config")
        if not isinstance(config, dict):
            raise RegistryProtocolError(f"{where}: the manifest has no config descriptor")
        try:
            desc = Descriptor(
                str(config.get("mediaType")), str(config.get("digest")), int(config.get("size", -1))
            )
        except (ValueError, TypeError, InvalidDigestError) as e:
            raise RegistryProtocolError(f"{where}: malformed config descriptor: {e}") from None
        if desc.size > _MAX_COSIGN_CONFIG_SIZE:
            raise RegistryProtocolError(f"{where}: config blob of {desc.size} bytes is too large")
        return append(current.data, _fetch_small_blob(client, repo, desc))

    return update_tagged_manifest(client, repo, tag, change, retry=retry)
