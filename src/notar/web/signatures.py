"""Each tag's Notation and cosign signatures, as the UI shows them: who signed, when, verified or not.

For the digest a tag points at, :class:`SignatureReader` reads from the registry what ``notar verify``
reads (:mod:`notar.registry.referrers`): the Notation signatures among the referrers (referrers API, else
the ``sha256-<hex>`` tag schema) with their envelopes, and cosign's ``sha256-<hex>.sig`` manifest with
its payloads. Each signature becomes a :class:`SignatureRow`:

* Notation -- the signing certificate's subject and the signing time from the envelope; with a trust
  policy configured (``notar server --notation-config`` / ``--trust-policy`` + ``--trust-store``), the
  verdict of :func:`notar.notation.verify_signature` under the statement for ``<registry>/<repository>``;
* cosign -- the certificate subject when the layer carries one (keyless), else "key-based"; the
  Rekor bundle's integrated time when there is one; with keys configured (``--cosign-key``), whether one
  of them verifies the layer for this digest.

Without a policy (keys) nothing is called valid: the row says "not verified: no trust policy configured"
("no cosign key configured"). Signature manifests, envelopes and payloads are content-addressed and
cached (bounded); the lists are read on every view, like everything else the UI shows.
"""

from __future__ import annotations

import binascii
import contextlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cryptography import x509

from notar._lru import LRUCache
from notar.cosign import CosignError, verify_signatures
from notar.notation import (
    Descriptor,
    EnvelopeError,
    Level,
    NoApplicablePolicyError,
    SignatureBlob,
    SignatureManifestError,
    parse_envelope,
    parse_signature_manifest,
    verify_signature,
)
from notar.notation.certs import subject_text
from notar.notation.manifest import check_blob
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    RegistryClient,
    RegistryError,
    list_referrers,
    read_cosign_signatures,
)
from notar.signing.verification import CosignKey, NotationTrust

__all__ = ["SignatureReader", "SignatureRow", "TagSignatures"]

log = logging.getLogger("notar.web")

MAX_SHOWN: Final = 20  # signatures per format shown for one digest
MAX_ENVELOPE_BYTES: Final = 4 * 1024 * 1024
_CACHE_SIZE: Final = 1024
_CERTIFICATE_ANNOTATION: Final = "dev.sigstore.cosign/certificate"
_BUNDLE_ANNOTATION: Final = "dev.sigstore.cosign/bundle"

NO_POLICY: Final = "not verified: no trust policy configured"
NO_KEY: Final = "not verified: no cosign key configured"


@dataclass(frozen=True, slots=True)
class SignatureRow:
    """One signature of a digest as the UI shows it.

    ``verified`` is ``True``/``False`` under the configured policy (keys), ``None`` when there is nothing
    to verify with; ``status`` says it in words ("verified", "not verified: ...").
    """

    format: Literal["notation", "cosign"]
    digest: str | None  # the signature manifest (Notation) or the payload layer (cosign)
    signer: str | None  # certificate subject; "key-based" for cosign without a certificate
    signed_at: datetime | None
    verified: bool | None
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "digest": self.digest,
            "signer": self.signer,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "verified": self.verified,
            "status": self.status,
        }


@dataclass(slots=True)
class TagSignatures:
    """The Notation and cosign signatures of ``digest`` (the registry's digest for a tag)."""

    digest: str
    rows: list[SignatureRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what could not be read (one line each)
    more: int = 0  # signatures left out beyond MAX_SHOWN per format

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "items": [r.to_json() for r in self.rows],
            "errors": list(self.errors),
            "not_shown": self.more,
        }


@dataclass(frozen=True, slots=True)
class _Envelope:
    media_type: str
    data: bytes


