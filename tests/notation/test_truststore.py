"""Trust store files and directories, and the config dir loader (the only filesystem reader)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from notar.notation import StoreRef, TrustPolicyError, TrustStore, TrustStoreError, parse_certificate_file
from notar.notation.loader import (
    default_config_dir,
    load_trust_policy,
    load_trust_store,
    read_named_store,
    trust_policy_path,
)
from tests.notation import factory as f
from tests.notation.conftest import E2E, GO_TRUSTSTORE_CONFIG

X509 = GO_TRUSTSTORE_CONFIG / "truststore" / "x509"
MakeStore = Callable[[str, str, dict[str, bytes]], Path]


def pem(*certs: object) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)  # type: ignore[attr-defined]


def test_the_notation_go_trust_store_tree() -> None:
    store = load_trust_store(GO_TRUSTSTORE_CONFIG)
    # PEM and DER files, several per store
    assert len(store.certificates(StoreRef.parse("ca:valid-trust-store"))) == 6
    assert len(store.certificates(StoreRef.parse("ca:valid-trust-store-2"))) == 2
    assert len(store.certificates(StoreRef.parse("signingAuthority:valid-trust-store"))) == 3
    assert len(store.certificates(StoreRef.parse("tsa:test-timestamp"))) == 1
    # a leaf (not CA, not self-signed) in a ca store still loads, with a warning
    assert len(store.certificates(StoreRef.parse("ca:trust-store-with-leaf-certs"))) == 2
    assert len(store.certificates(StoreRef.parse("ca:trust-store-with-leaf-certs-in-single-file"))) == 2
    assert any("non-ca.crt" in w and "neither a CA nor self-signed" in w for w in store.warnings)
    # broken stores are recorded and raised when used, naming the file
    with pytest.raises(
        TrustStoreError, match="trust-store-with-invalid-certs/invalid: not a PEM or DER certificate file"
    ):
        store.certificates(StoreRef.parse("ca:trust-store-with-invalid-certs"))
    # (the checked-in "symlink" is a plain file holding the link text: invalid, not a certificate)
    with pytest.raises(TrustStoreError, match="valid-trust-store_SYMLINK: not a PEM or DER"):
        store.certificates(StoreRef.parse("ca:valid-trust-store_SYMLINK"))
    with pytest.raises(TrustStoreError, match="trust store ca:missing does not exist"):
        store.certificates(StoreRef.parse("ca:missing"))


def test_sub_directories_are_ignored() -> None:
    certs, warnings = read_named_store(X509 / "trust-store-with-directories")
    assert len(certs) == 1 and warnings == []


def test_the_vector_symlink_store_is_refused_for_its_non_certificate_file() -> None:
    with pytest.raises(
        TrustStoreError, match="GlobalSignRootCA_SYMLINK.crt: not a PEM or DER certificate file"
    ):
        read_named_store(X509 / "trust-store-with-cert-symlinks")


def test_symlinked_certificate_files_are_rejected(make_store: MakeStore) -> None:
    config = make_store("ca", "acme", {"root.pem": pem(f.chain()[1])})
    directory = config / "truststore" / "x509" / "ca" / "acme"
    (directory / "link.pem").symlink_to(directory / "root.pem")
    store = load_trust_store(config)
    with pytest.raises(TrustStoreError, match="link.pem: is a symlink \\(symlinks are not supported\\)"):
        store.certificates(StoreRef.parse("ca:acme"))


def test_symlinked_store_directories_are_rejected(make_store: MakeStore, tmp_path: Path) -> None:
    config = make_store("ca", "real", {"root.pem": pem(f.chain()[1])})
    ca = config / "truststore" / "x509" / "ca"
    (ca / "linked").symlink_to(ca / "real")
    store = load_trust_store(config)
    assert len(store.certificates(StoreRef.parse("ca:real"))) == 1
    with pytest.raises(TrustStoreError, match="linked: is a symlink"):
        store.certificates(StoreRef.parse("ca:linked"))


def test_symlinked_type_directory_is_an_error(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    x509_dir = tmp_path / "cfg" / "truststore" / "x509"
    x509_dir.mkdir(parents=True)
    (x509_dir / "ca").symlink_to(real)
    with pytest.raises(TrustStoreError, match="x509/ca: is a symlink"):
        load_trust_store(tmp_path / "cfg")


def test_empty_store_and_empty_file(make_store: MakeStore) -> None:
    config = make_store("ca", "empty", {})
    (config / "truststore" / "x509" / "ca" / "empty" / "sub").mkdir()
    make_store("ca", "blank", {"blank.pem": b""})
    store = load_trust_store(config)
    with pytest.raises(TrustStoreError, match="empty: no certificates"):
        store.certificates(StoreRef.parse("ca:empty"))
    with pytest.raises(TrustStoreError, match="blank.pem: empty file"):
        store.certificates(StoreRef.parse("ca:blank"))


def test_pem_and_der_files_with_several_certificates() -> None:
    leaf, root = f.chain()
    assert parse_certificate_file(pem(leaf, root), name="x") == [leaf, root]
    assert parse_certificate_file(f.der(leaf) + f.der(root), name="x") == [leaf, root]
    with pytest.raises(TrustStoreError, match="x: truncated DER certificate"):
        parse_certificate_file(f.der(leaf)[:-1], name="x")
    key_pem = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(TrustStoreError, match="x: PEM block 'PUBLIC KEY' is not a CERTIFICATE"):
        parse_certificate_file(pem(root) + key_pem, name="x")
    with pytest.raises(TrustStoreError, match="x: invalid certificate"):
        parse_certificate_file(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", name="x")


def test_store_types_are_separate(make_store: MakeStore) -> None:
    root = f.chain()[1]
    config = make_store("signingAuthority", "acme", {"root.pem": pem(root)})
    make_store("tsa", "acme", {"tsa.pem": pem(root)})
    store = load_trust_store(config)
    assert store.certificates(StoreRef.parse("signingAuthority:acme")) == (root,)
    assert store.certificates(StoreRef.parse("tsa:acme")) == (root,)
    with pytest.raises(TrustStoreError, match="ca:acme does not exist"):
        store.certificates(StoreRef.parse("ca:acme"))


def test_missing_truststore_tree_is_an_empty_store(tmp_path: Path) -> None:
    assert load_trust_store(tmp_path) == TrustStore({}, {}, ())


def test_policy_file_precedence(tmp_path: Path) -> None:
    data = (E2E / "config" / "trustpolicies" / "trustpolicy.json").read_bytes()
    (tmp_path / "trustpolicy.json").write_bytes(data)
    assert trust_policy_path(tmp_path) == tmp_path / "trustpolicy.json"
    assert load_trust_policy(tmp_path).statements[0].name == "e2e"
    (tmp_path / "trustpolicy.oci.json").write_bytes(data.replace(b'"e2e"', b'"oci"', 1))
    assert trust_policy_path(tmp_path) == tmp_path / "trustpolicy.oci.json"
    assert load_trust_policy(tmp_path).statements[0].name == "oci"


def test_policy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustPolicyError, match="trustpolicy.json: no such file"):
        load_trust_policy(tmp_path)
    (tmp_path / "real.json").write_bytes(b"{}")
    (tmp_path / "trustpolicy.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(TrustPolicyError, match="is a symlink"):
        load_trust_policy(tmp_path)
    (tmp_path / "trustpolicy.json").unlink()
    (tmp_path / "trustpolicy.json").write_bytes(b'{"version": "1.0"')
    with pytest.raises(TrustPolicyError, match="trustpolicy.json: malformed JSON"):
        load_trust_policy(tmp_path)


def test_default_config_dir() -> None:
    assert default_config_dir({"XDG_CONFIG_HOME": "/x/config", "HOME": "/home/u"}) == Path(
        "/x/config/notation"
    )
    assert default_config_dir({"XDG_CONFIG_HOME": "", "HOME": "/home/u"}) == Path("/home/u/.config/notation")
    assert default_config_dir({"HOME": "/home/u"}) == Path("/home/u/.config/notation")
