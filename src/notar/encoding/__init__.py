"""Byte-level encodings shared by every notar layer (stdlib only).

* :func:`canonical_json` -- the canonical JSON that Notary signs (docker/go ``canonical/json``).
* :func:`go_file_json` -- the bytes Go's ``json.Marshal`` writes around canonical text (HTML escapes).
* :class:`GoTime` -- a timestamp that keeps nanoseconds and the UTC offset, formatted like Go's RFC3339Nano.
* :func:`b64encode` / :func:`b64decode` -- standard padded base64, as Go writes ``[]byte`` in JSON.
"""

from __future__ import annotations

from notar.encoding._b64 import b64decode, b64encode
from notar.encoding._json import JSONValue, canonical_json, go_html_escape, loads_strict
from notar.encoding._time import GoTime
from notar.encoding.errors import EncodingError

__all__ = [
    "EncodingError",
    "GoTime",
    "JSONValue",
    "b64decode",
    "b64encode",
    "canonical_json",
    "go_html_escape",
    "loads_strict",
]