class SignatureReader:
    """Reads and judges signatures for the UI from one registry (*client*, ``registry_host`` its name in
    fully qualified repositories) with the server's Notation trust and cosign keys (either may be absent)."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        registry_host: str,
        notation: NotationTrust | None = None,
        cosign_keys: Sequence[CosignKey] = (),
    ) -> None:
        self.client = client
        self.registry_host = registry_host
        self.notation = notation
        self.cosign_keys = tuple(cosign_keys)
        self._envelopes: LRUCache[str, _Envelope | str] = LRUCache(
            _CACHE_SIZE
        )  # manifest digest -> envelope/why

    def describe(self) -> dict[str, Any]:
        """What signatures are verified with (for the page and the JSON)."""
        return {
            "notation": self.notation.source if self.notation is not None else None,
            "cosign_keys": [k.name for k in self.cosign_keys],
        }

    def read(
        self, repository: str, subject: Descriptor, *, scope: str | None = None, now: datetime | None = None
    ) -> TagSignatures:
        """Every Notation and cosign signature of ``repository@subject`` (registry failures as errors).

        *scope* is the fully qualified repository trust policy statements are matched against (default:
        ``<registry_host>/<repository>``).
        """
        now = now or datetime.now(UTC)
        out = TagSignatures(subject.digest)
        try:
            self._notation(repository, subject, scope or f"{self.registry_host}/{repository}", now, out)
        except (RegistryError, ValueError) as e:
            out.errors.append(f"Notation signatures: {e}")
        try:
            self._cosign(repository, subject.digest, out)
        except (RegistryError, ValueError) as e:
            out.errors.append(f"cosign signatures: {e}")
        return out

    # -- Notation ---------------------------------------------------------------------------------------
    def _notation(
        self, repository: str, subject: Descriptor, scope: str, now: datetime, out: TagSignatures
    ) -> None:
        found = list_referrers(
            self.client, repository, subject.digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE
        )
        referrers = found.referrers
        out.more += max(0, len(referrers) - MAX_SHOWN)
        statement = None
        # without a statement to verify under: what every row says, and whether that is a "no"
        unverified: tuple[bool | None, str] = (None, NO_POLICY)
        trust = self.notation
        if trust is not None:
            try:
                statement = trust.policy.statement_for(scope)
            except NoApplicablePolicyError:
                unverified = (False, f"not verified: no trust policy statement covers {scope}")
            else:
                if statement.level is Level.SKIP:
                    statement = None
                    unverified = (None, f"not verified: the trust policy skips verification for {scope}")
        for referrer in referrers[:MAX_SHOWN]:
            envelope = self._envelope(repository, referrer.digest, referrer.size)
            if isinstance(envelope, str):
                out.rows.append(
                    SignatureRow("notation", referrer.digest, None, None, False, f"not verified: {envelope}")
                )
                continue
            signer, signed_at = None, None
            try:
                parsed = parse_envelope(envelope.media_type, envelope.data)
                signer = subject_text(parsed.leaf)
                signed_at = parsed.attributes.signing_time or parsed.attributes.authentic_signing_time
            except EnvelopeError as e:
                out.rows.append(
                    SignatureRow("notation", referrer.digest, None, None, False, f"not verified: {e}")
                )
                continue
            if statement is None or trust is None:
                verified, status = unverified
                out.rows.append(
                    SignatureRow("notation", referrer.digest, signer, signed_at, verified, status)
                )
                continue
            result = verify_signature(
                SignatureBlob(envelope.media_type, envelope.data, referrer.digest),
                subject=subject,
                statement=statement,
                trust_store=trust.store,
                now=now,
            )
            failure = result.failure
            status = (
                "verified" if failure is None else f"not verified: {failure.step} failed: {failure.reason}"
            )
            out.rows.append(
                SignatureRow("notation", referrer.digest, signer, signed_at, result.verified, status)
            )

    def _envelope(self, repository: str, digest: str, size: int) -> _Envelope | str:
        """The envelope of signature manifest *digest*, or why there is none (cached: content-addressed)."""
        hit = self._envelopes.get(digest)
        if hit is not None:
            return hit
        value: _Envelope | str
        try:
            manifest = parse_signature_manifest(self.client.get_manifest(repository, digest).data)
            layer = manifest.envelope
            if layer.size > MAX_ENVELOPE_BYTES:
                value = f"the envelope is {layer.size} bytes; the limit is {MAX_ENVELOPE_BYTES}"
            else:
                buf = io.BytesIO()
                self.client.get_blob(repository, layer.digest, buf, expected_size=layer.size)
                check_blob(layer, buf.getvalue())
                value = _Envelope(layer.media_type, buf.getvalue())
        except (SignatureManifestError, RegistryError) as e:
            return str(e)  # not cached: a registry failure may pass
        self._envelopes.put(digest, value)
        return value

    # -- cosign -----------------------------------------------------------------------------------------
    def _cosign(self, repository: str, digest: str, out: TagSignatures) -> None:
        found = read_cosign_signatures(self.client, repository, digest)
        if found.manifest is None:
            return
        layers = found.manifest.json().get("layers")
        layers = layers if isinstance(layers, list) else []
        out.more += max(0, len(layers) - MAX_SHOWN)
        verdicts: dict[int, tuple[bool, str]] = {}
        for key in self.cosign_keys:
            try:
                results = verify_signatures(found.manifest.data, found.payloads, key.key, digest=digest)
            except CosignError as e:
                out.errors.append(f"cosign signatures: {found.tag}: {e}")
                return
            for result in results:
                if result.verified:
                    verdicts[result.index] = (True, f"verified with {key.name}")
                else:
                    reason = found.missing.get(result.digest or "", result.reason)
                    verdicts.setdefault(result.index, (False, f"not verified: {reason}"))
        for index, layer in enumerate(layers[:MAX_SHOWN]):
            annotations = layer.get("annotations") if isinstance(layer, dict) else None
            annotations = annotations if isinstance(annotations, dict) else {}
            layer_digest = layer.get("digest") if isinstance(layer, dict) else None
            signer = _certificate_subject(annotations.get(_CERTIFICATE_ANNOTATION)) or "key-based"
            signed_at = _integrated_time(annotations.get(_BUNDLE_ANNOTATION))
            if not self.cosign_keys:
                verified, status = None, NO_KEY
            else:
                verified, status = verdicts.get(index, (False, "not verified"))
            out.rows.append(
                SignatureRow(
                    "cosign",
                    layer_digest if isinstance(layer_digest, str) else None,
                    signer,
                    signed_at,
                    verified,
                    status,
                )
            )


def _certificate_subject(pem: object) -> str | None:
    """The subject of a keyless cosign signature's certificate (shown, never trusted)."""
    if not isinstance(pem, str):
        return None
    try:
        return subject_text(x509.load_pem_x509_certificate(pem.encode()))
    except ValueError:
        return None


def _integrated_time(bundle: object) -> datetime | None:
    """When Rekor logged the signature (``Payload.integratedTime`` of cosign's bundle annotation)."""
    if not isinstance(bundle, str):
        return None
    with contextlib.suppress(ValueError, TypeError, KeyError, binascii.Error, OverflowError, OSError):
        value = json.loads(bundle)["Payload"]["integratedTime"]
        if isinstance(value, int) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    return None
