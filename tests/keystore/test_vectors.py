"""Golden tests: every key file written by notary 0.7 and docker 28 in the vectors loads, and we write
byte-identical files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from asn1crypto import core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notar.crypto import PublicKey, pem_blocks
from notar.keystore import (
    EnvPassphrases,
    FileKeyStore,
    WrongPassphraseError,
    decode_private_key,
    encode_public_key,
)
from notar.keystore._keyfile import _encode_private_key
from notar.keystore._pkcs8 import (
    _EncryptedPrivateKeyInfo,
    _Pbes2Params,
    _Pbkdf2Params,
    notary_private_key_info,
)
from tests.keystore.conftest import KEYS_EXAMPLE, LAB_ENV, VECTORS, constant, lab_passphrase, vector_tool

KEYS_JSON = json.loads((KEYS_EXAMPLE / "keys.json").read_text())
TRUST_DIRS = [VECTORS / "notary-cli/client/trust", VECTORS / "docker-cli/docker-config/trust"]


def _private_key_files() -> list[Path]:
    files = [
        *sorted(KEYS_EXAMPLE.glob("*.key")),
        *sorted(KEYS_EXAMPLE.glob("*-key.pem")),
        *sorted((VECTORS / "notary-cli/client/keys").glob("*.key")),
        *sorted((VECTORS / "notary-cli/client/keys").glob("*-key.pem")),
        *sorted((VECTORS / "docker-cli/keys").glob("*.key")),
    ]
    for trust in TRUST_DIRS:
        files.extend(sorted((trust / "private").glob("*.key")))
    return files


KEY_FILES = _private_key_files()


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def test_the_vectors_are_there() -> None:
    assert len(KEY_FILES) == 19
    assert len(list((TRUST_DIRS[0] / "private").glob("*.key"))) == 7
    assert len(list((TRUST_DIRS[1] / "private").glob("*.key"))) == 5


@pytest.mark.parametrize("path", KEY_FILES, ids=_id)
def test_every_vector_key_file_loads(path: Path) -> None:
    data = path.read_bytes()
    headers = pem_blocks(data)[0][1]
    role = headers.get("role", "")
    passphrase = lab_passphrase(path, role) if b"ENCRYPTED" in data else None
    decoded = decode_private_key(data, passphrase)

    assert decoded.role == (role or None)
    assert decoded.gun == headers.get("gun")
    assert decoded.encrypted == (passphrase is not None)
    assert decoded.key.keytype == "ecdsa"  # everything in the lab is P-256
    # gun only on targets/snapshot keys, never on root or delegation keys
    assert (decoded.gun is not None) == (role in ("targets", "snapshot"))
    if path.parent.name == "private":
        assert decoded.key.key_id == path.stem
    recorded = KEYS_JSON.get(path.name)
    if recorded is not None:
        assert recorded["passphrase"] == passphrase
        assert recorded["canonical_ecdsa_keyid"] == decoded.key.key_id
        assert sorted(f"{k}: {v}" for k, v in decoded.headers.items()) == recorded["headers"]


def test_passphrase_rules_match_the_recorded_ones() -> None:
    """keys.json names the passphrase of four files; our env rules pick the same ones."""
    for name, recorded in KEYS_JSON.items():
        path = KEYS_EXAMPLE / name
        role = pem_blocks(path.read_bytes())[0][1]["role"]
        assert lab_passphrase(path, role) == recorded["passphrase"], name
    assert vector_tool(KEYS_EXAMPLE / "docker-alice.key") == "docker"


@pytest.mark.parametrize("name", sorted(KEYS_JSON), ids=str)
def test_inner_der_matches_the_decrypted_vector(name: str) -> None:
    """What we would encrypt for the key is byte for byte what notary encrypted (version 1, SEC1 with
    parameters and public key)."""
    path = KEYS_EXAMPLE / name
    key = decode_private_key(path.read_bytes(), KEYS_JSON[name]["passphrase"]).key
    reference = (KEYS_EXAMPLE / (path.name.rsplit(".", 1)[0] + ".decrypted-pkcs8.der")).read_bytes()
    assert bytes(notary_private_key_info(key)) == reference
    # and, independently of our code: the private scalar in the reference is the one we decrypted
    sec1 = core.Sequence.load(reference)[2].native
    crypto = serialization.load_der_private_key(sec1, None)
    assert isinstance(crypto, ec.EllipticCurvePrivateKey)
    assert isinstance(key.crypto, ec.EllipticCurvePrivateKey)
    assert crypto.private_numbers().private_value == key.crypto.private_numbers().private_value


@pytest.mark.parametrize("name", sorted(KEYS_JSON), ids=str)
def test_reencrypting_with_the_same_salt_and_iv_reproduces_the_file(name: str) -> None:
    """The strongest format check: PEM headers, PBES2 structure, padding and base64 all byte-identical."""
    path = KEYS_EXAMPLE / name
    data = path.read_bytes()
    passphrase = KEYS_JSON[name]["passphrase"]
    decoded = decode_private_key(data, passphrase)
    outer = _EncryptedPrivateKeyInfo.load(pem_blocks(data)[0][2])
    pbes2 = _Pbes2Params.load(outer["encryption_algorithm"]["parameters"].dump())
    salt = _Pbkdf2Params.load(pbes2["key_derivation_func"]["parameters"].dump())["salt"].native
    iv = core.OctetString.load(pbes2["encryption_scheme"]["parameters"].dump()).native
    again = _encode_private_key(
        decoded.key, passphrase, role=decoded.role or "", gun=decoded.gun, salt=salt, iv=iv
    )
    assert again == data


@pytest.mark.parametrize(
    ("private", "public", "role"),
    [
        ("keys-example/docker-alice.key", "keys-example/docker-alice.pub", "alice"),
        ("keys-example/docker-alice.key", "docker-cli/keys/alice.pub", "alice"),
        (
            "keys-example/notary-keygen-targets-releases-key.pem",
            "keys-example/notary-keygen-targets-releases.pub.pem",
            "targets/releases",
        ),
    ],
)
def test_public_key_pem_is_byte_identical(private: str, public: str, role: str) -> None:
    priv = VECTORS / private
    key = decode_private_key(priv.read_bytes(), lab_passphrase(priv, role)).key
    written = encode_public_key(key.public_key, role=role)
    assert written == (VECTORS / public).read_bytes()
    assert PublicKey.from_pem(written).key_id == key.key_id


@pytest.mark.parametrize("trust", TRUST_DIRS, ids=lambda p: p.parent.parent.name)
def test_store_reads_the_real_trust_dirs(trust: Path) -> None:
    """FileKeyStore over the (read-only) trust dirs: list from headers, get with the tool's env rules."""
    tool: Literal["docker", "notary"] = "docker" if "docker" in trust.as_posix() else "notary"
    store = FileKeyStore(trust, EnvPassphrases(tool, environ=LAB_ENV))
    infos = store.list()
    assert sorted(i.key_id for i in infos) == sorted(p.stem for p in (trust / "private").glob("*.key"))
    for info in infos:
        key, role = store.get(info.key_id)
        assert key.key_id == info.key_id
        assert role == info.role
        header_gun = pem_blocks(info.path.read_bytes())[0][1].get("gun")
        assert info.gun == header_gun


def test_a_wrong_lab_passphrase_is_refused() -> None:
    store = FileKeyStore(TRUST_DIRS[0], constant("lab-repo-pass"))
    with pytest.raises(WrongPassphraseError) as exc:
        store.get("5c3096930728d85556b0cbb8a45505854483492e15b82ee404ba54d85e905746")
    assert "lab-repo-pass" not in str(exc.value)
