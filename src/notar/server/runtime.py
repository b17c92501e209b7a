"""Turning configuration into a running server: database, keys, auth, TLS, uvicorn."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from notar.config import ConfigError, parse_listen
from notar.crypto import Signer
from notar.errors import NotarError
from notar.server.app import MAX_METADATA_BYTES, NotaryApp, ServerSettings, create_app
from notar.server.auth import TokenAuth
from notar.server.keys import DatabaseKeyService, HeldKeyService, KeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import StorageError, migrate, open_store, sqlite_file

__all__ = [
    "ConfigError",
    "ServerConfig",
    "build_app",
    "config_from_environment",
    "check_tls_files",
    "default_data_dir",
    "prepare_data_dir",
    "serve",
]

log = logging.getLogger("notar.server")
_ENV_CONFIG = "NOTAR_SERVER_CONFIG_JSON"  # how `notar server --workers N` hands its config to workers


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "notar"


@dataclass(kw_only=True)
class ServerConfig:
    listen: str = "127.0.0.1:4443"
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    database_url: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    key_passphrase_file: str | None = None
    dev: bool = False
    key_algorithm: str = "ecdsa"
    auth_realm: str | None = None
    auth_service: str | None = None
    auth_issuer: str | None = None
    auth_root_bundle: str | None = None
    max_upload_bytes: int = 64 * 1024 * 1024
    max_metadata_bytes: int = MAX_METADATA_BYTES
    gun_prefixes: list[str] = field(default_factory=list)
    migrate: bool = True
    workers: int = 1
    log_level: str = "info"
    registry_url: str | None = None  # the registry the web UI compares tags with (unsigned/stale tags)
    timestamp_key: str | None = None  # awskms:///... : every repository's timestamps are signed by KMS
    snapshot_key: str | None = None  # awskms:///... : likewise for server-held snapshots
    # the web UI's view of Notation / cosign signatures (notar.web): what they are verified with
    notation_config: str | None = None
    trust_policy: str | None = None
    trust_store: str | None = None
    cosign_keys: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'notar.db'}"

    @property
    def auth_enabled(self) -> bool:
        return any((self.auth_realm, self.auth_service, self.auth_issuer, self.auth_root_bundle))

    def is_loopback(self) -> bool:
        host, _ = self.host_port
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def prepare_data_dir(config: ServerConfig, *, warn: bool = True) -> None:
    """Create ``--data-dir`` owner-only (0700) when the embedded SQLite database lives there.

    Its database holds the server's signing keys (encrypted) and every repository's trust data. A
    directory or database file that already exists keeps the permissions its owner chose; with *warn*, a
    group/world-accessible one is reported (once, by the process that starts the server).
    """
    if config.database_url is None:
        data = Path(config.data_dir)
        if data.is_dir():
            if warn:
                _warn_if_shared(data, "data directory", 0o700)
        else:  # parents, if any, get the usual permissions; only the directory notar owns is private
            try:
                data.parent.mkdir(parents=True, exist_ok=True)
                try:
                    data.mkdir(mode=0o700)
                    data.chmod(0o700)  # mkdir's mode is masked by the umask; 0700 is what we mean
                except FileExistsError:
                    if not data.is_dir():
                        raise
                    # else another process made it just now (e.g. a second server starting)
            except OSError as e:
                where = e.filename or data
                raise ConfigError(f"cannot create --data-dir {data}: {where}: {e.strerror or e}") from e
    if warn:
        try:
            db = sqlite_file(config.resolved_database_url())
        except StorageError:
            return  # a bad URL is reported where it is used
        if db is not None and db.is_file():
            _warn_if_shared(db, "database file", 0o600)


def _warn_if_shared(path: Path, what: str, private: int) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s %s is accessible to other users (mode %04o): it holds the server's encrypted keys and "
            "trust data; consider chmod %o %s",
            what,
            path,
            mode,
            private,
            path,
        )


def _passphrase(config: ServerConfig) -> Secret:
    env = os.environ.get("NOTAR_SERVER_KEY_PASSPHRASE")
    if env:
        return Secret(env)
    if config.key_passphrase_file:
        path = Path(config.key_passphrase_file)
        try:
            value = path.read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise ConfigError(f"cannot read --key-passphrase-file {path}: {e.strerror}") from e
        if not value:
            raise ConfigError(f"--key-passphrase-file {path} is empty")
        return Secret(value)
    if config.dev:
        data = Path(config.data_dir)
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = data / "dev-key-passphrase"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            log.warning("--dev: generated a server key passphrase in %s (development only)", path)
        return Secret(path.read_bytes().strip())
    raise ConfigError(
        "no server key passphrase: set NOTAR_SERVER_KEY_PASSPHRASE or --key-passphrase-file "
        "(or use --dev for local development)"
    )


#: Builds the UI served beside the API from the server's service and auth (``notar.web`` provides one).
WebFactory = Callable[[TrustService, TokenAuth | None], ASGIApp]


def build_app(config: ServerConfig, *, web: WebFactory | None = None) -> NotaryApp:
    """Open (and migrate) the database and assemble the API, with the UI *web* builds on every other path."""
    prepare_data_dir(config, warn=False)
    url = config.resolved_database_url()
    passphrase = _passphrase(config)
    if config.migrate:
        migrate(url)
    store = open_store(url)
    keys: KeyService = DatabaseKeyService(store, passphrase, algorithm=config.key_algorithm)
    held = held_keys(config)
    if held:
        keys = HeldKeyService(keys, held)
    auth = None
    if config.auth_enabled:
        missing = [
            n
            for n, v in (
                ("--auth-realm", config.auth_realm),
                ("--auth-service", config.auth_service),
                ("--auth-issuer", config.auth_issuer),
                ("--auth-root-bundle", config.auth_root_bundle),
            )
            if not v
        ]
        if missing:
            raise ConfigError(f"token auth needs {', '.join(missing)}")
        assert config.auth_realm and config.auth_service and config.auth_issuer and config.auth_root_bundle
        try:
            auth = TokenAuth(
                realm=config.auth_realm,
                service=config.auth_service,
                issuer=config.auth_issuer,
                root_bundle=Path(config.auth_root_bundle),
            )
        except (OSError, NotarError) as e:
            raise ConfigError(f"cannot load --auth-root-bundle: {e}") from e
    settings = ServerSettings(
        max_upload_bytes=config.max_upload_bytes,
        max_metadata_bytes=config.max_metadata_bytes,
        gun_prefixes=tuple(config.gun_prefixes),
    )
    service = TrustService(store, keys)
    try:
        ui = web(service, auth) if web is not None else None
    except ValueError as e:
        raise ConfigError(f"--registry: {e}") from e
    return create_app(settings, service=service, auth=auth, web=ui)


def held_keys(config: ServerConfig) -> dict[str, Signer]:
    """The KMS keys of ``--timestamp-key`` / ``--snapshot-key``: role -> signer (one ``GetPublicKey`` each,
    at start, so a key that cannot be used stops the server with a one-line :class:`ConfigError`)."""
    wanted = {"timestamp": config.timestamp_key, "snapshot": config.snapshot_key}
    out: dict[str, Signer] = {}
    for role, uri in wanted.items():
        if not uri:
            continue
        from notar.kms import KmsError, KmsSigner  # boto3 only for a server that uses KMS

        try:
            signer = KmsSigner.open(uri)
            signer.check_notary_v1()  # what docker and notary verify
        except KmsError as e:
            raise ConfigError(f"--{role}-key: {e}") from None
        log.info("%s key: %s in AWS KMS (key ID %s), for every repository", role, uri, signer.key_id[:12])
        out[role] = signer
    return out


def config_from_environment() -> ServerConfig:
    """A worker process's config, handed down by the parent through the environment (already migrated)."""
    raw = os.environ.get(_ENV_CONFIG)
    if not raw:
        raise ConfigError(f"{_ENV_CONFIG} is not set")
    config = ServerConfig(**json.loads(raw))
    config.migrate = False  # the parent migrated once
    return config


