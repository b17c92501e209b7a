"""Timestamps formatted exactly like Go's ``time.RFC3339Nano``.

Notary writes ``expires`` in the signer's zone with nanoseconds and trailing zeros trimmed
(``2036-11-23T06:58:07.11044425Z``). Python's ``datetime`` keeps only microseconds, so this value type
keeps the nanoseconds and the offset and re-formats a parsed string to the same text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import total_ordering

from notar.encoding.errors import EncodingError

__all__ = ["GoTime"]

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@total_ordering
@dataclass(frozen=True, slots=True)
class GoTime:
    """An instant (``unix`` seconds + ``nanos``) with the UTC offset it is written in."""

    unix: int
    nanos: int = 0
    offset: int = 0  # seconds east of UTC; 0 is written as "Z"

    def __post_init__(self) -> None:
        if not 0 <= self.nanos < 1_000_000_000:
            raise EncodingError("nanoseconds out of range")

    @classmethod
    def parse(cls, text: str, *, what: str = "time") -> GoTime:
        """Parse an RFC 3339 time with 0-9 fractional digits and ``Z`` or ``+hh:mm``."""
        if not isinstance(text, str):
            raise EncodingError(f"{what}: expected an RFC 3339 string, got {type(text).__name__}")
        m = _RFC3339.match(text)
        if not m:
            raise EncodingError(f"{what}: {text!r} is not an RFC 3339 time")
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        frac, zulu, sign, oh, om = m.group(7), m.group(8), m.group(9), m.group(10), m.group(11)
        offset = 0
        if not zulu:
            if int(oh) > 23 or int(om) > 59:
                raise EncodingError(f"{what}: {text!r} has an invalid UTC offset")
            offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
        try:
            local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as e:
            raise EncodingError(f"{what}: {text!r} is not a valid date and time") from e
        unix = (local - _EPOCH) // timedelta(seconds=1) - offset
        nanos = int((frac or "").ljust(9, "0"))
        return cls(unix, nanos, offset)

    @classmethod
    def from_datetime(cls, dt: datetime) -> GoTime:
        """Convert an aware datetime (naive datetimes are taken as UTC)."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        off = dt.utcoffset()
        offset = int(off.total_seconds()) if off else 0
        delta = dt - _EPOCH
        unix = delta.days * 86400 + delta.seconds
        return cls(unix, delta.microseconds * 1000, offset)

    @classmethod
    def now(cls) -> GoTime:
        """The current instant in UTC, with nanoseconds."""
        ns = time.time_ns()
        return cls(ns // 1_000_000_000, ns % 1_000_000_000, 0)

    def utc(self) -> GoTime:
        """The same instant written in UTC."""
        return GoTime(self.unix, self.nanos, 0)

    def truncate(self) -> GoTime:
        """The same instant without the fraction of a second."""
        return GoTime(self.unix, 0, self.offset)

    def add(self, *, seconds: int = 0, days: int = 0) -> GoTime:
        """A later (or, with negative values, earlier) instant in the same zone."""
        return GoTime(self.unix + seconds + days * 86400, self.nanos, self.offset)

    def to_datetime(self) -> datetime:
        """An aware datetime (microsecond precision) in this value's zone."""
        tz = UTC if self.offset == 0 else timezone(timedelta(seconds=self.offset))
        return (_EPOCH + timedelta(seconds=self.unix, microseconds=self.nanos // 1000)).astimezone(tz)

    def format(self) -> str:
        """Go's RFC3339Nano text: trailing zeros of the fraction trimmed, ``Z`` for UTC."""
        local = _EPOCH + timedelta(seconds=self.unix + self.offset)
        text = local.strftime("%Y-%m-%dT%H:%M:%S")
        if local.year < 1000:
            text = f"{local.year:04d}" + text[text.index("-") :]
        if self.nanos:
            text += "." + f"{self.nanos:09d}".rstrip("0")
        if self.offset == 0:
            return text + "Z"
        sign = "-" if self.offset < 0 else "+"
        minutes = abs(self.offset) // 60
        return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"

    def format_go_error(self) -> str:
        """The layout of notary's expiry errors (``Mon Jan 2 15:04:05 UTC 2006``)."""
        local = _EPOCH + timedelta(seconds=self.unix + self.offset)
        zone = "UTC" if self.offset == 0 else self.format()[-6:]
        return f"{local:%a %b} {local.day} {local:%H:%M:%S} {zone} {local.year}"

    def _key(self) -> tuple[int, int]:
        return (self.unix, self.nanos)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GoTime):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: GoTime) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.format()
