"""From configuration to a running gateway: the trust verifier, the signature material, the app, uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from notar.config import ConfigError, parse_listen
from notar.gateway.app import GatewayApp, GatewaySettings, create_app
from notar.gateway.deadline import trust_server
from notar.gateway.direct import EXTENSION, ClientSocket
from notar.gateway.formats import Format, Requirements
from notar.gateway.policy import TrustPolicy
from notar.gateway.trust import TrustVerifier
from notar.signing.verification import NotationTrust, load_cosign_keys, load_notation_trust

__all__ = ["GatewayConfig", "build_app", "check_url", "seconds_problem", "serve"]

log = logging.getLogger("notar.gateway")


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    upstream: str
    trust_server: str
    listen: str = "127.0.0.1:5001"
    config_file: str | None = None
    gun_prefix: str | None = None  # default: the listen address
    tls_ca: str | None = None  # CA bundle for the trust server and an https upstream
    tls_cert: str | None = None
    tls_key: str | None = None
    trust_dir: str | None = None  # default: a temporary directory (trust on first use per run)
    cache_ttl: float = 5.0
    trust_timeout: float = 10.0  # deadline in seconds for the whole trust check of one repository
    log_level: str = "info"
    shutdown_timeout: int = 30  # seconds in-flight requests get to finish after SIGTERM
    # Notation: notation's configuration directory (default: $XDG_CONFIG_HOME/notation), or its parts
    notation_config: str | None = None
    trust_policy: str | None = None
    trust_store: str | None = None
    cosign_keys: tuple[str, ...] = ()  # public keys for rules without cosign_keys of their own

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    def resolved_gun_prefix(self) -> str:
        return (self.gun_prefix or self.listen).rstrip("/")


MAX_CACHE_TTL = 3600.0
MAX_TRUST_TIMEOUT = 600.0


def check_url(name: str, url: str, *, path_ok: bool = False) -> None:
    """Raise :class:`ConfigError` unless *url* is ``http(s)://host[:port]`` (optionally a trailing ``/``).

    *path_ok* also allows a path (a trust server behind a reverse proxy under a prefix); never a query,
    a fragment or credentials.
    """
    expected = "http(s)://HOST[:PORT]" + ("[/PATH]" if path_ok else "")
    bad = f"{name} must be {expected}, got {url!r}"
    if not url.startswith(("http://", "https://")):
        raise ConfigError(bad)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{bad}: it contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise ConfigError(f"{bad}: {e}") from e
    if "@" in parts.netloc:
        raise ConfigError(f"{bad}: credentials do not belong in the URL")
    if not host:
        raise ConfigError(f"{bad}: no host")
    if port == 0 or parts.netloc.endswith(":"):
        raise ConfigError(f"{bad}: invalid port")
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise ConfigError(f"{bad}: invalid IPv6 address {host!r}") from e
    elif ":" in host or "[" in parts.netloc or "]" in parts.netloc:
        raise ConfigError(f"{bad}: invalid host")
    if "?" in url or "#" in url:
        raise ConfigError(f"{bad}: no query or fragment allowed")
    if parts.path not in ("", "/") and not path_ok:
        raise ConfigError(f"{bad}: no path allowed")


def seconds_problem(value: float, *, maximum: float, zero_ok: bool) -> str | None:
    """Why *value* is not a usable number of seconds (finite, in range), or ``None``."""
    if math.isfinite(value) and (value > 0 or (zero_ok and value == 0)) and value <= maximum:
        return None
    low = "from 0" if zero_ok else "above 0 and"
    return f"must be a number of seconds {low} at most {maximum:g}, got {value!r}"


def check_seconds(name: str, value: float, *, maximum: float, zero_ok: bool) -> None:
    problem = seconds_problem(value, maximum=maximum, zero_ok=zero_ok)
    if problem:
        raise ConfigError(f"{name} {problem}")


def build_app(config: GatewayConfig) -> GatewayApp:
    check_url("--upstream", config.upstream)
    check_url("--trust-server", config.trust_server, path_ok=True)
    check_seconds("--cache-ttl", config.cache_ttl, maximum=MAX_CACHE_TTL, zero_ok=True)
    check_seconds("--trust-timeout", config.trust_timeout, maximum=MAX_TRUST_TIMEOUT, zero_ok=False)
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if config.tls_cert and config.tls_key:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                config.tls_cert, config.tls_key
            )
        except (ssl.SSLError, OSError, ValueError) as e:
            raise ConfigError(
                f"cannot use --tls-cert {config.tls_cert} with --tls-key {config.tls_key}: "
                f"{getattr(e, 'reason', None) or e} (expected PEM files, the key matching the certificate)"
            ) from e
    config.host_port  # noqa: B018 - validates --listen
    policy = TrustPolicy.from_file(config.config_file) if config.config_file else TrustPolicy()
    notation, requirements = signature_material(config, policy)
    try:
        verify: Any = ssl.create_default_context(cafile=config.tls_ca) if config.tls_ca else True
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"cannot load --tls-ca {config.tls_ca}: {e}") from e
    verifier = TrustVerifier(
        server=trust_server(config.trust_server, verify=verify, timeout=config.trust_timeout),
        trust_dir=Path(config.trust_dir) if config.trust_dir else None,
        ttl=config.cache_ttl,
        timeout=config.trust_timeout,
    )
    try:
        settings = GatewaySettings(
            upstream=config.upstream,
            gun_prefix=config.resolved_gun_prefix(),
            policy=policy,
            upstream_verify=verify,
            requirements=requirements,
            notation=notation,
        )
        return create_app(settings, verifier=verifier)
    except ValueError as e:
        verifier.close()
        raise ConfigError(str(e)) from e


def signature_material(
    config: GatewayConfig, policy: TrustPolicy
) -> tuple[NotationTrust | None, Requirements]:
    """The trust policy + store and cosign keys the policy's ``formats`` need, loaded and checked.

    Notation's files are read when a rule needs them (explicitly, or through ``any`` when the default
    directory has a trust policy) or when they are given; keys from ``--cosign-key`` and each rule's
    ``cosign_keys``. A rule that names a format without its material is a :class:`ConfigError`.
    """
    rules = policy.formats
    explicit = any(Format.NOTATION in r.formats and not r.expand_any for r in rules)
    given = any(v is not None for v in (config.notation_config, config.trust_policy, config.trust_store))
    notation = None
    if explicit or given or any(r.expand_any for r in rules):
        notation = load_notation_trust(
            config_dir=config.notation_config,
            trust_policy=config.trust_policy,
            trust_store=config.trust_store,
            required=explicit or given,
        )
    default_keys = load_cosign_keys(config.cosign_keys)
    rule_keys = {path: load_cosign_keys([path])[0] for r in rules for path in r.cosign_keys or ()}
    return notation, Requirements(
        rules, notation=notation is not None, default_keys=default_keys, rule_keys=rule_keys
    )


# uvicorn's send() waits whenever the transport's write buffer is above its high-water mark (64 KiB by
# default): with MiB-sized blob chunks that is after every chunk. A few MiB per connection keep the socket
# busy while the next chunk is read upstream; memory stays bounded (the limit plus one chunk).
WRITE_BUFFER_HIGH = 4 * 1024 * 1024
WRITE_BUFFER_LOW = 1024 * 1024


def _http_protocol() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GatewayHttpProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            # the cycle just made for this request (uvicorn builds one per request in this callback), so that
            # a blob body can be copied to the socket directly (notar.gateway.direct)
            cycle = self.cycle
            if cycle is not None and cycle.scope is self.scope and self.transport is not None:
                extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
                extensions[EXTENSION] = ClientSocket(self.transport, cycle)

    return GatewayHttpProtocol


def serve(config: GatewayConfig) -> None:
    """Run the gateway until interrupted."""
    import uvicorn

    host, port = config.host_port
    app = build_app(config)
    if not config.config_file:
        log.info("no --config: trust is enforced for every repository")
    requirements = app.settings.requirements
    for line in requirements.describe() if requirements is not None else []:
        log.info("formats %s", line)
    if app.settings.notation is not None:
        log.info("notation: %s", app.settings.notation.describe())
        for warning in app.settings.notation.store.warnings:
            log.warning("notation trust store: %s", warning)
    log.info(
        "gateway on %s -> %s, trust server %s, GUN prefix %s",
        config.listen,
        config.upstream,
        config.trust_server,
        app.settings.gun_prefix,
    )
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not config.tls_cert:
        log.warning("serving plain HTTP on %s: docker only talks https to non-loopback registries", host)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=config.log_level,
        access_log=config.log_level == "debug",
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
        server_header=False,
        loop="uvloop",
        http=_http_protocol(),
        timeout_graceful_shutdown=config.shutdown_timeout,
    )
