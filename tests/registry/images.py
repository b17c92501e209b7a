"""Tiny deterministic container images for the registry tests, and the skopeo peer that moves them.

:func:`make_image` builds one image (a gzip'd tar layer holding one file, a config, a manifest) in
memory, byte for byte reproducible; :func:`make_index` bundles several into an image index (a
multi-platform image). :func:`write_oci_layout` writes them as an OCI image layout that
``skopeo copy oci:DIR:TAG docker://...`` can push. :class:`Skopeo` runs the real skopeo with an
isolated HOME and an accept-anything policy.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shlex
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import child_env

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Image:
    """One single-platform image: ``manifest`` plus the blobs it references."""

    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index:
    """A multi-platform image: an image index over ``images``."""

    manifest: Blob
    images: tuple[Image, ...]


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(uncompressed tar, gzip of it), both reproducible."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    gz_buf = io.BytesIO()
    with gzip.GzipFile(fileobj=gz_buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(tar_buf.getvalue())
    return tar_buf.getvalue(), gz_buf.getvalue()


def make_image(text: str = "hello from notar\n", *, arch: str = "amd64", docker: bool = False) -> Image:
    """A one-layer image whose layer holds ``/hello.txt`` = ``text`` (OCI, or Docker schema 2)."""
    raw, gz = _layer({"hello.txt": text.encode()})
    layer = Blob(DOCKER_LAYER if docker else OCI_LAYER, gz)
    config = Blob(
        DOCKER_CONFIG if docker else OCI_CONFIG,
        canonical(
            {
                "architecture": arch,
                "os": "linux",
                "created": "1970-01-01T00:00:00Z",
                "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
                "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]},
                "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/registry/images.py"}],
            }
        ),
    )
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = Blob(
        media_type,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": media_type,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }
        ),
    )
    return Image(manifest, config, (layer,))


def make_index(images: Sequence[Image]) -> Index:
    entries = []
    for image in images:
        arch = json.loads(image.config.data)["architecture"]
        entries.append(image.manifest.descriptor(platform={"architecture": arch, "os": "linux"}))
    manifest = Blob(OCI_INDEX, canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    return Index(manifest, tuple(images))


def write_oci_layout(directory: Path, tag: str, content: Image | Index) -> Path:
    """Write ``content`` as an OCI image layout in ``directory``, tagged ``tag`` in index.json."""
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    images = content.images if isinstance(content, Index) else (content,)
    every = [content.manifest, *(b for image in images for b in (image.manifest, *image.blobs))]
    for blob in every:
        (blobs_dir / blob.digest.split(":", 1)[1]).write_bytes(blob.data)
    top = content.manifest.descriptor(annotations={REF_NAME: tag})
    (directory / "index.json").write_bytes(canonical({"schemaVersion": 2, "manifests": [top]}))
    (directory / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    return directory


class Skopeo:
    """The real ``skopeo`` with its own HOME, an accept-anything policy and no TLS verification."""

    def __init__(self, workdir: Path, *, timeout: float = 120.0) -> None:
        self.home = workdir / "skopeo-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.timeout = timeout

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        argv = ["skopeo", "--policy", str(self.policy), *args]
        env = child_env(home=self.home, XDG_RUNTIME_DIR=str(self.home / "run"))
        result = subprocess.run(
            argv, capture_output=True, env=env, timeout=self.timeout, check=False, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            raise AssertionError(
                f"skopeo failed (rc={result.returncode})\n$ {shlex.join(argv)}\n"
                f"--- stdout ---\n{result.stdout.decode(errors='replace')}\n"
                f"--- stderr ---\n{result.stderr.decode(errors='replace')}"
            )
        return result

    def push_layout(self, layout: Path, tag: str, dest: str, *, all_images: bool = False) -> None:
        """``skopeo copy oci:LAYOUT:TAG docker://DEST`` (``--all`` for an index)."""
        extra = ["--all"] if all_images else []
        self.run("copy", *extra, "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{dest}")

    def inspect_raw(self, ref: str) -> bytes:
        return self.run("inspect", "--tls-verify=false", "--raw", f"docker://{ref}").stdout

    def pull_dir(self, ref: str, directory: Path) -> Path:
        """``skopeo copy docker://REF dir:DIRECTORY``: manifest.json and blobs named by hex, unchanged."""
        self.run("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{directory}")
        return directory
