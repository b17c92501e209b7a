"""`notar server --timestamp-key awskms:///... [--snapshot-key ...]`: the server's keys stay in KMS.

Proved against the lab KMS: a new repository's root lists the KMS key as its timestamp (and snapshot) key;
the timestamp and snapshot the server signs verify with that key (independently, cryptography over the
canonical bytes) and with the Go notary CLI from a fresh trust directory; KMS is asked once per role per
publish; the KMS private key is nowhere in the server's data; a KMS failure answers the publish with 503
and stores nothing; a key notar cannot use stops the server at start with one line; an existing
repository moves onto the KMS key when its timestamp key is rotated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notar.crypto import ecdsa_raw_to_der
from notar.encoding import b64decode, canonical_json
from tests.client.test_cli_flow import push_image
from tests.kms.support import Notar
from tests.lab import LabPKI, NotarServer, NotaryCLI, Registry, child_env, loopback_get, run_notar_server
from tests.lab.kms import KmsKey, KmsLab

pytestmark = pytest.mark.peers


def role_file(server: NotarServer, gun: str, role: str) -> dict[str, Any]:
    status, body = loopback_get(f"{server.url}/v2/{gun}/_trust/tuf/{role}.json", ca=server.ca)
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]


def kms_public(kms: KmsLab, key: KmsKey) -> ec.EllipticCurvePublicKey:
    loaded = serialization.load_der_public_key(kms.client().get_public_key(KeyId=key.key_id)["PublicKey"])
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    return loaded


def signed_by(document: dict[str, Any], public: ec.EllipticCurvePublicKey) -> list[str]:
    """Key IDs of the signatures on *document* that verify with *public* (ECDSA P-256 over canonical JSON)."""
    message = canonical_json(document["signed"])
    out = []
    for sig in document["signatures"]:
        try:
            public.verify(ecdsa_raw_to_der(b64decode(sig["sig"])), message, ec.ECDSA(hashes.SHA256()))
        except Exception:  # noqa: S112 - not this key's signature
            continue
        out.append(sig["keyid"])
    return out


def root_key_id(root: dict[str, Any], role: str) -> str:
    [kid] = root["signed"]["roles"][role]["keyids"]
    return str(kid)


def test_timestamps_and_snapshots_signed_by_kms(
    lab_pki: LabPKI, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    ts_key = kms.create_key(alias=kms.unique_alias("timestamp"))
    snap_key = kms.create_key(alias=kms.unique_alias("snapshot"))
    args = ("--timestamp-key", ts_key.uri, "--snapshot-key", f"awskms://{kms.endpoint}/{snap_key.key_id}")
    with run_notar_server(lab_pki, tmp_path / "server", extra_args=args, env=kms.env()) as server:
        repo = f"{registry.host}/kms-server/app-{uuid.uuid4().hex[:8]}"
        digest = push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", "server keys in kms")
        notar = Notar(tmp_path / "client", server.url, server.ca, kms)
        notar.run("key", "generate", "alice", "--dir", str(tmp_path))
        kms.reset()
        notar.run("signer", "add", "alice", repo, "--key", str(tmp_path / "alice.pub"))
        assert kms.calls("Sign", ts_key.alias) >= 1 and kms.calls("GetPublicKey") == 0

        root = role_file(server, repo, "root")
        ts_public, snap_public = kms_public(kms, ts_key), kms_public(kms, snap_key)
        ts_kid, snap_kid = root_key_id(root, "timestamp"), root_key_id(root, "snapshot")
        keys = root["signed"]["keys"]
        assert keys[ts_kid]["keytype"] == "ecdsa" and b64decode(
            keys[ts_kid]["keyval"]["public"]
        ) == ts_public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kms.reset()
        notar.run("sign", f"{repo}:1.0")
        assert kms.calls("Sign", ts_key.alias) == 1  # one timestamp per publish
        assert kms.calls("Sign", snap_key.key_id) == 1  # one snapshot per publish
        assert signed_by(role_file(server, repo, "timestamp"), ts_public) == [ts_kid]
        assert signed_by(role_file(server, repo, "snapshot"), snap_public) == [snap_kid]

        fresh = NotaryCLI(server.url, server.ca, tmp_path / "fresh-notary", home=tmp_path / "fresh-home")
        listing = fresh.run("list", repo).stdout
        assert "1.0" in listing and digest.split(":")[1] in listing

        # the KMS private keys are nowhere in the server's data (database, WAL, logs)
        for key in (ts_key, snap_key):
            private = kms.private_key(key)
            scalar = private.private_numbers().private_value.to_bytes(32, "big")
            der = private.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            for path in (tmp_path / "server").rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert scalar not in data and der not in data and scalar.hex().encode() not in data, path

        # KMS denies: the publish is answered 503 and nothing is stored; then it works again
        before = role_file(server, repo, "timestamp")
        push_image(registry, tmp_path, repo.split("/", 1)[1], "2.0", "server keys in kms, two")
        kms.inject("Sign", "AccessDeniedException", "AccessDeniedException", "AccessDeniedException")
        failed = notar.run("sign", f"{repo}:2.0", check=False)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert role_file(server, repo, "timestamp") == before
        assert (
            "cannot sign the" in server.log.read_text()
            and "AWS KMS denied kms:Sign" in server.log.read_text()
        )
        kms.reset()
        notar.run("sign", f"{repo}:2.0")
        assert "2.0" in fresh.run("list", repo).stdout


def test_unusable_kms_key_stops_the_server_at_start(kms: KmsLab, tmp_path: Path) -> None:
    rsa = kms.create_key("RSA_2048", alias=kms.unique_alias("rsa-ts"))
    done = subprocess.run(
        [sys.executable, "-m", "notar", "server", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"),
         "--timestamp-key", rsa.uri],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
        env=child_env(home=tmp_path, NOTAR_SERVER_KEY_PASSPHRASE="x", **kms.env()),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"--timestamp-key: KMS key {rsa.uri} is RSA_2048" in done.stderr and "Traceback" not in done.stderr


def test_existing_repository_moves_to_the_kms_key_on_rotation(
    lab_pki: LabPKI, registry: Registry, kms: KmsLab, tmp_path: Path
) -> None:
    repo = f"{registry.host}/kms-server/move-{uuid.uuid4().hex[:8]}"
    push_image(registry, tmp_path, repo.split("/", 1)[1], "1.0", "move to kms")
    workdir = tmp_path / "server"
    with run_notar_server(lab_pki, workdir) as server:
        notar = Notar(tmp_path / "client", server.url, server.ca, kms)
        notar.run("key", "generate", "alice", "--dir", str(tmp_path))
        notar.run("signer", "add", "alice", repo, "--key", str(tmp_path / "alice.pub"))
        db_kid = root_key_id(role_file(server, repo, "root"), "timestamp")
    ts_key = kms.create_key(alias=kms.unique_alias("timestamp"))
    with run_notar_server(
        lab_pki, workdir, extra_args=("--timestamp-key", ts_key.uri), env=kms.env()
    ) as server:
        notar = Notar(tmp_path / "client", server.url, server.ca, kms)
        kms.reset()
        notar.run("sign", f"{repo}:1.0")  # the root still lists the database key: it keeps signing
        assert kms.calls("Sign") == 0 and root_key_id(role_file(server, repo, "root"), "timestamp") == db_kid
        rotated = json.loads(
            notar.run("key", "rotate", repo, "timestamp", "--server-managed", "-o", "json").stdout
        )
        ts_public = kms_public(kms, ts_key)
        assert rotated["key_id"] == root_key_id(role_file(server, repo, "root"), "timestamp") != db_kid
        assert signed_by(role_file(server, repo, "timestamp"), ts_public) == [rotated["key_id"]]
        fresh = NotaryCLI(server.url, server.ca, tmp_path / "fresh-notary", home=tmp_path / "fresh-home")
        assert "1.0" in fresh.run("list", repo).stdout
