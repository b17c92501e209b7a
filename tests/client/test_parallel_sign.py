"""Twenty `notar sign` processes at once, each a different tag of one repository: all of them succeed.

Real processes (``python -m notar sign``), each with its own trust directory (a CI job that loaded the
signer's key), against a real registry and trust server: `notar server` on SQLite, `notar server` on
PostgreSQL, and the Go notary-server. Publishers that lose a race get ``400 VERSION`` and re-apply their tag
to the refreshed state; afterwards every tag is signed with the digest of its own image, read back by
`notar inspect` and the Go `notary list` from fresh trust directories. No timing is asserted.
"""

from __future__ import annotations

import copy
import json
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from notar.client.retry import VERSION_CONFLICT_MESSAGE
from notar.crypto import PublicKey
from notar.tuf import Envelope, FileMeta
from tests.client.parallel import (
    Outcome,
    Pushed,
    notar_env,
    notar_sign_job,
    push_images,
    run_at_once,
    trust_dir_copy,
)
from tests.lab import LabPKI, NotarServer, NotaryCLI, NotaryServer, Registry, run_notar_server
from tests.server.tuf_builders import DIGEST, Repo, multipart

pytestmark = pytest.mark.peers

JOBS = 20
DEADLINE = 240.0  # for all processes together: only against hangs (each gives up after 30 s of conflicts)

TrustServerPeer = NotarServer | NotaryServer


@pytest.fixture(params=["notar-sqlite", "notar-postgres", "notary-server"])
def trust_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TrustServerPeer]:
    if request.param == "notar-sqlite":
        yield request.getfixturevalue("notar_server")
    elif request.param == "notar-postgres":
        pki: LabPKI = request.getfixturevalue("lab_pki")
        database: str = request.getfixturevalue("postgres_database")
        with run_notar_server(pki, tmp_path / "notar-server-pg", database_url=database) as server:
            yield server
    else:
        yield request.getfixturevalue("notary_server")


def notar(home: Path, server: TrustServerPeer, *args: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "notar", *args],
        capture_output=True,
        text=True,
        env=notar_env(home, server.url, server.ca),
        cwd=home,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, f"notar {' '.join(args)} failed:\n{result.stderr}"
    return result


def failures(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.label}: rc={o.returncode}: {o.last_line()}" for o in outcomes if not o.ok)


def check_all_signed(
    server: TrustServerPeer, image: str, pushed: dict[str, Pushed], tmp_path: Path, role_owner: str
) -> None:
    """`notar inspect` and `notary list` (fresh trust dirs) show every tag, with its own image's digest."""
    data = json.loads(notar(tmp_path / "reader", server, "inspect", image).stdout)
    signed = {t["SignedTag"]: (t["Digest"], t["Signers"]) for t in data[0]["SignedTags"]}
    assert signed == {tag: (p.hex, [role_owner]) for tag, p in pushed.items()}

    go = NotaryCLI(server.url, server.ca, tmp_path / "go-reader", home=tmp_path / "go-reader-home")
    listing = go.run("list", image, "-r", "targets/releases").stdout
    rows = {line.split()[0]: line.split()[1:3] for line in listing.splitlines()[2:] if line.strip()}
    assert rows == {tag: [p.hex, str(p.size)] for tag, p in pushed.items()}, listing


