"""A throw-away PKI for the lab: one P-256 CA and one server leaf for 127.0.0.1 / localhost; more leaves
from the same CA with :func:`issue_leaf` (e.g. notary-signer's gRPC certificate)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.lab.process import LOOPBACK


@dataclass(frozen=True)
class LabPKI:
    """Paths of a throw-away P-256 CA and a server leaf for 127.0.0.1 / localhost."""

    dir: Path
    ca: Path  # CA certificate (PEM): pass as --tlscacert / cafile
    ca_key: Path
    server_cert: Path
    server_key: Path  # unencrypted PKCS#8 PEM, mode 0600


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    path.chmod(0o600)  # also when the file existed with other bits


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=days)  # an hour of clock skew
    return builder.not_valid_before(start).not_valid_after(end)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """digitalSignature (ECDSA TLS), plus keyCertSign + cRLSign for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _load_ca(pki: LabPKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey), type(key)
    return cert, key


def _leaf(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A P-256 leaf for 127.0.0.1 / localhost with serverAuth + clientAuth (usable both ways in mTLS)."""
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            # clientAuth too: the server leaf is notary-server's client certificate towards notary-signer
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address(LOOPBACK)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf_cert, leaf_key


def issue_leaf(pki: LabPKI, directory: Path, name: str, *, cn: str | None = None) -> tuple[Path, Path]:
    """One more leaf from the lab CA (same profile as the server leaf: SAN 127.0.0.1 + localhost,
    serverAuth + clientAuth), written as ``directory/NAME.crt`` and ``directory/NAME.key`` (0600).
    Returns (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _load_ca(pki)
    cert, key = _leaf(ca_cert, ca_key, cn or name)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path


def make_lab_pki(directory: Path) -> LabPKI:
    """Create the CA and the server leaf in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notar test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        _validity(x509.CertificateBuilder(), 30)
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_cert, leaf_key = _leaf(ca_cert, ca_key, "localhost")

    pki = LabPKI(
        dir=directory,
        ca=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.ca_key, ca_key)
    _write_key(pki.server_key, leaf_key)
    return pki
