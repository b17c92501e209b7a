"""Signature envelopes: pick the parser by media type, and the types both formats parse into.

>>> env = parse_envelope("application/jose+json", blob)   # doctest: +SKIP
>>> env.verify()                                          # alg vs leaf key, then the signature
>>> env.target_artifact                                   # the descriptor that was signed

:func:`parse_envelope` refuses envelopes over 32 MiB before parsing. Parsing checks the structure and
the header rules; :meth:`Envelope.verify` checks the signature. Both raise
:class:`~notar.notation.errors.EnvelopeError` (the *integrity* step turns it into a failure).
"""

from __future__ import annotations

from notar.notation._model import (
    HEADER_AUTHENTIC_SIGNING_TIME,
    HEADER_EXPIRY,
    HEADER_SIGNING_AGENT,
    HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME,
    HEADER_TIMESTAMP_SIGNATURE,
    MAX_ENVELOPE_SIZE,
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    PAYLOAD_CONTENT_TYPE,
    Algorithm,
    Envelope,
    SignedAttributes,
    SigningScheme,
    algorithm_for_key,
)
from notar.notation.cose import parse_cose
from notar.notation.errors import EnvelopeError, UnsupportedEnvelopeError
from notar.notation.jws import parse_jws

__all__ = [
    "ENVELOPE_MEDIA_TYPES",
    "HEADER_AUTHENTIC_SIGNING_TIME",
    "HEADER_EXPIRY",
    "HEADER_SIGNING_AGENT",
    "HEADER_SIGNING_SCHEME",
    "HEADER_SIGNING_TIME",
    "HEADER_TIMESTAMP_SIGNATURE",
    "MAX_ENVELOPE_SIZE",
    "MEDIA_TYPE_COSE",
    "MEDIA_TYPE_JWS",
    "PAYLOAD_CONTENT_TYPE",
    "Algorithm",
    "Envelope",
    "SignedAttributes",
    "SigningScheme",
    "algorithm_for_key",
    "parse_envelope",
]

#: The two envelope media types a Notation signature manifest's layer may have.
ENVELOPE_MEDIA_TYPES = frozenset({MEDIA_TYPE_JWS, MEDIA_TYPE_COSE})


def parse_envelope(media_type: str, blob: bytes) -> Envelope:
    """Parse *blob* as the envelope format *media_type* names (structure and header rules only)."""
    if len(blob) > MAX_ENVELOPE_SIZE:
        raise EnvelopeError(f"signature envelope is {len(blob)} bytes; the limit is {MAX_ENVELOPE_SIZE}")
    if media_type == MEDIA_TYPE_JWS:
        return parse_jws(blob)
    if media_type == MEDIA_TYPE_COSE:
        return parse_cose(blob)
    raise UnsupportedEnvelopeError(
        f"unsupported signature envelope media type {media_type!r} (expected {MEDIA_TYPE_JWS} or {MEDIA_TYPE_COSE})"
    )
