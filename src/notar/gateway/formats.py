"""Which signature formats a pull needs, per repository: the ``formats`` key of the gateway's policy file.

::

    formats:
      "prod/*": [v1, notation]          # a list: every format listed is required
      "team/*": any                     # one of v1, notation, cosign (those the gateway can check)
      "oss/*": notation                 # one format
      "ml/*":                           # a rule object: "all" or "any" of a list, own cosign keys
        any: [notation, cosign]
        cosign_keys: [keys/ml.pub]      # instead of --cosign-key for this rule (relative: to the file)

Formats: ``v1`` (Docker Content Trust: the tag's signed digest, from the trust server), ``notation``
(Notary Project signatures verified with the gateway's trust policy and trust store), ``cosign``
(key-based cosign signatures verified with the configured public keys). Patterns are the same globs as
``repositories`` (:mod:`notar.gateway.policy`); the first pattern that matches a repository decides, in
file order; a repository no pattern matches needs ``v1``, as before formats existed. ``any`` alone means
one of the three formats, each only when the gateway has what it takes to check it (``v1`` always;
``notation`` with a trust policy; ``cosign`` with at least one key for the rule); a format named
explicitly without that is a configuration error.

This module only parses and validates; :mod:`notar.gateway.runtime` loads keys and trust policies and
turns each rule into a :class:`Requirement` the trust handlers apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from notar.gateway.errors import ConfigError

__all__ = ["Format", "FormatRule", "Mode", "Requirement", "V1_ONLY", "parse_formats"]


class Format(StrEnum):
    """A kind of signature the gateway can require."""

    V1 = "v1"
    NOTATION = "notation"
    COSIGN = "cosign"


class Mode(StrEnum):
    """How the formats of a rule combine."""

    ALL = "all"  # every format listed must hold
    ANY = "any"  # one of them is enough


_ORDER = {Format.V1: 0, Format.NOTATION: 1, Format.COSIGN: 2}
_RULE_KEYS = frozenset({"all", "any", "cosign_keys"})
_KNOWN = "v1, notation, cosign"


@dataclass(frozen=True, kw_only=True)
class FormatRule:
    """One entry of ``formats``: the repositories it covers and what their pulls need.

    ``expand_any``: the rule was the bare word ``any`` (one of the formats the gateway can check);
    ``cosign_keys``: the rule's own key files (resolved paths), ``None`` for the gateway's ``--cosign-key``.
    """

    pattern: str
    mode: Mode
    formats: tuple[Format, ...]
    expand_any: bool = False
    cosign_keys: tuple[str, ...] | None = None

    def describe(self) -> str:
        """``all of v1, notation`` / ``any of notation, cosign`` / ``v1``."""
        if len(self.formats) == 1:
            return str(self.formats[0])
        return f"{self.mode} of {', '.join(self.formats)}"


@dataclass(frozen=True)
class Requirement:
    """What a trust-enabled repository's pulls need, with what the gateway checks cosign signatures with.

    ``keys`` are opaque cosign verification keys (:class:`notar.signing.verification.CosignKey`), named for
    messages; ``source`` is the rule's pattern (``None``: the default, no rule matched).
    """

    mode: Mode
    formats: tuple[Format, ...]
    keys: tuple[Any, ...] = field(default=(), compare=False)
    source: str | None = None

    @property
    def v1_only(self) -> bool:
        """Only Docker Content Trust: the gateway's behaviour before formats existed."""
        return self.formats == (Format.V1,)

    def describe(self) -> str:
        if len(self.formats) == 1:
            return str(self.formats[0])
        return f"{self.mode} of {', '.join(self.formats)}"


#: The requirement of a repository that no ``formats`` rule covers.
V1_ONLY = Requirement(Mode.ALL, (Format.V1,))


def _format(value: Any, where: str) -> Format:
    if isinstance(value, str) and value == "any":
        raise ConfigError(
            f"{where}: 'any' stands alone (\"any\"), or takes a list ({{any: [notation, cosign]}}); "
            "it cannot be one entry of a list"
        )
    if not isinstance(value, str) or value not in Format.__members__.values():
        raise ConfigError(f"{where}: unknown format {value!r} (known: {_KNOWN}, or any)")
    return Format(value)


def _format_list(value: Any, where: str) -> tuple[Format, ...]:
    if isinstance(value, str):
        return (_format(value, where),)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a format or a non-empty list of formats ({_KNOWN})")
    formats = {_format(item, where) for item in value}
    return tuple(sorted(formats, key=_ORDER.__getitem__))