def check_tls_files(cert: str, key: str) -> None:
    """Load the TLS certificate and key once, so a bad pair is a one-line error rather than a traceback."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ConfigError(
            f"cannot use --tls-cert {cert} with --tls-key {key}: {getattr(e, 'reason', None) or e} "
            "(expected PEM files, the key matching the certificate and not encrypted)"
        ) from e


def serve(config: ServerConfig, *, build: Callable[[ServerConfig], ASGIApp], factory: str) -> None:
    """Run the app *build* makes from *config* until interrupted.

    With several workers each process builds its own app: *factory* names an importable function
    (``module:function``) that does it from :func:`config_from_environment`.
    """
    import uvicorn

    host, port = config.host_port
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    if config.tls_cert and config.tls_key:
        check_tls_files(config.tls_cert, config.tls_key)
    prepare_data_dir(config)
    if not config.is_loopback() and not config.auth_enabled:
        log.warning(
            "!!! notar server is listening on %s WITHOUT authentication: anyone who can reach it can "
            "publish and delete trust data. Configure token auth (--auth-*) or listen on 127.0.0.1. !!!",
            config.listen,
        )
    if not config.tls_cert:
        log.warning(
            "serving plain HTTP: docker only talks https to a trust server (use --tls-cert/--tls-key)"
        )
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": config.log_level,
        "access_log": config.log_level == "debug",
        "ssl_certfile": config.tls_cert,
        "ssl_keyfile": config.tls_key,
        "server_header": False,
    }
    if config.workers > 1:
        build(config)  # migrate once and fail fast on bad configuration
        os.environ[_ENV_CONFIG] = json.dumps(asdict(config))
        uvicorn.run(factory, factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(build(config), **common)
