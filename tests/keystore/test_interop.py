"""Interoperability with the real Go tools: notary 0.7 (CLI + server) and the docker 28 CLI.

These start real processes (see tests/lab) and are marked ``peers``.
"""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from notar.crypto import PrivateKey, pem_blocks
from notar.encoding import b64decode, canonical_json
from notar.keystore import (
    DOCKER_REPOSITORY_PASSPHRASE_ENV,
    EnvPassphrases,
    FileKeyStore,
    decode_private_key,
    encode_private_key,
    encode_public_key,
)
from notar.keystore._pkcs8 import decrypt_pbes2, notary_private_key_info
from tests.lab import NotaryCLI, NotaryServer, child_env, loopback_get

pytestmark = pytest.mark.peers

DIGEST = "64385ab5b87b1fa6978db8c8822100c08058a5857e90dcd5962f2a5434d86cdc"  # the lab image manifest
DOCKER = "/usr/local/bin/docker"


def _store(cli: NotaryCLI) -> FileKeyStore:
    """Our store over the notary CLI's trust dir, with exactly the passphrases the CLI sees."""
    return FileKeyStore(cli.trust_dir, EnvPassphrases("notary", environ=cli.env()))


def test_notary_publishes_with_a_delegation_key_made_by_notar(
    notary_cli: NotaryCLI, notary_server: NotaryServer, tmp_path: Path
) -> None:
    gun = "127.0.0.1:5000/notar/keystore-interop"
    store = _store(notary_cli)
    key = PrivateKey.generate("ecdsa")
    path = store.add(key, role="targets/releases", gun=gun)  # the gun is dropped for delegation keys
    assert pem_blocks(path.read_bytes())[0][1] == {"role": "targets/releases"}
    pub = tmp_path / "releases.pem"
    pub.write_bytes(encode_public_key(key.public_key, role="targets/releases"))

    notary_cli.run("init", gun, "-p")
    out = notary_cli.run("delegation", "add", gun, "targets/releases", str(pub), "--all-paths", "-p").stdout
    assert key.key_id in out
    notary_cli.run("addhash", gun, "1.0", "401", "--sha256", DIGEST, "-r", "targets/releases", "-p")
    listing = notary_cli.run("list", gun, "-r", "targets/releases").stdout
    line = next(line for line in listing.splitlines() if line.split()[:1] == ["1.0"])
    assert line.split() == ["1.0", DIGEST, "401", "targets/releases"]

    # notary lists our key with its role, from the file's headers
    keys_out = notary_cli.run("key", "list").stdout
    ours = next(line for line in keys_out.splitlines() if key.key_id in line)
    assert "targets/releases" in ours

    # what the server now serves for the delegation is signed by our key, and only by it
    status, body = loopback_get(
        f"{notary_server.url}/v2/{gun}/_trust/tuf/targets/releases.json", ca=notary_server.ca
    )
    assert status == 200
    doc = json.loads(body)
    assert "1.0" in doc["signed"]["targets"]
    assert [s["keyid"] for s in doc["signatures"]] == [key.key_id]
    sig = doc["signatures"][0]
    assert key.public_key.verify(canonical_json(doc["signed"]), b64decode(sig["sig"]), sig["method"])

    # and the keys notary made for this repository are readable by our store with notary's env rules
    infos = {i.key_id: i for i in store.list()}
    roles = sorted((i.role, i.gun) for i in infos.values())
    assert roles == [("root", None), ("snapshot", gun), ("targets", gun), ("targets/releases", None)]
    fresh = _store(notary_cli)
    for kid, info in infos.items():
        loaded, role = fresh.get(kid)
        assert loaded.key_id == kid and role == info.role


@pytest.mark.parametrize(
    ("keytype", "role", "gun"),
    [
        ("ecdsa", "targets", "127.0.0.1:5000/notar/passwd"),
        ("rsa", "root", None),
        ("ed25519", "targets/releases", None),
    ],
)
def test_notary_decrypts_and_rewrites_our_key_files(
    notary_cli: NotaryCLI, keys: dict[str, PrivateKey], keytype: str, role: str, gun: str | None
) -> None:
    """``notary key passwd`` must parse our file (every key type) and writes its own; both agree."""
    key = keys[keytype]
    store = _store(notary_cli)
    path = store.add(key, role=role, gun=gun)
    ours = path.read_bytes()
    out = notary_cli.run("key", "passwd", key.key_id).stdout
    assert f"Successfully updated passphrase for key ID: {key.key_id}" in out
    theirs = path.read_bytes()
    assert theirs != ours  # re-encrypted by Go with a fresh salt and IV
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    passphrase = notary_cli.passphrases[role if role in ("root", "targets", "snapshot") else "delegation"]
    decoded = decode_private_key(theirs, passphrase)
    assert decoded.key.key_id == key.key_id
    assert (decoded.role, decoded.gun) == (role, gun)
    assert pem_blocks(theirs)[0][1] == pem_blocks(ours)[0][1]
    # Go's plaintext is byte for byte the one we encrypt: same inner PKCS#8 for every key type
    plaintext = decrypt_pbes2(pem_blocks(theirs)[0][2], passphrase.encode())
    assert bytes(plaintext) == bytes(notary_private_key_info(key))


def _docker(tmp_path: Path, *args: str, passphrase: str) -> subprocess.CompletedProcess[str]:
    env = child_env(
        home=tmp_path,
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
        **{DOCKER_REPOSITORY_PASSPHRASE_ENV: passphrase},
    )
    result = subprocess.run(
        [DOCKER, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("keytype", ["ecdsa", "rsa", "ed25519"])
def test_docker_trust_key_load_reads_our_plain_key(
    tmp_path: Path, keys: dict[str, PrivateKey], keytype: str
) -> None:
    key = keys[keytype]
    src = tmp_path / "carol.pem"
    src.write_bytes(encode_private_key(key, None, role="carol"))
    src.chmod(0o600)
    out = _docker(
        tmp_path, "trust", "key", "load", str(src), "--name", "carol", passphrase="docker-repo-pass"
    )
    assert "Successfully imported key" in out.stdout

    written = tmp_path / "docker-config/trust/private" / f"{key.key_id}.key"
    assert written.is_file(), sorted(p.name for p in written.parent.iterdir())
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert pem_blocks(written.read_bytes())[0][1] == {"role": "carol"}

    env = {DOCKER_REPOSITORY_PASSPHRASE_ENV: "docker-repo-pass"}
    loaded, role = FileKeyStore(tmp_path / "docker-config/trust", EnvPassphrases("docker", environ=env)).get(
        key.key_id
    )
    assert (loaded.key_id, role) == (key.key_id, "carol")
    plaintext = decrypt_pbes2(pem_blocks(written.read_bytes())[0][2], b"docker-repo-pass")
    assert bytes(plaintext) == bytes(notary_private_key_info(key))


def test_docker_key_load_keeps_a_role_header_over_name(tmp_path: Path, keys: dict[str, PrivateKey]) -> None:
    """Quirk worth knowing: ``--name`` is only a fallback; a ``role:`` (and ``gun:``) header in the input
    wins. ``FileKeyStore.import_key`` always uses the role it is given."""
    key = keys["ecdsa"]
    src = tmp_path / "k.pem"
    src.write_bytes(encode_private_key(key, None, role="zed"))
    src.chmod(0o600)
    _docker(tmp_path, "trust", "key", "load", str(src), "--name", "carol", passphrase="docker-repo-pass")
    written = tmp_path / "docker-config/trust/private" / f"{key.key_id}.key"
    assert pem_blocks(written.read_bytes())[0][1] == {"role": "zed"}
