from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notar.encoding import (
    EncodingError,
    b64decode,
    b64encode,
    canonical_json,
    go_file_escape,
    go_fold,
    loads_strict,
)
from notar.encoding._json import _encode_slow

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


def slow(value: Any) -> bytes:
    parts: list[str] = []
    _encode_slow(value, parts)
    return "".join(parts).encode()


def test_sorted_compact_and_only_quote_and_backslash_escaped() -> None:
    value = {"b": 'q"\\<>&\u2028é\n\x01\x7f', "a": [1, True, None, {"z": 0, "_": -5}]}
    assert canonical_json(value) == (
        '{"a":[1,true,null,{"_":-5,"z":0}],"b":"q\\"\\\\<>&\u2028é\n\x01\x7f"}'.encode()
    )


def test_keys_sort_bytewise() -> None:
    assert (
        canonical_json({"b": 1, "B": 2, "_type": 3, "é": 4, "z": 5})
        == '{"B":2,"_type":3,"b":1,"z":5,"é":4}'.encode()
    )


def test_escaped_backslash_before_n_is_not_a_control_escape() -> None:
    # json.dumps writes "\\n" for a backslash followed by n; only a real newline takes the slow path
    assert canonical_json({"k": "\\n"}) == b'{"k":"\\\\n"}'


@given(json_values)
def test_fast_path_equals_exact_encoder(value: Any) -> None:
    try:
        expected = slow(value)
    except UnicodeEncodeError:
        return
    with contextlib.suppress(EncodingError):  # lone surrogates: both paths refuse them
        assert canonical_json(value) == expected


def _has_control(value: Any) -> bool:
    if isinstance(value, str):
        return any(ord(c) < 0x20 for c in value)
    if isinstance(value, dict):
        return any(_has_control(k) or _has_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_control(v) for v in value)
    return False


@given(json_values)
def test_round_trip(value: Any) -> None:
    try:
        data = canonical_json(value)
    except EncodingError:
        return
    if _has_control(value):
        # Like Go's canonical encoder, control characters are written raw; like Go's decoder, a strict
        # reader refuses them. Such bytes only ever exist as signed bytes, never as a file.
        with pytest.raises(EncodingError):
            loads_strict(data)
        return
    assert loads_strict(data) == value
    assert canonical_json(loads_strict(data)) == data


def test_numbers_are_integer_literals_within_float64_precision() -> None:
    # Go refuses 1.0 / 2e3 in a typed int field and reads them as floats elsewhere: notar refuses them
    for bad in (
        b'{"v":1.0}',
        b'{"v":2e3}',
        b'{"v":1E0}',
        b'{"v":1.5}',
        b'{"v":NaN}',
        b'{"v":Infinity}',
        b'{"v":1e400}',
    ):
        with pytest.raises(EncodingError, match="integer literal|not valid JSON|malformed"):
            loads_strict(bad)
    # beyond 2**53 Go's float64 (signature checks re-encode a generic value) changes the number
    assert loads_strict(b'{"v":9007199254740992,"w":-9007199254740992}') == {"v": 2**53, "w": -(2**53)}
    for bad in (b'{"v":9007199254740993}', b'{"v":-9007199254740993}', b'{"v":' + b"9" * 5000 + b"}"):
        with pytest.raises(EncodingError):
            loads_strict(bad)
    # -0 is 0 for both readers (Go's int64(-0.0) is 0, canonical "0")
    assert loads_strict(b'{"v":-0}') == {"v": 0}
    assert canonical_json(loads_strict(b'{"v":-0}')) == b'{"v":0}'
    with pytest.raises(EncodingError):
        canonical_json({"v": float("nan")})
    with pytest.raises(EncodingError, match="non-integral"):
        _encode_slow({"v": 1.5}, [])


@pytest.mark.parametrize(
    "doc",
    [
        b'{"a":1,"a":1}',
        b'{"signed":{},"sig\\u006eed":{}}',  # the same key after unescaping
        b'{"x":[{"k":1,"k":2}]}',  # at any depth
        b'{"t":{"latest":{},"latest":{}}}',
    ],
)
def test_duplicate_keys_are_refused_at_every_level(doc: bytes) -> None:
    with pytest.raises(EncodingError, match="duplicate object key"):
        loads_strict(doc, what="targets")


def test_keys_differing_in_case_are_kept_apart_by_the_parser() -> None:
    # Go maps keep such keys apart too; the typed readers refuse them where Go folds onto a struct field
    assert loads_strict(b'{"latest":1,"Latest":2}') == {"latest": 1, "Latest": 2}


