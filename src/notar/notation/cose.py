"""COSE envelopes (``application/cose``): ``COSE_Sign1_Tagged`` (CBOR tag 18), as Notation writes them.

``18([protected: bstr, unprotected: map, payload: bstr, signature: bstr])``. The signature covers the
CBOR encoding of ``["Signature1", protected, h'', payload]`` (RFC 9052 ``Sig_structure``) where
``protected`` is the byte string exactly as received.

Protected header labels: ``1`` alg (-37/-38/-39 = PS256/384/512, -7/-35/-36 = ES256/384/512), ``2``
crit (labels: integers or strings), ``3`` content type (``application/vnd.cncf.notary.payload.v1+json``)
and the Notary attributes under their string names, times as CBOR tag 1 (epoch seconds). Unprotected:
``33`` x5chain (one DER certificate or an array, leaf first), ``io.cncf.notary.timestampSignature``
(bstr RFC 3161 token), ``io.cncf.notary.signingAgent``.

CBOR is read strictly (the ``cbor2`` library): definite lengths only, no duplicate map keys, no bytes
after the item; a time under tag 0 (text) instead of tag 1 is refused.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

from notar.notation._model import (
    HEADER_SIGNING_AGENT,
    HEADER_TIMESTAMP_SIGNATURE,
    MEDIA_TYPE_COSE,
    PAYLOAD_CONTENT_TYPE,
    Algorithm,
    Envelope,
    load_chain,
    read_payload,
    signed_attributes,
)
from notar.notation.errors import EnvelopeError

__all__ = ["COSE_ALGORITHMS", "encode_sig_structure", "parse_cose"]

_WHAT = "COSE envelope"
_TAG_SIGN1 = 18
_LABEL_ALG, _LABEL_CRIT, _LABEL_CTY, _LABEL_X5CHAIN = 1, 2, 3, 33

#: COSE algorithm identifiers (RFC 9053 / RFC 8230) of the algorithms Notation allows.
COSE_ALGORITHMS: dict[int, Algorithm] = {
    -37: Algorithm.PS256,
    -38: Algorithm.PS384,
    -39: Algorithm.PS512,
    -7: Algorithm.ES256,
    -35: Algorithm.ES384,
    -36: Algorithm.ES512,
}


@dataclass(frozen=True)
class _TextTime:
    """A CBOR tag-0 (text) time: valid CBOR, not what Notation signs, refused as an attribute."""

    text: object


def _epoch(value: Any, _immutable: bool) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return _TextTime(value)
    return _TextTime(value)


def _text_time(value: Any, _immutable: bool) -> Any:
    return _TextTime(value)


def _decode(data: bytes, *, what: str) -> Any:
    """One CBOR item filling *data* exactly, read strictly."""
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            read_size=1,
            semantic_decoders={0: _text_time, 1: _epoch},
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=32,
        )
        value = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, RecursionError, EOFError) as e:
        raise EnvelopeError(f"{_WHAT}: {what} is not valid CBOR ({e})") from e
    if stream.tell() != len(data):
        raise EnvelopeError(f"{_WHAT}: {what} has {len(data) - stream.tell()} bytes after the CBOR item")
    return value


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    raise EnvelopeError(f"{_WHAT}: times must be CBOR tag 1 (epoch seconds), got {value!r}")


def encode_sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers: ``["Signature1", protected, h'', payload]``."""
    return bytes(cbor2.dumps(["Signature1", protected, b"", payload]))


def parse_cose(blob: bytes) -> Envelope:
    """Parse a Notation COSE envelope; raise :class:`EnvelopeError` on any rule it breaks.

    The signature is not checked here: call :meth:`Envelope.verify`.
    """
    item = _decode(blob, what="envelope")
    if not isinstance(item, cbor2.CBORTag) or item.tag != _TAG_SIGN1:
        raise EnvelopeError(f"{_WHAT}: not a COSE_Sign1_Tagged message (CBOR tag 18)")
    parts = item.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise EnvelopeError(f"{_WHAT}: COSE_Sign1 must be an array of 4 items")
    protected_raw, unprotected, payload, signature = parts
    if not isinstance(protected_raw, bytes) or not protected_raw:
        raise EnvelopeError(f"{_WHAT}: protected header must be a non-empty byte string")
    if not isinstance(unprotected, Mapping):
        raise EnvelopeError(f"{_WHAT}: unprotected header must be a map")
    if payload is None:
        raise EnvelopeError(f"{_WHAT}: detached payloads are not supported")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise EnvelopeError(f"{_WHAT}: payload and signature must be byte strings")
    protected = _decode(protected_raw, what="protected header")
    if not isinstance(protected, Mapping):
        raise EnvelopeError(f"{_WHAT}: protected header is not a map")

    alg = protected.get(_LABEL_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in COSE_ALGORITHMS:
        raise EnvelopeError(f"{_WHAT}: unsupported alg {alg!r}")
    cty = protected.get(_LABEL_CTY)
    if cty != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"{_WHAT}: content type is {cty!r}, expected {PAYLOAD_CONTENT_TYPE!r}")
    crit = protected.get(_LABEL_CRIT)
    if not isinstance(crit, list | tuple) or not crit:
        raise EnvelopeError(f"{_WHAT}: crit must be a non-empty array")
    # alg and content type are understood; any other integer label in crit is not.
    critical: list[str] = []
    for label in crit:
        if label in (_LABEL_ALG, _LABEL_CTY):
            continue
        if isinstance(label, int) and not isinstance(label, bool):
            raise EnvelopeError(f"{_WHAT}: unsupported critical header {label}")
        if not isinstance(label, str):
            raise EnvelopeError(f"{_WHAT}: crit labels must be integers or strings")
        critical.append(label)
    named: dict[str, Any] = {}
    for key, value in protected.items():
        if key in (_LABEL_ALG, _LABEL_CRIT, _LABEL_CTY):
            continue
        name = key if isinstance(key, str) else str(key)
        if name in named:
            raise EnvelopeError(f"{_WHAT}: protected header label {name!r} appears twice")
        named[name] = value
    attributes = signed_attributes(named, critical, what=_WHAT, time=_time)

    chain_value = unprotected.get(_LABEL_X5CHAIN)
    if isinstance(chain_value, bytes):
        ders = [chain_value]
    elif isinstance(chain_value, list | tuple) and all(isinstance(c, bytes) for c in chain_value):
        ders = list(chain_value)
    else:
        raise EnvelopeError(f"{_WHAT}: x5chain (label 33) must be a byte string or an array of them")
    token = unprotected.get(HEADER_TIMESTAMP_SIGNATURE)
    if token is not None and not isinstance(token, bytes):
        raise EnvelopeError(f"{_WHAT}: {HEADER_TIMESTAMP_SIGNATURE} must be a byte string")
    agent = unprotected.get(HEADER_SIGNING_AGENT)
    if agent is not None and not isinstance(agent, str):
        raise EnvelopeError(f"{_WHAT}: {HEADER_SIGNING_AGENT} must be a string")

    return Envelope(
        media_type=MEDIA_TYPE_COSE,
        algorithm=COSE_ALGORITHMS[alg],
        content_type=cty,
        attributes=attributes,
        payload=payload,
        target_artifact=read_payload(payload, what=_WHAT),
        certificate_chain=load_chain(ders, what=_WHAT),
        signature=signature,
        signed_bytes=encode_sig_structure(protected_raw, payload),
        timestamp_token=token,
        signing_agent=agent,
    )
