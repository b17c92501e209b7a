"""Notation and cosign signatures with a key that stays in KMS.

`notar cert generate NAME --key awskms:///...` makes the signing certificate (self-signed through KMS, or
issued by a CA for the KMS public key), proved with the Notary Project rules and `openssl verify`; an
envelope signed through KMS verifies with notar.notation.verify_artifact, with `notar verify` against the
real registry, and independently (cryptography over the JWS signing input); a cosign signature by the
same P-256 key verifies with `notar verify --key`. One KMS Sign call per signed digest per format.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from notar.cosign import append_signature, sign_image
from notar.crypto import ecdsa_raw_to_der, encode_pem
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.kms import KmsSigner, _client
from notar.notation import (
    Descriptor,
    SignatureBlob,
    TrustStore,
    parse_trust_policy,
    sign_artifact,
    signing_chain_problems,
    verify_artifact,
)
from notar.registry import (
    MEDIA_TYPE_OCI_MANIFEST,
    RegistryClient,
    Update,
    add_referrer,
    append_cosign_signature,
)
from tests.kms.support import Notar
from tests.lab import NotarServer, Registry, child_env
from tests.lab.kms import KmsLab
from tests.registry.artifacts import push_image
from tests.registry.images import make_image

pytestmark = pytest.mark.peers

SUBJECT_DN = "C=US,ST=WA,O=Acme,CN=release"


def keystore(notar: Notar) -> FileKeyStore:
    return FileKeyStore(notar.trust_dir, CallbackPassphrases(lambda _k, _a: None))


def openssl_verify(ca: Path, leaf: Path) -> None:
    done = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "any", "-CAfile", str(ca), str(leaf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith(": OK"), done.stdout + done.stderr


@pytest.fixture
def admin(notar_server: NotarServer, kms: KmsLab, tmp_path: Path) -> Notar:
    return Notar(tmp_path / "admin", notar_server.url, notar_server.ca, kms)


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P384", "RSA_3072"])
def test_self_signed_certificate_signed_by_kms(admin: Notar, kms: KmsLab, spec: str) -> None:
    key = kms.create_key(spec, alias=kms.unique_alias("cert"))
    kms.reset()
    out = admin.run(
        "cert", "generate", "release", "--key", key.uri, "--subject", SUBJECT_DN, "-o", "json"
    ).stdout
    report = json.loads(out)
    assert kms.calls("GetPublicKey") == 1 and kms.calls("Sign") == 1
    assert [e["message_type"] for e in kms.call_log("Sign")] == ["DIGEST"]
    pem = Path(report["certificate"]["path"]).read_bytes()
    (cert,) = x509.load_pem_x509_certificates(pem)
    assert signing_chain_problems((cert,)) == []
    assert (
        cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == kms.client().get_public_key(KeyId=key.key_id)["PublicKey"]
    )
    cert.verify_directly_issued_by(cert)
    crt = admin.home / "release.crt"
    assert crt.read_bytes() == pem
    openssl_verify(crt, crt)
    # the key is signer "release" now: listed as KMS-backed, with its certificate; no key file
    [entry] = [k for k in json.loads(admin.run("key", "list", "-o", "json").stdout) if k.get("kms")]
    assert entry["role"] == "release" and entry["kms"] == key.uri and entry["certificate"]["expired"] is False
    assert not list((admin.trust_dir / "private").glob("*.key"))
    assert admin.run("cert", "show", "release").stdout.encode() == pem
    # again without --key: the stored reference is found; replacing needs --force
    assert "--force replaces it" in admin.fail("cert", "generate", "release", code=2)
    admin.run("cert", "generate", "release", "--force", "--subject", SUBJECT_DN, "--out", "again.crt")


def test_ca_issued_certificate_for_a_kms_key(admin: Notar, kms: KmsLab) -> None:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    now = datetime.now(UTC)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.COMMON_NAME, "CA")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=800))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    (admin.home / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (admin.home / "ca.key").write_bytes(
        ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (admin.home / "ca.key").chmod(0o600)
    key = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias("issued"))
    kms.reset()
    admin.run(
        "cert",
        "generate",
        "ci",
        "--key",
        key.uri,
        "--subject",
        SUBJECT_DN,
        "--ca-cert",
        "ca.pem",
        "--ca-key",
        "ca.key",
    )
    assert kms.calls("Sign") == 0  # the CA signs; KMS only gives its public key
    leaf, issuer = x509.load_pem_x509_certificates((admin.home / "ci.crt").read_bytes())
    assert issuer == ca and signing_chain_problems((leaf, issuer)) == []
    (admin.home / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    openssl_verify(admin.home / "ca.pem", admin.home / "leaf.pem")


def test_cert_generate_errors(admin: Notar, kms: KmsLab) -> None:
    k1 = kms.create_key(spec="ECC_SECG_P256K1", alias=kms.unique_alias("k1"))
    assert "secp256k1" in admin.fail("cert", "generate", "x", "--key", k1.uri, code=2)
    key = kms.create_key(alias=kms.unique_alias("denied"))
    kms.inject("Sign", "AccessDeniedException")
    assert f"AWS KMS denied kms:Sign on key {key.uri}" in admin.fail(
        "cert", "generate", "x", "--key", key.uri
    )
    assert not list((admin.trust_dir / "private").glob("*.kms"))  # the failed --key left no reference
    assert not (admin.home / "x.crt").exists()
    assert "exclude each other" in admin.fail(
        "cert", "generate", "x", "--key", key.uri, "--key-id", "ab", code=2
    )


def _policy(store: str) -> bytes:
    statement = {
        "name": "kms",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": [f"ca:{store}"],
        "trustedIdentities": ["*"],
    }
    return json.dumps({"version": "1.0", "trustPolicies": [statement]}).encode()


def _verify_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notar", "verify", *args],
        capture_output=True,
        text=True,
        env=child_env(home=home, XDG_CONFIG_HOME=str(home / "xdg"), DOCKER_CONFIG=str(home / "docker")),
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "RSA_2048"])
def test_notation_signature_made_through_kms_verifies(
    admin: Notar, kms: KmsLab, registry: Registry, spec: str, tmp_path: Path
) -> None:
    key = kms.create_key(spec, alias=kms.unique_alias("notation"))
    admin.run("cert", "generate", "release", "--key", key.uri, "--subject", SUBJECT_DN)
    ks = keystore(admin)
    [ref] = ks.find_references("release")
    chain = ks.certificate_chain(ref.key_id)
    assert chain is not None
    signer = KmsSigner(ref.uri, ref.public_key)  # what a KMS-backed signer is in the key source
    repo = f"kms-notation-{uuid.uuid4().hex[:8]}"
    kms.reset()
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, make_image(f"notation through kms {repo}\n"), "1.0")
        got = client.get_manifest(repo, digest).descriptor
        subject = Descriptor(got.media_type, got.digest, got.size)
        artifact = sign_artifact(subject, signer, chain, signing_time=datetime.now(UTC))
        add_referrer(client, repo, artifact.manifest, blobs=artifact.blobs)
    assert kms.calls("Sign") == 1 and kms.calls("GetPublicKey") == 0  # one per signed digest

    envelope = artifact.blobs[json.loads(artifact.manifest)["layers"][0]["digest"]]
    # notar's verifier
    verdict = verify_artifact(
        [SignatureBlob("application/jose+json", envelope)],
        subject=subject,
        repository=f"{registry.host}/{repo}",
        policy=parse_trust_policy(_policy("kms")),
        trust_store=TrustStore.of({"ca:kms": list(chain)}),
        now=datetime.now(UTC),
    )
    assert verdict.verified, verdict.reason
    # independent: cryptography over ASCII(b64url(protected) "." b64url(payload)) with the certificate's key
    jws: dict[str, Any] = json.loads(envelope)
    signing_input = f"{jws['protected']}.{jws['payload']}".encode()
    signature = _b64url(jws["signature"])
    leaf_key = chain[0].public_key()
    alg = json.loads(_b64url(jws["protected"]))["alg"]
    if isinstance(leaf_key, ec.EllipticCurvePublicKey):
        assert alg == "ES256" and len(signature) == 64
        leaf_key.verify(ecdsa_raw_to_der(signature), signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(leaf_key, rsa.RSAPublicKey) and alg == "PS256"
        leaf_key.verify(
            signature, signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()
        )
    assert json.loads(_b64url(jws["payload"]))["targetArtifact"]["digest"] == digest
    # `notar verify` against the registry, with a notation trust store holding the certificate
    config = tmp_path / "verifier" / "xdg" / "notation"
    store = config / "truststore" / "x509" / "ca" / "kms"
    store.mkdir(parents=True)
    (store / "release.crt").write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    (config / "trustpolicy.json").write_bytes(_policy("kms"))
    run = _verify_cli(tmp_path / "verifier", f"{registry.host}/{repo}:1.0")
    assert run.returncode == 0, run.stderr
    assert f"Successfully verified signature for {registry.host}/{repo}@{digest}" in run.stdout
    _client._clients.clear()


def test_cosign_signature_made_through_kms_verifies(
    admin: Notar, kms: KmsLab, registry: Registry, tmp_path: Path
) -> None:
    key = kms.create_key("ECC_NIST_P256", alias=kms.unique_alias("cosign"))
    signer = KmsSigner.open(key.uri)
    (tmp_path / "cosign.pub").write_bytes(encode_pem("PUBLIC KEY", signer.public_key.public))
    repo = f"kms-cosign-{uuid.uuid4().hex[:8]}"
    kms.reset()
    with RegistryClient(registry.host) as client:
        digest = push_image(client, repo, make_image(f"cosign through kms {repo}\n"), "1.0")
        signature = sign_image(f"{registry.host}/{repo}", digest, signer)

        def append(manifest: bytes | None, config: bytes | None) -> Update | None:
            made = append_signature(manifest, config, signature)
            return Update(made.manifest, MEDIA_TYPE_OCI_MANIFEST, made.blobs) if made.appended else None

        append_cosign_signature(client, repo, digest, append)
    assert kms.calls("Sign") == 1
    run = _verify_cli(
        tmp_path / "verifier", f"{registry.host}/{repo}:1.0", "--key", str(tmp_path / "cosign.pub")
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"Successfully verified cosign signature for {registry.host}/{repo}@{digest}\n"
