"""Notation (Notary Project) signature verification: pure, bytes in, verdicts out.

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
    EnvelopeError,
    NoApplicablePolicyError,
    NotationError,
    SignatureManifestError,
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
    "ChainProblem",
    "Descriptor",
    "Envelope",
    "EnvelopeError",
    "Level",
    "NoApplicablePolicyError",
    "NotationError",
    "RevocationChecker",
    "SignatureBlob",
    "SignatureManifest",
    "SignatureManifestError",
    "SignatureResult",
    "SignedAttributes",
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
    "is_signature_manifest",
    "parse_certificate_file",
    "parse_envelope",
    "parse_signature_manifest",
    "parse_trust_policy",
    "signing_chain_problems",
    "timestamping_chain_problems",
    "validity_problems",
    "verify_artifact",
    "verify_signature",
    "verify_timestamp_token",
]
