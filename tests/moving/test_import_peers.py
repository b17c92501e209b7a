"""`notar import` from the Go notary-server with notary-signer (as deployed) and `notar export` back to a
fresh one: afterwards the real clients (notary CLI, docker trust) show exactly what they showed, a trust
directory whose cache came from the old server carries on without any reset, and signers keep publishing
with their existing delegation keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from notar.registry import RegistryClient
from tests.lab import NotarServer, NotaryCLI, NotaryServer, Registry, loopback_get, run_notar_server
from tests.lab.docker import DockerCLI
from tests.lab.process import child_env
from tests.moving.scenarios import (
    Repository,
    docker_trust_repository,
    notary_cli_repository,
    notary_delegations,
    notary_listing,
)
from tests.registry.artifacts import push_image
from tests.registry.images import make_image

pytestmark = pytest.mark.peers


def notar(repo: Repository, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The notar CLI on the repository's trust dir, with its passphrases (notary's variable names)."""
    secrets = {f"NOTARY_{role.upper()}_PASSPHRASE": value for role, value in repo.passphrases.items()}
    result = subprocess.run(
        [sys.executable, "-m", "notar", *args, "--trust-dir", str(repo.trust_dir)],
        capture_output=True,
        text=True,
        env=child_env(home=repo.home, PYTHONPATH=os.environ.get("PYTHONPATH", ""), **secrets),
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def run_move(
    repo: Repository,
    verb: str,
    other: NotaryServer | NotarServer,
    notar_url: str,
    ca: Path,
    *extra: str,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """`notar import --from OTHER` or `notar export --to OTHER`, with notar at *notar_url* (CA *ca*)."""
    flag = "--from" if verb == "import" else "--to"
    args = [verb, repo.gun, flag, other.url, f"{flag}-tls-ca", str(other.ca)]
    return notar(repo, *args, "--server", notar_url, "--tls-ca", str(ca), *extra, check=check)


def move(
    repo: Repository, verb: str, other: NotaryServer | NotarServer, notar_url: str, ca: Path, *extra: str
) -> Any:
    """:func:`run_move` that must succeed; its JSON report."""
    return json.loads(run_move(repo, verb, other, notar_url, ca, "-o", "json", *extra).stdout)


def served_root(url: str, ca: Path, gun: str, name: str = "root.json") -> bytes:
    status, body = loopback_get(f"{url}/v2/{gun}/_trust/tuf/{name}", ca=ca)
    assert status == 200, (name, status, body[:200])
    return body


def inspect_with_notar(repo: Repository, url: str, ca: Path) -> Any:
    """`notar inspect -o json` (docker's JSON) of the repository on *url*, from the repository's trust dir."""
    out = notar(repo, "inspect", repo.gun, "--server", url, "--tls-ca", str(ca), "-o", "json").stdout
    return json.loads(out)


def check_listing(repo: Repository, cli: NotaryCLI) -> None:
    assert notary_listing(cli, repo.gun) == repo.expected_listing()
    for role in repo.delegations:
        assert notary_listing(cli, repo.gun, role) == repo.expected_listing(role), role
    assert notary_delegations(cli, repo.gun) == repo.delegations


@pytest.mark.parametrize("server_snapshot", [False, True], ids=["client-snapshot", "server-snapshot"])
def test_notary_repository_moves_in_and_out(
    server_snapshot: bool,
    notary_server_with_signer: NotaryServer,
    notar_server: NotarServer,
    lab_pki: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    old = notary_server_with_signer
    repo = notary_cli_repository(old.url, old.ca, tmp_path / "repo", server_snapshot=server_snapshot)

    inspected_before = inspect_with_notar(repo, old.url, old.ca)

    # a dry run verifies and reports, and writes nothing
    [dry] = move(repo, "import", old, notar_server.url, notar_server.ca, "--dry-run")
    assert dry["dryRun"] is True and dry["rootVersions"] == repo.root_version
    status, _ = loopback_get(f"{notar_server.url}/v2/{repo.gun}/_trust/tuf/root.json", ca=notar_server.ca)
    assert status == 404

    [report] = move(repo, "import", old, notar_server.url, notar_server.ca)
    assert report["mode"] == "import"
    assert report["newRootVersion"] == repo.root_version + 1
    assert set(report["rotatedKeys"]) == ({"timestamp", "snapshot"} if server_snapshot else {"timestamp"})
    assert report["snapshotKey"] == ("server" if server_snapshot else "client")

    # the whole root history is served, byte for byte, and one more version moves the server keys
    for n, raw in enumerate(repo.root_history, start=1):
        assert served_root(notar_server.url, notar_server.ca, repo.gun, f"{n}.root.json") == raw
    new_root = json.loads(served_root(notar_server.url, notar_server.ca, repo.gun))["signed"]
    assert new_root["version"] == repo.root_version + 1
    old_root = json.loads(repo.root_history[-1])["signed"]
    assert new_root["roles"]["root"] == old_root["roles"]["root"]  # the same root key
    assert new_root["roles"]["targets"] == old_root["roles"]["targets"]
    assert new_root["roles"]["timestamp"] != old_root["roles"]["timestamp"]

    # the trust dir whose cache came from the old server: no reset, same listing (notary CLI and notar)
    check_listing(repo, repo.notary(notar_server.url, notar_server.ca))
    # a fresh client (trust on first use) sees the same
    fresh = NotaryCLI(notar_server.url, notar_server.ca, tmp_path / "fresh", home=tmp_path / "fresh-home")
    check_listing(repo, fresh)
    assert inspect_with_notar(repo, notar_server.url, notar_server.ca) == inspected_before

    # signers keep publishing with their existing delegation keys
    cli = repo.notary(notar_server.url, notar_server.ca)
    cli.run("addhash", repo.gun, "4.0", "401", "--sha256", "ab" * 32, "-r", "targets/releases", "-p")
    assert any(row.name == "4.0" for row in notary_listing(fresh, repo.gun, "targets/releases"))

    # importing again from the old server is refused: this trust dir now trusts root version N+1
    again = run_move(repo, "import", old, notar_server.url, notar_server.ca, check=False)
    assert again.returncode == 1 and "older than the root this client trusted" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr

    # export to a fresh Go notary-server with notary-signer: the same trust dir carries on there
    new_go = request.getfixturevalue("notary_server_with_signer_2")
    [out] = move(repo, "export", new_go, notar_server.url, notar_server.ca)
    assert out["mode"] == "replay"
    after = repo.notary(new_go.url, new_go.ca)
    rows = notary_listing(after, repo.gun)
    assert {r.name for r in rows} == {r.name for r in notary_listing(fresh, repo.gun)}
    fresh_go = NotaryCLI(new_go.url, new_go.ca, tmp_path / "fresh-go", home=tmp_path / "fresh-go-home")
    assert notary_listing(fresh_go, repo.gun) == rows
    after.run("addhash", repo.gun, "5.0", "402", "--sha256", "cd" * 32, "-r", "targets/releases", "-p")
    assert any(row.name == "5.0" for row in notary_listing(fresh_go, repo.gun, "targets/releases"))


def test_docker_repository_moves_in_and_out(
    notary_server_with_signer: NotaryServer,
    notary_server_with_signer_2: NotaryServer,
    notar_server: NotarServer,
    tmp_path: Path,
) -> None:
    old = notary_server_with_signer
    repo = docker_trust_repository(old.url, old.ca, tmp_path / "repo", rotate_root=True)
    [report] = move(repo, "import", old, notar_server.url, notar_server.ca)
    assert report["snapshotKey"] == "server" and report["rootVersions"] == repo.root_version

    # docker's own trust dir (cache from the old server), pointed at notar: the same inspect output
    docker = repo.docker(notar_server.url, notar_server.ca)
    assert docker.inspect(repo.gun) == repo.inspect
    assert docker.pretty(repo.gun) == repo.pretty
    # and a docker that never saw the repository
    fresh_dir = tmp_path / "fresh-docker"
    assert DockerCLI(notar_server.url, notar_server.ca, fresh_dir).inspect(repo.gun) == repo.inspect

    # docker keeps writing with its existing keys: a revoke is a publish signed by the signers' keys
    docker.run("trust", "revoke", "--yes", f"{repo.gun}:1.0")
    after = DockerCLI(notar_server.url, notar_server.ca, tmp_path / "d2").inspect(repo.gun)
    assert after != repo.inspect  # the revoke was published to notar and is seen by a fresh client
    before_tags = {t["SignedTag"]: t for t in repo.inspect[0]["SignedTags"]}
    after_tags = {t["SignedTag"]: t for t in after[0]["SignedTags"]}
    assert after_tags.get("1.0") != before_tags["1.0"]
    assert {k: v for k, v in after_tags.items() if k != "1.0"} == {
        k: v for k, v in before_tags.items() if k != "1.0"
    }

    # export to a fresh Go notary-server with notary-signer: docker shows the same there, cache kept
    [out] = move(repo, "export", notary_server_with_signer_2, notar_server.url, notar_server.ca)
    assert out["mode"] == "replay"
    assert (
        repo.docker(notary_server_with_signer_2.url, notary_server_with_signer_2.ca).inspect(repo.gun)
        == after
    )
    fresh_go = DockerCLI(
        notary_server_with_signer_2.url, notary_server_with_signer_2.ca, tmp_path / "fresh-go"
    )
    assert fresh_go.inspect(repo.gun) == after


def test_missing_root_key_is_a_clear_error(
    notary_server_with_signer: NotaryServer, notar_server: NotarServer, tmp_path: Path
) -> None:
    old = notary_server_with_signer
    repo = notary_cli_repository(old.url, old.ca, tmp_path / "repo", root_rotations=0)
    for path in (repo.trust_dir / "private").glob("*.key"):
        if "role: root" in path.read_text():
            path.unlink()
    result = run_move(repo, "import", old, notar_server.url, notar_server.ca, check=False)
    assert result.returncode == 1
    assert "root key" in result.stderr and "not in the trust directory" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    status, _ = loopback_get(f"{notar_server.url}/v2/{repo.gun}/_trust/tuf/root.json", ca=notar_server.ca)
    assert status == 404


def test_export_to_another_notar_server_is_an_import(
    notary_server_with_signer: NotaryServer, notar_server: NotarServer, lab_pki: Any, tmp_path: Path
) -> None:
    old = notary_server_with_signer
    repo = notary_cli_repository(old.url, old.ca, tmp_path / "repo", server_snapshot=True, root_rotations=1)
    move(repo, "import", old, notar_server.url, notar_server.ca)
    with run_notar_server(lab_pki, tmp_path / "other-notar") as other:
        [out] = move(repo, "export", other, notar_server.url, notar_server.ca)
        assert out["mode"] == "import"
        assert out["newRootVersion"] == repo.root_version + 2
        # the history is there byte for byte, with notar's key-moving root among it
        for n in range(1, repo.root_version + 2):
            assert served_root(other.url, other.ca, repo.gun, f"{n}.root.json") == served_root(
                notar_server.url, notar_server.ca, repo.gun, f"{n}.root.json"
            )
        check_listing(repo, repo.notary(other.url, other.ca))


def test_notar_sign_keeps_publishing_after_the_import(
    notary_server_with_signer: NotaryServer, notar_server: NotarServer, registry: Registry, tmp_path: Path
) -> None:
    """The repository's signers sign new tags with `notar sign` against notar, with the delegation keys
    the notary CLI made on the old server; the Go client reading notar from its old cache sees them."""
    old = notary_server_with_signer
    gun = f"{registry.host}/moving/signed-{uuid.uuid4().hex[:8]}"
    repo = notary_cli_repository(old.url, old.ca, tmp_path / "repo", gun=gun, root_rotations=1)
    move(repo, "import", old, notar_server.url, notar_server.ca)
    with RegistryClient(registry.host) as client:
        digest = push_image(client, gun.split("/", 1)[1], make_image("moved in\n"), tag="9.0")
    out = notar(
        repo,
        "sign",
        f"{gun}:9.0",
        "--server",
        notar_server.url,
        "--tls-ca",
        str(notar_server.ca),
        "-o",
        "json",
    )
    [signed] = json.loads(out.stdout)
    assert signed["status"] == "signed" and signed["digest"] == digest
    rows = {row.name: row for row in notary_listing(repo.notary(notar_server.url, notar_server.ca), gun)}
    assert rows["9.0"].sha256 == digest.removeprefix("sha256:")
    assert rows["9.0"].role == "targets/releases"  # docker's rule: the release delegation the signer holds
