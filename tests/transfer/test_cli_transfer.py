"""`notar push` / `notar pull` as a release engineer runs them, against a real registry, `notar server`,
the Go notary-server and skopeo."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.client.test_cli_flow import Notar
from tests.lab import NotarServer, Registry, free_port, run_registry
from tests.registry.images import (
    OCI_INDEX,
    REF_NAME,
    Image,
    Index,
    Skopeo,
    make_image,
    make_index,
    sha256,
    write_oci_layout,
)
from tests.transfer.archives import saved_image, write_docker_archive

pytestmark = pytest.mark.peers


def layout_blobs(layout: Path) -> dict[str, bytes]:
    return {f"sha256:{p.name}": p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def content_blobs(content: Image | Index) -> dict[str, bytes]:
    images = content.images if isinstance(content, Index) else (content,)
    every = [content.manifest, *(b for i in images for b in (i.manifest, *i.blobs))]
    return {b.digest: b.data for b in every}


class Setup:
    """A fresh repository with signer alice, and the notar CLI to drive it."""

    def __init__(self, notar: Notar, registry: Registry, tmp_path: Path) -> None:
        self.notar, self.registry, self.tmp = notar, registry, tmp_path
        self.repo = f"{registry.host}/transfer/app-{uuid.uuid4().hex[:8]}"
        notar.run("key", "generate", "alice", "--dir", str(tmp_path))
        notar.run("signer", "add", "alice", self.repo, "--key", str(tmp_path / "alice.pub"))
        self.skopeo = Skopeo(tmp_path)

    def push(self, src: Path, tag: str, *extra: str) -> dict[str, Any]:
        out = self.notar.run("push", "-o", "json", str(src), f"{self.repo}:{tag}", *extra)
        assert "Traceback" not in out.stderr
        return dict(json.loads(out.stdout))

    def pull(self, tag: str, dest: Path, *extra: str) -> dict[str, Any]:
        out = self.notar.run("pull", "--format", "json", f"{self.repo}:{tag}", "--output", str(dest), *extra)
        return dict(json.loads(out.stdout))

    def resolve(self, tag: str) -> str:
        return self.notar.run("resolve", f"{self.repo}:{tag}").stdout.strip().split("@", 1)[1]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notar: error: "), result.stderr
    return lines[0]


@pytest.fixture
def setup(notar_server: NotarServer, registry: Registry, tmp_path: Path) -> Setup:
    return Setup(Notar(tmp_path / "home", notar_server.url, notar_server.ca), registry, tmp_path)


def test_oci_layout_round_trips_byte_for_byte(setup: Setup) -> None:
    image = make_image(f"round trip {uuid.uuid4()}")
    layout = write_oci_layout(setup.tmp / "src", "1.0", image)
    pushed = setup.push(layout, "1.0")
    assert pushed["digest"] == image.manifest.digest and pushed["size"] == image.manifest.size
    assert pushed["roles"] == ["targets/alice", "targets/releases"]
    assert pushed["blobs"] == {"uploaded": 2, "existing": 0}
    assert setup.resolve("1.0") == image.manifest.digest

    # a second push finds everything in place and signs the same digest under another tag
    again = setup.push(layout, "1.1", "--source-tag", "1.0")
    assert again["blobs"] == {"uploaded": 0, "existing": 2} and again["digest"] == image.manifest.digest

    dest = setup.tmp / "pulled"
    pulled = setup.pull("1.0", dest)
    assert pulled["digest"] == image.manifest.digest and pulled["role"] == "targets/releases"
    assert set(pulled["roles"]) == {"targets/releases", "targets/alice"}
    assert layout_blobs(dest) == content_blobs(image)  # every blob and the manifest, byte for byte
    index = json.loads((dest / "index.json").read_bytes())
    assert index["manifests"] == [image.manifest.descriptor(annotations={REF_NAME: "1.0"})]
    assert json.loads((dest / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".pulled.")]  # no temp dirs left

    # skopeo reads the registry's tag: the same bytes as signed; and reads our layout
    raw = setup.skopeo.inspect_raw(f"{setup.repo}:1.0")
    assert sha256(raw) == image.manifest.digest
    copied = setup.skopeo.pull_dir(f"{setup.repo}:1.0", setup.tmp / "skopeo-dir")
    assert sha256((copied / "manifest.json").read_bytes()) == setup.resolve("1.0")
    setup.skopeo.run("copy", f"oci:{dest}:1.0", f"dir:{setup.tmp / 'from-layout'}")
    assert (setup.tmp / "from-layout" / "manifest.json").read_bytes() == image.manifest.data


def test_multi_platform_index_round_trips_and_the_index_is_signed(setup: Setup) -> None:
    marker = uuid.uuid4().hex
    index = make_index([make_image(f"amd {marker}"), make_image(f"arm {marker}", arch="arm64")])
    layout = write_oci_layout(setup.tmp / "src", "multi", index)
    pushed = setup.push(layout, "multi")
    assert pushed["digest"] == index.manifest.digest and pushed["mediaType"] == OCI_INDEX
    assert pushed["manifests"] == [*(i.manifest.digest for i in index.images), index.manifest.digest]
    assert setup.resolve("multi") == index.manifest.digest
    assert sha256(setup.skopeo.inspect_raw(f"{setup.repo}:multi")) == index.manifest.digest
    for image in index.images:  # children are in the registry by digest
        assert (
            sha256(setup.skopeo.inspect_raw(f"{setup.repo}@{image.manifest.digest}")) == image.manifest.digest
        )

    dest = setup.tmp / "pulled"
    setup.pull("multi", dest)
    assert layout_blobs(dest) == content_blobs(index)
    setup.skopeo.run(
        "copy",
        "--all",
        "--src-tls-verify=false",
        f"docker://{setup.repo}:multi",
        f"oci:{setup.tmp / 'sk'}:multi",
    )
    assert layout_blobs(setup.tmp / "sk") == content_blobs(index)


def test_docker_save_archive_pushes_and_pulls(setup: Setup) -> None:
    saved = saved_image(f"saved {uuid.uuid4()}", repo_tags=["app:2.0"], layers=2)
    archive = write_docker_archive(setup.tmp / "save.tar", [saved])
    pushed = setup.push(archive, "2.0")
    digest = str(pushed["digest"])
    assert setup.resolve("2.0") == digest
    raw = setup.skopeo.inspect_raw(f"{setup.repo}:2.0")
    assert sha256(raw) == digest
    body = json.loads(raw)
    assert body["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert body["config"]["digest"] == saved.config_digest

    dest = setup.tmp / "pulled"
    setup.pull("2.0", dest)
    blobs = layout_blobs(dest)
    assert blobs[saved.config_digest] == saved.config
    for layer in saved.layers:
        assert blobs[sha256(layer)] == layer
    assert blobs[digest] == raw
    index = json.loads((dest / "index.json").read_bytes())
    assert index["manifests"][0]["digest"] == digest and index["manifests"][0]["annotations"] == {
        REF_NAME: "2.0"
    }
    # skopeo pulls the pushed tag as the image that was signed, config and layers intact
    copied = setup.skopeo.pull_dir(f"{setup.repo}:2.0", setup.tmp / "skopeo-dir")
    assert sha256((copied / "manifest.json").read_bytes()) == digest
    for layer in saved.layers:
        assert (copied / sha256(layer).split(":")[1]).read_bytes() == layer


def test_chunked_upload_of_a_large_layer(setup: Setup) -> None:
    big = hashlib.sha256(uuid.uuid4().bytes).digest() * (3 * 1024 * 1024 // 32 + 17)  # ~3 MiB
    saved = saved_image("unused")
    from tests.registry.images import _layer, canonical

    raw = _layer({"big.bin": big})[0]
    config = canonical(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]}}
    )
    archive = write_docker_archive(setup.tmp / "big.tar", [type(saved)(config, (raw,), ("big:1",))])
    pushed = setup.push(archive, "big", "--chunk-size", "1")
    dest = setup.tmp / "pulled"
    setup.pull("big", dest)
    assert layout_blobs(dest)[sha256(raw)] == raw
    assert setup.resolve("big") == pushed["digest"]


def test_signing_failure_leaves_the_tag_unset(setup: Setup) -> None:
    image = make_image(f"unsigned {uuid.uuid4()}")
    layout = write_oci_layout(setup.tmp / "src", "1.0", image)
    down = dict(setup.notar.env, DOCKER_CONTENT_TRUST_SERVER=f"https://127.0.0.1:{free_port()}")
    broken = Notar(setup.notar.home, "unused", Path(setup.notar.env["NOTAR_TLS_CA"]))
    broken.env = down
    result = broken.run("push", str(layout), f"{setup.repo}:1.0", check=False)
    assert result.returncode == 1, result.stderr
    assert "the tag was not set" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()[-1]) > 0
    with pytest.raises(AssertionError, match="manifest unknown|not found|MANIFEST_UNKNOWN"):
        setup.skopeo.inspect_raw(f"{setup.repo}:1.0")
    # the content is there by digest, and the next (working) push completes the job
    assert sha256(setup.skopeo.inspect_raw(f"{setup.repo}@{image.manifest.digest}")) == image.manifest.digest
    assert setup.push(layout, "1.0")["blobs"] == {"uploaded": 0, "existing": 2}
    assert setup.resolve("1.0") == image.manifest.digest


def test_unsigned_tag_is_not_pulled(setup: Setup) -> None:
    image = make_image(f"skopeo only {uuid.uuid4()}")
    layout = write_oci_layout(setup.tmp / "src", "raw", image)
    setup.skopeo.push_layout(layout, "raw", f"{setup.repo}:raw")  # in the registry, never signed
    dest = setup.tmp / "pulled"
    result = setup.notar.run("pull", f"{setup.repo}:raw", "--dir", str(dest), check=False)
    assert result.returncode == 1
    assert "No valid trust data for raw" in result.stderr and "Traceback" not in result.stderr
    assert not dest.exists()
    assert list(setup.tmp.glob(".pulled.*")) == []

    fresh_repo = f"{setup.registry.host}/transfer/never-{uuid.uuid4().hex[:8]}"
    result = setup.notar.run("pull", f"{fresh_repo}:1.0", "--dir", str(dest), check=False)
    assert result.returncode == 1 and "No valid trust data for 1.0" in result.stderr
    assert not dest.exists()


def test_corrupted_blob_in_the_registry_fails_the_pull_and_leaves_nothing(setup: Setup) -> None:
    image = make_image(f"to corrupt {uuid.uuid4()}")
    setup.push(write_oci_layout(setup.tmp / "src", "1.0", image), "1.0")
    hexdigest = image.layers[0].digest.split(":")[1]
    stored = setup.registry.data_dir / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    data = stored.read_bytes()
    stored.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])

    dest = setup.tmp / "pulled"
    result = setup.notar.run("pull", f"{setup.repo}:1.0", "--dir", str(dest), check=False)
    assert result.returncode == 1 and "hashes to" in result.stderr, result.stderr
    assert not dest.exists()
    assert [p.name for p in setup.tmp.iterdir() if p.name.startswith(".pulled")] == []

    # with an existing non-empty DIR and --force, the failure leaves the old content alone
    dest.mkdir()
    (dest / "keep.txt").write_text("old")
    result = setup.notar.run("pull", f"{setup.repo}:1.0", "--dir", str(dest), "--force", check=False)
    assert result.returncode == 1
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_destination_rules(setup: Setup) -> None:
    image = make_image(f"dest {uuid.uuid4()}")
    setup.push(write_oci_layout(setup.tmp / "src", "1.0", image), "1.0")
    dest = setup.tmp / "dest"
    dest.mkdir()
    setup.pull("1.0", dest)  # an empty existing directory is fine
    refused = setup.notar.run("pull", f"{setup.repo}:1.0", "--dir", str(dest), check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr
    (dest / "extra").write_text("x")
    setup.pull("1.0", dest, "--force")
    assert not (dest / "extra").exists() and layout_blobs(dest) == content_blobs(image)


def test_bad_input_is_one_line_exit_2(setup: Setup) -> None:
    layout = write_oci_layout(setup.tmp / "src", "1.0", make_image())
    bad_layout = write_oci_layout(setup.tmp / "bad", "1.0", make_image("bad"))
    (bad_layout / "index.json").write_text("{oops")
    missing_blob = write_oci_layout(setup.tmp / "missing", "1.0", make_image("missing"))
    next((missing_blob / "blobs" / "sha256").iterdir()).unlink()
    cases = [
        ("push", str(layout), "Not A Reference!"),
        ("push", str(layout), f"{setup.repo}"),  # no tag
        ("push", str(layout), f"{setup.repo}@sha256:{'a' * 64}"),
        ("push", str(bad_layout), f"{setup.repo}:1.0"),
        ("push", str(missing_blob), f"{setup.repo}:1.0"),
        ("push", str(setup.tmp / "nope"), f"{setup.repo}:1.0"),
        ("push", str(layout), f"{setup.repo}:1.0", "--source-tag", "other"),
        ("pull", "Not A Reference!:1", "--dir", str(setup.tmp / "x")),
        ("pull", f"{setup.repo}", "--dir", str(setup.tmp / "x")),
        ("pull", f"{setup.repo}:1.0", "--dir", str(setup.tmp / "no" / "parent")),
    ]
    for args in cases:
        r = setup.notar.run(*args, check=False)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("notar: error: "), (args, r.stderr)
    assert not (setup.tmp / "x").exists()


def test_damaged_archives_are_one_line_exit_2(setup: Setup) -> None:
    archive = write_docker_archive(setup.tmp / "s.tar", [saved_image(f"gz {uuid.uuid4()}", layers=2)])
    data = gzip.compress(archive.read_bytes())
    (setup.tmp / "trunc.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    (setup.tmp / "random").write_bytes(os.urandom(3000))
    (setup.tmp / "empty").write_bytes(b"")
    for name in ("trunc.tar.gz", "random", "empty"):
        r = setup.notar.run("push", str(setup.tmp / name), f"{setup.repo}:1.0", check=False)
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert "Aborted" not in one_line_error(r)


def test_quiet_means_nothing_on_stderr(setup: Setup) -> None:
    layout = write_oci_layout(setup.tmp / "src", "1.0", make_image(f"quiet {uuid.uuid4()}"))
    pushed = setup.notar.run("push", "-q", str(layout), f"{setup.repo}:1.0")
    assert pushed.stderr == "" and pushed.stdout.strip().startswith(f"{setup.repo.split(':')[0]}")
    pulled = setup.notar.run("pull", "-q", f"{setup.repo}:1.0", "-o", str(setup.tmp / "out"))
    assert pulled.stderr == "" and "@sha256:" in pulled.stdout
    loud = setup.notar.run("pull", f"{setup.repo}:1.0", "-o", str(setup.tmp / "out2"))
    assert "Pulled " in loud.stderr


def test_registry_down_is_a_clear_exit_1(setup: Setup, tmp_path: Path) -> None:
    image = make_image(f"down {uuid.uuid4()}")
    layout = write_oci_layout(tmp_path / "src", "1.0", image)
    down = f"127.0.0.1:{free_port()}/transfer/app"
    r = setup.notar.run("push", str(layout), f"{down}:1.0", check=False)
    assert r.returncode == 1 and "cannot connect" in r.stderr and "Traceback" not in r.stderr, r.stderr

    # pull: trust data is fine, then the registry goes away
    with run_registry(tmp_path / "reg2") as reg2:
        repo = f"{reg2.host}/transfer/app"
        setup.notar.run("signer", "add", "alice", repo, "--key", str(setup.tmp / "alice.pub"))
        setup.notar.run("push", str(layout), f"{repo}:1.0")
    dest = tmp_path / "pulled"
    r = setup.notar.run("pull", f"{repo}:1.0", "--dir", str(dest), check=False)
    assert r.returncode == 1 and "cannot connect" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not dest.exists()


def test_help_teaches(setup: Setup) -> None:
    push_help = setup.notar.run("push", "--help").stdout
    assert "docker save" in push_help and "--source-tag" in push_help and "Exit codes" in push_help
    pull_help = setup.notar.run("pull", "--help").stdout
    assert "No valid trust data" in pull_help and "--force" in pull_help
