"""Metadata that notar creates and signs is accepted by the real notary-server and read by `notary list`.

The second case is the strict one: with a server-managed snapshot, Go notary-server hashes its own
re-serialisation of our files. Our bytes must equal Go's, or clients cannot fetch them by hash.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest

from notar.client.remote import encode_update
from notar.crypto import PrivateKey, PublicKey, make_root_certificate
from notar.encoding import GoTime
from notar.tuf import (
    DelegatedRole,
    Envelope,
    FileMeta,
    RoleKeys,
    Root,
    Snapshot,
    Targets,
    Timestamp,
    check_hashes,
    delegated_role_keys,
    new_root,
    new_snapshot,
    new_targets,
    verify_root,
    verify_signatures,
)
from tests.lab import NotaryCLI, NotaryServer

pytestmark = pytest.mark.peers

DIGEST = bytes.fromhex("64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc")
# A name with every character Go's encoder HTML-escapes in files but not in signed bytes.
ODD_NAME = "odd<&>\u2028name"


class Server:
    def __init__(self, server: NotaryServer, gun: str) -> None:
        self.base = f"{server.url}/v2/{gun}/_trust/tuf/"
        self.ctx = ssl.create_default_context(cafile=str(server.ca))

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:  # noqa: S310 (https only)
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def key(self, role: str) -> PublicKey:
        status, body = self.request("GET", f"{role}.key")
        assert status == 200, body
        return PublicKey.from_dict(json.loads(body))

    def publish_raw(self, files: dict[str, bytes]) -> tuple[int, bytes]:
        """POST one multipart update, one part per role, as the Go client sends it."""
        body, content_type = encode_update(files)
        return self.request("POST", "", body, {"Content-Type": content_type})

    def publish(self, files: dict[str, bytes]) -> None:
        status, resp = self.publish_raw(files)
        assert status == 200, resp

    def get(self, path: str) -> bytes:
        status, body = self.request("GET", path)
        assert status == 200, (path, body)
        return body


def target(length: int = 401) -> FileMeta:
    return FileMeta(length, {"sha256": DIGEST})


def fresh_gun(name: str) -> str:
    return f"127.0.0.1:5000/notar-interop/{name}-{uuid.uuid4().hex[:8]}"


def verify_served_repo(server: Server, gun: str, delegations: list[str]) -> dict[str, Targets]:
    """Walk the served repository with notar's own checks, fetching by hash like the Go client."""
    now = GoTime.now()
    root = Envelope.from_bytes(server.get("root.json"), expect=Root)
    verify_root(root, gun, now=now)
    ts = Envelope.from_bytes(server.get("timestamp.json"), expect=Timestamp)
    verify_signatures(ts, RoleKeys.from_root(root.signed, "timestamp"))
    snap_meta = ts.signed.meta["snapshot"]
    snap_bytes = server.get(f"snapshot.{snap_meta.sha256_hex()}.json")
    check_hashes(snap_bytes, snap_meta, "snapshot", check_length=True)
    snap = Envelope.from_bytes(snap_bytes, expect=Snapshot)
    verify_signatures(snap, RoleKeys.from_root(root.signed, "snapshot"))
    check_hashes(root.data, snap.signed.meta["root"], "root", check_length=True)
    trusted: dict[str, Targets] = {}
    for role in ["targets", *delegations]:
        meta = snap.signed.meta[role]
        data = server.get(f"{role}.{meta.sha256_hex()}.json")  # 404 here = hashes over other bytes
        check_hashes(data, meta, role, check_length=True)
        env = Envelope.from_bytes(data, expect=Targets, role=role)
        keys = (
            RoleKeys.from_root(root.signed, role) if role == "targets" else delegated_role_keys(role, trusted)
        )
        verify_signatures(env, keys)
        trusted[role] = env.signed
    return trusted


