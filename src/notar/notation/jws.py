"""JWS envelopes (``application/jose+json``): flattened JSON serialization, as Notation writes them.

The envelope is a JSON object with exactly ``payload``, ``protected``, ``header`` and ``signature``.
``payload``, ``protected`` and ``signature`` are unpadded base64url (RFC 7515); the signature covers the
ASCII bytes ``protected + "." + payload`` exactly as they appear in the envelope (never re-encoded).

Protected header: ``alg`` (PS256/384/512, ES256/384/512), ``cty`` =
``application/vnd.cncf.notary.payload.v1+json``, ``crit`` (a non-empty list of strings that must not
name the JOSE headers ``alg``/``cty``/``crit``), and the Notary attributes with RFC 3339 times. The
unprotected ``header`` carries ``x5c`` (standard base64 DER, leaf first), optionally
``io.cncf.notary.timestampSignature`` (standard base64 RFC 3161 token) and
``io.cncf.notary.signingAgent``; other unprotected keys are ignored (old envelopes spell
``io.cncf.notary.SigningAgent``).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from notar.encoding import EncodingError, GoTime, b64decode, loads_strict
from notar.notation._model import (
    HEADER_SIGNING_AGENT,
    HEADER_TIMESTAMP_SIGNATURE,
    MEDIA_TYPE_JWS,
    PAYLOAD_CONTENT_TYPE,
    Algorithm,
    Envelope,
    load_chain,
    read_payload,
    signed_attributes,
)
from notar.notation.errors import EnvelopeError

__all__ = ["parse_jws"]

_WHAT = "JWS envelope"
_ENVELOPE_KEYS = frozenset({"payload", "protected", "header", "signature"})
_JOSE_HEADERS = frozenset({"alg", "cty", "crit"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def _b64url(text: Any, *, what: str) -> bytes:
    """Strict unpadded base64url: no ``=``, no whitespace, no standard-alphabet characters."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise EnvelopeError(f"{_WHAT}: {what} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError(f"{_WHAT}: {what} is not unpadded base64url") from e
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != text:
        raise EnvelopeError(f"{_WHAT}: {what} is not canonical base64url")  # non-zero trailing bits
    return data


def _time(value: Any) -> datetime:
    try:
        return GoTime.parse(value, what=f"{_WHAT} time").to_datetime()
    except EncodingError as e:
        raise EnvelopeError(str(e)) from e


def parse_jws(blob: bytes) -> Envelope:
    """Parse a Notation JWS envelope; raise :class:`EnvelopeError` on any rule it breaks.

    The signature is not checked here: call :meth:`Envelope.verify`.
    """
    try:
        env = loads_strict(blob, what=_WHAT)
    except EncodingError as e:
        raise EnvelopeError(str(e)) from e
    if not isinstance(env, dict):
        raise EnvelopeError(f"{_WHAT}: expected a JSON object")
    if set(env) != _ENVELOPE_KEYS:
        extra = sorted(set(env) - _ENVELOPE_KEYS)
        missing = sorted(_ENVELOPE_KEYS - set(env))
        raise EnvelopeError(
            f"{_WHAT}: must have exactly payload, protected, header, signature"
            f" (missing {missing or 'none'}, unexpected {extra or 'none'})"
        )
    protected_raw = _b64url(env["protected"], what="protected")
    payload = _b64url(env["payload"], what="payload")
    signature = _b64url(env["signature"], what="signature")
    try:
        protected = loads_strict(protected_raw, what=f"{_WHAT} protected header")
    except EncodingError as e:
        raise EnvelopeError(str(e)) from e
    if not isinstance(protected, dict):
        raise EnvelopeError(f"{_WHAT}: protected header is not a JSON object")

    alg = protected.get("alg")
    if not isinstance(alg, str) or alg not in Algorithm.__members__:
        raise EnvelopeError(f"{_WHAT}: unsupported alg {alg!r}")
    algorithm = Algorithm(alg)
    cty = protected.get("cty")
    if cty != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"{_WHAT}: cty is {cty!r}, expected {PAYLOAD_CONTENT_TYPE!r}")
    crit = protected.get("crit")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise EnvelopeError(f"{_WHAT}: crit must be a non-empty list of strings")
    jose = sorted(_JOSE_HEADERS.intersection(crit))
    if jose:
        raise EnvelopeError(f"{_WHAT}: crit must not list JOSE headers {jose}")
    attributes = signed_attributes(
        {k: v for k, v in protected.items() if k not in _JOSE_HEADERS}, crit, what=_WHAT, time=_time
    )

    header = env["header"]
    if not isinstance(header, dict):
        raise EnvelopeError(f"{_WHAT}: header is not a JSON object")
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c:
        raise EnvelopeError(f"{_WHAT}: header x5c must be a non-empty list")
    try:
        ders = [b64decode(c, what=f"{_WHAT} x5c[{i}]") for i, c in enumerate(x5c)]
        token = header.get(HEADER_TIMESTAMP_SIGNATURE)
        token_bytes = (
            None if token is None else b64decode(token, what=f"{_WHAT} {HEADER_TIMESTAMP_SIGNATURE}")
        )
    except EncodingError as e:
        raise EnvelopeError(str(e)) from e
    agent = header.get(HEADER_SIGNING_AGENT)
    if agent is not None and not isinstance(agent, str):
        raise EnvelopeError(f"{_WHAT}: {HEADER_SIGNING_AGENT} must be a string")

    return Envelope(
        media_type=MEDIA_TYPE_JWS,
        algorithm=algorithm,
        content_type=cty,
        attributes=attributes,
        payload=payload,
        target_artifact=read_payload(payload, what=_WHAT),
        certificate_chain=load_chain(ders, what=_WHAT),
        signature=signature,
        signed_bytes=f"{env['protected']}.{env['payload']}".encode("ascii"),
        timestamp_token=token_bytes,
        signing_agent=agent,
    )
