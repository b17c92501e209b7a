"""Which repositories the gateway enforces trust for: glob patterns from a YAML or JSON file.

The file is either a list of patterns, or a mapping::

    repositories: ["prod/*", "team/app"]   # trust-enabled repositories (default: every repository)
    exclude: ["scratch/*"]                 # never enforced, even if a pattern above matches
    allow_index_children: true             # serve manifests listed by a signed index (multi-platform)
    formats:                               # which signatures a pull needs (default: v1 everywhere)
      "prod/*": [v1, notation]
      "team/*": any

``formats`` is described in :mod:`notar.gateway.formats`; it applies to trust-enabled repositories only.

Patterns are :func:`fnmatch.fnmatchcase` globs on the repository path (without the registry host):
``*`` also matches ``/``. Without a file every repository is trust-enabled (fail closed). A pattern that
can never match a repository path (a registry host in it, uppercase letters, a leading or trailing ``/``,
an unclosed ``[``) and an empty ``repositories`` list are configuration errors: either would silently
turn enforcement off.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.reader import ReaderError

from notar.gateway.errors import ConfigError
from notar.gateway.formats import FormatRule, parse_formats

__all__ = ["TrustPolicy"]

_KEYS = frozenset({"repositories", "exclude", "allow_index_children", "formats"})
MAX_FILE_BYTES = 1024 * 1024
_HINT = "patterns match repository paths like team/app, without the registry host"
# what a repository path is made of (lowercase, digits, separators) plus the glob characters
_PATTERN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/*?[]!")


@dataclass(frozen=True, kw_only=True)
class TrustPolicy:
    repositories: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    allow_index_children: bool = True
    formats: tuple[FormatRule, ...] = ()

    def __post_init__(self) -> None:
        for pattern in (*self.repositories, *self.exclude, *(r.pattern for r in self.formats)):
            problem = _pattern_problem(pattern)
            if problem:
                raise ConfigError(f"invalid repository pattern {pattern!r}: {problem}")

    def rule_for(self, repository: str) -> FormatRule | None:
        """The first ``formats`` rule whose pattern matches *repository*, or ``None`` (then: v1)."""
        return next((r for r in self.formats if fnmatch.fnmatchcase(repository, r.pattern)), None)

    def enabled(self, repository: str) -> bool:
        """True when trust is enforced for *repository* (a path such as ``team/app``)."""
        if any(fnmatch.fnmatchcase(repository, p) for p in self.exclude):
            return False
        return any(fnmatch.fnmatchcase(repository, p) for p in self.repositories)

    @classmethod
    def from_data(cls, data: Any, *, source: str = "configuration", base: Path | None = None) -> TrustPolicy:
        """A policy from parsed YAML/JSON; *base* is where relative ``cosign_keys`` paths start."""
        if data is None:
            return cls()
        if isinstance(data, list):
            data = {"repositories": data}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: expected a list of patterns or a mapping, got {type(data).__name__}"
            )
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown} (known: {sorted(_KEYS)})")
        allow = data.get("allow_index_children", True)
        if not isinstance(allow, bool):
            raise ConfigError(f"{source}: allow_index_children must be true or false")
        repositories = _patterns(data.get("repositories", ["*"]), "repositories", source)
        if not repositories:
            raise ConfigError(
                f"{source}: repositories is empty, so trust would be enforced nowhere; omit the key to "
                "enforce trust for every repository, or list the ones to skip under exclude"
            )
        return cls(
            repositories=repositories,
            exclude=_patterns(data.get("exclude", []), "exclude", source),
            allow_index_children=allow,
            formats=parse_formats(
                data.get("formats"), source=source, base=base, pattern_problem=_pattern_problem
            ),
        )

    @classmethod
    def from_file(cls, path: Path | str) -> TrustPolicy:
        path = Path(path)
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB: not a policy file")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path} is not valid UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
            ) from e
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        try:
            data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
        except RecursionError as e:
            raise ConfigError(f"{path} is not valid {kind}: nested too deeply") from e
        except (ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"{path} is not valid {kind}: {_parse_error(e)}") from e
        return cls.from_data(data, source=str(path), base=path.resolve().parent)


def _parse_error(e: Exception) -> str:
    """One line for a JSON or YAML parse error (PyYAML's own text spans several, with a caret snippet)."""
    if isinstance(e, yaml.MarkedYAMLError):
        problem = e.problem or e.context or "syntax error"
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{problem}{where}"
    if isinstance(e, ReaderError):
        char = e.character if isinstance(e.character, int) else ord(e.character[:1] or b"\0")
        return f"unacceptable character #x{char:04x} at position {e.position}"
    return " ".join(str(e).split()) or type(e).__name__


def _patterns(value: Any, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{source}: {key} must be a list of glob patterns")
    for pattern in value:
        problem = _pattern_problem(pattern)
        if problem:
            raise ConfigError(f"{source}: invalid pattern {pattern!r} in {key}: {problem}")
    return tuple(value)


def _pattern_problem(pattern: Any) -> str | None:
    """Why *pattern* can never match a repository path, or ``None`` when it is usable."""
    if not isinstance(pattern, str) or not pattern:
        return "expected a non-empty string"
    if ":" in pattern:
        return f"a registry host or a tag does not belong in it ({_HINT})"
    if pattern != pattern.lower():
        return f"repository paths are lowercase ({_HINT})"
    if pattern.startswith("/") or pattern.endswith("/"):
        return f"it starts or ends with '/' ({_HINT})"
    bad = sorted({c for c in pattern if c not in _PATTERN_CHARS})
    if bad:
        return f"{''.join(bad)!r} cannot occur in a repository path ({_HINT})"
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            # the closing bracket as fnmatch finds it: a ']' right after '[' or '[!' is a member
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            j = pattern.find("]", j)
            if j < 0:
                return "malformed glob: '[' without a closing ']'"
            i = j
        elif pattern[i] in "!]":
            return f"{pattern[i]!r} outside a [...] class cannot occur in a repository path ({_HINT})"
        i += 1
    try:
        regex = fnmatch.translate(pattern)
        re.compile(regex)
    except re.error as e:
        return f"malformed glob: {e}"
    if "(?!)" in regex:  # a character class that matches nothing, such as [z-a]
        return "malformed glob: a character class that matches nothing"
    return None
