"""KMS references in the trust directory (private/<key ID>.kms): stored, read, listed, guarded; invisible
to the Go notary CLI; found by key ID through the client's default key source without any KMS call."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from notar.client import ChainedKeys, MemoryKeys, ReferencedKeys, trust_dir_keys
from notar.crypto import PrivateKey, PublicKey
from notar.keystore import CallbackPassphrases, FileKeyStore, KeyExistsError, KeyFileError
from notar.kms import KmsSigner
from tests.lab.process import child_env

URI = "awskms:///alias/release-signer"


def store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "trust", CallbackPassphrases(lambda _k, _a: "pass"))


def public() -> PublicKey:
    return PublicKey.from_crypto(ec.generate_private_key(ec.SECP256R1()).public_key())


def test_add_read_list_remove(tmp_path: Path) -> None:
    ks = store(tmp_path)
    pub = public()
    ref = ks.add_reference(URI, pub, role="ci")
    assert ref.path == ks.private_dir / f"{pub.key_id}.kms" and ref.key_id == pub.key_id
    assert (ref.path.stat().st_mode & 0o777) == 0o600
    doc = json.loads(ref.path.read_text())
    assert doc["uri"] == URI and doc["role"] == "ci" and "BEGIN PUBLIC KEY" in doc["public_key"]
    assert ks.reference(pub.key_id) == ref
    assert ks.references() == [ref] and ks.find_references("ci") == [ref] and ks.find_references("x") == []
    assert ks.list() == [] and pub.key_id not in ks  # no private key anywhere
    ks.add_reference(URI, pub, role="ci")  # the same again: fine
    with pytest.raises(KeyExistsError, match="already the ci key at awskms:///alias/release-signer"):
        ks.add_reference("awskms:///alias/other", pub, role="ci")
    ks.add_reference("awskms:///alias/other", pub, role="ci", replace=True)
    assert ks.remove_reference(pub.key_id) and not ks.remove_reference(pub.key_id)
    assert ks.reference(pub.key_id) is None


def test_a_reference_cannot_claim_another_key_id(tmp_path: Path) -> None:
    ks = store(tmp_path)
    ref = ks.add_reference(URI, public(), role="ci")
    assert ref.path is not None
    forged = ks.private_dir / f"{'a' * 64}.kms"
    forged.write_bytes(ref.path.read_bytes())
    with pytest.raises(KeyFileError, match="holds the public key .*, not aaaaaaa"):
        ks.reference("a" * 64)
    assert ks.references() == [ks.reference(ref.key_id)]  # the forged one is skipped with a warning
    (ks.private_dir / f"{'b' * 64}.kms").write_text("{not json")
    with pytest.raises(KeyFileError, match="invalid JSON"):
        ks.reference("b" * 64)
    with pytest.raises(KeyFileError, match="not a key service URI"):
        ks.add_reference("alias/x", public(), role="ci")


def test_certificate_chain_beside_a_reference(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from notar.kms.certificates import self_signed_signing_certificate
    from notar.notation.certgen import parse_subject

    ks = store(tmp_path)
    key = PrivateKey.generate()  # stands in for the KMS key: only its public half is in the store
    ks.add_reference(URI, key.public_key, role="ci")
    chain = self_signed_signing_certificate(
        key, subject=parse_subject("CN=ci"), now=datetime.now(UTC), days=3
    )
    path = ks.add_certificate_chain(key.key_id, chain)
    assert path == ks.private_dir / f"{key.key_id}.crt" and ks.certificate_chain(key.key_id) == chain
    other = self_signed_signing_certificate(
        PrivateKey.generate(), subject=parse_subject("CN=x"), now=datetime.now(UTC), days=3
    )
    with pytest.raises(Exception, match="does not certify the ci key"):
        ks.add_certificate_chain(key.key_id, other, replace=True)
    ks.remove_reference(key.key_id)  # no key file shares the chain: it goes too
    assert ks.certificate_chain(key.key_id) is None


def test_key_sources_find_references_without_calling_kms(tmp_path: Path) -> None:
    ks = store(tmp_path)
    pub = public()
    ks.add_reference(URI, pub, role="ci")
    source = trust_dir_keys(ks)
    assert pub.key_id in source and "f" * 64 not in source and "not-an-id" not in source
    signer, role = source.get(pub.key_id)
    assert isinstance(signer, KmsSigner) and role == "ci" and signer.public_key == pub
    assert str(signer.uri) == URI and signer.sign_calls == 0
    assert source.get(pub.key_id)[0] is signer  # one signer per key: KMS is asked once per role
    file_key = PrivateKey.generate()
    ks.add(file_key, role="alice")
    assert source.get(file_key.key_id)[0].public_key == file_key.public_key
    memory = MemoryKeys([(signer, "ci")])
    assert pub.key_id in ChainedKeys(memory, ReferencedKeys(ks))


@pytest.mark.peers
def test_notary_cli_ignores_references(tmp_path: Path) -> None:
    """The Go notary CLI lists only *.key files: a .kms reference beside them changes nothing."""
    ks = store(tmp_path)
    key = PrivateKey.generate()
    ks.add(key, role="alice")
    ks.add_reference(URI, public(), role="ci")

    def key_list() -> str:
        done = subprocess.run(
            ["notary", "-d", str(ks.trust_dir), "key", "list"],
            capture_output=True,
            text=True,
            env=child_env(home=tmp_path),
            timeout=60,
            check=True,
        )
        return done.stdout + done.stderr

    listing = key_list()
    assert key.key_id in listing and "alice" in listing and "ci" not in listing.split()
    assert "error" not in listing.lower() and "warn" not in listing.lower()
