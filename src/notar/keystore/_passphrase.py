"""Where key passphrases come from: environment variables, the terminal, callbacks, or a chain of those.

A retriever is called with the key ID, an *alias* (the key file's ``role:`` header, e.g. ``root``,
``targets``, ``targets/releases`` or a docker signer name such as ``alice``), whether the key is new, and
the attempt number (0 first, then 1, 2, ... after each wrong passphrase). It returns the passphrase or
raises :class:`PassphraseUnavailableError` to give up. Retrievers never log a passphrase and never put one
into an exception message.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Final, Literal, Protocol, TextIO, runtime_checkable

from notar.keystore.errors import PassphraseUnavailableError
from notar.tuf.roles import BASE_ROLES, ROOT

__all__ = [
    "DOCKER_ROOT_PASSPHRASE_ENV",
    "DOCKER_REPOSITORY_PASSPHRASE_ENV",
    "CallbackPassphrases",
    "ChainPassphrases",
    "EnvPassphrases",
    "PassphraseRetriever",
    "PromptPassphrases",
    "notary_passphrase_env",
]

# names of variables, not secrets
DOCKER_ROOT_PASSPHRASE_ENV: Final = "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"  # noqa: S105
DOCKER_REPOSITORY_PASSPHRASE_ENV: Final = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"  # noqa: S105
_NOTARY_ALIASES: Final = ("root", "targets", "snapshot", "delegation")
ENV_ATTEMPTS: Final = 2  # notary and docker give up on an environment passphrase after two wrong tries
PROMPT_ATTEMPTS: Final = 3
MIN_NEW_PASSPHRASE: Final = 8

# docker's display names for aliases at the prompt ("Enter passphrase for new repository key ...")
DOCKER_DISPLAY_ALIASES: Final[Mapping[str, str]] = {
    "root": "root",
    "targets": "repository",
    "snapshot": "repository",
    "default": "repository",
}

_ROOT_WARNING: Final = """\
You are about to create a new root signing key passphrase. This passphrase
will be used to protect the most sensitive key in your signing system. Please
choose a long, complex passphrase and be careful to keep the password and the
key file itself secure and backed up. It is highly recommended that you use a
password manager to generate the passphrase and keep it safe. There will be no
way to recover this key. You can find the key in your config directory."""

Flavor = Literal["notar", "notary", "docker"]


def notary_passphrase_env(alias: str) -> str:
    """``NOTARY_<ALIAS>_PASSPHRASE`` for notary's aliases root, targets, snapshot and delegation."""
    if alias not in _NOTARY_ALIASES:
        raise ValueError(f"notary has no passphrase variable for alias {alias!r}")
    return f"NOTARY_{alias.upper()}_PASSPHRASE"


@runtime_checkable
class PassphraseRetriever(Protocol):
    """Returns the passphrase for a key, or raises :class:`PassphraseUnavailableError` to give up."""

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str: ...


def _short(key_id: str) -> str:
    return key_id[:7]


def _key(alias: str, key_id: str) -> str:
    """``the alice key 0f87883`` (no trailing ID when the key's ID is not known yet)."""
    return f"the {alias} key" + (f" {_short(key_id)}" if key_id else "")


