"""notar, the Go notary CLI and the docker CLI on the same repositories, against both trust servers.

- tags signed with `notar sign` are listed by `notary list` and shown by `docker trust inspect`;
- tags signed with docker/notary are shown by `notar inspect` and resolved by `notar resolve`;
- the image is pushed to the real registry with skopeo and signed with the digest the registry reports.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.client.test_cli_flow import PASSPHRASES, Notar, push_image
from tests.lab import NotarServer, NotaryCLI, NotaryServer, Registry

pytestmark = pytest.mark.peers


@pytest.fixture(params=["notary-server", "notar-server"])
def trust_server(request: pytest.FixtureRequest) -> NotaryServer | NotarServer:
    name = "notary_server" if request.param == "notary-server" else "notar_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def docker(notar: Notar, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "trust", *args],
        capture_output=True,
        text=True,
        env=notar.env,
        timeout=120,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )


def notary_cli(notar: Notar, server: NotaryServer | NotarServer) -> NotaryCLI:
    """The Go notary CLI on notar's (docker's) trust directory, with docker's passphrases."""
    repo_pass = PASSPHRASES["DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"]
    return NotaryCLI(
        server.url,
        server.ca,
        notar.docker_config / "trust",
        home=notar.home / "notary-home",
        passphrases={
            "root": PASSPHRASES["DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"],
            "targets": repo_pass,
            "snapshot": repo_pass,
            "delegation": repo_pass,
        },
    )


def test_notar_signs_others_read(
    trust_server: NotaryServer | NotarServer, registry: Registry, tmp_path: Path
) -> None:
    repo = f"{registry.host}/interop/notar-{uuid.uuid4().hex[:8]}"
    notar = Notar(tmp_path, trust_server.url, trust_server.ca)
    digest = push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", f"notar-signs {trust_server.url}")
    notar.run("key", "generate", "ci", "--dir", str(tmp_path))
    notar.run("signer", "add", "ci", repo, "--key", str(tmp_path / "ci.pub"))
    notar.run("sign", f"{repo}:1.0")

    # the Go notary CLI, fresh trust dir: TOFU, then lists the tag in targets/releases with our digest
    fresh = NotaryCLI(
        trust_server.url, trust_server.ca, tmp_path / "fresh-notary", home=tmp_path / "fresh-home"
    )
    listing = fresh.run("list", repo, "-r", "targets/releases").stdout
    assert "1.0" in listing and digest.split(":")[1] in listing

    # docker reads it too (a loopback registry: docker skips TLS verification of the trust server)
    d = docker(notar, "inspect", f"{repo}:1.0")
    assert d.returncode == 0, d.stderr
    ours = json.loads(notar.run("inspect", f"{repo}:1.0").stdout)
    assert json.loads(d.stdout) == ours
    assert ours[0]["SignedTags"][0]["Digest"] == digest.split(":")[1]
    assert ours[0]["SignedTags"][0]["Signers"] == ["ci"]
    pretty_docker = docker(notar, "inspect", "--pretty", f"{repo}:1.0").stdout
    pretty_ours = notar.run("inspect", "--pretty", f"{repo}:1.0").stdout
    assert pretty_ours == pretty_docker


def test_others_sign_notar_reads(
    trust_server: NotaryServer | NotarServer, registry: Registry, tmp_path: Path
) -> None:
    repo = f"{registry.host}/interop/docker-{uuid.uuid4().hex[:8]}"
    notar = Notar(tmp_path, trust_server.url, trust_server.ca)
    digest = push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", f"docker-signs {trust_server.url}")
    hexdigest = digest.split(":")[1]
    keys = tmp_path / "keys"
    keys.mkdir()
    gen = subprocess.run(
        ["docker", "trust", "key", "generate", "dana", "--dir", str(keys)],
        capture_output=True,
        text=True,
        env=notar.env,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr
    added = docker(notar, "signer", "add", "--key", str(keys / "dana.pub"), "dana", repo)
    assert added.returncode == 0, added.stderr
    # docker can only sign a tag that is already in the trust data (no daemon): publish it with notary first
    notary = notary_cli(notar, trust_server)
    manifest = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{repo}:1.0"],
        capture_output=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    size = str(len(manifest))
    notary.run("addhash", repo, "1.0", size, "--sha256", hexdigest, "-p")
    signed = docker(notar, "sign", f"{repo}:1.0")
    assert signed.returncode == 0, signed.stderr

    # notar, from a fresh trust dir, resolves and inspects what docker and notary signed
    fresh = Notar(tmp_path / "fresh", trust_server.url, trust_server.ca)
    assert fresh.run("resolve", f"{repo}:1.0").stdout.strip() == f"{repo}@{digest}"
    ours = json.loads(fresh.run("inspect", f"{repo}:1.0").stdout)[0]
    assert ours["SignedTags"] == [{"SignedTag": "1.0", "Digest": hexdigest, "Signers": ["dana"]}]
    theirs = json.loads(docker(notar, "inspect", f"{repo}:1.0").stdout)[0]
    assert ours == theirs

    # a tag that notary put only into `targets` resolves too (docker pull's rule), a missing one does not
    notary.run("addhash", repo, "admin-only", size, "--sha256", hexdigest, "-p")
    assert fresh.run("resolve", f"{repo}:admin-only").returncode == 0
    missing = fresh.run("resolve", f"{repo}:nope", check=False)
    assert missing.returncode == 1 and "No valid trust data for nope" in missing.stderr
