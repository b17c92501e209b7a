"""Red-team finding: a truncated multipart update (no closing boundary) got 200 and published nothing.

python-multipart drops an unterminated last part without an error, so the update went through without it:
targets unchanged, yet a new snapshot and timestamp were signed. Now the body must be complete (closing
``--boundary--`` delimiter, every part terminated), else 400 MALFORMED_UPLOAD and nothing is stored.

The empty update (a complete body without parts) stays valid, as in Go's notary-server: it is what
``notary publish`` sends with nothing staged when the server holds the snapshot key, and the server answers
it by signing and storing a new snapshot and timestamp (so its 200 is true). tests/server/
test_upload_framing_peers.py shows both behaviours side by side with the real Go notary-server.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notar.crypto import PublicKey
from notar.server.app import ServerSettings, create_app
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from notar.tuf import Envelope, Snapshot, Targets, Timestamp
from tests.server.tuf_builders import Repo, multipart

GUN = "example.com/team/framing"
TUF = f"/v2/{GUN}/_trust/tuf/"
BOUNDARY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"  # as long as Go's
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")))
    with TestClient(create_app(ServerSettings(), service=service)) as c:
        yield c
    store.close()


def server_key(client: TestClient, role: str, gun: str = GUN) -> PublicKey:
    r = client.get(f"/v2/{gun}/_trust/tuf/{role}.key")
    assert r.status_code == 200, r.text
    return PublicKey.from_dict(r.json())


def published_repo(client: TestClient, *, server_snapshot: bool = True, gun: str = GUN) -> Repo:
    """A repository published with target 1.0 (docker style: the server holds the snapshot key)."""
    snapshot_key = server_key(client, "snapshot", gun) if server_snapshot else None
    repo = Repo(gun, timestamp_key=server_key(client, "timestamp", gun), snapshot_key=snapshot_key)
    body, ctype = multipart(repo.first_publish("1.0"), boundary=BOUNDARY)
    r = client.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    return repo


def state(client: TestClient, gun: str = GUN) -> dict[str, object]:
    """Everything an update could change: current versions, target names, changefeed length."""
    tuf = f"/v2/{gun}/_trust/tuf/"
    targets = Envelope.from_bytes(client.get(tuf + "targets.json").content, expect=Targets).signed
    snapshot = Envelope.from_bytes(client.get(tuf + "snapshot.json").content, expect=Snapshot).signed
    timestamp = Envelope.from_bytes(client.get(tuf + "timestamp.json").content, expect=Timestamp).signed
    feed = client.get("/v2/_trust/changefeed?records=1000").json()
    return {
        "targets": (targets.version, sorted(targets.targets)),
        "snapshot": snapshot.version,
        "timestamp": timestamp.version,
        "changes": feed["count"],
    }


def post_raw(client: TestClient, body: bytes, ctype: str = CTYPE, gun: str = GUN) -> tuple[int, str | None]:
    """POST an update body; the status and the errcode (None for an empty 200 answer)."""
    r = client.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})
    if r.status_code == 200:
        assert r.content == b""
        return 200, None
    assert r.headers["content-type"].startswith("application/json"), r.text
    assert r.content.endswith(b"\n")
    return r.status_code, str(r.json()["errors"][0]["code"])


def targets_part(data: bytes, role: str = "targets") -> bytes:
    """One part as the Go client writes it, from its delimiter line to the end of its data."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data


def test_truncated_upload_is_refused_and_stores_nothing(client: TestClient) -> None:
    repo = published_repo(client)
    before = state(client)
    assert before == {"targets": (1, ["1.0"]), "snapshot": 1, "timestamp": 1, "changes": 1}
    part = targets_part(repo.sign_targets("2.0", version=2).data)
    close = f"\r\n--{BOUNDARY}".encode()
    for cut in (
        part,  # the red-team body: a complete targets part, no closing boundary
        part + b"\r\n",
        part + close,  # a delimiter, but neither "--" nor a next part
        part + close + b"-",  # half a closing delimiter
        part + close + b"\r\n",  # a next part begun, no headers
        part + close + b'\r\nContent-Disposition: form-data; name="files"; filename="root"',  # in its headers
        part[:-40],  # inside the part's data
    ):
        assert post_raw(client, cut) == (400, "MALFORMED_UPLOAD"), cut[-60:]
        assert state(client) == before
    # the same part, properly closed, is a valid update: only the framing was wrong
    assert post_raw(client, part + close + b"--\r\n") == (200, None)
    assert state(client) == {"targets": (2, ["1.0", "2.0"]), "snapshot": 2, "timestamp": 2, "changes": 2}