def _key_paths(value: Any, where: str, base: Path | None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: cosign_keys must be a list of public key files (PEM)")
    out = []
    for item in value:
        path = Path(item).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        out.append(str(path))
    return tuple(dict.fromkeys(out))


def _rule(pattern: str, value: Any, where: str, base: Path | None) -> FormatRule:
    if value == "any":
        return FormatRule(
            pattern=pattern,
            mode=Mode.ANY,
            formats=(Format.V1, Format.NOTATION, Format.COSIGN),
            expand_any=True,
        )
    if isinstance(value, str | list):
        return FormatRule(pattern=pattern, mode=Mode.ALL, formats=_format_list(value, where))
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: expected a format, a list of formats, any, or an object with all/any "
            f"(got {type(value).__name__})"
        )
    unknown = sorted(str(k) for k in value if k not in _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: all, any, cosign_keys)")
    modes = [m for m in (Mode.ALL, Mode.ANY) if m.value in value]
    if len(modes) != 1:
        raise ConfigError(f"{where}: give exactly one of all: [...] or any: [...]")
    mode = modes[0]
    formats = _format_list(value[mode.value], f"{where}: {mode}")
    keys = None
    if "cosign_keys" in value:
        if Format.COSIGN not in formats:
            raise ConfigError(f"{where}: cosign_keys is given but cosign is not one of the formats")
        keys = _key_paths(value["cosign_keys"], f"{where}: cosign_keys", base)
    return FormatRule(pattern=pattern, mode=mode, formats=formats, cosign_keys=keys)


def parse_formats(
    data: Any,
    *,
    source: str,
    base: Path | None,
    pattern_problem: Callable[[Any], str | None],
) -> tuple[FormatRule, ...]:
    """The ``formats`` mapping of a policy file as rules, in file order; :class:`ConfigError` (one line).

    *base* is the directory relative ``cosign_keys`` paths start from (the policy file's);
    *pattern_problem* checks each pattern as :mod:`notar.gateway.policy` checks its own.
    """
    if data is None:
        return ()
    if isinstance(data, Sequence) and not isinstance(data, str):
        raise ConfigError(
            f'{source}: formats must be a mapping of repository patterns to formats, e.g. {{"prod/*": '
            '[v1, notation], "team/*": any}'
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: formats must be a mapping of repository patterns to formats")
    rules = []
    for pattern, value in data.items():
        problem = pattern_problem(pattern)
        if problem:
            raise ConfigError(f"{source}: formats: invalid pattern {pattern!r}: {problem}")
        rules.append(_rule(pattern, value, f"{source}: formats: {pattern!r}", base))
    return tuple(rules)


class Requirements:
    """Each trust-enabled repository's :class:`Requirement`, from the rules and what the gateway can check.

    *notation*: a trust policy is configured; *default_keys*: the ``--cosign-key`` keys; *rule_keys*: the
    keys loaded for each rule's own ``cosign_keys`` (by path). A rule that names a format the gateway
    cannot check is a :class:`ConfigError`; ``any`` keeps only the formats it can.
    """

    def __init__(
        self,
        rules: Sequence[FormatRule],
        *,
        notation: bool = False,
        default_keys: tuple[Any, ...] = (),
        rule_keys: Mapping[str, Any] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self._resolved: dict[str, Requirement] = {}
        for rule in self.rules:
            keys = (
                default_keys
                if rule.cosign_keys is None
                else tuple((rule_keys or {})[path] for path in rule.cosign_keys)
            )
            formats = rule.formats
            if rule.expand_any:
                formats = tuple(
                    f
                    for f in formats
                    if f is Format.V1 or (f is Format.NOTATION and notation) or (f is Format.COSIGN and keys)
                )
            where = f"formats: {rule.pattern!r}"
            if Format.NOTATION in formats and not notation:
                raise ConfigError(
                    f"{where} requires notation signatures, but the gateway has no trust policy: give "
                    "--notation-config DIR (or --trust-policy FILE and --trust-store DIR)"
                )
            if Format.COSIGN in formats and not keys:
                raise ConfigError(
                    f"{where} requires cosign signatures, but there is no public key to verify them with: "
                    "give --cosign-key FILE or cosign_keys in the rule"
                )
            mode = rule.mode if len(formats) > 1 else Mode.ALL
            self._resolved[rule.pattern] = Requirement(
                mode, formats, keys if Format.COSIGN in formats else (), rule.pattern
            )

    def needs(self, fmt: Format) -> bool:
        """Whether some rule needs *fmt* checked (v1: also every repository no rule covers)."""
        return fmt is Format.V1 or any(fmt in r.formats for r in self._resolved.values())

    def for_rule(self, rule: FormatRule | None) -> Requirement:
        """The requirement of a rule (``None``: no rule matched, v1)."""
        return V1_ONLY if rule is None else self._resolved[rule.pattern]

    def describe(self) -> list[str]:
        """One line per rule, for the startup log."""
        return [f"{pattern}: {req.describe()}" for pattern, req in self._resolved.items()]
