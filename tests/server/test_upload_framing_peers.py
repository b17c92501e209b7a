"""Red-team finding 1 with the real peers: truncated and empty updates, `notar server` next to Go's.

The same raw bodies go to `notar server` (a process, TLS, SQLite) and to Go's notary-server 0.7:

* truncated (a complete targets part, no closing boundary): notary-server panics on the nil part and
  closes the connection without an answer; notar answers 400 MALFORMED_UPLOAD. Neither stores anything,
  and the Go ``notary`` CLI still lists the old targets.
* empty (only the closing delimiter): both answer 200 and store a new snapshot and timestamp, nothing
  else; ``notary publish`` with nothing staged sends exactly this. Without a repository, both answer the
  same INVALID_UPDATE body.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
import uuid
from pathlib import Path

import pytest

from notar.crypto import PublicKey
from tests.lab import NotarServer, NotaryCLI, NotaryServer
from tests.server.tuf_builders import Repo, multipart

pytestmark = pytest.mark.peers

BOUNDARY = "fcc92e68e31830a0fbab09f0698a771f22f7c1e3492649d00bd29faefd1b"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"
ROLES = ("root", "targets", "snapshot", "timestamp")


class Peer:
    """One trust server over https, verified against the lab CA."""

    def __init__(self, name: str, url: str, ca: Path) -> None:
        self.name, self.url, self.ca = name, url, ca
        self.host_port = urllib.parse.urlsplit(url).netloc

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int | None, bytes]:
        """Status and body; status None when the server closed the connection without answering."""
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection(self.host_port, context=context, timeout=30)
        try:
            headers = {"Content-Type": CTYPE} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None, b""
        finally:
            conn.close()

    def post(self, gun: str, body: bytes) -> tuple[int | None, bytes]:
        return self.request("POST", f"/v2/{gun}/_trust/tuf/", body)

    def key(self, gun: str, role: str) -> PublicKey:
        status, body = self.request("GET", f"/v2/{gun}/_trust/tuf/{role}.key")
        assert status == 200, (self.name, body)
        return PublicKey.from_dict(json.loads(body))

    def versions(self, gun: str) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for role in ROLES:
            status, body = self.request("GET", f"/v2/{gun}/_trust/tuf/{role}.json")
            out[role] = int(json.loads(body)["signed"]["version"]) if status == 200 else None
        return out


@pytest.fixture
def peers(notar_server: NotarServer, notary_server: NotaryServer) -> list[Peer]:
    return [Peer("notar", notar_server.url, notar_server.ca), Peer("go", notary_server.url, notary_server.ca)]


def publish_first(peer: Peer, gun: str) -> Repo:
    repo = Repo(gun, timestamp_key=peer.key(gun, "timestamp"), snapshot_key=peer.key(gun, "snapshot"))
    body, _ = multipart(repo.first_publish("1.0"), boundary=BOUNDARY)
    assert peer.post(gun, body) == (200, b""), peer.name
    return repo


def listed(peer: Peer, gun: str, tmp_path: Path) -> list[str]:
    """Target names the Go notary CLI lists, from a fresh trust dir."""
    trust = tmp_path / f"{peer.name}-{uuid.uuid4().hex[:6]}"
    out = NotaryCLI(peer.url, peer.ca, trust).run("list", gun).stdout
    return sorted(line.split()[0] for line in out.splitlines()[2:] if line.strip())


def test_truncated_update_is_refused_like_go_and_changes_nothing(peers: list[Peer], tmp_path: Path) -> None:
    gun = f"127.0.0.1:5000/framing/trunc-{uuid.uuid4().hex[:8]}"
    for peer in peers:
        repo = publish_first(peer, gun)
        before = peer.versions(gun)
        assert before == {"root": 1, "targets": 1, "snapshot": 1, "timestamp": 1}
        new_targets, _ = multipart({"targets": repo.sign_targets("2.0", version=2).data}, boundary=BOUNDARY)
        truncated = new_targets.removesuffix(f"--{BOUNDARY}--\r\n".encode())  # a complete part, no close
        status, body = peer.post(gun, truncated)
        if peer.name == "notar":
            assert status == 400 and json.loads(body)["errors"][0]["code"] == "MALFORMED_UPLOAD", body
        else:
            assert status is None  # notary-server 0.7 panics on this body and never answers
        assert peer.versions(gun) == before, peer.name
        assert listed(peer, gun, tmp_path) == ["1.0"], peer.name
        # the same body, closed, is a valid update on both
        assert peer.post(gun, new_targets) == (200, b""), peer.name
        assert listed(peer, gun, tmp_path) == ["1.0", "2.0"], peer.name


def test_empty_update_is_answered_like_go(peers: list[Peer]) -> None:
    gun = f"127.0.0.1:5000/framing/empty-{uuid.uuid4().hex[:8]}"
    empty = f"--{BOUNDARY}--\r\n".encode()
    answers = []
    for peer in peers:
        publish_first(peer, gun)
        before = peer.versions(gun)
        assert peer.post(gun, empty) == (200, b""), peer.name
        assert peer.versions(gun) == {
            **before,
            "snapshot": before["snapshot"] + 1,  # type: ignore[operator]
            "timestamp": before["timestamp"] + 1,  # type: ignore[operator]
        }, peer.name
        answers.append(peer.post(gun + "-none", empty))
    status, body = answers[0]
    assert status == 400 and json.loads(body)["errors"][0]["detail"]["Name"] == "ErrValidation"
    assert answers[0] == answers[1]  # byte for byte


def test_notary_publish_with_nothing_staged_sends_an_empty_update(
    notar_server: NotarServer, notar_notary_cli: NotaryCLI
) -> None:
    peer = Peer("notar", notar_server.url, notar_server.ca)
    n = notar_notary_cli
    gun = f"127.0.0.1:5000/framing/cli-{uuid.uuid4().hex[:8]}"
    n.run("init", gun, "-p")
    n.run("key", "rotate", gun, "snapshot", "-r")  # docker's setup: the server signs snapshots
    n.run("addhash", gun, "1.0", "401", "--sha256", "ab" * 32, "-p")
    before = peer.versions(gun)
    n.run("publish", gun)  # nothing staged: the body has no parts
    after = peer.versions(gun)
    assert after == {
        **before,
        "snapshot": before["snapshot"] + 1,  # type: ignore[operator]
        "timestamp": before["timestamp"] + 1,  # type: ignore[operator]
    }
    assert "1.0" in n.run("list", gun).stdout
