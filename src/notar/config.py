"""What the long-running commands (``notar server``, ``notar gateway``) share about their configuration.

One :class:`ConfigError` for a configuration that cannot start, and one reader of ``--listen``. It sits
at the bottom beside :mod:`notar.errors`, so the server and the gateway, which do not import each other,
use the same rule.
"""

from __future__ import annotations

from notar.errors import NotarError

__all__ = ["ConfigError", "parse_listen"]


class ConfigError(NotarError):
    """A command cannot start with this configuration (flags, environment or configuration files)."""


def parse_listen(listen: str, *, flag: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4443`` for IPv6) as a host and a port in 0..65535."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{flag} must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)
