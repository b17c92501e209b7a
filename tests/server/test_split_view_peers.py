"""The split view of red-team #11 against the real peers: Go notary-server, the Go notary CLI, notar server.

A targets file ``{"signed": A, "signatures": SA, "Signed": B, "Signatures": SB}`` with A and B both validly
signed by the targets key. Go's decoder folds "Signed" onto the ``signed`` field (last match wins), so Go
clients resolve the tag from B. Before the fix notar read A: dashboards and the gateway showed another
image than docker would pull. Now notar refuses the document wherever it meets it.
"""

from __future__ import annotations

import json
import ssl
import uuid
from pathlib import Path

import httpx
import pytest

from notar.client import TrustCache, TrustDataInvalidError, TrustServer, Updater
from notar.crypto import PublicKey
from notar.encoding import b64encode, canonical_json
from notar.tuf import Envelope, FileMeta, Snapshot, Targets
from tests.lab import NotarServer, NotaryCLI, NotaryServer
from tests.server.tuf_builders import DIGEST, Repo, multipart

pytestmark = pytest.mark.peers

OTHER = bytes(range(32))


def _http(server: NotaryServer | NotarServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=server.ca), timeout=30)


def _publish(server: NotaryServer | NotarServer, gun: str, files: dict[str, bytes]) -> httpx.Response:
    body, ctype = multipart(files)
    with _http(server) as http:
        return http.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})


def _new_repo(server: NotaryServer | NotarServer, gun: str, *, client_snapshot: bool = False) -> Repo:
    """A repository with "shown" at DIGEST; the snapshot key is the server's unless *client_snapshot*."""
    with _http(server) as http:
        ts = PublicKey.from_dict(http.get(f"/v2/{gun}/_trust/tuf/timestamp.key").json())
        sn = PublicKey.from_dict(http.get(f"/v2/{gun}/_trust/tuf/snapshot.key").json())
    repo = Repo(gun, timestamp_key=ts, snapshot_key=None if client_snapshot else sn)
    response = _publish(server, gun, repo.first_publish("shown"))
    assert response.status_code == 200, response.text
    return repo


def _split_view(repo: Repo) -> bytes:
    """Targets v2: A lists "shown" at DIGEST, B at OTHER; both signed by the repository's targets key."""
    assert repo.targets is not None
    a = repo.targets.to_dict()
    a["version"] = 2
    b = json.loads(json.dumps(a))
    b["targets"]["shown"]["hashes"]["sha256"] = b64encode(OTHER)

    def sign(body: dict[str, object]) -> list[dict[str, str]]:
        method, sig = repo.targets_key.sign(canonical_json(body))
        return [{"keyid": repo.targets_key.key_id, "method": method, "sig": b64encode(sig)}]

    doc = {"signed": a, "signatures": sign(a), "Signed": b, "Signatures": sign(b)}
    return json.dumps(doc, separators=(",", ":")).encode()


def _listing(server: NotaryServer | NotarServer, gun: str, tmp_path: Path) -> str:
    name = uuid.uuid4().hex[:8]
    fresh = NotaryCLI(server.url, server.ca, tmp_path / f"trust-{name}", home=tmp_path / f"home-{name}")
    return fresh.run("list", gun).stdout


def test_go_reads_the_folded_copy_and_notar_refuses_it(notary_server: NotaryServer, tmp_path: Path) -> None:
    gun = f"example.com/split/{uuid.uuid4().hex[:8]}"
    # A Go server hashes its own re-serialisation of an uploaded targets file into the snapshot it makes,
    # which drops copy A; with a client-made snapshot the stored bytes are served as they are.
    repo = _new_repo(notary_server, gun, client_snapshot=True)
    split = _split_view(repo)
    assert repo.root is not None
    snapshot = Snapshot(
        meta={"root": repo.root.file_meta(), "targets": FileMeta.from_data(split)},
        version=2,
        expires=repo.now.add(days=30),
    )
    files = {"targets": split, "snapshot": Envelope.sign(snapshot, [repo.client_snapshot_key]).data}
    # the Go server stores the document, and the Go client resolves the tag from the *folded* copy B
    response = _publish(notary_server, gun, files)
    assert response.status_code == 200, response.text
    listing = _listing(notary_server, gun, tmp_path)
    assert "shown" in listing and OTHER.hex() in listing and DIGEST.hex() not in listing
    # notar's client, reading what that Go server stores, refuses it instead of showing A
    server = TrustServer(notary_server.url, verify=ssl.create_default_context(cafile=notary_server.ca))
    updater = Updater(gun, server, TrustCache(tmp_path / "notar-trust"))
    with pytest.raises(TrustDataInvalidError, match="'Signed' is read as 'signed' by Go clients"):
        updater.refresh()


def test_notar_server_refuses_the_split_view(notar_server: NotarServer, tmp_path: Path) -> None:
    gun = f"example.com/split/{uuid.uuid4().hex[:8]}"
    repo = _new_repo(notar_server, gun)
    response = _publish(notar_server, gun, {"targets": _split_view(repo)})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "INVALID_UPDATE" and error["detail"]["Name"] == "ErrBadTargets"
    # nothing changed: Go's client still sees the one and only version 1
    listing = _listing(notar_server, gun, tmp_path)
    assert "shown" in listing and DIGEST.hex() in listing and OTHER.hex() not in listing


def test_go_client_lists_a_target_name_with_control_characters(
    notar_server: NotarServer, tmp_path: Path
) -> None:
    """notar writes such names escaped as Go's json.Marshal would; Go verifies them over the raw form."""
    gun = f"example.com/split/{uuid.uuid4().hex[:8]}"
    repo = _new_repo(notar_server, gun)
    assert repo.targets is not None
    name = "tab\there"
    repo.targets.targets[name] = FileMeta(401, {"sha256": OTHER})
    repo.targets.version = 2
    env = Envelope.sign(repo.targets, [repo.targets_key])
    assert b"tab\\there" in env.data
    response = _publish(notar_server, gun, {"targets": env.data})
    assert response.status_code == 200, response.text
    listing = _listing(notar_server, gun, tmp_path)
    assert OTHER.hex() in listing and DIGEST.hex() in listing  # both targets verified by the Go client
    with _http(notar_server) as http:
        served = Envelope.from_bytes(http.get(f"/v2/{gun}/_trust/tuf/targets.json").content, expect=Targets)
    assert name in served.signed.targets