class EnvPassphrases:
    """Passphrases from environment variables, with exactly notary's and docker's rules.

    * ``notary``: ``NOTARY_ROOT_PASSPHRASE``, ``NOTARY_TARGETS_PASSPHRASE``, ``NOTARY_SNAPSHOT_PASSPHRASE``
      and ``NOTARY_DELEGATION_PASSPHRASE`` for the aliases of the same name; the delegation one is also the
      fallback for every alias that is not a base role (``targets/releases``, ``alice``, ...).
    * ``docker``: ``DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE`` for ``root`` and
      ``DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE`` for every other alias.
    * ``notar`` (default): docker's variables first, then notary's.

    Empty variables count as unset. The variables are read when a passphrase is needed. Because the
    value cannot change between attempts, this source gives up after two wrong passphrases.
    """

    def __init__(self, flavor: Flavor = "notar", environ: Mapping[str, str] = os.environ) -> None:
        if flavor not in ("notar", "notary", "docker"):
            raise ValueError(f"unknown passphrase flavor {flavor!r} (notar, notary or docker)")
        self.flavor: Flavor = flavor
        self._environ = environ

    def candidates(self, alias: str) -> list[str]:
        """The variable names consulted for *alias*, in order."""
        names: list[str] = []
        if self.flavor in ("docker", "notar"):
            names.append(DOCKER_ROOT_PASSPHRASE_ENV if alias == ROOT else DOCKER_REPOSITORY_PASSPHRASE_ENV)
        if self.flavor in ("notary", "notar"):
            if alias in _NOTARY_ALIASES:
                names.append(notary_passphrase_env(alias))
            if alias not in BASE_ROLES and alias != "delegation":
                names.append(notary_passphrase_env("delegation"))
        return names

    def variable_for(self, alias: str) -> str | None:
        """The name of the variable whose value would be used for *alias*, if one is set."""
        return next((name for name in self.candidates(alias) if self._environ.get(name)), None)

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
        name = self.variable_for(alias)
        if name is None:
            names = " or ".join(self.candidates(alias)) or "(no variable applies)"
            raise PassphraseUnavailableError(f"no passphrase for the {alias} key: set {names}")
        if attempt >= ENV_ATTEMPTS:
            raise PassphraseUnavailableError(
                f"the passphrase in {name} does not unlock {_key(alias, key_id)}"
            )
        return self._environ[name]

    def __repr__(self) -> str:
        return f"EnvPassphrases(flavor={self.flavor!r})"


