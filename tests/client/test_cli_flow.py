"""The notar CLI as a release engineer uses it, against real peers: registry, notar server, Go notary-server,
and the docker CLI reading what notar wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.lab import NotarServer, NotaryServer, Registry, child_env
from tests.registry.images import Skopeo, make_image, write_oci_layout

pytestmark = pytest.mark.peers

PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "test-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "test-repo-passphrase",
}


class Notar:
    def __init__(self, home: Path, server: str, ca: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.docker_config = home / ".docker"
        self.env = child_env(
            home=home,
            DOCKER_CONFIG=str(self.docker_config),
            DOCKER_CONTENT_TRUST_SERVER=server,
            NOTAR_TLS_CA=str(ca),
            **PASSPHRASES,
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "notar", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"notar {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def push_image(registry: Registry, tmp_path: Path, repo: str, tag: str, text: str) -> str:
    image = make_image(text)
    layout = write_oci_layout(tmp_path / f"oci-{tag}", tag, image)
    Skopeo(tmp_path).push_layout(layout, tag, f"{registry.host}/{repo}:{tag}")
    return image.manifest.digest


@pytest.fixture
def image_repo(registry: Registry) -> str:
    return f"{registry.host}/notar/app-{uuid.uuid4().hex[:8]}"


def test_release_engineer_flow(
    notar_server: NotarServer, registry: Registry, tmp_path: Path, image_repo: str
) -> None:
    notar = Notar(tmp_path, notar_server.url, notar_server.ca)
    repo_path = image_repo.split("/", 1)[1]
    d1 = push_image(registry, tmp_path, repo_path, "1.0", "one")
    d2 = push_image(registry, tmp_path, repo_path, "2.0", "two")
    push_image(registry, tmp_path, repo_path, "unsigned", "three")

    key_id = notar.run("key", "generate", "alice", "--dir", str(tmp_path)).stdout.strip()
    pub = tmp_path / "alice.pub"
    assert pub.exists() and oct(pub.stat().st_mode & 0o777) == "0o600"
    private = notar.docker_config / "trust" / "private" / f"{key_id}.key"
    assert private.exists() and oct(private.stat().st_mode & 0o777) == "0o600"
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()

    out = notar.run("signer", "add", "alice", image_repo, "--key", str(pub))
    assert "Initialized trust data" in out.stderr
    notar.run("sign", f"{image_repo}:1.0", f"{image_repo}:2.0")

    assert notar.run("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{d1}"
    assert notar.run("resolve", f"{image_repo}:2.0").stdout.strip() == f"{image_repo}@{d2}"
    unsigned = notar.run("resolve", f"{image_repo}:unsigned", check=False)
    assert unsigned.returncode == 1
    assert "No valid trust data for unsigned" in unsigned.stderr
    assert "Traceback" not in unsigned.stderr

    data = json.loads(notar.run("inspect", f"{image_repo}:1.0").stdout)
    assert len(data) == 1 and data[0]["Name"] == f"{image_repo}:1.0"
    assert data[0]["SignedTags"] == [{"SignedTag": "1.0", "Digest": d1.split(":")[1], "Signers": ["alice"]}]
    assert data[0]["Signers"] == [{"Name": "alice", "Keys": [{"ID": key_id}]}]
    assert [a["Name"] for a in data[0]["AdministrativeKeys"]] == ["Root", "Repository"]
    pretty = notar.run("inspect", "--pretty", image_repo).stdout
    assert "SIGNED TAG" in pretty and "alice" in pretty and "Root Key:" in pretty

    # the docker CLI reads the same trust directory and server: same answer
    docker_env = dict(notar.env)
    docker = subprocess.run(
        ["docker", "trust", "inspect", f"{image_repo}:1.0"],
        capture_output=True,
        text=True,
        env=docker_env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if "127.0.0.1" in image_repo:  # docker skips TLS verification for loopback registries; no CA needed
        assert docker.returncode == 0, docker.stderr
        assert json.loads(docker.stdout) == data

    notar.run("revoke", "-y", f"{image_repo}:1.0")
    revoked = notar.run("resolve", f"{image_repo}:1.0", check=False)
    assert revoked.returncode == 1 and "No valid trust data for 1.0" in revoked.stderr
    assert notar.run("resolve", f"{image_repo}:2.0").returncode == 0

    last = notar.run("signer", "remove", "alice", image_repo, check=False)
    assert last.returncode == 1 and "--force" in last.stderr
    notar.run("signer", "remove", "--force", "alice", image_repo)
    after = json.loads(notar.run("inspect", image_repo).stdout)
    assert after[0]["Signers"] == []
    gone = notar.run("resolve", f"{image_repo}:2.0", check=False)
    assert gone.returncode == 1  # alice's signatures no longer count

    listing = json.loads(notar.run("key", "list", "-o", "json").stdout)
    assert {k["role"] for k in listing} >= {"root", "targets", "alice"}


def test_notar_client_against_go_notary_server(
    notary_server: NotaryServer, registry: Registry, tmp_path: Path, image_repo: str
) -> None:
    notar = Notar(tmp_path, notary_server.url, notary_server.ca)
    digest = push_image(registry, tmp_path, image_repo.split("/", 1)[1], "1.0", "go")
    notar.run("key", "generate", "bob", "--dir", str(tmp_path))
    notar.run("signer", "add", "bob", image_repo, "--key", str(tmp_path / "bob.pub"))
    notar.run("sign", f"{image_repo}:1.0")
    assert notar.run("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{digest}"
    # a fresh machine (empty trust dir) trusts on first use and resolves the same digest
    fresh = Notar(tmp_path / "fresh", notary_server.url, notary_server.ca)
    assert fresh.run("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{digest}"


def test_bad_input_is_one_line(notar_server: NotarServer, tmp_path: Path) -> None:
    notar = Notar(tmp_path, notar_server.url, notar_server.ca)
    cases = [
        (("resolve", "Not A Reference!"), 2),
        (("sign", "127.0.0.1:1/x/y"), 2),
        (("key", "generate", "Bad Name"), 2),
        (("resolve", "127.0.0.1:5000/never/published:1.0"), 1),
        (("signer", "add", "x", "127.0.0.1:5000/a/b", "--key", str(tmp_path / "missing.pub")), 2),
    ]
    for args, code in cases:
        r = notar.run(*args, check=False)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.strip(), args


def test_trust_pinning_on_first_use(
    notar_server: NotarServer, registry: Registry, tmp_path: Path, image_repo: str
) -> None:
    notar = Notar(tmp_path / "signer", notar_server.url, notar_server.ca)
    push_image(registry, tmp_path, image_repo.split("/", 1)[1], "1.0", "pinned")
    notar.run("key", "generate", "pin", "--dir", str(tmp_path))
    notar.run("signer", "add", "pin", image_repo, "--key", str(tmp_path / "pin.pub"))
    notar.run("sign", f"{image_repo}:1.0")
    root_id = json.loads(notar.run("inspect", image_repo).stdout)[0]["AdministrativeKeys"][0]["Keys"][0]["ID"]

    good = Notar(tmp_path / "good", notar_server.url, notar_server.ca)
    assert good.run("resolve", "--root-key-id", root_id, f"{image_repo}:1.0").returncode == 0
    bad = Notar(tmp_path / "bad", notar_server.url, notar_server.ca)
    refused = bad.run("resolve", "--root-key-id", "0" * 64, f"{image_repo}:1.0", check=False)
    assert refused.returncode == 1 and "trust_pinning" in refused.stderr
    assert not (bad.docker_config / "trust" / "tuf").exists() or not list(
        (bad.docker_config / "trust" / "tuf").rglob("root.json")
    )


def test_key_rotation(notar_server: NotarServer, registry: Registry, tmp_path: Path, image_repo: str) -> None:
    notar = Notar(tmp_path / "admin", notar_server.url, notar_server.ca)
    digest = push_image(registry, tmp_path, image_repo.split("/", 1)[1], "1.0", "rotate")
    notar.run("key", "generate", "rot", "--dir", str(tmp_path))
    notar.run("signer", "add", "rot", image_repo, "--key", str(tmp_path / "rot.pub"))
    notar.run("sign", f"{image_repo}:1.0")
    fresh = Notar(tmp_path / "early-client", notar_server.url, notar_server.ca)
    assert fresh.run("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{digest}"
    before = json.loads(notar.run("inspect", image_repo).stdout)[0]["AdministrativeKeys"]

    notar.run("key", "rotate", image_repo, "targets")
    notar.run("key", "rotate", image_repo, "snapshot", "--server-managed")
    after = json.loads(notar.run("inspect", image_repo).stdout)[0]["AdministrativeKeys"]
    assert after[0] == before[0]  # same root key
    assert after[1] != before[1]  # new repository (targets) key
    # signing still works, and a client that trusted the old root follows the rotation (root v1 -> v3)
    notar.run("sign", f"{image_repo}:1.0")
    assert fresh.run("resolve", f"{image_repo}:1.0").stdout.strip() == f"{image_repo}@{digest}"
    bad = notar.run("key", "rotate", image_repo, "snapshot", check=False)
    assert bad.returncode == 1 and "--server-managed" in bad.stderr
