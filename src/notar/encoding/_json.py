"""Canonical JSON exactly as Notary signs it, and Go's file-level escaping.

Notary signs the output of docker/go ``canonical/json`` ``MarshalCanonical``:

* object keys sorted byte-wise, no insignificant whitespace;
* in strings only ``"`` and ``\\`` are escaped: every other character, control characters and
  non-ASCII included, is written as raw UTF-8;
* numbers are integers (a non-integral number cannot be encoded).

Python's ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` produces the same
bytes except for control characters, which it escapes. :func:`canonical_json` uses the fast C encoder
and falls back to an exact pure-Python encoder only when the output contains such an escape.

Files are written by Go's ``json.Marshal`` over those canonical bytes, which escapes what the canonical
form leaves raw: control characters (``\\n``, ``\\r``, ``\\t``, else ``\\u00xx``), ``<``, ``>``, ``&``, U+2028 and
U+2029 (:func:`go_file_escape`). Those escapes are in the file bytes but not in the signed bytes.

Reading (:func:`loads_strict`) refuses every document that Go's decoder would read differently from
Python's: see its docstring. :func:`go_fold` is the key folding Go uses to match object keys to struct
fields, for the typed readers (``notar.tuf``, ``notar.crypto``) to refuse keys Go would fold onto a field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeAlias

from notar.encoding.errors import EncodingError

__all__ = [
    "BYTES_PER_VALUE",
    "MAX_SAFE_INTEGER",
    "JSONValue",
    "canonical_json",
    "check_value_density",
    "go_file_escape",
    "go_fold",
    "loads_strict",
]

JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | bool | None"

# An escape of a control character in json.dumps output: \b \f \n \r \t or \u0000-\u001f, preceded by
# an even number of backslashes (so an escaped backslash followed by "n" does not count).
_CONTROL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:[bfnrt]|u00[01])")

# What Go's (non-canonical) encoder escapes in strings and the canonical encoder writes raw. Go of the
# notary 0.7 era writes \b and \f as \u0008 and \u000c (a notary changelist file shows it).
_FILE_ESCAPES: dict[bytes, bytes] = {
    **{bytes([c]): b"\\u%04x" % c for c in range(0x20)},
    b"\n": b"\\n",
    b"\r": b"\\r",
    b"\t": b"\\t",
    b"<": b"\\u003c",
    b">": b"\\u003e",
    b"&": b"\\u0026",
    "\u2028".encode(): b"\\u2028",
    "\u2029".encode(): b"\\u2029",
}
_FILE_ESCAPE_RE = re.compile(rb"[\x00-\x1f<>&]|\xe2\x80[\xa8\xa9]")

#: Go decodes JSON numbers into float64 wherever the target is not a typed integer (signature checks
#: re-encode the generic value); beyond 2**53 that changes the number, so the signed bytes differ.
MAX_SAFE_INTEGER = 2**53

# Go's encoding/json matches an object key to a struct field exactly, else case-insensitively with
# Unicode simple folding; for the ASCII field names of TUF that is ASCII case plus two special letters.
_GO_FOLD = str.maketrans(
    {**{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)}, "\u212a": "k", "\u017f": "s"}
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

#: Parsing cost bound: at most one JSON value per this many bytes on average (plus a small allowance).
#: Real metadata has one per 20 bytes or more (a one-hash target entry is ~80 bytes for 4 values); a
#: document of empty objects or arrays has one per 3, and would cost ~20x its size in memory to parse.
BYTES_PER_VALUE = 12
_VALUE_ALLOWANCE = 4096


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


def go_file_escape(data: bytes) -> bytes:
    """Escape canonical JSON text as Go's ``json.Marshal`` writes it into a file.

    Control characters become ``\\n`` ``\\r`` ``\\t`` or ``\\u00xx``; ``<`` ``>`` ``&`` U+2028 U+2029 become
    ``\\u`` escapes. In canonical text these bytes only occur inside strings, so the result is valid JSON
    that decodes to the same value.
    """
    if _FILE_ESCAPE_RE.search(data) is None:
        return data
    return _FILE_ESCAPE_RE.sub(lambda m: _FILE_ESCAPES[m.group()], data)


def go_fold(key: str) -> str:
    """*key* folded the way Go's ``encoding/json`` compares object keys with (ASCII) struct field names."""
    return key.translate(_GO_FOLD)


def _parse_float(text: str) -> int:
    # Go reads a number with a fraction or an exponent into a typed integer field as an error, and into a
    # generic value as a float64; notar accepts neither form, so both readers agree by refusing it.
    raise EncodingError(f"number {text!r} is not an integer literal")


def _parse_int(text: str) -> int:
    number = int(text)
    if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        raise EncodingError(f"number {text} is too large (at most 2**53 in magnitude)")
    return number


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EncodingError(f"duplicate object key {key!r}")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"{name} is not valid JSON")


def check_value_density(data: bytes, *, what: str = "document") -> None:
    """Refuse JSON text with more than one value per :data:`BYTES_PER_VALUE` bytes, before parsing it.

    A cheap upper bound (commas and opening brackets, counted in C) that caps the memory a parse can take
    at a small multiple of the text's size; small documents have an allowance.
    """
    if len(data) > _VALUE_ALLOWANCE * BYTES_PER_VALUE:
        values = data.count(b",") + data.count(b"[") + data.count(b"{")
        if values > len(data) // BYTES_PER_VALUE + _VALUE_ALLOWANCE:
            raise EncodingError(
                f"{what}: too many JSON values for its size ({values} in {len(data)} bytes; "
                f"at most one per {BYTES_PER_VALUE} bytes)"
            )


def loads_strict(data: bytes | str, *, what: str = "document") -> Any:
    """Parse a document that Go clients read too; refuse whatever Go would read differently.

    Refused, each with a one-line :class:`EncodingError`: bytes that are not UTF-8 (Go would substitute
    U+FFFD), escapes of unpaired surrogates (likewise), duplicate keys in any object after unescaping
    (Go keeps the last, and folds keys onto struct fields: see :func:`go_fold`), numbers with a fraction
    or an exponent (an error in Go's typed fields, a float elsewhere), integers beyond 2**53 (rounded by
    Go's float64), ``NaN``/``Infinity``, and malformed JSON. Documents denser than one value per
    :data:`BYTES_PER_VALUE` bytes are refused before parsing (a bound on the memory a parse can take).
    """
    check_value_density(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data, what=what)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as e:
        raise EncodingError(f"{what}: not UTF-8") from e
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except EncodingError as e:
        raise EncodingError(f"{what}: {e}") from e
    except (ValueError, RecursionError) as e:  # JSONDecodeError, and int() over 4300 digits
        raise EncodingError(f"{what}: malformed JSON ({e})") from e
    if "\\" in text and _SURROGATE_ESCAPE.search(text) is not None:
        try:  # paired surrogate escapes decode to one character; an unpaired one stays a surrogate
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodingError(f"{what}: string with an unpaired surrogate escape") from e
    return value