def test_go_fold() -> None:
    assert go_fold("Signed") == go_fold("SIGNED") == go_fold("signed") == "signed"
    assert go_fold("\u017figned") == "signed"  # LATIN SMALL LETTER LONG S
    assert go_fold("\u212aeyval") == "keyval"  # KELVIN SIGN
    assert go_fold("_TYPE") == "_type"
    assert go_fold("\u00e9") == "\u00e9" and go_fold("\u00c9") == "\u00c9"  # only ASCII case folds


def test_invalid_utf8_and_unpaired_surrogates_are_refused() -> None:
    # Go would read both as U+FFFD: a different string from the one that was signed
    for bad in (
        b'{"a":"\xff"}',
        b'{"a":"\xed\xa0\x80"}',
        b'{"a":"\\ud800"}',
        b'{"a":"\\udc00x"}',
        b'{"\\uDBFF":1}',
    ):
        with pytest.raises(EncodingError, match="UTF-8|surrogate"):
            loads_strict(bad)
    assert loads_strict(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}  # a pair is one character
    with pytest.raises(EncodingError):
        loads_strict(b'\xef\xbb\xbf{"a":1}')  # a byte order mark, which Go refuses too


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a":}', b"\xff\xfe", b"[1,2", b"nul"])
def test_malformed_json(bad: bytes) -> None:
    with pytest.raises(EncodingError):
        loads_strict(bad, what="targets")


def test_unencodable() -> None:
    with pytest.raises(EncodingError):
        canonical_json({"a": object()})
    with pytest.raises(EncodingError):
        canonical_json({"a": "\ud800"})
    with pytest.raises(EncodingError):
        _encode_slow({1: "x"}, [])


def test_go_file_escape() -> None:
    assert (
        go_file_escape('{"a":"<&>\u2028\u2029"}'.encode()) == b'{"a":"\\u003c\\u0026\\u003e\\u2028\\u2029"}'
    )
    assert go_file_escape(b"plain") == b"plain"
    # control characters: \n \r \t, else \u00xx (lower-case hex; \b and \f too, as Go of notary's era)
    assert (
        go_file_escape(b'"\x00\x01\x08\t\n\x0c\r\x1f\x7f"')
        == b'"\\u0000\\u0001\\u0008\\t\\n\\u000c\\r\\u001f\x7f"'
    )


def test_go_file_escape_matches_a_file_the_real_notary_wrote() -> None:
    """tests/vectors/notary-cli-escapes: a changelist file written by notary 0.7 (Go's json.Marshal)."""
    from tests.conftest import ROOT

    golden = (ROOT / "tests" / "vectors" / "notary-cli-escapes" / "target-name.change").read_bytes()
    change = json.loads(golden)
    path = change["path"]
    assert any(ord(c) < 0x20 for c in path) and "<" in path and "\u2028" in path
    ours = go_file_escape(canonical_json(path))
    assert ours in golden
    assert loads_strict(ours) == path


@given(st.binary(max_size=64))
def test_b64_round_trip(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("bad", ["@@@@", "YQ", "YQ===", "YWJj\n", 5])
def test_b64_strict(bad: Any) -> None:
    with pytest.raises(EncodingError, match="sig"):
        b64decode(bad, what="sig")


@pytest.mark.parametrize("unit", [b"{},", b"[],", b"1,", b'"",'])
def test_documents_dense_in_values_are_refused_before_parsing(unit: bytes) -> None:
    # 1 MB of empty objects would take ~60 MB of memory to parse; real metadata has a value per 20+ bytes
    doc = b"[" + unit * (1_000_000 // len(unit)) + b"0]"
    with pytest.raises(EncodingError, match="too many JSON values for its size"):
        loads_strict(doc, what="targets")
    # small documents have an allowance, and dense but short ones are fine
    assert loads_strict(b"[" + b"{}," * 1000 + b"{}]") == [{}] * 1001


def test_real_metadata_is_far_from_the_value_density_limit() -> None:
    from notar.crypto import PrivateKey
    from notar.encoding import GoTime
    from notar.tuf import Envelope, FileMeta, new_targets

    body = new_targets(now=GoTime.parse("2026-01-01T00:00:00Z"))
    for i in range(20_000):  # short names and one hash: the densest targets file a client writes
        body.targets[str(i)] = FileMeta(1, {"sha256": bytes(32)})
    data = Envelope.sign(body, [PrivateKey.generate()]).data
    assert len(loads_strict(data)["signed"]["targets"]) == 20_000
    values = data.count(b",") + data.count(b"[") + data.count(b"{")
    assert len(data) / values > 15
