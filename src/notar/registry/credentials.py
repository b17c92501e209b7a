"""Registry credentials: explicit ones, or docker's ``config.json`` and credential helpers.

docker looks credentials up like this (``cli/config/configfile``), and so do we:

1. ``credHelpers[<server>]`` names a helper for one registry, else ``credsStore`` one for all;
   the helper is the program ``docker-credential-<name>``, run as ``get`` with the server URL on
   stdin, answering ``{"ServerURL", "Username", "Secret"}`` (``Username == "<token>"``: the secret is
   an identity token).
2. Otherwise ``auths[<server>]``: ``auth`` = base64 ``user:password`` (or ``username``/``password``),
   and ``identitytoken``, an OAuth2 refresh token exchanged at the token server.

``<server>`` is ``https://index.docker.io/v1/`` for Docker Hub and ``host[:port]`` otherwise; keys are
also matched after dropping a scheme and path (``https://reg:5000/v2/`` matches ``reg:5000``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from notar.registry.errors import CredentialsError

__all__ = [
    "DOCKER_HUB_AUTH_KEY",
    "MAX_HELPER_OUTPUT",
    "CredentialProvider",
    "Credentials",
    "DockerConfigCredentials",
    "StaticCredentials",
    "docker_config_path",
    "helper_environment",
]

DOCKER_HUB_AUTH_KEY: Final = "https://index.docker.io/v1/"
_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HELPER_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TOKEN_USERNAME: Final = "<token>"  # noqa: S105 - a marker, not a password
_MAX_CONFIG_SIZE: Final = 16 * 1024 * 1024
MAX_HELPER_OUTPUT: Final = 1024 * 1024  # a helper's answer is a few hundred bytes; more is hostile
# Variables that never reach a credential helper: every passphrase variable (docker's
# DOCKER_CONTENT_TRUST_{ROOT,REPOSITORY}_PASSPHRASE, notary's NOTARY_<ALIAS>_PASSPHRASE,
# NOTAR_SERVER_KEY_PASSPHRASE, ...). Matched by name, so variables added later are covered too.
_SECRET_ENV_MARKER: Final = "PASSPHRASE"  # noqa: S105 - part of variable names


def helper_environment(env: Mapping[str, str]) -> dict[str, str]:
    """*env* without any passphrase variable (what a credential helper gets to see)."""
    return {k: v for k, v in env.items() if _SECRET_ENV_MARKER not in k.upper()}


class _HelperOutputTooLarge(Exception):
    pass


def _run_capped(
    argv: list[str], stdin: bytes, env: Mapping[str, str], timeout: float, limit: int
) -> tuple[int, bytes, bytes]:
    """Run *argv*; (exit code, stdout, stderr). stdout over *limit* bytes raises
    :class:`_HelperOutputTooLarge`, more than *timeout* seconds :class:`subprocess.TimeoutExpired`
    (the child is killed either way); stderr beyond *limit* is dropped."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        close_fds=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    try:
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise subprocess.TimeoutExpired(argv, timeout)
                for key, _ in sel.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf: bytearray = key.data
                    if buf is out and len(out) + len(chunk) > limit:
                        raise _HelperOutputTooLarge
                    if len(buf) < limit:
                        buf += chunk[: limit - len(buf)]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired(argv, timeout)
        returncode = proc.wait(remaining)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return returncode, bytes(out), bytes(err)


@dataclass(frozen=True)
class Credentials:
    """A user name with a password, and/or an identity (OAuth2 refresh) token. Secrets never show in repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def has_password(self) -> bool:
        """True when HTTP Basic (with the registry or the token server) is possible."""
        return bool(self.username)

    def secrets(self) -> tuple[str, ...]:
        """The secret strings (to scrub from any text that might echo them)."""
        return tuple(s for s in (self.password, self.identity_token) if s)


@runtime_checkable
class CredentialProvider(Protocol):
    """Something that can find credentials for a registry (``host[:port]``, ``docker.io`` for the Hub)."""

    def get_credentials(self, registry: str) -> Credentials | None: ...


class StaticCredentials:
    """The same explicit credentials for whatever registry asks."""

    def __init__(self, username: str = "", password: str = "", *, identity_token: str = "") -> None:
        self._credentials = Credentials(username, password, identity_token)

    def get_credentials(self, registry: str) -> Credentials | None:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentials(username={self._credentials.username!r})"


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json`` (``$HOME`` from ``env``)."""
    env = os.environ if env is None else env
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


def _auth_key(registry: str) -> str:
    """The key docker uses for ``registry`` in ``auths`` and with credential helpers."""
    return DOCKER_HUB_AUTH_KEY if _hostname(registry) in _HUB_HOSTS else registry


def _hostname(key: str) -> str:
    """docker's ``ConvertToHostname``: drop ``http(s)://`` and anything after the first ``/``."""
    key = key.removeprefix("http://").removeprefix("https://")
    return key.split("/", 1)[0].lower()


def _same_server(key: str, registry: str) -> bool:
    a, b = _hostname(key), _hostname(registry)
    return a == b or (a in _HUB_HOSTS and b in _HUB_HOSTS)


