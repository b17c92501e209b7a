"""Where a pull writes, against the in-process fake registry: into a new directory (mkdir's mode), an empty
one (filled, its mode kept), ``.``; never over files that appear in DIR while it runs; unusable parents
are one-line errors; SIGTERM leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from notar.cli.images import _stop_on_sigterm
from notar.transfer import DestinationError, pull_image
from tests.registry.fakes import FakeRegistry
from tests.registry.images import Image, make_image, write_oci_layout
from tests.transfer.test_push_pull_lib import REF, StubTrust, as_repo, push


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


# --------------------------------------------------------------------------- files and modes


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


# --------------------------------------------------------------------------- SIGTERM


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
