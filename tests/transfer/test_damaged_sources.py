"""What a push reads, against the in-process fake registry: damaged or random archives and layouts are
one-line LayoutErrors (also when the damage shows only while uploading); gzipped layers of a docker archive
are checked against their diff_ids before anything is signed; plain layers stay tar."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from notar.transfer import (
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    BlobCorruptError,
    LayoutError,
    collect_image,
    open_source,
    push_image,
)
from tests.registry.fakes import FakeRegistry
from tests.registry.images import canonical, make_image, sha256, write_oci_layout
from tests.transfer.archives import SavedImage, saved_image, write_docker_archive
from tests.transfer.test_push_pull_lib import REF, StubTrust, as_repo, push


def test_truncated_gzip_archive_is_a_one_line_layout_error(tmp_path: Path) -> None:
    archive = write_docker_archive(tmp_path / "s.tar", [saved_image("gz", layers=2)])
    data = gzip.compress(archive.read_bytes())
    (tmp_path / "trunc.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(LayoutError) as info:
        open_source(tmp_path / "trunc.tar.gz", tag="1.0")
    assert "\n" not in str(info.value) and "trunc.tar.gz" in str(info.value)


def test_damaged_compressed_member_while_uploading_is_a_layout_error(tmp_path: Path) -> None:
    """An OCI layout tar.gz that is cut short after it was opened: blobs are read only when they are
    uploaded, so the damage shows up then, as a one-line LayoutError (not EOFError / "Aborted.")."""
    fake = FakeRegistry()
    trust = StubTrust(fake)
    image = make_image("gz oci")
    layout = write_oci_layout(tmp_path / "oci", "1.0", image)
    archive = tmp_path / "oci.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for child in sorted(layout.rglob("*")):
            if child.is_file():
                tf.add(child, child.relative_to(layout).as_posix())
    data = archive.read_bytes()
    with open_source(archive, tag="1.0") as source, fake.client() as registry:
        with archive.open("r+b") as f:
            f.truncate(len(data) // 2)
        with pytest.raises(LayoutError) as info:
            push_image(source, REF, registry=registry, trust=as_repo(trust))
    assert "\n" not in str(info.value) and "oci.tar.gz" in str(info.value)
    assert trust.signed == {}


@pytest.mark.parametrize("content", [b"", os.urandom(3000), b"\x1f\x8b" + os.urandom(500)])
def test_random_or_empty_src_is_one_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "junk").write_bytes(content)
    with pytest.raises(LayoutError) as info:
        open_source(tmp_path / "junk")
    assert "\n" not in str(info.value), str(info.value)


def _gzipped_saved(text: str, *, lie: bool = False) -> tuple[SavedImage, bytes]:
    plain = saved_image(text)
    raw = plain.layers[0]
    zipped = gzip.compress(raw, mtime=0)
    diff_id = sha256(raw if not lie else raw + b"\0" * 512)
    config = canonical(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    )
    return SavedImage(config, (zipped,), ("app:1.0",)), raw


def test_gzipped_layer_diff_id_is_checked(tmp_path: Path) -> None:
    good, _ = _gzipped_saved("good")
    with open_source(write_docker_archive(tmp_path / "good.tar", [good]), tag="1.0") as source:
        content = collect_image(source)
    assert [b.media_type for b in content.blobs if b.digest not in content.configs] == [
        MEDIA_TYPE_DOCKER_LAYER_GZIP
    ]

    bad, _ = _gzipped_saved("bad", lie=True)
    with pytest.raises(BlobCorruptError, match="decompresses to"):
        open_source(write_docker_archive(tmp_path / "bad.tar", [bad]), tag="1.0")

    # starts like gzip but is not: refused too (it matches neither way)
    fake_gz = SavedImage(
        canonical({"rootfs": {"type": "layers", "diff_ids": [sha256(b"x")]}}),
        (b"\x1f\x8b" + b"not gzip at all",),
        ("app:1.0",),
    )
    with pytest.raises(BlobCorruptError):
        open_source(write_docker_archive(tmp_path / "fake.tar", [fake_gz]), tag="1.0")


def test_bad_gzipped_layer_is_refused_before_signing(tmp_path: Path) -> None:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    bad, _ = _gzipped_saved("bad", lie=True)
    with pytest.raises(BlobCorruptError):
        push(fake, trust, write_docker_archive(tmp_path / "bad.tar", [bad]))
    assert trust.signed == {} and not fake.manifests and not fake.blobs


def test_plain_layer_still_pushed_as_tar(tmp_path: Path) -> None:
    with open_source(write_docker_archive(tmp_path / "p.tar", [saved_image("plain")]), tag="1.0") as source:
        content = collect_image(source)
    assert [b.media_type for b in content.blobs if b.digest not in content.configs] == [
        MEDIA_TYPE_DOCKER_LAYER
    ]
