"""Standard padded base64, strict on input (Go's ``base64.StdEncoding``)."""

from __future__ import annotations

import base64
import binascii

from notar.encoding.errors import EncodingError

__all__ = ["b64decode", "b64encode"]


def b64encode(data: bytes) -> str:
    """Encode *data* as standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, what: str = "value") -> bytes:
    """Decode standard padded base64; reject anything Go's StdEncoding would reject.

    *what* names the field in the error message.
    """
    if not isinstance(text, str):
        raise EncodingError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise EncodingError(f"{what}: invalid base64") from e
