"""The real Go notary 0.7 CLI runs its whole flow against `notar server` (TLS, SQLite)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.lab import NotarServer, NotaryCLI

pytestmark = pytest.mark.peers

DIGEST = "64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc"
SIZE = "401"


def alice_key_and_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "alice.key", directory / "alice.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_whole_notary_flow(notar_server: NotarServer, notar_notary_cli: NotaryCLI, tmp_path: Path) -> None:
    n = notar_notary_cli
    gun = f"127.0.0.1:5000/notar/flow-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "keys"
    keys.mkdir()

    n.run("init", gun, "-p")
    n.run("addhash", gun, "1.0", SIZE, "--sha256", DIGEST)
    assert "1.0" in n.run("status", gun).stdout
    n.run("publish", gun)
    listing = n.run("list", gun).stdout
    assert "1.0" in listing and DIGEST in listing and "targets" in listing
    assert DIGEST in n.run("lookup", gun, "1.0").stdout

    # add by file, verify by file
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(b'{"schemaVersion":2}')
    n.run("add", gun, "by-file", str(manifest), "-p")
    n.run("verify", gun, "by-file", "-i", str(manifest), "-q")

    # delegation from a PUBLIC KEY pem; its private key goes into the trust dir by hand (as in the lab)
    n.run("key", "generate", "ecdsa", "--role", "targets/releases", "-o", str(keys / "releases"))
    out = n.run(
        "delegation", "add", gun, "targets/releases", str(keys / "releases.pem"), "--all-paths"
    ).stdout
    rel_id = re.search(r"with keys \[([0-9a-f]{64})\]", out)
    assert rel_id, out
    (n.trust_dir / "private" / f"{rel_id.group(1)}.key").write_bytes((keys / "releases-key.pem").read_bytes())
    # delegation from an X.509 certificate, private key imported
    alice_key, alice_crt = alice_key_and_cert(keys)
    n.run("key", "import", str(alice_key), "--role", "targets/alice")
    n.run("delegation", "add", gun, "targets/alice", str(alice_crt), "--all-paths")
    n.run("publish", gun)
    delegations = n.run("delegation", "list", gun).stdout
    assert "targets/releases" in delegations and "targets/alice" in delegations

    n.run("addhash", gun, "1.0", SIZE, "--sha256", DIGEST, "-r", "targets/releases")
    n.run("addhash", gun, "1.0", SIZE, "--sha256", DIGEST, "-r", "targets/alice")
    n.run("publish", gun)
    assert "targets/releases" in n.run("list", gun, "-r", "targets/releases").stdout
    assert "targets/alice" in n.run("list", gun, "-r", "targets/alice").stdout

    # snapshot key to server-managed, then witness and remove (server signs the snapshots now)
    n.run("key", "rotate", gun, "snapshot", "-r")
    n.run("witness", gun, "targets/releases", "-p")
    n.run("remove", gun, "1.0", "-r", "targets/alice", "-p")
    assert "1.0" not in n.run("list", gun, "-r", "targets/alice").stdout

    # staged changes and reset stay local
    n.run("addhash", gun, "to-be-reset", SIZE, "--sha256", DIGEST)
    n.run("reset", gun, "--all")
    assert "to-be-reset" not in n.run("status", gun).stdout

    # rotate the targets key, then the root key (root v2 signed by old and new keys)
    n.run("key", "rotate", gun, "targets")
    out = n.run("key", "rotate", gun, "root", input="yes\n")
    assert "Aborting" not in out.stdout + out.stderr
    final = n.run("list", gun).stdout
    assert "1.0" in final and "by-file" in final

    # a fresh client trusts the rotated root on first use and sees the same targets
    fresh = NotaryCLI(notar_server.url, notar_server.ca, tmp_path / "fresh", home=tmp_path / "fresh-home")
    assert fresh.run("list", gun).stdout.split() == final.split()

    # a second repository, deleted remotely
    tmp_gun = gun + "-tmp"
    n.run("init", tmp_gun, "-p")
    assert "No targets present" in n.run("list", tmp_gun).stdout + n.run("list", tmp_gun).stderr
    n.run("delete", tmp_gun, "--remote")
    gone = fresh.run("list", tmp_gun, check=False)
    assert gone.returncode != 0
    assert "does not have trust data" in gone.stderr + gone.stdout
    # deleting one repository left the other alone
    assert fresh.run("list", gun).stdout.split() == final.split()
