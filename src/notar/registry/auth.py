"""Pieces of registry authentication that need no network: challenges, scopes, the token cache.

* :func:`parse_www_authenticate` parses ``WWW-Authenticate`` headers (RFC 7235) robustly: several
  challenges, quoted values containing commas, backslash escapes, any letter case.
* :func:`merge_scopes` unions token scopes (``repository:team/app:pull`` + ``...:push``).
* :class:`TokenCache` keeps bearer tokens per scope until they expire.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "Challenge",
    "TokenCache",
    "merge_scopes",
    "parse_www_authenticate",
    "pull_scope",
    "push_scope",
]

_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BARE_VALUE_RE: Final = re.compile(r"[^,\s]*")  # lenient: unquoted values such as URLs
_TOKEN68_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a lower-case ``scheme`` and its parameters (lower-case names)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> list[str]:
        """The space-separated ``scope`` parameter as a list (empty if absent)."""
        return self.params.get("scope", "").split()


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Parse a quoted-string starting at ``text[i] == '"'``; returns (value, index after it)."""
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated quoted string")


def _parse_one(header: str) -> list[Challenge]:
    challenges: list[tuple[str, dict[str, str]]] = []
    i = 0
    while True:
        i = _skip(header, i, " \t,")
        if i >= len(header):
            break
        m = _TOKEN_RE.match(header, i)
        if m is None:
            raise ValueError(f"unexpected character {header[i]!r} at offset {i}")
        name, i = m.group(), m.end()
        j = _skip(header, i, " \t")
        if challenges and j < len(header) and header[j] == "=":
            j = _skip(header, j + 1, " \t")
            if j < len(header) and header[j] == '"':
                value, i = _quoted(header, j)
            else:
                vm = _BARE_VALUE_RE.match(header, j)
                assert vm is not None  # matches the empty string at worst
                value, i = vm.group(), vm.end()
            challenges[-1][1][name.lower()] = value
        elif j < len(header) and header[j] == "=":
            raise ValueError("parameter before any authentication scheme")
        else:
            challenges.append((name.lower(), {}))
            # token68 form ("Basic dXNlcg==") carries nothing we use: skip it
            t68 = _TOKEN68_RE.match(header, j) if j > i else None
            if t68 is not None:
                end = _skip(header, t68.end(), " \t")
                if end >= len(header) or header[end] == ",":
                    j = end
            i = j
    return [Challenge(scheme, params) for scheme, params in challenges]


def parse_www_authenticate(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` header values into challenges, in order.

    Raises ``ValueError`` for text that is not a challenge list (e.g. an unterminated quote).
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    out: list[Challenge] = []
    for value in values:
        out.extend(_parse_one(value))
    return out


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def merge_scopes(scopes: Iterable[str]) -> list[str]:
    """Union scopes per resource: ``repository:a:pull`` + ``repository:a:push`` -> ``repository:a:pull,push``.

    The result is sorted, so it also serves as a cache key. Malformed entries are kept verbatim.
    """
    actions: dict[tuple[str, str], set[str]] = {}
    verbatim: set[str] = set()
    for scope in scopes:
        kind, sep1, rest = scope.partition(":")
        name, sep2, acts = rest.rpartition(":")
        if not (sep1 and sep2 and kind and name):
            verbatim.add(scope)
            continue
        actions.setdefault((kind, name), set()).update(a for a in acts.split(",") if a)
    merged = {f"{kind}:{name}:{','.join(sorted(acts))}" for (kind, name), acts in actions.items()}
    return sorted(merged | verbatim)


class TokenCache:
    """Bearer tokens per scope key, each valid until ``expires_in`` seconds after it was stored.

    ``clock`` is a monotonic clock in seconds (injectable for tests). Thread-safe.
    """

    DEFAULT_EXPIRES_IN: Final = 60.0  # the token spec's default when the server says nothing

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            token, deadline = entry
            if self._clock() >= deadline:
                del self._tokens[key]
                return None
            return token

    def put(self, key: str, token: str, expires_in: float | None) -> None:
        lifetime = self.DEFAULT_EXPIRES_IN if expires_in is None or expires_in <= 0 else expires_in
        with self._lock:
            self._tokens[key] = (token, self._clock() + lifetime)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __repr__(self) -> str:  # never show tokens
        return f"<TokenCache {len(self._tokens)} token(s)>"
