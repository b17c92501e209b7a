"""``notar gateway``: run the trust-enforcing registry gateway."""

from __future__ import annotations

import logging
from collections.abc import Callable

import click

from notar.gateway import ConfigError, GatewayConfig, serve
from notar.gateway.runtime import MAX_CACHE_TTL, MAX_TRUST_TIMEOUT, seconds_problem

__all__ = ["gateway"]


def _seconds(*, maximum: float, zero_ok: bool) -> Callable[[click.Context, click.Parameter, float], float]:
    """A callback checking a float option: finite and in range (``click.FloatRange`` lets ``nan`` through)."""

    def check(ctx: click.Context, param: click.Parameter, value: float) -> float:
        problem = seconds_problem(value, maximum=maximum, zero_ok=zero_ok)
        if problem:
            raise click.BadParameter(problem, ctx, param)
        return value

    return check


@click.command()
@click.option(
    "--upstream", envvar="NOTAR_GATEWAY_UPSTREAM", required=True, help="URL of the registry behind."
)
@click.option(
    "--trust-server",
    envvar=["NOTAR_GATEWAY_TRUST_SERVER", "DOCKER_CONTENT_TRUST_SERVER"],
    required=True,
    help="URL of the trust server (notar server or notary-server).",
)
@click.option(
    "--listen", envvar="NOTAR_GATEWAY_LISTEN", default="127.0.0.1:5001", show_default=True, help="HOST:PORT."
)
@click.option(
    "--config",
    "config_file",
    envvar="NOTAR_GATEWAY_CONFIG",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML/JSON policy: repositories (globs), exclude, allow_index_children, formats (above). "
    "Default: trust enforced for every repository, v1 signatures required.",
)
@click.option(
    "--notation-config",
    envvar="NOTAR_GATEWAY_NOTATION_CONFIG",
    type=click.Path(file_okay=False, exists=True),
    help="Notation's configuration directory: trustpolicy.oci.json (else trustpolicy.json) and "
    "truststore/x509/{ca,signingAuthority,tsa}/<name>/. Default: $XDG_CONFIG_HOME/notation, else "
    "~/.config/notation (read when a formats rule needs notation).",
)
@click.option(
    "--trust-policy",
    envvar="NOTAR_GATEWAY_TRUST_POLICY",
    type=click.Path(dir_okay=False, exists=True),
    help="Notation trust policy file, instead of the configuration directory's.",
)
@click.option(
    "--trust-store",
    envvar="NOTAR_GATEWAY_TRUST_STORE",
    type=click.Path(file_okay=False, exists=True),
    help="Notation trust store directory (holding x509/<type>/<name>/), instead of the configuration "
    "directory's truststore.",
)
@click.option(
    "--cosign-key",
    "cosign_keys",
    multiple=True,
    envvar="NOTAR_GATEWAY_COSIGN_KEYS",
    type=click.Path(dir_okay=False, exists=True),
    help="cosign public key (cosign.pub PEM) that verifies cosign signatures, for every formats rule "
    "without cosign_keys of its own. Repeatable: a signature by any of the keys is enough.",
)
@click.option(
    "--gun-prefix",
    envvar="NOTAR_GATEWAY_GUN_PREFIX",
    help="Registry part of the GUNs (what clients type before /repo). Default: the --listen address.",
)
@click.option(
    "--tls-ca",
    envvar="NOTAR_TLS_CA",
    type=click.Path(dir_okay=False, exists=True),
    help="CA bundle for the trust server (and an https upstream).",
)
@click.option(
    "--tls-cert",
    envvar="NOTAR_GATEWAY_TLS_CERT",
    type=click.Path(dir_okay=False, exists=True),
    help="Serve https.",
)
@click.option(
    "--tls-key",
    envvar="NOTAR_GATEWAY_TLS_KEY",
    type=click.Path(dir_okay=False, exists=True),
    help="Key of --tls-cert.",
)
@click.option(
    "--trust-dir",
    envvar="NOTAR_GATEWAY_TRUST_DIR",
    type=click.Path(file_okay=False),
    help="Where verified trust data is cached (keeps trust-on-first-use roots and rollback protection across "
    "restarts). Default: a temporary directory.",
)
@click.option(
    "--cache-ttl",
    envvar="NOTAR_GATEWAY_CACHE_TTL",
    type=float,
    callback=_seconds(maximum=MAX_CACHE_TTL, zero_ok=True),
    default=5.0,
    show_default=True,
    help="Seconds a verified answer is reused before the trust data is checked again (0 to 3600).",
)
@click.option(
    "--trust-timeout",
    envvar="NOTAR_GATEWAY_TRUST_TIMEOUT",
    type=float,
    callback=_seconds(maximum=MAX_TRUST_TIMEOUT, zero_ok=False),
    default=10.0,
    show_default=True,
    help="Deadline in seconds for the whole trust check of a repository (all its requests to the trust "
    "server together); a pull or push that gets no verified answer in time fails closed (503).",
)
@click.option(
    "--shutdown-timeout",
    envvar="NOTAR_GATEWAY_SHUTDOWN_TIMEOUT",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Seconds running requests (downloads) get to finish after SIGTERM before they are cut off.",
)
@click.option(
    "--log-level",
    envvar="NOTAR_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def gateway(
    upstream: str,
    trust_server: str,
    listen: str,
    config_file: str | None,
    gun_prefix: str | None,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    trust_dir: str | None,
    cache_ttl: float,
    trust_timeout: float,
    shutdown_timeout: int,
    log_level: str,
    notation_config: str | None,
    trust_policy: str | None,
    trust_store: str | None,
    cosign_keys: tuple[str, ...],
) -> None:
    """Run a registry gateway that serves only signed content (Docker Content Trust, Notation, cosign).

    \b
    Pulls by tag get a signed digest; pushes of unsigned tags are refused; blobs are streamed.
    Exit codes: 0 stopped, 1 error, 2 usage.

    \b
    Which signatures a pull needs is set per repository in the --config file (first matching
    pattern wins; default v1):
      formats:
        "prod/*": [v1, notation]      # every format listed
        "team/*": any                 # one of v1, notation, cosign (those configured)
        "oss/*": cosign
        "ml/*": {any: [notation, cosign], cosign_keys: [ml.pub]}

    \b
    v1        the tag's signed digest, from --trust-server (moving the tag in the
              registry changes nothing)
    notation  the registry's digest for the tag, with a Notation signature valid
              under the trust policy (--notation-config, or --trust-policy and
              --trust-store); statements match <gun prefix>/<repository>
    cosign    the registry's digest for the tag, with a cosign signature by a
              --cosign-key (or the rule's cosign_keys)
    With v1 and "all", the v1 signed digest must carry the other signatures too; with "any", the
    registry's digest is tried first and the v1 signed digest is the fallback. Verdicts are cached
    for --cache-ttl seconds; a check that fails or exceeds --trust-timeout refuses the pull.

    \b
    Signatures are served and can be pushed through the gateway: sha256-<hex> tags (referrers
    indexes), sha256-<hex>.sig tags (cosign), signature manifests by digest, /referrers/. A push to
    such a tag must keep every entry (layer) already there and add only signatures of that digest,
    and referenced signature manifests cannot be deleted: no client removes another signer's
    signatures.

    \b
    Example:
      notar gateway --upstream http://127.0.0.1:5000 --trust-server https://notary:4443 \\
          --listen 127.0.0.1:5001 --config gateway.yaml \\
          --notation-config /etc/notation --cosign-key /etc/notar/cosign.pub
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = GatewayConfig(
        upstream=upstream,
        trust_server=trust_server,
        listen=listen,
        config_file=config_file,
        gun_prefix=gun_prefix,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        trust_dir=trust_dir,
        cache_ttl=cache_ttl,
        trust_timeout=trust_timeout,
        log_level=log_level,
        shutdown_timeout=shutdown_timeout,
        notation_config=notation_config,
        trust_policy=trust_policy,
        trust_store=trust_store,
        cosign_keys=tuple(cosign_keys),
    )
    try:
        serve(config)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
