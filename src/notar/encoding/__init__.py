"""Byte-level encodings shared by every notar layer (stdlib only).

* :func:`canonical_json` -- the canonical JSON that Notary signs (docker/go ``canonical/json``).
* :func:`go_file_escape` -- the escapes Go's ``json.Marshal`` adds to canonical text in a file.
* :func:`loads_strict` -- JSON as Go reads it, refusing documents Go would read differently.
* :class:`GoTime` -- a timestamp that keeps nanoseconds and the UTC offset, formatted like Go's RFC3339Nano.
* :func:`b64encode` / :func:`b64decode` -- standard padded base64, as Go writes ``[]byte`` in JSON.
"""

from __future__ import annotations

from notar.encoding._b64 import b64decode, b64encode
from notar.encoding._json import (
    BYTES_PER_VALUE,
    MAX_SAFE_INTEGER,
    JSONValue,
    canonical_json,
    check_value_density,
    go_file_escape,
    go_fold,
    loads_strict,
)
from notar.encoding._time import GoTime
from notar.encoding.errors import EncodingError

__all__ = [
    "BYTES_PER_VALUE",
    "MAX_SAFE_INTEGER",
    "EncodingError",
    "GoTime",
    "JSONValue",
    "b64decode",
    "b64encode",
    "canonical_json",
    "check_value_density",
    "go_file_escape",
    "go_fold",
    "loads_strict",
]