def sign_in_parallel(server: TrustServerPeer, registry: Registry, tmp_path: Path, *, shared: bool) -> None:
    """Set up a repository with signer ci, push JOBS images, sign one tag each in JOBS processes at once."""
    repo_path = f"parallel/app-{uuid.uuid4().hex[:8]}"
    image = f"{registry.host}/{repo_path}"
    tags = [f"1.{i}" for i in range(JOBS)]
    pushed = push_images(registry.url, repo_path, tags, label=f"parallel {shared} {server.url}")
    assert len({p.digest for p in pushed.values()}) == JOBS

    admin = tmp_path / "admin"
    notar(admin, server, "key", "generate", "ci", "--dir", str(admin))
    notar(admin, server, "signer", "add", "ci", image, "--key", str(admin / "ci.pub"))

    jobs = []
    for i, tag in enumerate(tags):
        home = admin if shared else trust_dir_copy(admin, tmp_path / f"job-{i:02d}")
        env = notar_env(home, server.url, server.ca)
        jobs.append(notar_sign_job(tag, home, env, f"{image}:{tag}", count_attempts=False))
    outcomes, _wall = run_at_once(jobs, tmp_path / "runs", timeout=DEADLINE)

    assert sum(o.ok for o in outcomes) == JOBS, failures(outcomes)
    for o, tag in zip(outcomes, tags, strict=True):
        assert f"Signed {image}:{tag} ({pushed[tag].digest})" in o.stderr, o.stderr
        assert "Traceback" not in o.stderr
    check_all_signed(server, image, pushed, tmp_path, "ci")


def test_parallel_signs_all_succeed(
    trust_server: TrustServerPeer, registry: Registry, tmp_path: Path
) -> None:
    """JOBS CI jobs, each with its own trust directory holding the signer's key."""
    sign_in_parallel(trust_server, registry, tmp_path, shared=False)


def test_parallel_signs_sharing_one_trust_dir(
    notar_server: NotarServer, registry: Registry, tmp_path: Path
) -> None:
    """JOBS processes on one machine with one trust directory (and trust cache) between them."""
    sign_in_parallel(notar_server, registry, tmp_path, shared=True)


# --------------------------------------------------------------------------- what the servers answer


def _client(server: TrustServerPeer) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=30, trust_env=False)


def _post(http: httpx.Client, server: TrustServerPeer, gun: str, files: dict[str, bytes]) -> httpx.Response:
    body, ctype = multipart(files)
    return http.post(f"{server.url}/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})


def _targets_update(repo: Repo, version: int, tag: str) -> dict[str, bytes]:
    """A targets update built on the state with targets version - 1 (what a client signs after a refresh)."""
    assert repo.targets is not None
    body = copy.deepcopy(repo.targets)
    body.targets[tag] = FileMeta(401, {"sha256": DIGEST})
    body.version = version
    return {"targets": Envelope.sign(body, [repo.targets_key]).data}


def _assert_version_error(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "VERSION", response.text
    assert error["message"].startswith(VERSION_CONFLICT_MESSAGE), response.text


def test_a_lost_race_is_answered_400_version(trust_server: TrustServerPeer) -> None:
    """Two updates built on the same state, both carrying targets version N+1: the second is refused with
    ``400 VERSION``, whether it arrives after the first was stored or at the same moment."""
    gun = f"127.0.0.1:5000/parallel/race-{uuid.uuid4().hex[:8]}"
    with _client(trust_server) as http:
        keys = {
            r: PublicKey.from_dict(http.get(f"{trust_server.url}/v2/{gun}/_trust/tuf/{r}.key").json())
            for r in ("timestamp", "snapshot")
        }
        repo = Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
        first = _post(http, trust_server, gun, repo.first_publish("base"))
        assert first.status_code == 200, first.text

        # one after the other: the loser is validated against the state the winner left
        assert _post(http, trust_server, gun, _targets_update(repo, 2, "a")).status_code == 200
        _assert_version_error(_post(http, trust_server, gun, _targets_update(repo, 2, "b")))

    # at the same moment (both may be validated before either is stored)
    updates = [_targets_update(repo, 3, f"c{i}") for i in range(2)]
    barrier = threading.Barrier(2)

    def publish(i: int) -> httpx.Response:
        with _client(trust_server) as http:
            barrier.wait(timeout=30)
            return _post(http, trust_server, gun, updates[i])

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(publish, range(2)))
    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    _assert_version_error(next(r for r in responses if r.status_code == 400))