def test_every_truncation_of_a_first_publish_is_a_4xx(client: TestClient) -> None:
    repo = Repo(
        GUN, timestamp_key=server_key(client, "timestamp"), snapshot_key=server_key(client, "snapshot")
    )
    body, ctype = multipart(repo.first_publish("1.0"), boundary=BOUNDARY)
    assert body.endswith(f"\r\n--{BOUNDARY}--\r\n".encode())
    for n in range(len(body) - len(f"--{BOUNDARY}--\r\n") + 2):  # every cut before the closing "--"
        status, code = post_raw(client, body[:n], ctype)
        assert 400 <= status < 500 and code is not None, (n, status)
    assert client.get("/v2/_trust/changefeed?records=10").json()["count"] == 0
    assert client.get(TUF + "root.json").status_code == 404
    # only the closing delimiter's line end may be missing (and an epilogue may follow, RFC 2046)
    closed = body[: -len("\r\n")]
    assert post_raw(client, closed, ctype) == (200, None)


def test_epilogue_and_transport_padding_are_accepted(client: TestClient) -> None:
    repo = published_repo(client)
    part = targets_part(repo.sign_targets("2.0", version=2).data)
    body = part + f"\r\n--{BOUNDARY}--\r\nan epilogue, ignored\r\n".encode()
    assert post_raw(client, body) == (200, None)
    assert state(client)["targets"] == (2, ["1.0", "2.0"])


def test_part_without_filename_is_no_filename(client: TestClient) -> None:
    """Go answers NO_FILENAME for a part without a filename; it used to be skipped (and the update ran)."""
    published_repo(client)
    before = state(client)
    field = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n'
    assert post_raw(client, field.encode()) == (400, "NO_FILENAME")
    no_headers = f"--{BOUNDARY}\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n"
    assert post_raw(client, no_headers.encode()) == (400, "NO_FILENAME")
    assert state(client) == before


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"--x--\r\n", "multipart/form-data"),  # no boundary parameter
        (b"----\r\n", 'multipart/form-data; boundary=""'),
        (f"--{'b' * 300}--\r\n".encode(), f"multipart/form-data; boundary={'b' * 300}"),  # > 256 characters
        (b"--x--\r\n", "multipart/mixed; boundary=x"),
        (b"--x--\r\n", "text/plain; boundary=x"),
        (b"preamble\r\n--x--\r\n", "multipart/form-data; boundary=x"),
        (
            b"--x\nContent-Disposition: form-data; filename=root\n\n{}\n--x--\n",
            "multipart/form-data; boundary=x",
        ),
        (b"--x\r\nnot a header\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data; boundary=x"),
        (b"--x\r\n: empty name\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data; boundary=x"),
        (b"--y--\r\n", "multipart/form-data; boundary=x"),  # another boundary
        (b"\r\n\r\n", "multipart/form-data; boundary=x"),
        (b"", "multipart/form-data; boundary=x"),
        (b"--x\r\nX: " + b"h" * 20_000 + b"\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    ],
)
def test_malformed_bodies_are_malformed_upload(client: TestClient, body: bytes, ctype: str) -> None:
    published_repo(client)
    before = state(client)
    assert post_raw(client, body, ctype) == (400, "MALFORMED_UPLOAD")
    assert state(client) == before


def test_empty_update_resigns_snapshot_and_timestamp_like_notary(client: TestClient) -> None:
    """A complete body with no parts: Go's notary-server accepts it (see the module docstring)."""
    empty = f"--{BOUNDARY}--\r\n".encode()
    # server-held snapshot key: a new snapshot and timestamp are signed and stored, and only they
    published_repo(client)
    before = state(client)
    assert post_raw(client, empty) == (200, None)
    after = state(client)
    assert after == {**before, "snapshot": 2, "timestamp": 2, "changes": 2}
    snapshot = Envelope.from_bytes(client.get(TUF + "snapshot.json").content, expect=Snapshot)
    ts = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts.signed.meta["snapshot"].sha256_hex() == hashlib.sha256(snapshot.data).hexdigest()
    # client-held snapshot key: the server cannot sign one, so nothing is published (notary's answer)
    other = f"example.com/team/framing-{uuid.uuid4().hex[:6]}"
    published_repo(client, server_snapshot=False, gun=other)
    before = state(client, other)
    r = client.post(f"/v2/{other}/_trust/tuf/", content=empty, headers={"Content-Type": CTYPE})
    assert r.status_code == 400 and r.json()["errors"][0]["detail"]["Name"] == "ErrBadHierarchy"
    assert state(client, other) == before
    # no repository at all: notary's ErrValidation, nothing stored
    r = client.post("/v2/example.com/none/_trust/tuf/", content=empty, headers={"Content-Type": CTYPE})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "code": "INVALID_UPDATE",
        "message": "Update sent by the client is invalid.",
        "detail": {
            "Name": "ErrValidation",
            "Error": {"Msg": "no pre-existing root and no root provided in update."},
        },
    }
    assert client.get("/v2/example.com/none/_trust/tuf/root.json").status_code == 404
