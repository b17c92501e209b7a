"""``notar push`` and ``notar pull``: move images between disk and a registry, signed.

Thin commands over :mod:`notar.transfer`; see there for the rules (what is validated, the push order,
the all-or-nothing pull).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from notar.cli._common import Context, trust_options
from notar.registry import InvalidReferenceError, Reference, RegistryClient, parse_reference
from notar.transfer import (
    RichProgress,
    SourceError,
    open_source,
    progress_for,
    pull_image,
    push_image,
)

__all__ = ["pull", "push"]

_MIB = 1024 * 1024


class _BadInput(click.ClickException):
    """A one-line error with exit code 2 (bad arguments or input files)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


def _fail(message: str) -> NoReturn:
    raise _BadInput(message)


def _reference(text: str) -> Reference:
    try:
        ref = parse_reference(text)
    except InvalidReferenceError as e:
        _fail(str(e))
    if ref.tag is None or ref.digest is not None:
        _fail(f"{text}: expected IMAGE:TAG (a tag, and no digest), e.g. registry.example.com/team/app:1.0")
    return ref


def _registry(ctx: Context, ref: Reference) -> RegistryClient:
    return RegistryClient(
        ref.domain, credentials=ctx.registry_credentials(), insecure_registries=ctx.insecure_registries
    )


@contextlib.contextmanager
def _progress(quiet: bool) -> Any:
    progress = progress_for(sys.stderr, quiet=quiet)
    if isinstance(progress, RichProgress):
        with progress:
            yield progress
    else:
        yield progress


@click.command()
@click.argument("src", metavar="SRC", type=click.Path(exists=False))
@click.argument("image", metavar="IMAGE:TAG")
@click.option(
    "--source-tag",
    envvar="NOTAR_SOURCE_TAG",
    help="Which image of SRC to push: its org.opencontainers.image.ref.name in index.json, or its "
    "RepoTags entry in a docker save archive. Default: TAG, or the only image in SRC.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    envvar="NOTAR_CHUNK_SIZE",
    help="Upload blobs larger than this many MiB in chunks of this size.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@trust_options
def push(ctx: Context, src: str, image: str, source_tag: str | None, chunk_size: int, quiet: bool) -> None:
    """Push SRC to the registry as IMAGE:TAG and sign it (Docker Content Trust).

    \b
    SRC is one of:
      * an OCI image layout directory (oci-layout, index.json, blobs/), as written by
        `skopeo copy ... oci:DIR`, `buildah push IMG oci:DIR` or
        `docker buildx build --output type=oci,dest=DIR,tar=false`;
      * the same layout as a tar file (`docker buildx build --output type=oci,dest=img.tar`);
      * a `docker save` archive (`docker save -o img.tar app:1.0`). Its layers are pushed as the
        uncompressed tars they are (media type ...rootfs.diff.tar), byte for byte.

    \b
    What happens, in this order:
      1. SRC is validated completely (every manifest and blob present, digests and sizes right);
      2. blobs the registry lacks are uploaded (chunked above --chunk-size);
      3. every manifest is pushed by digest (for a multi-platform index: each platform, then the index);
      4. TAG is signed in the trust server with the top manifest's digest (the index's, if any);
      5. only then is TAG set in the registry.
    If signing fails the tag is not set, so nobody can pull an unsigned TAG.

    \b
    Example:
      notar key generate alice --dir .
      notar signer add alice registry.example.com/team/app --key alice.pub
      notar push ./app-oci registry.example.com/team/app:1.0

    Progress goes to stderr (bars on a terminal, plain lines otherwise); with -o json, stdout gets
    {"image", "digest", "size", "roles", ...}. Exit codes: 0 pushed and signed, 1 registry or trust
    server failure, 2 bad arguments or a malformed SRC.
    """
    ref = _reference(image)
    try:
        with open_source(src, tag=ref.tag, source_tag=source_tag) as source, _registry(ctx, ref) as registry:
            trust = ctx.repository(ref)
            with _progress(quiet) as progress:
                result = push_image(
                    source,
                    ref,
                    registry=registry,
                    trust=trust,
                    chunk_size=chunk_size * _MIB,
                    progress=progress,
                )
    except SourceError as e:
        _fail(str(e))
    if result.initialized:
        click.echo(f"Initialized trust data for {ref.name}", err=True)
    click.echo(
        f"Pushed {result.image} ({result.digest}, {result.blobs_uploaded} blobs uploaded, "
        f"{result.blobs_existing} already there); signed in {', '.join(result.roles)}",
        err=True,
    )
    if ctx.output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(f"{ref.name}@{result.digest}")


@click.command()
@click.argument("image", metavar="IMAGE:TAG")
@click.option(
    "--output",
    "-o",
    "--dir",
    "-d",
    "directory",
    required=True,
    type=click.Path(file_okay=False),
    envvar="NOTAR_PULL_DIR",
    help="Write the image here as an OCI image layout (created; must be absent or empty).",
)
@click.option(
    "--force", "-f", is_flag=True, help="Replace DIR even if it is not empty (only once the pull succeeded)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@trust_options(format_option=("--format",))
def pull(ctx: Context, image: str, directory: str, force: bool, quiet: bool) -> None:
    """Pull IMAGE:TAG into an OCI image layout, only if TAG is validly signed.

    \b
    TAG is resolved only through verified trust data (targets/releases first, then targets, as
    `docker pull` with DOCKER_CONTENT_TRUST=1); the registry is then asked for that digest, never for
    the tag. Every manifest and blob is checked against its digest and size. The layout is written
    in a temporary directory beside DIR and renamed to DIR at the end: on any failure DIR is left
    as it was. index.json names the image TAG (org.opencontainers.image.ref.name), so
    `skopeo copy oci:DIR:TAG ...` or `notar push DIR ...` can use it.

    \b
    Example:
      notar pull registry.example.com/team/app:1.0 --output ./app-1.0

    \b
    With --format json, stdout gets {"image", "digest", "size", "role", "roles", ...}.
    Exit codes: 0 pulled; 1 "No valid trust data for TAG", registry or trust server failure;
    2 bad arguments or an unusable DIR.
    """
    ref = _reference(image)
    try:
        with _registry(ctx, ref) as registry:
            trust = ctx.repository(ref)
            with _progress(quiet) as progress:
                result = pull_image(
                    ref, Path(directory), registry=registry, trust=trust, force=force, progress=progress
                )
    except SourceError as e:
        _fail(str(e))
    click.echo(
        f"Pulled {result.image} ({result.digest}, signed in {result.role}) into {result.directory}", err=True
    )
    if ctx.output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(f"{ref.name}@{result.digest}")
