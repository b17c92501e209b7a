"""``notar push`` and ``notar pull``: move images between disk and a registry, signed.

Thin commands over :mod:`notar.transfer`; see there for the rules (what is validated, the push order,
the all-or-nothing pull).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
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


class _Stopped(click.ClickException):
    """Ended by SIGTERM: one line, exit code 143 (128 + SIGTERM) like a process killed by it."""

    exit_code = 128 + signal.SIGTERM

    def show(self, file: Any = None) -> None:
        click.echo(f"notar: error: {self.format_message()}", err=True)


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM; a BaseException, like KeyboardInterrupt, so that
    ``except Exception`` does not swallow it and ``finally`` blocks (temporary files) run."""


@contextlib.contextmanager
def _stop_on_sigterm(what: str) -> Iterator[None]:
    """Turn SIGTERM into an exception for the duration, so the cleanup that Ctrl-C gets runs too.

    A second SIGTERM while cleaning up is ignored (an interrupted cleanup would leave files behind).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        raise _Stopped(f"terminated (SIGTERM); {what}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


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
@click.option("--quiet", "-q", is_flag=True, help="Nothing on stderr but errors (no progress, no summary).")
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
      1. SRC's structure is checked before anything is uploaded: every manifest is read and
         verified against its digest, every blob must be present with the right size (and the
         layers of a docker save archive must match the diff_ids of its config);
      2. blobs the registry lacks are uploaded (chunked above --chunk-size); each is checked
         against its digest while it is read for the upload (blobs are not read twice), and a
         mismatch stops the push before that blob is committed and before anything is signed;
      3. every manifest is pushed by digest (for a multi-platform index: each platform, then the index);
      4. TAG is signed in the trust server with the top manifest's digest (the index's, if any);
      5. only then is TAG set in the registry.
    If signing fails the tag is not set, so nobody can pull an unsigned TAG.

    \b
    Example:
      notar key generate alice --dir .
      notar signer add alice registry.example.com/team/app --key alice.pub
      notar push ./app-oci registry.example.com/team/app:1.0

    Progress and a summary go to stderr (bars on a terminal, plain lines otherwise; nothing with
    -q); stdout gets IMAGE@DIGEST, or with -o json {"image", "digest", "size", "roles", ...}.
    Exit codes: 0 pushed and signed, 1 registry or trust server failure, 2 bad arguments or a
    malformed SRC, 143 stopped by SIGTERM (push again to complete).
    """
    ref = _reference(image)
    try:
        with (
            _stop_on_sigterm("the push is incomplete; run it again (uploaded blobs are reused)"),
            open_source(src, tag=ref.tag, source_tag=source_tag) as source,
            _registry(ctx, ref) as registry,
        ):
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
    if result.initialized and not quiet:
        click.echo(f"Initialized trust data for {ref.name}", err=True)
    if not quiet:
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
@click.option(
    "--quiet", "-q", is_flag=True, help="Nothing on stderr but errors (no progress, notes or summary)."
)
@trust_options(format_option=("--format",))
def pull(ctx: Context, image: str, directory: str, force: bool, quiet: bool) -> None:
    """Pull IMAGE:TAG into an OCI image layout, only if TAG is validly signed.

    \b
    TAG is resolved only through verified trust data (targets/releases first, then targets, as
    `docker pull` with DOCKER_CONTENT_TRUST=1); the registry is then asked for that digest, never for
    the tag. Every manifest and blob is checked against its digest and size. The layout is written
    in a temporary directory (beside DIR, or inside it if DIR is an existing empty directory) and
    moved into DIR at the end, index.json last: on any failure, or if something else is written
    into DIR meanwhile, DIR is left as it was. DIR keeps its mode and owner if it exists; a new DIR
    gets the usual mode (0777 minus the umask).

    \b
    index.json names the image TAG (org.opencontainers.image.ref.name), so `notar push DIR ...`
    can use it, and `skopeo copy oci:DIR:TAG ...` for images with OCI media types. For images
    with Docker media types (e.g. pushed from a docker save archive) skopeo (1.9) ignores the
    index.json entry when given a tag ("no descriptor found for reference"): use
    `skopeo copy oci:DIR ...` without the tag (the layout holds this one image). The signed
    manifest is stored as it is, so its media types cannot be changed.

    \b
    Foreign / non-distributable layers (Windows base layers) whose manifest entries carry URLs
    are not downloaded (a note says which); as with docker, whoever runs the image fetches them
    from those URLs. The layout then lacks those blobs.

    \b
    Example:
      notar pull registry.example.com/team/app:1.0 --output ./app-1.0

    \b
    Progress, notes and a summary go to stderr (nothing with -q); stdout gets IMAGE@DIGEST, or
    with --format json {"image", "digest", "size", "role", "roles", ...}.
    Exit codes: 0 pulled; 1 "No valid trust data for TAG", registry or trust server failure;
    2 bad arguments or an unusable DIR; 143 stopped by SIGTERM (DIR left as it was).
    """
    ref = _reference(image)
    try:
        with _stop_on_sigterm(f"{directory} was left as it was"), _registry(ctx, ref) as registry:
            trust = ctx.repository(ref)
            with _progress(quiet) as progress:
                result = pull_image(
                    ref, Path(directory), registry=registry, trust=trust, force=force, progress=progress
                )
    except SourceError as e:
        _fail(str(e))
    if not quiet:
        click.echo(
            f"Pulled {result.image} ({result.digest}, signed in {result.role}) into {result.directory}",
            err=True,
        )
    if ctx.output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(f"{ref.name}@{result.digest}")
