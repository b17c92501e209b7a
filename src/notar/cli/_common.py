"""What the trust commands share: options, configuration resolution (docker's rules), output."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import click

from notar.registry.errors import InvalidReferenceError
from notar.registry.reference import Reference, parse_reference

if TYPE_CHECKING:
    from notar.client import Repository, TrustServer, Updater
    from notar.keystore import FileKeyStore
    from notar.registry import DockerConfigCredentials
    from notar.tuf import TrustPinning

__all__ = ["BadInput", "Context", "check_name", "docker_config_dir", "trust_options"]

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """A one-line ``notar: error: ...`` with exit code 2 (bad arguments or input files)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


def check_name(name: str) -> str:
    """A signer name as docker accepts it (``releases`` is reserved); else a usage error naming NAME."""
    if not _NAME.match(name):
        raise click.BadParameter(
            f"{name!r}: signer names are lower-case letters, digits, '-' and '_', starting with a letter or digit",
            param_hint="NAME",
        )
    if name == "releases":
        raise click.BadParameter("'releases' is reserved", param_hint="NAME")
    return name


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


@dataclass
class Context:
    trust_dir: Path
    server: str | None
    tls_ca: str | None
    insecure_registries: tuple[str, ...]
    output: str
    root_key_ids: tuple[str, ...] = ()

    def keystore(self) -> FileKeyStore:
        from notar.keystore import ChainPassphrases, EnvPassphrases, FileKeyStore, PromptPassphrases

        sources: list[Any] = [EnvPassphrases("notar")]
        if sys.stdin.isatty():
            sources.append(PromptPassphrases())
        return FileKeyStore(self.trust_dir, ChainPassphrases(*sources))

    def server_url(self, ref: Reference) -> str:
        """docker's rule: $DOCKER_CONTENT_TRUST_SERVER / --server, else notary.docker.io for Hub, else the registry."""
        if self.server:
            if not self.server.startswith(("https://", "http://")):
                raise click.UsageError(f"--server must be an http(s) URL, got {self.server!r}")
            return self.server.rstrip("/")
        if ref.domain == "docker.io":
            return "https://notary.docker.io"
        return f"https://{ref.domain}"

    def verify_for(self, url: str) -> Any:
        """The CA for the trust server: --tls-ca / NOTAR_TLS_CA, else docker's tls/<host:port>/ca.crt."""
        if self.tls_ca:
            return self.tls_ca
        hostport = url.split("://", 1)[-1].split("/", 1)[0]
        candidate = docker_config_dir() / "tls" / hostport / "ca.crt"
        return str(candidate) if candidate.is_file() else True

    def trust_server(self, ref: Reference) -> TrustServer:
        from notar.client.remote import TrustServer

        url = self.server_url(ref)
        return TrustServer(url, verify=self.verify_for(url))

    def repository(self, ref: Reference) -> Repository:
        """The repository of *ref* for commands that write (its keys are the trust directory's)."""
        from notar.client.cache import TrustCache
        from notar.client.repository import Repository

        return Repository(
            ref.name,
            server=self.trust_server(ref),
            cache=TrustCache(self.trust_dir),
            keys=self.keystore(),
            pinning=self._pinning(ref),
        )

    def updater(self, ref: Reference) -> Updater:
        """What reads verified trust data of *ref* (``inspect``, ``resolve``): no keys needed."""
        from notar.client.cache import TrustCache
        from notar.client.updater import Updater

        return Updater(
            ref.name, self.trust_server(ref), TrustCache(self.trust_dir), pinning=self._pinning(ref)
        )

    def _pinning(self, ref: Reference) -> TrustPinning | None:
        from notar.tuf import TrustPinning

        return TrustPinning(certs={ref.name: list(self.root_key_ids)}) if self.root_key_ids else None

    def registry_credentials(self) -> DockerConfigCredentials:
        from notar.registry.credentials import DockerConfigCredentials

        return DockerConfigCredentials()

    def parse(self, text: str, *, need_tag: bool = False) -> Reference:
        try:
            ref = parse_reference(text)
        except InvalidReferenceError as e:
            raise click.UsageError(str(e)) from e
        if need_tag and not ref.tag:
            raise click.UsageError(f"{text}: a tag is required (IMAGE:TAG)")
        return ref


def _trust_options(fn: F, format_option: tuple[str, ...]) -> F:
    """--trust-dir, --server, --tls-ca, --insecure-registry, --root-key-id, --output on a command."""

    @click.option(
        "--trust-dir",
        envvar="NOTAR_TRUST_DIR",
        type=click.Path(file_okay=False),
        help="Trust directory (keys and cached trust data). Default: $DOCKER_CONFIG/trust or ~/.docker/trust.",
    )
    @click.option(
        "--server",
        envvar=["NOTAR_TRUST_SERVER", "DOCKER_CONTENT_TRUST_SERVER"],
        help="Trust server URL. Default: https://<registry host> (docker's rule).",
    )
    @click.option(
        "--tls-ca",
        envvar="NOTAR_TLS_CA",
        type=click.Path(dir_okay=False, exists=True),
        help="CA bundle for the trust server. Default: $DOCKER_CONFIG/tls/<host:port>/ca.crt, else the system CAs.",
    )
    @click.option(
        "--insecure-registry",
        "insecure_registries",
        multiple=True,
        envvar="NOTAR_INSECURE_REGISTRIES",
        help="Registry reachable over plain HTTP (loopback registries always are). Repeatable.",
    )
    @click.option(
        "--root-key-id",
        "root_key_ids",
        multiple=True,
        envvar="NOTAR_ROOT_KEY_ID",
        help="Trust pinning: on first use, accept the repository only if its root is signed by this root "
        "key ID (as `notar inspect` shows under Root). Repeatable.",
    )
    @click.option(
        *format_option,
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format on stdout.",
    )
    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        trust_dir: str | None,
        server: str | None,
        tls_ca: str | None,
        insecure_registries: tuple[str, ...],
        output: str,
        root_key_ids: tuple[str, ...],
        **kwargs: Any,
    ) -> Any:
        ctx = Context(
            trust_dir=Path(trust_dir) if trust_dir else docker_config_dir() / "trust",
            server=server,
            tls_ca=tls_ca,
            insecure_registries=insecure_registries,
            output=output,
            root_key_ids=root_key_ids,
        )
        return fn(ctx, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@overload
def trust_options(fn: F) -> F: ...
@overload
def trust_options(*, format_option: tuple[str, ...]) -> Callable[[F], F]: ...
def trust_options(fn: F | None = None, *, format_option: tuple[str, ...] = ("--output", "-o")) -> Any:
    """Decorator adding the shared trust options; ``@trust_options(format_option=("--format",))`` renames
    the output-format flag for a command whose ``--output`` means something else (``notar pull``)."""
    if fn is None:
        return lambda f: _trust_options(f, format_option)
    return _trust_options(fn, format_option)
