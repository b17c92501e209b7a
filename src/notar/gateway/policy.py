"""Which repositories the gateway enforces trust for: glob patterns from a YAML or JSON file.

The file is either a list of patterns, or a mapping::

    repositories: ["prod/*", "team/app"]   # trust-enabled repositories (default: every repository)
    exclude: ["scratch/*"]                 # never enforced, even if a pattern above matches
    allow_index_children: true             # serve manifests listed by a signed index (multi-platform)

Patterns are :func:`fnmatch.fnmatchcase` globs on the repository path (without the registry host):
``*`` also matches ``/``. Without a file every repository is trust-enabled (fail closed).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from notar.gateway.errors import ConfigError

__all__ = ["TrustPolicy"]

_KEYS = frozenset({"repositories", "exclude", "allow_index_children"})


@dataclass(frozen=True, kw_only=True)
class TrustPolicy:
    repositories: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    allow_index_children: bool = True

    def __post_init__(self) -> None:
        for pattern in (*self.repositories, *self.exclude):
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(f"invalid repository pattern {pattern!r}: expected a non-empty string")

    def enabled(self, repository: str) -> bool:
        """True when trust is enforced for *repository* (a path such as ``team/app``)."""
        if any(fnmatch.fnmatchcase(repository, p) for p in self.exclude):
            return False
        return any(fnmatch.fnmatchcase(repository, p) for p in self.repositories)

    @classmethod
    def from_data(cls, data: Any, *, source: str = "configuration") -> TrustPolicy:
        if data is None:
            return cls()
        if isinstance(data, list):
            data = {"repositories": data}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: expected a list of patterns or a mapping, got {type(data).__name__}"
            )
        unknown = set(data) - _KEYS
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)} (known: {sorted(_KEYS)})")
        allow = data.get("allow_index_children", True)
        if not isinstance(allow, bool):
            raise ConfigError(f"{source}: allow_index_children must be true or false")
        return cls(
            repositories=_patterns(data.get("repositories", ["*"]), "repositories", source),
            exclude=_patterns(data.get("exclude", []), "exclude", source),
            allow_index_children=allow,
        )

    @classmethod
    def from_file(cls, path: Path | str) -> TrustPolicy:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from e
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as e:
            raise ConfigError(
                f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {e}"
            ) from e
        return cls.from_data(data, source=str(path))


def _patterns(value: Any, key: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{source}: {key} must be a list of glob patterns")
    return tuple(value)
