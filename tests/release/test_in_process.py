"""The release library in this process: it starts no child process (so no passphrase can reach a child's
environment), leaves the passphrase out of os.environ, and zeroes the buffers that held the secrets."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from notar.client import TrustServer, TrustServerUnavailableError
from notar.registry import ManifestNotFoundError, RegistryClient
from notar.release import ReleaseOptions, SecretBytes, SecretsManager, make_task, release
from tests.lab import NotarServer, Registry
from tests.registry.images import make_image, write_oci_layout
from tests.release.conftest import MakeSigner, Moto
from tests.release.support import REPO_PASSPHRASE, find_key_material

pytestmark = pytest.mark.peers


def test_no_child_process_and_wiped_buffers(
    make_signer: MakeSigner,
    image_repo: str,
    moto: Moto,
    notar_server: NotarServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = make_signer("inproc", image_repo)
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "inproc"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work / "tmp"))
    (work / "tmp").mkdir()
    monkeypatch.chdir(work)

    spawned: list[tuple[str, Any]] = []

    def refuse(what: str) -> Any:
        def hook(*args: Any, **kwargs: Any) -> Any:
            spawned.append(
                (what, kwargs.get("env") or (args[2] if what == "execve" and len(args) > 2 else None))
            )
            raise AssertionError(f"the release started a child process ({what})")

        return hook

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("Popen"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "execve", "execv", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(name))

    buffers: list[SecretBytes] = []
    original_get = SecretsManager.get

    def recording_get(self: SecretsManager, name: str) -> SecretBytes:
        secret = original_get(self, name)
        buffers.append(secret)
        return secret

    monkeypatch.setattr(SecretsManager, "get", recording_get)

    image = make_image("in process")
    src = write_oci_layout(tmp_path / "oci", "1", image)
    task = make_task(signer.task(f"{image_repo}:1", src), where="test")
    options = ReleaseOptions(
        trust_dir=work / "trust",
        server_url=lambda _ref: notar_server.url,
        tls_verify=lambda _url: ssl.create_default_context(cafile=str(notar_server.ca)),
    )
    result = release(task, options)
    assert result.ok, result.error
    assert result.digest == image.manifest.digest
    assert spawned == []
    assert all(REPO_PASSPHRASE not in v for v in os.environ.values())
    assert len(buffers) == 2 and all(len(b.value) > 0 and not any(b.value) for b in buffers)
    assert not find_key_material([work], signer.needles)

    # a failing task wipes as well
    buffers.clear()
    bad = make_task(signer.task(f"{image_repo}:1", src, signer_name="nobody"), where="test")
    failed = release(bad, options)
    assert not failed.ok and failed.failed_phase == "check"
    assert len(buffers) == 2 and all(not any(b.value) for b in buffers)
    assert spawned == []


def test_failed_publish_leaves_the_tag_unset(
    make_signer: MakeSigner,
    image_repo: str,
    moto: Moto,
    notar_server: NotarServer,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sign before tag: the trust server fails the publish (here: its POST raises as on a 503), the image
    is in the real registry by digest only, and the tag is not set."""
    signer = make_signer("ci", image_repo)
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)

    def unavailable(self: TrustServer, gun: str, files: object) -> None:
        raise TrustServerUnavailableError(
            f"trust server {self.url} failed to publish trust data for {gun}: 503"
        )

    monkeypatch.setattr(TrustServer, "publish", unavailable)
    image = make_image("never tagged")
    src = write_oci_layout(tmp_path / "oci", "5", image)
    options = ReleaseOptions(
        trust_dir=tmp_path / "trust",
        server_url=lambda _ref: notar_server.url,
        tls_verify=lambda _url: ssl.create_default_context(cafile=str(notar_server.ca)),
    )
    result = release(make_task(signer.task(f"{image_repo}:5", src), where="test"), options)
    assert not result.ok and result.failed_phase == "sign" and result.pushed
    assert "503" in str(result.error)
    path = image_repo.split("/", 1)[1]
    with RegistryClient(registry.host) as client:
        assert client.get_manifest(path, image.manifest.digest).digest == image.manifest.digest
        with pytest.raises(ManifestNotFoundError):
            client.get_manifest(path, "5")