class PromptPassphrases:
    """Ask on the terminal (``getpass``), like notary's and docker's prompt retriever.

    * New keys: the passphrase must have at least 8 characters and be typed twice; three tries.
    * Existing keys: three tries, then give up ("Passphrase incorrect. Please retry." in between).
    * Passphrases are cached per alias for the life of this object, so one repository passphrase
      unlocks targets and snapshot keys without asking twice.
    * Without a terminal on stdin it gives up at once (raises :class:`PassphraseUnavailableError`).

    *display* maps aliases to the words shown at the prompt; the default is docker's (``root`` and
    ``repository``). *read* and *out* replace ``getpass.getpass`` and ``sys.stderr`` (for tests);
    *interactive* overrides the terminal check.
    """

    def __init__(
        self,
        *,
        display: Mapping[str, str] | None = DOCKER_DISPLAY_ALIASES,
        min_length: int = MIN_NEW_PASSPHRASE,
        max_attempts: int = PROMPT_ATTEMPTS,
        read: Callable[[str], str] | None = None,
        out: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self._display = dict(display or {})
        self._min_length = min_length
        self._max_attempts = max_attempts
        self._read = read if read is not None else getpass.getpass
        self._out = out
        self._interactive = interactive
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        out = self._out if self._out is not None else sys.stderr
        print(text, file=out, flush=True)

    def _terminal(self) -> bool:
        if self._interactive is not None:
            return self._interactive
        try:
            return sys.stdin is not None and sys.stdin.isatty()
        except (ValueError, OSError):  # closed or detached stdin
            return False

    def _ask(self, prompt: str) -> str:
        try:
            return self._read(prompt).strip()
        except EOFError:
            raise PassphraseUnavailableError("no passphrase was entered") from None

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
        with self._lock:
            if attempt == 0:
                cached = self._cache.get(alias)
                if cached is not None:
                    return cached
            elif not create_new:
                self._cache.pop(alias, None)
                if attempt >= self._max_attempts:
                    raise PassphraseUnavailableError(
                        f"giving up after {attempt} wrong passphrases for {_key(alias, key_id)}"
                    )
            if not self._terminal():
                raise PassphraseUnavailableError(
                    "no terminal to ask for a passphrase: set a passphrase environment variable"
                )
            if attempt > 0 and not create_new:
                self._say("Passphrase incorrect. Please retry.")
            shown = self._display.get(alias, alias)
            with_id = f" with ID {_short(key_id)}" if key_id else ""
            if create_new:
                passphrase = self._ask_new(alias, shown, with_id)
            else:
                passphrase = self._ask(f"Enter passphrase for {shown} key{with_id}: ")
            self._cache[alias] = passphrase
            return passphrase

    def _ask_new(self, alias: str, shown: str, with_id: str) -> str:
        if alias == ROOT:
            self._say(_ROOT_WARNING)
        for _ in range(self._max_attempts):
            passphrase = self._ask(f"Enter passphrase for new {shown} key{with_id}: ")
            if len(passphrase) < self._min_length:
                self._say(
                    f"Passphrase is too short (at least {self._min_length} characters). "
                    "Please use a password manager to generate and store a good random passphrase."
                )
                continue
            if self._ask(f"Repeat passphrase for new {shown} key{with_id}: ") != passphrase:
                self._say("Passphrases do not match. Please retry.")
                continue
            return passphrase
        raise PassphraseUnavailableError(f"no acceptable passphrase for the new {shown} key was entered")

    def __repr__(self) -> str:
        return "PromptPassphrases()"


class CallbackPassphrases:
    """Passphrases from a function ``fn(key_id, alias) -> str | None`` (``None``: not available).

    Gives up after *max_attempts* wrong passphrases (default 2, like the environment sources).
    """

    def __init__(self, fn: Callable[[str, str], str | None], *, max_attempts: int = ENV_ATTEMPTS) -> None:
        self._fn = fn
        self._max_attempts = max_attempts

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
        if attempt >= self._max_attempts:
            raise PassphraseUnavailableError(
                f"giving up after {attempt} wrong passphrases for {_key(alias, key_id)}"
            )
        passphrase = self._fn(key_id, alias)
        if passphrase is None:
            raise PassphraseUnavailableError(f"no passphrase available for the {alias} key")
        return passphrase

    def __repr__(self) -> str:
        return "CallbackPassphrases(...)"


class ChainPassphrases:
    """Ask each source in turn; the first that does not raise :class:`PassphraseUnavailableError` answers.

    Attempt numbers are counted per source: when a source gives up after wrong passphrases, the next
    source starts at attempt 0 (for example: a wrong ``NOTARY_TARGETS_PASSPHRASE`` twice, then the
    terminal prompt three times).
    """

    def __init__(self, *sources: PassphraseRetriever) -> None:
        if not sources:
            raise ValueError("ChainPassphrases needs at least one source")
        self._sources = sources
        self._state: dict[tuple[str, str, bool], tuple[int, int]] = {}  # -> (source index, attempt offset)
        self._lock = threading.Lock()

    def __call__(self, key_id: str, alias: str, *, create_new: bool, attempt: int) -> str:
        slot = (key_id, alias, create_new)
        with self._lock:
            index, offset = (0, 0) if attempt == 0 else self._state.get(slot, (0, 0))
        reasons: list[str] = []
        while index < len(self._sources):
            try:
                passphrase = self._sources[index](
                    key_id, alias, create_new=create_new, attempt=attempt - offset
                )
            except PassphraseUnavailableError as e:
                reasons.append(str(e))
                index, offset = index + 1, attempt
                continue
            with self._lock:
                self._state[slot] = (index, offset)
            return passphrase
        with self._lock:
            self._state.pop(slot, None)
        raise PassphraseUnavailableError("; ".join(reasons) or "no passphrase source answered")

    def __repr__(self) -> str:
        return f"ChainPassphrases({', '.join(map(repr, self._sources))})"
