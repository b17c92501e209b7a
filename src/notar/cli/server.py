"""``notar server``: run the trust server, or migrate its database."""

from __future__ import annotations

import logging

import click

from notar.server.app import GO_MAX_DOWNLOAD_BYTES, MAX_METADATA_BYTES, MAX_TIMESTAMP_BYTES
from notar.server.runtime import ConfigError, ServerConfig, default_data_dir, prepare_data_dir

__all__ = ["server"]


def _database_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--database-url",
        envvar="NOTAR_DATABASE_URL",
        help="SQLAlchemy URL, e.g. postgresql://user@host/notar. Default: SQLite in --data-dir.",
    )(fn)
    fn = click.option(
        "--data-dir",
        envvar="NOTAR_DATA_DIR",
        type=click.Path(file_okay=False),
        default=lambda: str(default_data_dir()),
        show_default="$XDG_DATA_HOME/notar",
        help="Where the embedded SQLite database (and the --dev passphrase) live. Created owner-only "
        "(0700, database files 0600); an existing group/world-accessible one is used with a warning.",
    )(fn)
    return fn


@click.group(invoke_without_command=True)
@click.option(
    "--listen",
    envvar="NOTAR_SERVER_LISTEN",
    default="127.0.0.1:4443",
    show_default=True,
    help="HOST:PORT to listen on.",
)
@_database_options
@click.option(
    "--tls-cert",
    envvar="NOTAR_TLS_CERT",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM certificate (chain) to serve https; docker only talks https to a trust server.",
)
@click.option(
    "--tls-key",
    envvar="NOTAR_TLS_KEY",
    type=click.Path(dir_okay=False, exists=True),
    help="PEM private key for --tls-cert.",
)
@click.option(
    "--key-passphrase-file",
    envvar="NOTAR_SERVER_KEY_PASSPHRASE_FILE",
    type=click.Path(dir_okay=False, exists=True),
    help="File holding the passphrase that encrypts server-held keys at rest "
    "(or set NOTAR_SERVER_KEY_PASSPHRASE).",
)
@click.option(
    "--dev",
    is_flag=True,
    envvar="NOTAR_SERVER_DEV",
    help="Development mode: generate a key passphrase into --data-dir when none is given.",
)
@click.option(
    "--key-algorithm",
    envvar="NOTAR_SERVER_KEY_ALGORITHM",
    type=click.Choice(["ecdsa", "ed25519"]),
    default="ecdsa",
    show_default=True,
    help="Algorithm of new timestamp/snapshot keys.",
)
@click.option(
    "--timestamp-key",
    envvar="NOTAR_SERVER_TIMESTAMP_KEY",
    metavar="awskms:///KEY",
    help="Sign every repository's timestamps with this AWS KMS key (ECC_NIST_P256) instead of a key in the "
    "database: a copy of the database and its passphrase cannot mint timestamps. One kms:Sign per publish "
    "and per expired timestamp re-signed; existing repositories move to it when their timestamp key is "
    "rotated (notar key rotate IMAGE timestamp -r).",
)
@click.option(
    "--snapshot-key",
    envvar="NOTAR_SERVER_SNAPSHOT_KEY",
    metavar="awskms:///KEY",
    help="Likewise for server-held snapshot keys (docker's default): one more kms:Sign per publish.",
)
@click.option(
    "--auth-realm",
    envvar="NOTAR_AUTH_REALM",
    help="Token auth: URL of the token issuer. With token auth on, every endpoint but "
    "/_notary_server/health needs a token; /metrics, /v2/ and /v2/_trust/changefeed need the "
    "registry:catalog:* scope.",
)
@click.option("--auth-service", envvar="NOTAR_AUTH_SERVICE", help="Token auth: expected audience.")
@click.option("--auth-issuer", envvar="NOTAR_AUTH_ISSUER", help="Token auth: expected issuer.")
@click.option(
    "--auth-root-bundle",
    envvar="NOTAR_AUTH_ROOT_BUNDLE",
    type=click.Path(dir_okay=False, exists=True),
    help="Token auth: PEM certificates that token signing keys must chain to.",
)
@click.option(
    "--max-upload-bytes",
    envvar="NOTAR_MAX_UPLOAD_BYTES",
    type=click.IntRange(min=1024),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Largest accepted update body (all its files); larger is refused with 413 TOO_LARGE.",
)
@click.option(
    "--max-metadata-bytes",
    envvar="NOTAR_MAX_METADATA_BYTES",
    type=click.IntRange(min=1024, max=GO_MAX_DOWNLOAD_BYTES),
    default=MAX_METADATA_BYTES,
    show_default=True,
    help="Largest accepted root, targets, delegation or snapshot file in an update (413 TOO_LARGE, "
    f"checked before it is parsed); at most {GO_MAX_DOWNLOAD_BYTES}, the most Go notary clients download. "
    f"Uploaded timestamps are capped at {MAX_TIMESTAMP_BYTES} (Go's timestamp download limit). A file "
    "with more than one JSON value per 12 bytes is refused too (413): parsing it would cost far more than "
    "its size.",
)
@click.option(
    "--gun-prefix",
    "gun_prefixes",
    multiple=True,
    envvar="NOTAR_GUN_PREFIXES",
    help="Only accept repositories starting with this prefix (repeatable).",
)
@click.option(
    "--workers",
    envvar="NOTAR_SERVER_WORKERS",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes (they share the database and keep no state of their own).",
)
@click.option(
    "--registry",
    "registry_url",
    envvar="NOTAR_REGISTRY_URL",
    help="Registry URL (e.g. https://registry.example.com) whose tags the web UI compares with the "
    "trust data, to show unsigned and stale tags, and each tag's Notation and cosign signatures.",
)
@click.option(
    "--notation-config",
    envvar="NOTAR_SERVER_NOTATION_CONFIG",
    type=click.Path(file_okay=False, exists=True),
    help="Web UI: notation's configuration directory (trustpolicy.oci.json or trustpolicy.json, "
    "truststore/x509/...) under which Notation signatures are shown verified or not. Without it (or "
    "--trust-policy) they are shown as not verified.",
)
@click.option(
    "--trust-policy",
    envvar="NOTAR_SERVER_TRUST_POLICY",
    type=click.Path(dir_okay=False, exists=True),
    help="Web UI: a Notation trust policy file, instead of the configuration directory's.",
)
@click.option(
    "--trust-store",
    envvar="NOTAR_SERVER_TRUST_STORE",
    type=click.Path(file_okay=False, exists=True),
    help="Web UI: a Notation trust store directory (holding x509/<type>/<name>/).",
)
@click.option(
    "--cosign-key",
    "cosign_keys",
    multiple=True,
    envvar="NOTAR_SERVER_COSIGN_KEYS",
    type=click.Path(dir_okay=False, exists=True),
    help="Web UI: a cosign public key (PEM) that cosign signatures are verified with. Repeatable.",
)
@click.option("--no-migrate", is_flag=True, help="Do not migrate the database on start.")
@click.option(
    "--log-level",
    envvar="NOTAR_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_context
def server(ctx: click.Context, /, **opts: object) -> None:
    """Run the trust server (Notary v1 API; `notary` and `docker trust` work against it).

    \b
    Examples:
      notar server --dev                                   # local, SQLite, plain HTTP
      notar server --listen 0.0.0.0:4443 --tls-cert c.pem --tls-key k.pem \\
          --database-url postgresql://notar@db/notar --key-passphrase-file /run/secrets/kek
      notar server migrate --database-url postgresql://notar@db/notar
      notar server ... --timestamp-key awskms:///alias/notar-timestamp   # timestamps signed by KMS

    Prometheus metrics are at /metrics on the same listener; with token auth on (--auth-*), they need a
    bearer token with the registry:catalog:* scope.

    With --timestamp-key / --snapshot-key the server asks AWS KMS to sign (MessageType=DIGEST; region
    and credentials from the standard AWS chain, the endpoint from the URI or AWS_ENDPOINT_URL_KMS; IAM:
    kms:GetPublicKey and kms:Sign on the key). The key is checked at start; while KMS cannot sign, a
    publish is answered 503 and nothing is stored, and an expired timestamp is served as it is.
    """
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(
        level=str(opts["log_level"]).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ServerConfig(
        listen=str(opts["listen"]),
        data_dir=str(opts["data_dir"]),
        database_url=opts["database_url"] or None,  # type: ignore[arg-type]
        tls_cert=opts["tls_cert"],  # type: ignore[arg-type]
        tls_key=opts["tls_key"],  # type: ignore[arg-type]
        key_passphrase_file=opts["key_passphrase_file"],  # type: ignore[arg-type]
        dev=bool(opts["dev"]),
        key_algorithm=str(opts["key_algorithm"]),
        auth_realm=opts["auth_realm"],  # type: ignore[arg-type]
        auth_service=opts["auth_service"],  # type: ignore[arg-type]
        auth_issuer=opts["auth_issuer"],  # type: ignore[arg-type]
        auth_root_bundle=opts["auth_root_bundle"],  # type: ignore[arg-type]
        max_upload_bytes=int(opts["max_upload_bytes"]),  # type: ignore[call-overload]
        max_metadata_bytes=int(opts["max_metadata_bytes"]),  # type: ignore[call-overload]
        gun_prefixes=list(opts["gun_prefixes"]),  # type: ignore[call-overload]
        migrate=not opts["no_migrate"],
        workers=int(opts["workers"]),  # type: ignore[call-overload]
        log_level=str(opts["log_level"]),
        registry_url=opts["registry_url"] or None,  # type: ignore[arg-type]
        timestamp_key=opts["timestamp_key"] or None,  # type: ignore[arg-type]
        snapshot_key=opts["snapshot_key"] or None,  # type: ignore[arg-type]
        notation_config=opts["notation_config"] or None,  # type: ignore[arg-type]
        trust_policy=opts["trust_policy"] or None,  # type: ignore[arg-type]
        trust_store=opts["trust_store"] or None,  # type: ignore[arg-type]
        cosign_keys=list(opts["cosign_keys"]),  # type: ignore[call-overload]
    )
    from notar.web.runtime import serve  # the API with the UI; imported when the command runs

    try:
        serve(config)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e


@server.command()
@_database_options
def migrate(data_dir: str, database_url: str | None) -> None:
    """Create or upgrade the server database to the current schema (Alembic)."""
    from notar.server.storage import migrate as run_migrations

    config = ServerConfig(data_dir=data_dir, database_url=database_url or None)
    try:
        prepare_data_dir(config)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    run_migrations(config.resolved_database_url())
    click.echo("database is at the current schema", err=True)
