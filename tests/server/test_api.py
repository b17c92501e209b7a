"""The HTTP API in process (Starlette TestClient, real SQLite via Alembic): routes, headers, bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from notar.crypto import PrivateKey, PublicKey
from notar.encoding import GoTime
from notar.server.app import ServerSettings, create_app
from notar.server.keys import DatabaseKeyService, Secret
from notar.server.service import TrustService
from notar.server.storage import migrate, open_store
from notar.tuf import Envelope, Snapshot, Targets, Timestamp
from tests.server.tuf_builders import Repo, multipart

GUN = "example.com/team/app"
TUF = f"/v2/{GUN}/_trust/tuf/"


class Clock:
    def __init__(self) -> None:
        self.offset_days = 0

    def __call__(self) -> GoTime:
        return GoTime.now().add(days=self.offset_days)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'notar.db'}"
    migrate(url)
    store = open_store(url)
    service = TrustService(store, DatabaseKeyService(store, Secret("pw")), clock=clock)
    app = create_app(ServerSettings(max_upload_bytes=256 * 1024), service=service)
    with TestClient(app) as c:
        yield c
    store.close()


def key_of(client: TestClient, role: str, gun: str = GUN) -> PublicKey:
    r = client.get(f"/v2/{gun}/_trust/tuf/{role}.key")
    assert r.status_code == 200, r.text
    return PublicKey.from_dict(r.json())


def post(client: TestClient, files: dict[str, bytes], gun: str = GUN) -> tuple[int, dict[str, object] | None]:
    body, ctype = multipart(files)
    r = client.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})
    return r.status_code, (r.json() if r.content else None)


def error_code(payload: dict[str, object] | None) -> str:
    assert payload is not None
    return payload["errors"][0]["code"]  # type: ignore[index, no-any-return]


def docker_repo(client: TestClient, gun: str = GUN) -> Repo:
    return Repo(
        gun, timestamp_key=key_of(client, "timestamp", gun), snapshot_key=key_of(client, "snapshot", gun)
    )


def test_ping_health_metrics(client: TestClient) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200 and r.json() == {}
    assert client.get("/_notary_server/health").json() == {}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "notar_server_http_requests" in metrics.text


def test_not_found_bodies(client: TestClient) -> None:
    r = client.get(TUF + "root.json")
    assert r.status_code == 404
    assert r.content == (
        b'{"errors":[{"code":"METADATA_NOT_FOUND",'
        b'"message":"You have requested metadata that does not exist.",'
        b'"detail":{}}]}\n'
    )
    assert r.headers["content-type"].startswith("application/json")
    for method, path in (
        ("HEAD", TUF + "root.json"),
        ("GET", TUF + "root.key"),
        ("GET", "/nothing"),
        ("PUT", TUF),
        ("GET", TUF + "targets/Foo.json"),
        ("GET", TUF + "0.root.json"),
        ("GET", TUF + "1" * 5000 + ".root.json"),  # beyond int()'s digit limit
        ("GET", TUF + "99999999999.root.json"),
    ):
        assert client.request(method, path).status_code == 404, (method, path)


def test_key_endpoints(client: TestClient) -> None:
    r = client.get(TUF + "timestamp.key")
    assert list(r.json()) == ["keytype", "keyval"] and list(r.json()["keyval"]) == ["public", "private"]
    assert r.json()["keyval"]["private"] is None
    # no root yet: the same key is handed out again instead of a new one per request
    assert key_of(client, "timestamp") == key_of(client, "timestamp")
    rotated = PublicKey.from_dict(client.post(TUF + "timestamp.key").json())
    assert rotated != key_of(client, "timestamp") or rotated == key_of(client, "timestamp")
    assert client.get(TUF + "targets.key").status_code == 404


def test_docker_style_publish_and_reads(client: TestClient) -> None:
    repo = docker_repo(client)
    status, body = post(client, repo.first_publish("1.0", "odd<&>name"))
    assert status == 200 and body is None

    root = client.get(TUF + "root.json")
    assert root.status_code == 200 and repo.root is not None and root.content == repo.root.data
    assert root.headers["cache-control"] == "public, max-age=300, s-maxage=300, must-revalidate"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d UTC", root.headers["last-modified"])
    assert "etag" not in root.headers

    ts = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts.signed.version == 1
    snap_hash = ts.signed.meta["snapshot"].sha256_hex()
    by_hash = client.get(TUF + f"snapshot.{snap_hash}.json")
    assert by_hash.status_code == 200
    assert by_hash.headers["cache-control"] == "public, max-age=2592000, s-maxage=2592000"
    snap = Envelope.from_bytes(by_hash.content, expect=Snapshot)
    assert client.get(TUF + "snapshot.json").content == by_hash.content
    targets_hash = snap.signed.meta["targets"].sha256_hex()
    targets = client.get(TUF + f"targets.{targets_hash}.json")
    assert targets.status_code == 200
    assert set(Envelope.from_bytes(targets.content, expect=Targets).signed.targets) == {"1.0", "odd<&>name"}
    assert client.get(TUF + "1.root.json").content == root.content
    assert client.get(TUF + "1.targets.json").content == targets.content
    assert client.get(TUF + "2.targets.json").status_code == 404
    assert client.get(TUF + f"targets.{targets_hash.upper()}.json").status_code == 200
    assert client.get(TUF + "targets." + "0" * 64 + ".json").status_code == 404
    assert client.get(TUF + "targets." + "a" * 128 + ".json").status_code == 404  # sha512 URLs: like notary

    # a second publish: targets v2; server snapshot v2 and timestamp v2
    status, _ = post(client, {"targets": repo.sign_targets("2.0", version=2).data})
    assert status == 200
    ts2 = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts2.signed.version == 2

    feed = client.get(f"/v2/{GUN}/_trust/changefeed", params={"records": "10", "change_id": "0"}).json()
    assert feed["count"] == 2 and [r["Version"] for r in feed["records"]] == [1, 2]
    assert list(feed["records"][0]) == ["ID", "CreatedAt", "GUN", "Version", "SHA256", "Category"]
    assert (
        feed["records"][0]["ID"] == str(feed["records"][0]["ID"])
        and feed["records"][0]["Category"] == "update"
    )


def test_client_held_snapshot(client: TestClient) -> None:
    repo = Repo(GUN, timestamp_key=key_of(client, "timestamp"))
    status, _ = post(client, repo.first_publish("1.0"))
    assert status == 200
    # without a snapshot, the server cannot make one
    status, body = post(client, {"targets": repo.sign_targets("2.0", version=2).data})
    assert status == 400
    assert body == {
        "errors": [
            {
                "code": "INVALID_UPDATE",
                "message": "Update sent by the client is invalid.",
                "detail": {
                    "Name": "ErrBadHierarchy",
                    "Error": {
                        "Missing": "snapshot",
                        "Msg": "no snapshot was included in update and server does not hold "
                        "current snapshot key for repository",
                    },
                },
            }
        ]
    }


def test_bad_uploads_store_nothing(client: TestClient) -> None:
    repo = docker_repo(client)
    good = repo.first_publish("1.0")

    def expect(status: int, code: str, **kw: object) -> dict[str, object]:
        r = client.post(TUF, **kw)  # type: ignore[arg-type]
        assert r.status_code == status, r.text
        assert r.content.endswith(b"\n")
        payload = r.json()
        assert error_code(payload) == code
        return payload  # type: ignore[no-any-return]

    expect(400, "MALFORMED_UPLOAD", content=b"{}", headers={"Content-Type": "application/json"})
    expect(400, "MALFORMED_UPLOAD", content=b"")
    expect(
        400,
        "MALFORMED_UPLOAD",
        content=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    body, ctype = multipart({"": good["root"]})
    expect(400, "NO_FILENAME", content=body, headers={"Content-Type": ctype})
    body, ctype = multipart({"bogus": good["root"]})
    assert (
        expect(400, "INVALID_ROLE", content=body, headers={"Content-Type": ctype})["errors"][0]["detail"]
        == "bogus"
    )  # type: ignore[index]
    body, ctype = multipart({"targets/Upper": good["targets"]})
    expect(400, "INVALID_ROLE", content=body, headers={"Content-Type": ctype})
    body, ctype = multipart({"root": good["root"][:-10], "targets": good["targets"]})
    expect(400, "MALFORMED_JSON", content=body, headers={"Content-Type": ctype})
    body, ctype = multipart({"root": good["root"], "targets": b"[1,2]"})
    expect(400, "MALFORMED_JSON", content=body, headers={"Content-Type": ctype})
    huge = repo.sign_targets("1.0", version=2**31).data  # validly signed, beyond what storage holds
    body, ctype = multipart({"root": good["root"], "targets": huge})
    detail = expect(400, "INVALID_UPDATE", content=body, headers={"Content-Type": ctype})["errors"][0][
        "detail"
    ]  # type: ignore[index]
    assert detail["Name"] == "ErrBadTargets" and "out of range" in detail["Error"]["Msg"]  # type: ignore[index]
    body, ctype = multipart({"root": good["root"], "targets": b"[" * 40_000})  # too deep for a parser
    expect(400, "MALFORMED_JSON", content=body, headers={"Content-Type": ctype})
    body, ctype = multipart({"root": good["root"], "targets": b"x" * 300_000})
    expect(413, "TOO_LARGE", content=body, headers={"Content-Type": ctype})
    # a bad signature on targets
    tampered = good["targets"].replace(b'"version":1', b'"version":7')
    status, payload = post(client, {"root": good["root"], "targets": tampered})
    assert status == 400 and payload is not None
    assert payload["errors"][0]["detail"] == {  # type: ignore[index]
        "Name": "ErrBadTargets",
        "Error": {"Msg": "valid signatures did not meet threshold for targets"},
    }
    # targets alone, no root anywhere
    status, payload = post(client, {"targets": good["targets"]})
    assert payload is not None and payload["errors"][0]["detail"]["Name"] == "ErrValidation"  # type: ignore[index]
    # a root for another GUN
    other = Repo(
        "example.com/other",
        timestamp_key=key_of(client, "timestamp"),
        snapshot_key=key_of(client, "snapshot"),
    )
    status, payload = post(client, other.first_publish())
    assert status == 400 and payload is not None and payload["errors"][0]["detail"]["Name"] == "ErrBadRoot"  # type: ignore[index]
    # nothing of the above was stored
    assert client.get(TUF + "root.json").status_code == 404
    assert client.get("/v2/_trust/changefeed?records=10").json()["count"] == 0

    # now the good one, then a replay (rollback) and a torn update
    assert post(client, good)[0] == 200
    status, payload = post(client, good)
    assert status == 400 and error_code(payload) == "VERSION"
    new_targets = repo.sign_targets("2.0", version=2).data
    status, payload = post(
        client, {"targets": new_targets, "root": good["root"].replace(b"Root", b"Rooot", 1)}
    )
    assert status == 400
    assert Envelope.from_bytes(client.get(TUF + "targets.json").content, expect=Targets).signed.version == 1


@pytest.mark.parametrize("gun", ["a/../b", "a//b", "/abs", "a/./b", "x" * 256, "a b", "a/b/", "ä/b", "a\\b"])
def test_bad_guns(client: TestClient, gun: str) -> None:
    r = client.get(f"/v2/{gun}/_trust/tuf/root.json")
    assert r.status_code == 404
    body, ctype = multipart({"root": b"{}"})
    r = client.post(f"/v2/{gun}/_trust/tuf/", content=body, headers={"Content-Type": ctype})
    assert r.status_code in (400, 404) and r.status_code < 500


def test_changefeed_parameters(client: TestClient) -> None:
    r = client.get("/v2/_trust/changefeed")
    assert r.status_code == 400 and error_code(r.json()) == "INVALID_PARAMETERS"
    assert (
        r.json()["errors"][0]["detail"]
        == 'invalid records parameter: strconv.ParseInt: parsing "": invalid syntax'
    )
    for bad in ("records=x", "records=10&change_id=z", "records=99999999999", "records=%D9%A1"):
        assert client.get(f"/v2/_trust/changefeed?{bad}").status_code == 400
    assert client.get("/v2/_trust/changefeed?records=0").json() == {"count": 0, "records": []}


def test_delete(client: TestClient) -> None:
    repo = docker_repo(client)
    other = docker_repo(client, GUN + "x")
    assert post(client, repo.first_publish("1.0"))[0] == 200
    assert post(client, other.first_publish("1.0"), gun=GUN + "x")[0] == 200
    assert client.delete(TUF).status_code == 200
    assert client.get(TUF + "root.json").status_code == 404
    assert client.get(f"/v2/{GUN}x/_trust/tuf/root.json").status_code == 200  # not a prefix delete
    feed = client.get("/v2/_trust/changefeed?records=-1&change_id=-1").json()
    assert feed["records"][0]["Category"] == "deletion" and feed["records"][0]["Version"] == 0
    assert client.delete(TUF).status_code == 200  # idempotent


def test_expired_timestamp_and_snapshot_are_resigned_on_read(client: TestClient, clock: Clock) -> None:
    repo = docker_repo(client)
    assert post(client, repo.first_publish("1.0"))[0] == 200
    ts1 = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    clock.offset_days = 15  # timestamp (14 days) expired, snapshot (3 years) not
    ts2 = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts2.signed.version == ts1.signed.version + 1
    assert ts2.signed.meta["snapshot"].hashes == ts1.signed.meta["snapshot"].hashes
    assert client.get(TUF + "timestamp.json").content == ts2.data  # not re-signed again
    clock.offset_days = 3 * 365 + 30  # snapshot expired too (root still valid)
    ts3 = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts3.signed.version == ts2.signed.version + 1
    snap = Envelope.from_bytes(client.get(TUF + "snapshot.json").content, expect=Snapshot)
    assert snap.signed.version == 2 and not snap.signed.is_expired(clock())


def test_only_timestamp_part_is_ignored(client: TestClient) -> None:
    repo = docker_repo(client)
    assert post(client, repo.first_publish("1.0"))[0] == 200
    status, _ = post(
        client, {"timestamp": b'{"signed":{"_type":"Timestamp","version":99,"expires":"x"},"signatures":[]}'}
    )
    assert status == 200
    ts = Envelope.from_bytes(client.get(TUF + "timestamp.json").content, expect=Timestamp)
    assert ts.signed.version == 2  # the server's own, not the uploaded one


def test_delegation_publish(client: TestClient) -> None:
    repo = docker_repo(client)
    signer = PrivateKey.generate()
    repo.delegate("targets/releases", signer)
    assert post(client, repo.first_publish())[0] == 200
    from notar.tuf import new_targets

    rel = new_targets(now=GoTime.now(), role="targets/releases")
    from notar.tuf import FileMeta

    rel.targets["1.0"] = FileMeta(1, {"sha256": bytes(32)})
    assert post(client, {"targets/releases": Envelope.sign(rel, [signer]).data})[0] == 200
    # signed by the wrong key
    rel.version = 2
    status, payload = post(client, {"targets/releases": Envelope.sign(rel, [PrivateKey.generate()]).data})
    assert status == 400 and payload is not None
    assert payload["errors"][0]["detail"]["Name"] == "ErrBadTargets"  # type: ignore[index]
    # a delegation nobody delegated to
    status, payload = post(client, {"targets/nobody": Envelope.sign(rel, [signer]).data})
    assert status == 400 and "delegation does not exist" in json.dumps(payload)
