"""Build ``docker save`` archives and OCI layout tars for the transfer tests (deterministic, in memory)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.registry.images import Image, _layer, canonical, sha256


@dataclass(frozen=True)
class SavedImage:
    """What went into a docker save archive: the config bytes and the uncompressed layer tars."""

    config: bytes
    layers: tuple[bytes, ...]
    repo_tags: tuple[str, ...]

    @property
    def config_digest(self) -> str:
        return sha256(self.config)


def saved_image(text: str, *, repo_tags: Iterable[str] = ("app:1.0",), layers: int = 1) -> SavedImage:
    raws = tuple(_layer({f"file{i}.txt": f"{text} {i}\n".encode()})[0] for i in range(layers))
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(r) for r in raws]},
        }
    )
    return SavedImage(config, raws, tuple(repo_tags))


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tf.addfile(info, io.BytesIO(data))


def _symlink(tf: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tf.addfile(info)


def write_docker_archive(
    path: Path,
    images: Iterable[SavedImage],
    *,
    manifest: object = None,
    extra: Iterable[tuple[str, bytes]] = (),
    symlinks: Iterable[tuple[str, str]] = (),
) -> Path:
    """A ``docker save``-style tar (legacy layout: ``<id>/layer.tar``, ``<hex>.json``, manifest.json)."""
    entries = []
    with tarfile.open(path, "w") as tf:
        for image in images:
            config_name = image.config_digest.split(":")[1] + ".json"
            _add(tf, config_name, image.config)
            names = []
            for raw in image.layers:
                layer_name = sha256(raw).split(":")[1][:16] + "/layer.tar"
                _add(tf, layer_name, raw)
                names.append(layer_name)
            entries.append({"Config": config_name, "RepoTags": list(image.repo_tags), "Layers": names})
        for name, data in extra:
            _add(tf, name, data)
        for name, target in symlinks:
            _symlink(tf, name, target)
        _add(tf, "manifest.json", json.dumps(manifest if manifest is not None else entries).encode())
    return path


def tar_directory(directory: Path, path: Path) -> Path:
    """A tar of ``directory``'s content (an OCI layout tar, as buildx writes)."""
    with tarfile.open(path, "w") as tf:
        for child in sorted(directory.rglob("*")):
            if child.is_file():
                _add(tf, child.relative_to(directory).as_posix(), child.read_bytes())
    return path


def image_blobs(image: Image) -> dict[str, bytes]:
    return {b.digest: b.data for b in (image.manifest, *image.blobs)}
