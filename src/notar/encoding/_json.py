"""Canonical JSON exactly as Notary signs it, and Go's file-level escaping.

Notary signs the output of docker/go ``canonical/json`` ``MarshalCanonical``:

* object keys sorted byte-wise, no insignificant whitespace;
* in strings only ``"`` and ``\\`` are escaped: every other character, control characters and
  non-ASCII included, is written as raw UTF-8;
* numbers are integers (a non-integral number cannot be encoded).

Python's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` produces the same
bytes except for control characters, which it escapes. :func:`canonical_json` uses the fast C encoder
and falls back to an exact pure-Python encoder only when the output contains such an escape.

Files are written by Go's ``json.Marshal``, which additionally escapes ``<``, ``>``, ``&``, U+2028 and
U+2029 (:func:`go_html_escape`). Those escapes are in the file bytes but not in the signed bytes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

from notar.encoding.errors import EncodingError

__all__ = ["JSONValue", "canonical_json", "go_html_escape", "loads_strict"]

JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | bool | None"

# An escape of a control character in json.dumps output: \b \f \n \r \t or \u0000-\u001f, preceded by
# an even number of backslashes (so an escaped backslash followed by "n" does not count).
_CONTROL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:[bfnrt]|u00[01])")

_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def canonical_json(value: Any) -> bytes:
    """Encode *value* (dicts with str keys, lists, str, int, bool, None) as Notary canonical JSON."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise EncodingError(f"cannot encode as canonical JSON: {e}") from e
    if "\\" in text and _CONTROL_ESCAPE.search(text):  # no backslash, no escape: skip the regex scan
        parts: list[str] = []
        _encode_slow(value, parts)
        text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise EncodingError("cannot encode as canonical JSON: string is not valid Unicode") from e


def _encode_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode_slow(value: Any, out: list[str]) -> None:
    """Exact docker/go canonical encoder (used only when a string holds a control character)."""
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value) or value != math.trunc(value):
            raise EncodingError(f"cannot encode as canonical JSON: non-integral number {value!r}")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise EncodingError("cannot encode as canonical JSON: object key is not a string")
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode_slow(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode_slow(item, out)
        out.append("]")
    else:
        raise EncodingError(f"cannot encode as canonical JSON: unsupported type {type(value).__name__}")


def go_html_escape(data: bytes) -> bytes:
    """Apply the escapes Go's ``json.Marshal`` adds to JSON text: ``<`` ``>`` ``&`` U+2028 U+2029."""
    for raw, escaped in _HTML_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def _parse_float(text: str) -> int:
    # Go decodes every number into a float64 and the canonical encoder then refuses a fraction.
    try:
        number = float(text)
    except ValueError as e:  # pragma: no cover - json only hands us valid numbers
        raise EncodingError(f"invalid number {text!r}") from e
    if not math.isfinite(number) or number != math.trunc(number):
        raise EncodingError(f"non-integral number {text!r} is not allowed in signed metadata")
    return int(number)


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not valid JSON")


def loads_strict(data: bytes | str, *, what: str = "document") -> Any:
    """Parse JSON the way notary's readers accept it, with notar's own errors.

    Integral numbers written with a fraction or exponent become ints (as Go's float64 round trip
    does); non-integral numbers, ``NaN`` and ``Infinity`` are rejected.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as e:
        raise EncodingError(f"{what}: not UTF-8") from e
    try:
        return json.loads(text, parse_float=_parse_float, parse_constant=_reject_constant)
    except EncodingError as e:
        raise EncodingError(f"{what}: {e}") from e
    except (ValueError, RecursionError) as e:  # JSONDecodeError, and int() over 4300 digits
        raise EncodingError(f"{what}: malformed JSON ({e})") from e
