"""``notar cert generate | import | show`` and the CERTIFICATE column of ``notar key list``.

Certificates made by the CLI meet the Notary Project rules and are accepted by the Notation verifier
with a trust store holding the self-signed certificate or the CA; bad input is one line and exit 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from notar.cli import main
from notar.crypto import PrivateKey
from notar.keystore import CallbackPassphrases, FileKeyStore, decode_certificate_chain, encode_private_key
from notar.notation import (
    Descriptor,
    SignatureBlob,
    TrustStore,
    parse_trust_policy,
    sign_artifact,
    signing_chain_problems,
    verify_artifact,
)
from notar.notation.certgen import parse_subject, self_signed_signing_certificate
from notar.notation.loader import load_trust_policy, load_trust_store
from notar.notation.manifest import parse_signature_manifest

PASS = "repository passphrase"
CA_PASS = "ca passphrase"
SUBJECT = Descriptor(
    "application/vnd.oci.image.manifest.v1+json", "sha256:" + "ab" * 32, 1234, annotations={"build": "7"}
)


class Cli:
    """Runs ``notar`` in-process against one trust directory, in *cwd*."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp = tmp_path
        self.trust_dir = tmp_path / "trust"
        self._capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main(["--help"] if not args else list(args))
        out, err = self._capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, (args, code, err)
        return out

    def bad(self, *args: str) -> str:
        """Exit 2 with one ``notar: error:`` line and no traceback; returns the message."""
        code, _out, err = self.run(*args)
        assert code == 2, (args, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("notar: error: "), (args, err)
        assert "Traceback" not in err
        return lines[0]

    def keystore(self) -> FileKeyStore:
        return FileKeyStore(self.trust_dir, CallbackPassphrases(lambda _k, _a: PASS))

    def key(self, name: str) -> PrivateKey:
        [info] = self.keystore().find(name)
        return self.keystore().get(info.key_id)[0]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NOTAR_TRUST_DIR", str(tmp_path / "trust"))
    monkeypatch.setenv("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", PASS)
    monkeypatch.delenv("NOTAR_CA_KEY_PASSPHRASE", raising=False)
    return Cli(tmp_path, capsys)


def verified(
    chain: tuple[x509.Certificate, ...], key: PrivateKey, anchor: x509.Certificate, media_type: str
) -> bool:
    """Sign with the stored key and chain, verify under a strict policy trusting *anchor*."""
    now = datetime.now(UTC)
    artifact = sign_artifact(SUBJECT, key, chain, signing_time=now, media_type=media_type)
    manifest = parse_signature_manifest(artifact.manifest)
    statement = {
        "name": "acme",
        "registryScopes": ["registry.example.com/acme/app"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"],
    }
    verdict = verify_artifact(
        [SignatureBlob(media_type, artifact.blobs[manifest.envelope.digest])],
        subject=SUBJECT,
        repository="registry.example.com/acme/app",
        policy=parse_trust_policy(json.dumps({"version": "1.0", "trustPolicies": [statement]})),
        trust_store=TrustStore.of({"ca:acme": [anchor]}),
        now=now + timedelta(seconds=1),
    )
    return bool(verdict.verified)


def make_ca(tmp: Path, *, days: int = 3650, encrypted: bool = True, ca: bool = True) -> tuple[Path, Path]:
    """A root CA (P-384) as ca.pem + ca.key (PKCS#8, encrypted with CA_PASS)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Acme Root"),
        ]
    )
    now = datetime.now(UTC)
    usage = x509.KeyUsage(False, False, False, False, False, ca, ca, False, False)
    if not ca:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA384())
    )
    pem, key_path = tmp / "ca.pem", tmp / "ca.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption: Any = (
        serialization.BestAvailableEncryption(CA_PASS.encode()) if encrypted else serialization.NoEncryption()
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    key_path.chmod(0o600)
    return pem, key_path


# --- generate -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", ["application/jose+json", "application/cose"])
def test_self_signed_certificate_is_written_kept_listed_and_trusted(cli: Cli, media_type: str) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    out = cli.ok("cert", "generate", "alice", "--subject", "C=US,ST=WA,O=Acme,CN=alice", "--days", "30")
    assert out.strip() == "alice.crt"
    written = decode_certificate_chain((cli.tmp / "alice.crt").read_bytes(), what="alice.crt")
    stored = cli.keystore().certificate_chain(key_id)
    assert stored == written and len(written) == 1 and signing_chain_problems(written) == []
    leaf = written[0]
    assert leaf.subject.rfc4514_string() == "CN=alice,O=Acme,ST=WA,C=US"
    assert timedelta(days=30) - (leaf.not_valid_after_utc - leaf.not_valid_before_utc) < timedelta(seconds=1)
    path = cli.keystore().certificate_path(key_id)
    assert path.parent == cli.trust_dir / "private" and path.name == f"{key_id}.crt"
    assert verified(stored, cli.key("alice"), leaf, media_type)


def test_ca_issued_certificate_chains_to_the_ca_and_is_trusted_through_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    ca_pem, ca_key = make_ca(cli.tmp)
    monkeypatch.setenv("NOTAR_CA_KEY_PASSPHRASE", CA_PASS)
    out = cli.ok(
        "cert", "generate", "alice", "--subject", "C=US,ST=WA,O=Acme,CN=alice",
        "--ca-cert", str(ca_pem), "--ca-key", str(ca_key), "--out", "chain.pem", "-o", "json",
    )  # fmt: skip
    report = json.loads(out)
    assert report["key_id"] == key_id and report["out"] == "chain.pem"
    assert report["certificate"]["self_signed"] is False and report["certificate"]["certificates"] == 2
    chain = cli.keystore().certificate_chain(key_id)
    assert chain is not None and signing_chain_problems(chain) == []
    root = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    assert chain[1] == root and chain[0].issuer == root.subject
    assert verified(chain, cli.key("alice"), root, "application/jose+json")
    assert verified(
        chain, cli.key("alice"), chain[0], "application/jose+json"
    )  # a store may pin the leaf too


@pytest.mark.peers
def test_openssl_made_ca_with_its_default_key_encryption(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """``openssl req -x509 -newkey`` encrypts the key with PBES2 + 3DES: read through cryptography."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is a peer: run scripts/install-peers.sh"
    subprocess.run(
        [
            # the CA outlives the leaf (365 days asked, a moment later): "-days 3650", not the same 365
            openssl, "req", "-x509", "-newkey", "rsa:3072", "-keyout", "ca.key", "-passout", f"pass:{CA_PASS}",
            "-out", "ca.pem", "-days", "3650", "-subj", "/C=US/ST=WA/O=Acme/CN=Acme OpenSSL Root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        cwd=cli.tmp, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (cli.tmp / "ca.key").chmod(0o600)
    key_id = cli.ok("key", "generate", "alice").strip()
    monkeypatch.setenv("NOTAR_CA_KEY_PASSPHRASE", CA_PASS)
    cli.ok(
        "cert",
        "generate",
        "alice",
        "--subject",
        "C=US,ST=WA,O=Acme,CN=alice",
        "--ca-cert",
        "ca.pem",
        "--ca-key",
        "ca.key",
    )
    chain = cli.keystore().certificate_chain(key_id)
    assert chain is not None and signing_chain_problems(chain) == []
    check = subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", "ca.pem", "alice.crt"],
        cwd=cli.tmp, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0 and "alice.crt: OK" in check.stdout, check.stderr
    assert verified(chain, cli.key("alice"), chain[-1], "application/cose")


def test_notation_config_dir_with_the_generated_files_verifies(cli: Cli) -> None:
    """The files as a notation user installs them: NAME.crt in truststore/x509/ca/<store>/, a policy file."""
    cli.ok("key", "generate", "alice")
    cli.ok("cert", "generate", "alice", "--subject", "C=US,ST=WA,O=Acme,CN=alice")
    config = cli.tmp / "notation"
    store = config / "truststore" / "x509" / "ca" / "acme"
    store.mkdir(parents=True)
    shutil.copy(cli.tmp / "alice.crt", store / "alice.crt")
    statement = {
        "name": "acme",
        "registryScopes": ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=alice"],
    }
    (config / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [statement]}))
    [info] = cli.keystore().find("alice")
    chain = cli.keystore().certificate_chain(info.key_id)
    assert chain is not None
    now = datetime.now(UTC)
    artifact = sign_artifact(SUBJECT, cli.key("alice"), chain, signing_time=now)
    manifest = parse_signature_manifest(artifact.manifest)
    verdict = verify_artifact(
        [SignatureBlob(manifest.envelope.media_type, artifact.blobs[manifest.envelope.digest])],
        subject=SUBJECT,
        repository="registry.example.com/acme/app",
        policy=load_trust_policy(config),
        trust_store=load_trust_store(config),
        now=now + timedelta(seconds=1),
    )
    assert verdict.verified, verdict.reason


def test_subject_without_c_st_o_is_warned_about(cli: Cli) -> None:
    cli.ok("key", "generate", "alice")
    code, out, err = cli.run("cert", "generate", "alice")
    assert code == 0 and out.strip() == "alice.crt"
    assert "warning: the subject has no C, ST, O" in err and "CN=alice" in err


def test_replacing_a_certificate_needs_force(cli: Cli) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    cli.ok("cert", "generate", "alice", "--subject", "C=US,ST=WA,O=Acme,CN=alice")
    first = cli.keystore().certificate_chain(key_id)
    assert "--force replaces it" in cli.bad("cert", "generate", "alice", "--out", "other.crt")
    assert "already has a certificate" in cli.bad("cert", "generate", "alice", "--out", "other.crt")
    assert not (cli.tmp / "other.crt").exists() and cli.keystore().certificate_chain(key_id) == first
    cli.ok("cert", "generate", "alice", "--force", "--subject", "C=US,ST=WA,O=Acme,CN=alice 2")
    second = cli.keystore().certificate_chain(key_id)
    assert (
        second is not None and second != first and second[0].subject.rfc4514_string().startswith("CN=alice 2")
    )


def test_several_keys_for_a_name_need_key_id(cli: Cli) -> None:
    first = cli.ok("key", "generate", "alice", "--dir", "one").strip()
    second = cli.ok("key", "generate", "alice", "--dir", "two").strip()
    message = cli.bad("cert", "generate", "alice")
    assert "--key-id" in message and first[:7] in message and second[:7] in message
    cli.ok("cert", "generate", "alice", "--key-id", second[:10])
    assert cli.keystore().certificate_chain(second) is not None
    assert cli.keystore().certificate_chain(first) is None


def test_generate_bad_input_is_one_line_exit_2(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok("key", "generate", "alice")
    cli.ok("key", "generate", "eddie", "--type", "ed25519")
    ca_pem, ca_key = make_ca(cli.tmp)
    for sub in ("other", "notca", "short", "plain"):
        (cli.tmp / sub).mkdir()
    other_pem, _ = make_ca(cli.tmp / "other")
    not_ca_pem, not_ca_key = make_ca(cli.tmp / "notca", ca=False, encrypted=False)
    short_pem, short_key = make_ca(cli.tmp / "short", days=10, encrypted=False)
    _, plain_key = make_ca(cli.tmp / "plain", encrypted=False)
    broken = cli.tmp / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n")
    loose_key = cli.tmp / "loose.key"
    loose_key.write_bytes(ca_key.read_bytes())
    loose_key.chmod(0o644)
    ca = ["--ca-cert", str(ca_pem), "--ca-key", str(ca_key)]
    cases: list[tuple[list[str], str]] = [
        (["bob"], "no key for signer bob"),
        (["Alice!"], "signer names are lower-case"),
        (["alice", "--subject", "C=USA,CN=x"], "--subject: C='USA'"),
        (["alice", "--subject", "EMAIL=a@b"], "unknown attribute EMAIL"),
        (["alice", "--subject", "CN=a,CN=b"], "appears more than once"),
        (["alice", "--ca-cert", str(ca_pem)], "--ca-cert and --ca-key go together"),
        (
            ["alice", "--ca-cert", str(broken), "--ca-key", str(ca_key)],
            "--ca-cert: " + str(broken) + ": CERTIFICATE PEM block has invalid base64",
        ),
        (["alice", *ca], "is encrypted: set NOTAR_CA_KEY_PASSPHRASE"),
        (
            ["alice", "--ca-cert", str(other_pem), "--ca-key", str(plain_key)],
            "is not the key of the CA certificate",
        ),
        (
            ["alice", "--ca-cert", str(not_ca_pem), "--ca-key", str(not_ca_key)],
            "basicConstraints cA is false on a CA",
        ),
        (
            ["alice", "--ca-cert", str(short_pem), "--ca-key", str(short_key), "--days", "30"],
            "before the 30 days",
        ),
        (["alice", "--ca-cert", str(ca_pem), "--ca-key", str(loose_key)], "chmod 600"),
        (["alice", "--ca-cert", str(ca_pem), "--ca-key", str(broken)], "--ca-key"),
        (["eddie"], "ed25519 keys cannot sign Notation signatures"),
    ]
    for args, message in cases:
        line = cli.bad("cert", "generate", *args)
        assert message in line, (args, line)
    monkeypatch.setenv("NOTAR_CA_KEY_PASSPHRASE", "not the passphrase")
    assert "wrong passphrase for" in cli.bad("cert", "generate", "alice", *ca)
    assert not (cli.tmp / "alice.crt").exists() and not (cli.tmp / "eddie.crt").exists()
    assert all(cli.keystore().certificate_chain(i.key_id) is None for i in cli.keystore().list())


def test_days_out_of_range_is_a_usage_error(cli: Cli) -> None:
    cli.ok("key", "generate", "alice")
    code, _out, err = cli.run("cert", "generate", "alice", "--days", "0")
    assert code == 2 and "Traceback" not in err and "--days" in err


def test_wrong_key_passphrase_is_exit_1(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    cli.ok("key", "generate", "alice")
    monkeypatch.setenv("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "wrong passphrase")
    code, _out, err = cli.run("cert", "generate", "alice")
    assert (
        code == 1 and err.startswith("notar: error: wrong passphrase") and len(err.strip().splitlines()) == 1
    )
    assert not (cli.tmp / "alice.crt").exists()


# --- import -------------------------------------------------------------------------------------------


def chain_file(tmp: Path, name: str, certs: tuple[x509.Certificate, ...] | list[x509.Certificate]) -> str:
    path = tmp / name
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


def test_import_keeps_a_chain_for_the_key(cli: Cli) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    key = cli.key("alice").crypto
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    chain = self_signed_signing_certificate(
        key, subject=parse_subject("C=US,ST=WA,O=Acme,CN=alice"), now=datetime.now(UTC), days=10
    )
    out = cli.ok("cert", "import", "alice", chain_file(cli.tmp, "alice.pem", chain), "-o", "json")
    assert json.loads(out)["certificate"]["subject"] == "CN=alice,O=Acme,ST=WA,C=US"
    assert cli.keystore().certificate_chain(key_id) == chain
    assert verified(chain, cli.key("alice"), chain[0], "application/jose+json")


def test_import_bad_input_is_one_line_exit_2(cli: Cli) -> None:
    cli.ok("key", "generate", "alice")
    key = cli.key("alice").crypto
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    subject = parse_subject("C=US,ST=WA,O=Acme,CN=alice")
    now = datetime.now(UTC)
    other = self_signed_signing_certificate(
        ec.generate_private_key(ec.SECP256R1()), subject=subject, now=now, days=9
    )
    expired = self_signed_signing_certificate(key, subject=subject, now=now - timedelta(days=10), days=1)
    ca_pem, _ = make_ca(cli.tmp)
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    valid = self_signed_signing_certificate(key, subject=subject, now=now, days=9)
    # a certificate for the key that breaks the rules: key usage without digitalSignature, no codeSigning
    bad_usage = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=9))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    garbage = cli.tmp / "garbage.pem"
    garbage.write_text("hello")
    truncated = cli.tmp / "truncated.pem"
    truncated.write_bytes(valid[0].public_bytes(serialization.Encoding.PEM)[:-40])
    private = cli.tmp / "key.pem"
    private.write_bytes(encode_private_key(cli.key("alice"), None, role="alice"))
    cases: list[tuple[list[str], str]] = [
        (["alice", str(garbage)], "no PEM CERTIFICATE block"),
        (["alice", str(truncated)], "no PEM CERTIFICATE block"),
        (["alice", str(private)], "is 'PRIVATE KEY', not a CERTIFICATE"),
        (["alice", chain_file(cli.tmp, "other.pem", other)], "is not for alice's key"),
        (["alice", chain_file(cli.tmp, "order.pem", [ca_cert, valid[0]])], "number 2; it must come first"),
        (["alice", chain_file(cli.tmp, "usage.pem", [bad_usage])], "keyUsage lacks digitalSignature"),
        (["alice", chain_file(cli.tmp, "expired.pem", expired)], "not valid now: certificate 0"),
        (["bob", chain_file(cli.tmp, "valid.pem", valid)], "no key for signer bob"),
    ]
    for args, message in cases:
        line = cli.bad("cert", "import", *args)
        assert message in line, (args, line)
    assert all(cli.keystore().certificate_chain(i.key_id) is None for i in cli.keystore().list())
    cli.ok("cert", "import", "alice", str(cli.tmp / "valid.pem"))
    assert "--force" in cli.bad("cert", "import", "alice", str(cli.tmp / "valid.pem"))


def test_import_refuses_an_rsa_key_notation_cannot_use(cli: Cli, tmp_path: Path) -> None:
    odd = rsa.generate_private_key(65537, 2560)
    pem = tmp_path / "odd.key"
    pem.write_bytes(encode_private_key(PrivateKey(odd), None, role="odd"))
    pem.chmod(0o600)
    cli.ok("key", "load", str(pem), "--name", "odd")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(odd.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=9))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .sign(odd, hashes.SHA256())
    )
    assert "rsa keys cannot sign Notation signatures" in cli.bad(
        "cert", "import", "odd", chain_file(tmp_path, "odd.pem", [cert])
    )
    assert "RSA 2560 keys cannot sign Notation signatures" in cli.bad("cert", "generate", "odd")


# --- key list, show, help -----------------------------------------------------------------------------


def test_key_list_shows_certificates_and_keeps_its_columns(cli: Cli) -> None:
    with_cert = cli.ok("key", "generate", "alice").strip()
    without = cli.ok("key", "generate", "bob").strip()
    cli.ok("cert", "generate", "alice", "--subject", "C=US,ST=WA,O=Acme,CN=alice", "--days", "20")
    listing = json.loads(cli.ok("key", "list", "-o", "json"))
    by_id = {entry["key_id"]: entry for entry in listing}
    assert (
        set(by_id[without]) == {"key_id", "role", "gun", "certificate"}
        and by_id[without]["certificate"] is None
    )
    cert = by_id[with_cert]["certificate"]
    assert by_id[with_cert]["role"] == "alice" and by_id[with_cert]["gun"] is None
    assert cert["subject"] == "CN=alice,O=Acme,ST=WA,C=US" and cert["expired"] is False
    assert cert["path"].endswith(f"{with_cert}.crt")
    until = datetime.fromisoformat(cert["not_after"])
    assert timedelta(days=19) < until - datetime.now(UTC) <= timedelta(days=20)
    text = cli.ok("key", "list").splitlines()
    assert text[0].split() == ["ROLE", "GUN", "KEY", "ID", "CERTIFICATE"]
    row = next(line for line in text if with_cert in line)
    assert row.split()[-2:] == ["until", f"{until:%Y-%m-%d}"]
    assert next(line for line in text if without in line).split()[-1] == "-"


def test_key_list_reports_an_unreadable_certificate_without_failing(cli: Cli) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    cli.keystore().certificate_path(key_id).write_text("junk")
    [entry] = json.loads(cli.ok("key", "list", "-o", "json"))
    assert "no PEM CERTIFICATE block" in entry["certificate"]["error"]
    assert cli.ok("key", "list").splitlines()[1].split()[-1] == "unreadable"
    assert "unreadable certificate" in cli.bad("cert", "generate", "alice")
    cli.ok("cert", "generate", "alice", "--force")
    assert cli.keystore().certificate_chain(key_id) is not None


def test_show_prints_the_stored_chain(cli: Cli) -> None:
    key_id = cli.ok("key", "generate", "alice").strip()
    assert "has no certificate" in cli.bad("cert", "show", "alice")
    cli.ok("cert", "generate", "alice")
    pem = cli.ok("cert", "show", "alice")
    assert (
        pem.encode()
        == cli.keystore().certificate_path(key_id).read_bytes()
        == (cli.tmp / "alice.crt").read_bytes()
    )
    details = json.loads(cli.ok("cert", "show", "alice", "-o", "json"))
    assert details["certificate"]["self_signed"] is True and len(details["certificate"]["sha256"]) == 64


def test_help_teaches(cli: Cli) -> None:
    top = cli.ok("cert", "--help")
    assert "generate" in top and "import" in top and "private/<key ID>.crt" in top
    generate = cli.ok("cert", "generate", "--help")
    for text in (
        "--ca-cert",
        "--ca-key",
        "NOTAR_CA_KEY_PASSPHRASE",
        "notation cert add",
        "codeSigning",
        "Exit codes",
    ):
        assert text in generate, text
    imported = cli.ok("cert", "import", "--help")
    assert "issuer" in imported and "self-signed root" in imported and "Exit codes" in imported
    assert "CERTIFICATE" in cli.ok("key", "list", "--help")
    assert "cert" in cli.ok("--help")