def test_client_held_snapshot_round_trip(notary_server: NotaryServer, notary_cli: NotaryCLI) -> None:
    gun = fresh_gun("client-snapshot")
    server = Server(notary_server, gun)
    now = GoTime.now()
    keys = {r: PrivateKey.generate() for r in ("root", "targets", "snapshot")}
    cert = make_root_certificate(keys["root"], gun, now=datetime.now(UTC))
    root = Envelope.sign(
        new_root(
            {
                "root": [cert],
                "targets": [keys["targets"].public_key],
                "snapshot": [keys["snapshot"].public_key],
                "timestamp": [server.key("timestamp")],
            },
            now=now,
        ),
        [(keys["root"], cert.key_id)],
    )
    body = new_targets(now=now)
    body.targets["1.0"] = target()
    body.targets[ODD_NAME] = target(7)
    targets = Envelope.sign(body, [keys["targets"]])
    snapshot = Envelope.sign(new_snapshot({"root": root, "targets": targets}, now=now), [keys["snapshot"]])
    server.publish({"root": root.data, "targets": targets.data, "snapshot": snapshot.data})

    assert server.get("root.json") == root.data
    assert server.get("targets.json") == targets.data
    verify_served_repo(server, gun, [])

    listing = notary_cli.run("list", gun).stdout
    assert "1.0" in listing and DIGEST.hex() in listing and "401" in listing
    assert ODD_NAME in listing


def test_server_managed_snapshot_with_delegation(notary_server: NotaryServer, notary_cli: NotaryCLI) -> None:
    """Like `docker trust signer add` + sign: server-held snapshot, delegation `targets/releases`."""
    gun = fresh_gun("server-snapshot")
    server = Server(notary_server, gun)
    now = GoTime.now()
    root_key, targets_key, signer = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    cert = make_root_certificate(root_key, gun, now=datetime.now(UTC))
    root = Envelope.sign(
        new_root(
            {
                "root": [cert],
                "targets": [targets_key.public_key],
                "snapshot": [server.key("snapshot")],
                "timestamp": [server.key("timestamp")],
            },
            now=now,
        ),
        [(root_key, cert.key_id)],
    )
    top = new_targets(now=now)
    top.delegations.keys[signer.key_id] = signer.public_key
    top.delegations.roles.append(DelegatedRole("targets/releases", [signer.key_id], 1, [""]))
    releases = new_targets(now=now, role="targets/releases")
    releases.targets["1.0"] = target()
    releases.targets[ODD_NAME] = target(9)
    targets_env = Envelope.sign(top, [targets_key])
    releases_env = Envelope.sign(releases, [signer])
    server.publish({"root": root.data, "targets": targets_env.data, "targets/releases": releases_env.data})

    trusted = verify_served_repo(server, gun, ["targets/releases"])
    assert set(trusted["targets/releases"].targets) == {"1.0", ODD_NAME}

    listing = notary_cli.run("list", gun, "-r", "targets/releases").stdout
    assert "1.0" in listing and ODD_NAME in listing and "targets/releases" in listing
    # a second publish: a new version of the delegation only
    releases.version = 2
    releases.targets["2.0"] = target(5)
    server.publish({"targets/releases": Envelope.sign(releases, [signer]).data})
    assert "2.0" in notary_cli.run("list", gun, "-r", "targets/releases").stdout


def test_server_rejects_tampered_and_replayed(notary_server: NotaryServer) -> None:
    """Sanity check of the peer itself: our signatures are really checked by Go."""
    gun = fresh_gun("reject")
    server = Server(notary_server, gun)
    now = GoTime.now()
    root_key, targets_key = PrivateKey.generate(), PrivateKey.generate()
    cert = make_root_certificate(root_key, gun, now=datetime.now(UTC))
    root = Envelope.sign(
        new_root(
            {
                "root": [cert],
                "targets": [targets_key.public_key],
                "snapshot": [server.key("snapshot")],
                "timestamp": [server.key("timestamp")],
            },
            now=now,
        ),
        [(root_key, cert.key_id)],
    )
    body = new_targets(now=now)
    targets = Envelope.sign(body, [targets_key])
    tampered = targets.data.replace(
        b'"targets":{}', b'"targets":{"x":{"hashes":{"sha256":"' + b"A" * 43 + b'="},"length":1}}'
    )
    status, resp = server.publish_raw({"root": root.data, "targets": tampered})
    assert status == 400
    assert json.loads(resp)["errors"][0]["detail"]["Name"] == "ErrBadTargets"
    server.publish({"root": root.data, "targets": targets.data})
    status, resp = server.publish_raw({"root": root.data, "targets": targets.data})
    assert status == 400 and json.loads(resp)["errors"][0]["code"] == "VERSION"
