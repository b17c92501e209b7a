"""Blobs that are not plain layers, against the in-process fake registry: foreign layers are skipped on pull
as on push, and config blobs are labelled ``config`` (not ``layer``) in the progress of both."""

from __future__ import annotations

import json
from pathlib import Path

from notar.transfer import collect_image, open_source
from tests.registry.fakes import FakeRegistry
from tests.registry.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    REF_NAME,
    Blob,
    Image,
    canonical,
    make_image,
    sha256,
    write_oci_layout,
)
from tests.transfer.archives import saved_image, write_docker_archive
from tests.transfer.test_pull_destination import Recorder, pull
from tests.transfer.test_push_pull_lib import StubTrust, push

FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


def _foreign_image() -> tuple[Image, Blob]:
    base = make_image("foreign")
    foreign = Blob(FOREIGN, b"windows base layer, not distributed")
    manifest = Blob(
        OCI_MANIFEST,
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": base.config.descriptor(),
                "layers": [
                    foreign.descriptor(urls=["https://mcr.invalid/base.tar.gz"]),
                    base.layers[0].descriptor(),
                ],
            }
        ),
    )
    return Image(manifest, base.config, (base.layers[0],)), foreign


def test_foreign_layers_are_skipped_on_pull_as_on_push(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    image, foreign = _foreign_image()
    push(fake, trust, write_oci_layout(tmp_path / "src", "1.0", image))  # the foreign blob is absent
    assert foreign.digest not in fake.blobs
    recorder = Recorder()
    dest = tmp_path / "out"
    result = pull(fake, trust, dest, progress=recorder)
    assert result.skipped == [foreign.digest]  # type: ignore[attr-defined]
    assert [n for n in recorder.notes if "foreign" in n and foreign.digest in n]
    blobs = {p.name for p in (dest / "blobs" / "sha256").iterdir()}
    assert foreign.digest[7:] not in blobs and image.layers[0].digest[7:] in blobs
    index = json.loads((dest / "index.json").read_bytes())
    assert index["manifests"][0]["annotations"] == {REF_NAME: "1.0"}
    # the pulled layout pushes again (the foreign layer is optional there too)
    with open_source(dest, tag="1.0") as source:
        assert foreign.digest not in {b.digest for b in collect_image(source).blobs}


# --------------------------------------------------------------------------- progress labels


def test_docker_config_is_labelled_config(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    saved = saved_image("labels")
    recorder = Recorder()
    push(fake, trust, write_docker_archive(tmp_path / "s.tar", [saved]), progress=recorder)
    labels = dict(recorder.started)
    assert labels[saved.config_digest] == "config" and labels[sha256(saved.layers[0])] == "layer"

    pulled = Recorder()
    pull(fake, trust, tmp_path / "out", progress=pulled)
    labels = dict(pulled.started)
    assert labels[saved.config_digest] == "config" and labels[sha256(saved.layers[0])] == "layer"


def test_oci_config_label_unchanged(tmp_path: Path) -> None:
    fake = FakeRegistry()
    image = make_image("oci labels")
    recorder = Recorder()
    push(fake, StubTrust(fake), write_oci_layout(tmp_path / "src", "1.0", image), progress=recorder)
    assert dict(recorder.started) == {image.config.digest: "config", image.layers[0].digest: "layer"}
    assert image.config.media_type == OCI_CONFIG and image.layers[0].media_type == OCI_LAYER
