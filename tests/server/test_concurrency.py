"""20 publishers race on one repository of a real `notar server`: no update is lost or torn."""

from __future__ import annotations

import ssl
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from notar.crypto import PublicKey
from notar.tuf import Envelope, FileMeta, Targets, Timestamp
from tests.lab import NotarServer
from tests.server.tuf_builders import DIGEST, Repo, multipart

pytestmark = pytest.mark.peers

PUBLISHERS = 20


def test_concurrent_publishers(notar_server: NotarServer) -> None:
    gun = f"127.0.0.1:5000/notar/race-{uuid.uuid4().hex[:8]}"
    base = f"{notar_server.url}/v2/{gun}/_trust/tuf/"
    with httpx.Client(verify=ssl.create_default_context(cafile=notar_server.ca), timeout=30) as http:
        keys = {r: PublicKey.from_dict(http.get(base + f"{r}.key").json()) for r in ("timestamp", "snapshot")}
        repo = Repo(gun, timestamp_key=keys["timestamp"], snapshot_key=keys["snapshot"])
        body, ctype = multipart(repo.first_publish())
        assert http.post(base, content=body, headers={"Content-Type": ctype}).status_code == 200

    statuses: list[int] = []
    lock = threading.Lock()

    def publisher(i: int) -> int:
        attempts = 0
        with httpx.Client(verify=ssl.create_default_context(cafile=notar_server.ca), timeout=30) as http:
            while True:
                attempts += 1
                assert attempts < 200, "publisher starved"
                current = Envelope.from_bytes(http.get(base + "targets.json").content, expect=Targets)
                body_t = current.signed
                body_t.targets[f"tag-{i}"] = FileMeta(401, {"sha256": DIGEST})
                body_t.version += 1
                signed = Envelope.sign(body_t, [repo.targets_key])
                payload, ctype = multipart({"targets": signed.data})
                r = http.post(base, content=payload, headers={"Content-Type": ctype})
                with lock:
                    statuses.append(r.status_code)
                if r.status_code == 200:
                    return attempts
                assert r.status_code == 400 and r.json()["errors"][0]["code"] == "VERSION", r.text

    with ThreadPoolExecutor(PUBLISHERS) as pool:
        attempts = list(pool.map(publisher, range(PUBLISHERS)))

    assert all(s in (200, 400) for s in statuses), statuses
    assert statuses.count(200) == PUBLISHERS
    with httpx.Client(verify=ssl.create_default_context(cafile=notar_server.ca), timeout=30) as http:
        final = Envelope.from_bytes(http.get(base + "targets.json").content, expect=Targets)
        assert set(final.signed.targets) == {f"tag-{i}" for i in range(PUBLISHERS)}
        assert final.signed.version == PUBLISHERS + 1
        for version in range(1, PUBLISHERS + 2):  # every accepted version is stored, no gaps
            assert http.get(base + f"{version}.targets.json").status_code == 200
        ts = Envelope.from_bytes(http.get(base + "timestamp.json").content, expect=Timestamp)
        assert ts.signed.version == PUBLISHERS + 1
        feed = http.get(f"{notar_server.url}/v2/{gun}/_trust/changefeed", params={"records": 100}).json()
        assert [r["Version"] for r in feed["records"]] == list(range(1, PUBLISHERS + 2))
    assert max(attempts) > 1  # there really was contention
