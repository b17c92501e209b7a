from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notar.encoding import EncodingError, b64decode, b64encode, canonical_json, go_html_escape, loads_strict
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


def test_floats() -> None:
    assert loads_strict(b'{"v":1.0,"w":2e3}') == {"v": 1, "w": 2000}
    for bad in (b'{"v":1.5}', b'{"v":NaN}', b'{"v":Infinity}'):
        with pytest.raises(EncodingError):
            loads_strict(bad)
    with pytest.raises(EncodingError):
        canonical_json({"v": float("nan")})
    with pytest.raises(EncodingError, match="non-integral"):
        _encode_slow({"v": 1.5}, [])


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


def test_go_html_escape() -> None:
    assert (
        go_html_escape('{"a":"<&>\u2028\u2029"}'.encode()) == b'{"a":"\\u003c\\u0026\\u003e\\u2028\\u2029"}'
    )
    assert go_html_escape(b"plain") == b"plain"
    # what Go's encoder writes, per Python's json with the same escapes
    text = json.dumps("<&>", ensure_ascii=False)
    assert go_html_escape(text.encode()) == b'"\\u003c\\u0026\\u003e"'


@given(st.binary(max_size=64))
def test_b64_round_trip(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("bad", ["@@@@", "YQ", "YQ===", "YWJj\n", 5])
def test_b64_strict(bad: Any) -> None:
    with pytest.raises(EncodingError, match="sig"):
        b64decode(bad, what="sig")