class DockerConfigCredentials:
    """Credentials from docker's ``config.json`` and credential helpers, looked up like docker does.

    ``path`` defaults to :func:`docker_config_path`; a missing file means "no credentials". ``env`` is
    the environment for locating the file and for running helpers (default ``os.environ``).
    ``helper_timeout`` bounds each helper run in seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        helper_timeout: float = 30.0,
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self.path = Path(path) if path is not None else docker_config_path(self._env)
        self.helper_timeout = helper_timeout

    def __repr__(self) -> str:
        return f"DockerConfigCredentials(path={str(self.path)!r})"

    def get_credentials(self, registry: str) -> Credentials | None:
        config = self._load()
        server = _auth_key(registry)
        helper = self._helper_for(config, server)
        if helper is not None:
            return self._run_helper(helper, server)
        auths = config.get("auths")
        if auths is None:
            return None
        if not isinstance(auths, dict):
            raise CredentialsError(f"{self.path}: 'auths' must be a JSON object")
        entry = auths.get(server)
        if entry is None:
            entry = next((v for k, v in auths.items() if _same_server(k, server)), None)
        if entry is None:
            return None
        return self._decode_entry(server, entry)

    # ------------------------------------------------------------------ config file

    def _load(self) -> dict[str, object]:
        try:
            with self.path.open("rb") as f:
                raw = f.read(_MAX_CONFIG_SIZE + 1)
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise CredentialsError(f"cannot read docker config {self.path}: {e.strerror or e}") from e
        if len(raw) > _MAX_CONFIG_SIZE:
            raise CredentialsError(f"docker config {self.path} is larger than {_MAX_CONFIG_SIZE} bytes")
        try:
            value = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as e:
            # the message of a JSON error quotes no content beyond a position, so no secret leaks
            raise CredentialsError(f"docker config {self.path} is not valid JSON: {e}") from None
        if not isinstance(value, dict):
            raise CredentialsError(f"docker config {self.path} must hold a JSON object")
        return value

    def _helper_for(self, config: Mapping[str, object], server: str) -> str | None:
        helpers = config.get("credHelpers")
        if isinstance(helpers, dict):
            name = helpers.get(server)
            if name is None:
                name = next((v for k, v in helpers.items() if _same_server(k, server)), None)
            if name is not None:
                return self._helper_name(name, "credHelpers")
        store = config.get("credsStore")
        if store not in (None, ""):
            return self._helper_name(store, "credsStore")
        return None

    def _helper_name(self, name: object, where: str) -> str:
        if not isinstance(name, str) or not _HELPER_NAME_RE.fullmatch(name):
            raise CredentialsError(f"{self.path}: invalid credential helper name {name!r} in {where}")
        return name

    def _decode_entry(self, server: str, entry: object) -> Credentials | None:
        if not isinstance(entry, dict):
            raise CredentialsError(f"{self.path}: auths[{server!r}] must be a JSON object")
        username, password = entry.get("username") or "", entry.get("password") or ""
        identity_token = entry.get("identitytoken") or ""
        auth = entry.get("auth") or ""
        if not all(isinstance(v, str) for v in (username, password, identity_token, auth)):
            raise CredentialsError(f"{self.path}: auths[{server!r}] has a non-string field")
        assert isinstance(auth, str) and isinstance(identity_token, str)
        assert isinstance(username, str) and isinstance(password, str)
        if auth:
            try:
                decoded = base64.b64decode(auth, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise CredentialsError(
                    f"{self.path}: auths[{server!r}].auth is not base64 of 'user:password'"
                ) from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise CredentialsError(
                    f"{self.path}: auths[{server!r}].auth does not contain 'user:password'"
                )
        if not (username or password or identity_token):
            return None
        return Credentials(username=username, password=password, identity_token=identity_token)

    # ------------------------------------------------------------------ credential helpers

    def _run_helper(self, name: str, server: str) -> Credentials | None:
        program = f"docker-credential-{name}"
        exe = shutil.which(program, path=self._env.get("PATH", os.defpath))
        if exe is None:
            raise CredentialsError(
                f"credential helper {program} (configured in {self.path}) was not found on PATH",
                registry=server,
            )
        try:
            returncode, stdout, stderr = _run_capped(
                [exe, "get"],
                server.encode(),
                helper_environment(self._env),
                self.helper_timeout,
                MAX_HELPER_OUTPUT,
            )
        except subprocess.TimeoutExpired:
            raise CredentialsError(
                f"credential helper {program} did not answer for {server} within {self.helper_timeout:g} s",
                registry=server,
            ) from None
        except _HelperOutputTooLarge:
            raise CredentialsError(
                f"credential helper {program} printed more than {MAX_HELPER_OUTPUT // 1024} KiB for {server}",
                registry=server,
            ) from None
        except OSError as e:
            raise CredentialsError(f"cannot run credential helper {program}: {e}", registry=server) from e
        if returncode != 0:
            message = (stdout or stderr).decode(errors="replace").strip()
            if "credentials not found" in message.lower():
                return None
            raise CredentialsError(
                f"credential helper {program} failed for {server} (exit {returncode}): {message[:200]}",
                registry=server,
            )
        try:
            answer = json.loads(stdout)
        except (ValueError, RecursionError):
            raise CredentialsError(
                f"credential helper {program} printed something that is not JSON for {server}",
                registry=server,
            ) from None
        if not isinstance(answer, dict):
            raise CredentialsError(f"credential helper {program} answered a non-object for {server}")
        username, secret = answer.get("Username", ""), answer.get("Secret", "")
        if not isinstance(username, str) or not isinstance(secret, str):
            raise CredentialsError(f"credential helper {program} answered non-string fields for {server}")
        if not secret:
            return None
        if username == _TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(username=username, password=secret)
