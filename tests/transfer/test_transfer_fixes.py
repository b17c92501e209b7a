"""Regressions from the push/pull red-team review, against the in-process fake registry: the pull's
destination handling (files appearing in DIR, ``.``, modes, unusable parents, SIGTERM), damaged and
lying archives, foreign layers, progress labels."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from notar.cli.images import _stop_on_sigterm
from notar.transfer import (
    MEDIA_TYPE_DOCKER_LAYER,
    MEDIA_TYPE_DOCKER_LAYER_GZIP,
    BlobCorruptError,
    DestinationError,
    LayoutError,
    collect_image,
    open_source,
    pull_image,
    push_image,
)
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
from tests.transfer.archives import SavedImage, saved_image, write_docker_archive
from tests.transfer.test_push_pull_lib import REF, StubTrust, as_repo, push

FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


class Recorder:
    """A Progress that records what it is told and can run a hook when a blob starts."""

    def __init__(self, on_start: Callable[[str], None] | None = None) -> None:
        self.started: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.on_start = on_start

    def start(self, key: str, size: int, label: str) -> None:
        self.started.append((key, label))
        if self.on_start is not None:
            self.on_start(key)

    def advance(self, key: str, n: int) -> None:
        pass

    def finish(self, key: str, status: str) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


@pytest.fixture
def pushed(tmp_path: Path) -> Iterator[tuple[FakeRegistry, StubTrust, Image]]:
    fake = FakeRegistry()
    trust = StubTrust(fake)
    image = make_image("fixes")
    push(fake, trust, write_oci_layout(tmp_path / "src", "1.0", image))
    yield fake, trust, image


def pull(fake: FakeRegistry, trust: StubTrust, dest: Path | str, **kwargs: object) -> object:
    with fake.client() as registry:
        return pull_image(REF, dest, registry=registry, trust=as_repo(trust), **kwargs)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".partial", ".old")))


# --------------------------------------------------------------------------- 1, 2: the destination


def test_files_written_into_an_empty_dir_during_the_pull_are_kept(
    pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path
) -> None:
    fake, trust, _ = pushed
    dest = tmp_path / "out"
    dest.mkdir()

    def write_mine(key: str) -> None:
        (dest / "mine.txt").write_text("precious")

    with pytest.raises(DestinationError, match="no longer empty"):
        pull(fake, trust, dest, progress=Recorder(write_mine))
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
    assert (dest / "mine.txt").read_text() == "precious"
    assert leftovers(tmp_path) == [] and leftovers(dest) == []


def test_a_dir_created_non_empty_during_the_pull_is_kept(
    pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path
) -> None:
    fake, trust, _ = pushed
    dest = tmp_path / "out"

    def create_it(key: str) -> None:
        dest.mkdir(exist_ok=True)
        (dest / "mine.txt").write_text("precious")

    with pytest.raises(DestinationError, match="no longer empty"):
        pull(fake, trust, dest, progress=Recorder(create_it))
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]
    assert leftovers(tmp_path) == []


def test_an_existing_empty_dir_is_filled_and_keeps_its_mode(
    pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path
) -> None:
    fake, trust, image = pushed
    dest = tmp_path / "out"
    dest.mkdir()
    dest.chmod(0o750)
    inode = dest.stat().st_ino
    pull(fake, trust, dest)
    assert dest.stat().st_ino == inode and stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert sorted(p.name for p in dest.iterdir()) == ["blobs", "index.json", "oci-layout"]
    assert (dest / "blobs" / "sha256" / image.layers[0].digest[7:]).read_bytes() == image.layers[0].data
    assert leftovers(tmp_path) == []


def test_dot_as_the_destination(
    pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, trust, image = pushed
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    pull(fake, trust, ".")
    assert json.loads((cwd / "index.json").read_bytes())["manifests"][0]["digest"] == image.manifest.digest
    # and --force over a non-empty "." replaces its content (resolved first: no rename of ".")
    (cwd / "extra").write_text("x")
    pull(fake, trust, ".", force=True)
    assert not (cwd / "extra").exists() and (cwd / "index.json").exists()
    assert leftovers(tmp_path) == [] and leftovers(cwd) == []


def test_a_new_dir_gets_mkdirs_mode(pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path) -> None:
    fake, trust, _ = pushed
    old = os.umask(0o027)
    try:
        pull(fake, trust, tmp_path / "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o750


def test_an_unusable_parent_is_a_destination_error(
    pushed: tuple[FakeRegistry, StubTrust, Image],
) -> None:
    fake, trust, _ = pushed
    with pytest.raises(DestinationError) as info:
        pull(fake, trust, Path("/proc/notar-pull-test"))
    assert "\n" not in str(info.value) and "/proc/notar-pull-test" in str(info.value)


# --------------------------------------------------------------------------- 3: SIGTERM


def test_sigterm_during_a_pull_cleans_up(
    pushed: tuple[FakeRegistry, StubTrust, Image], tmp_path: Path
) -> None:
    fake, trust, _ = pushed
    dest = tmp_path / "out"
    seen_partial: list[str] = []

    def terminate(key: str) -> None:
        seen_partial.extend(leftovers(tmp_path))
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(click.ClickException) as info, _stop_on_sigterm("DIR was left as it was"):
        pull(fake, trust, dest, progress=Recorder(terminate))
    assert info.value.exit_code == 143 and "SIGTERM" in info.value.format_message()
    assert seen_partial and leftovers(tmp_path) == [] and not dest.exists()
    assert signal.getsignal(signal.SIGTERM) == before


# --------------------------------------------------------------------------- 4, 5: archives


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


# --------------------------------------------------------------------------- 6: foreign layers


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


# --------------------------------------------------------------------------- 9: labels


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
