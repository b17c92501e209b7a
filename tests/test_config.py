"""notar.config: the one --listen reader and ConfigError that the server and the gateway share."""

from __future__ import annotations

import pytest

from notar.config import ConfigError, parse_listen
from notar.gateway import ConfigError as GatewayConfigError
from notar.server.runtime import ConfigError as ServerConfigError
from notar.server.runtime import ServerConfig


def test_one_config_error() -> None:
    assert GatewayConfigError is ConfigError is ServerConfigError


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:4443", ("127.0.0.1", 4443)), ("[::1]:0", ("::1", 0)), ("0.0.0.0:65535", ("0.0.0.0", 65535))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen", ["4443", ":4443", "host:", "host:port", "host:65536", "host:99999999", "host:-1"]
)
def test_bad_listen_addresses(listen: str) -> None:
    with pytest.raises(ConfigError, match="--listen must be HOST:PORT"):
        parse_listen(listen)


def test_the_server_range_checks_the_port_too() -> None:
    with pytest.raises(ConfigError):
        _ = ServerConfig(listen="127.0.0.1:70000").host_port
