from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notar.encoding import EncodingError, GoTime


@pytest.mark.parametrize(
    "text",
    [
        "2036-11-23T06:58:07.11044425Z",
        "2116-07-03T17:56:36.027379879-05:00",
        "2029-08-22T06:59:15Z",
        "2029-08-22T06:59:15.5+05:30",
        "0001-01-01T00:00:00Z",
    ],
)
def test_go_strings_round_trip(text: str) -> None:
    assert GoTime.parse(text).format() == text


def test_instants_compare_across_zones() -> None:
    a = GoTime.parse("2030-01-01T00:00:00Z")
    b = GoTime.parse("2029-12-31T19:00:00-05:00")
    assert a == b and hash(a) == hash(b)
    assert GoTime.parse("2030-01-01T00:00:00.000000001Z") > a
    assert b.utc().format() == "2030-01-01T00:00:00Z"


def test_trailing_zero_trim_and_precision() -> None:
    t = GoTime.parse("2030-01-01T00:00:00.120000000Z")
    assert t.format() == "2030-01-01T00:00:00.12Z"
    assert t.nanos == 120_000_000
    assert t.truncate().format() == "2030-01-01T00:00:00Z"


def test_datetime_conversion() -> None:
    dt = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    t = GoTime.from_datetime(dt)
    assert t.format() == "2031-05-06T07:08:09.123456+02:00"
    assert t.to_datetime() == dt
    assert GoTime.from_datetime(datetime(2031, 1, 1)).format() == "2031-01-01T00:00:00Z"
    assert t.add(days=1).to_datetime() == dt + timedelta(days=1)


def test_go_error_layout() -> None:
    assert GoTime.parse("2029-08-02T06:59:15Z").format_go_error() == "Thu Aug 2 06:59:15 UTC 2029"


def test_now_is_utc() -> None:
    now = GoTime.now()
    assert now.offset == 0
    assert abs(now.to_datetime() - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "bad",
    [
        "2030-01-01",
        "2030-01-01 00:00:00Z",
        "2030-01-01T00:00:00",
        "2030-02-30T00:00:00Z",
        "2030-01-01T25:00:00Z",
        "2030-01-01T00:00:00.1234567890Z",
        "2030-01-01T00:00:00+24:00",
        "",
        None,
        12,
    ],
)
def test_rejects(bad: object) -> None:
    with pytest.raises(EncodingError):
        GoTime.parse(bad)  # type: ignore[arg-type]


@given(
    st.integers(min_value=-62135596800, max_value=253402300799 - 86400),
    st.integers(min_value=0, max_value=999_999_999),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_property_round_trip(unix: int, nanos: int, offset_minutes: int) -> None:
    t = GoTime(unix, nanos, offset_minutes * 60)
    try:
        text = t.format()
    except (OverflowError, ValueError):
        return  # local time outside years 1..9999
    back = GoTime.parse(text)
    assert back == t and back.offset == t.offset and back.format() == text
