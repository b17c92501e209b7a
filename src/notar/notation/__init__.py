"""Notation (Notary Project) signatures: verification and signing, pure, bytes in, verdicts/bytes out.

The pieces, in the order a verifier uses them:

* :mod:`~notar.notation.manifest` -- recognise a signature manifest (both shapes), take its envelope
  layer descriptor, size limits, the chain thumbprint annotation.
* :mod:`~notar.notation.envelope` -- parse a JWS (``application/jose+json``) or COSE
  (``application/cose``) envelope and check its signature (:mod:`~notar.notation.jws`,
  :mod:`~notar.notation.cose`).
* :mod:`~notar.notation.certs` -- the certificate rules for signing and timestamping chains, as lists
  of problems (usable to check a generated certificate too).
* :mod:`~notar.notation.timestamp` -- RFC 3161 timestamp tokens.
* :mod:`~notar.notation.policy` -- trust policy documents: validation, statement selection, levels,
  trusted identities.
* :mod:`~notar.notation.truststore` -- trust stores in memory; :mod:`~notar.notation.loader` reads
  them and the policy from notation's configuration directory (the only filesystem access).
* :mod:`~notar.notation.verify` -- the five steps and the verdict for an artifact.

Signing, the other direction:

* :mod:`~notar.notation.sign` -- a JWS or COSE envelope for a descriptor through the key-access seam
  (:class:`notar.crypto.DigestSigner`), and the signature manifest + blobs a registry writer pushes.
* :mod:`~notar.notation.certgen` -- signing certificates that meet the certificate rules (self-signed
  or issued by a CA the caller holds).

Nothing here opens a network connection, talks to a registry or reads the clock: the caller fetches
the manifests and envelopes and passes "now". Facts and decisions: ``docs/adr/0010-notation-verification.md``.
"""

from __future__ import annotations

from notar.notation.certs import (
    ChainProblem,
    signing_chain_problems,
    timestamping_chain_problems,
    validity_problems,
)
from notar.notation.descriptor import Descriptor
from notar.notation.envelope import (
    ENVELOPE_MEDIA_TYPES,
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    Algorithm,
    Envelope,
    SignedAttributes,
    SigningScheme,
    parse_envelope,
)
from notar.notation.errors import (
    CertificateRequestError,
    EnvelopeError,
    NoApplicablePolicyError,
    NotationError,
    SignatureManifestError,
    SigningError,
    TimestampError,
    TrustPolicyError,
    TrustStoreError,
    UnsupportedEnvelopeError,
)
from notar.notation.manifest import SignatureManifest, is_signature_manifest, parse_signature_manifest
from notar.notation.policy import (
    Action,
    Level,
    Step,
    StoreRef,
    StoreType,
    TrustedIdentity,
    TrustPolicyDocument,
    TrustPolicyStatement,
    parse_trust_policy,
)
from notar.notation.sign import (
    SignatureArtifact,
    SignedEnvelope,
    build_signature_artifact,
    sign_artifact,
    sign_envelope,
)
from notar.notation.timestamp import Timestamp, verify_timestamp_token
from notar.notation.truststore import TrustStore, parse_certificate_file
from notar.notation.verify import (
    RevocationChecker,
    SignatureBlob,
    SignatureResult,
    Status,
    StepResult,
    Verdict,
    verify_artifact,
    verify_signature,
)

__all__ = [
    "ENVELOPE_MEDIA_TYPES",
    "MEDIA_TYPE_COSE",
    "MEDIA_TYPE_JWS",
    "Action",
    "Algorithm",
    "CertificateRequestError",
    "ChainProblem",
    "Descriptor",
    "Envelope",
    "EnvelopeError",
    "Level",
    "NoApplicablePolicyError",
    "NotationError",
    "RevocationChecker",
    "SignatureArtifact",
    "SignatureBlob",
    "SignatureManifest",
    "SignatureManifestError",
    "SignatureResult",
    "SignedAttributes",
    "SignedEnvelope",
    "SigningError",
    "SigningScheme",
    "Status",
    "Step",
    "StepResult",
    "StoreRef",
    "StoreType",
    "Timestamp",
    "TimestampError",
    "TrustPolicyDocument",
    "TrustPolicyError",
    "TrustPolicyStatement",
    "TrustStore",
    "TrustStoreError",
    "TrustedIdentity",
    "UnsupportedEnvelopeError",
    "Verdict",
    "build_signature_artifact",
    "is_signature_manifest",
    "parse_certificate_file",
    "parse_envelope",
    "parse_signature_manifest",
    "parse_trust_policy",
    "sign_artifact",
    "sign_envelope",
    "signing_chain_problems",
    "timestamping_chain_problems",
    "validity_problems",
    "verify_artifact",
    "verify_signature",
    "verify_timestamp_token",
]
