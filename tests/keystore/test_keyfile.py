"""The key file codec: notary's exact format on write, every supported format on read, clean errors."""

from __future__ import annotations

import contextlib
import re
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notar.crypto import PrivateKey, PublicKey, encode_pem, pem_blocks
from notar.keystore import (
    DecodedKey,
    KeyFileError,
    KeystoreError,
    PassphraseUnavailableError,
    WrongPassphraseError,
    decode_private_key,
    encode_private_key,
    encode_public_key,
)
from notar.keystore._pkcs8 import (
    _AlgorithmIdentifier,
    _EncryptedPrivateKeyInfo,
    _Pbes2Params,
    _Pbkdf2Params,
    encrypt_pbes2,
    notary_private_key_info,
)
from tests.keystore.conftest import KEYS_EXAMPLE, PBKDF2_SAFE_EXAMPLES

PASS = "correct horse battery"
KEYTYPES = ["ecdsa", "rsa", "ed25519"]


# --------------------------------------------------------------------------- helpers


def der_of(pem: bytes) -> bytes:
    return pem_blocks(pem)[0][2]


def asn1_shape(der: bytes) -> list[tuple[int, str]]:
    """``openssl asn1parse`` lines as (depth, what): lengths and OCTET STRING contents left out."""
    out = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-i"], input=der, capture_output=True, check=True
    ).stdout.decode()
    shape = []
    for line in out.splitlines():
        m = re.search(r"d=(\d+)\s+hl=\s*\d+\s+l=\s*\d+\s+(?:prim|cons):\s*(.*?)\s*$", line)
        assert m, line
        what = re.sub(r"\s+", " ", m.group(2))
        if what.startswith("OCTET STRING"):
            what = "OCTET STRING"
        shape.append((int(m.group(1)), what))
    return shape


def openssl_decrypt(pem: bytes, passphrase: str) -> bytes:
    return openssl_decrypt_bytes(pem, passphrase.encode())


def openssl_decrypt_bytes(pem: bytes, passphrase: bytes) -> bytes:
    """Decrypt an ENCRYPTED PRIVATE KEY with the openssl CLI's PBKDF2 and AES (not our code).

    The structure is read with asn1crypto's stock PKCS#8 classes; ``openssl kdf`` derives the key
    (PBKDF2, SHA-1 as the absent PRF means) and ``openssl enc -d`` decrypts and unpads.
    """
    info = asn1_keys.EncryptedPrivateKeyInfo.load(der_of(pem))
    alg = info["encryption_algorithm"]
    assert alg["algorithm"].native == "pbes2"
    assert alg.kdf == "pbkdf2" and alg.kdf_hmac == "sha1"
    assert alg.encryption_cipher == "aes" and alg.key_length == 32
    key_hex = (
        subprocess.run(
            [
                "openssl", "kdf", "-keylen", "32",
                "-kdfopt", "digest:SHA1",
                "-kdfopt", f"hexpass:{passphrase.hex()}",
                "-kdfopt", f"hexsalt:{alg.kdf_salt.hex()}",
                "-kdfopt", f"iter:{alg.kdf_iterations}",
                "PBKDF2",
            ],
            capture_output=True, check=True, text=True,
        )
        .stdout.strip()
        .replace(":", "")
    )  # fmt: skip
    return subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-K", key_hex, "-iv", alg.encryption_iv.hex()],
        input=info["encrypted_data"].native,
        capture_output=True,
        check=True,
    ).stdout


def strip_headers(pem: bytes) -> bytes:
    """OpenSSL's PEM reader wants no RFC 1421 headers except Proc-Type/DEK-Info: re-wrap the DER."""
    kind, _headers, der = pem_blocks(pem)[0]
    return encode_pem(kind, der)


# --------------------------------------------------------------------------- writing: notary's exact format


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_encrypted_outer_structure_is_notarys(keys: dict[str, PrivateKey], keytype: str) -> None:
    ours = der_of(encode_private_key(keys[keytype], PASS, role="targets", gun="example.com/a/b"))
    notarys = der_of((KEYS_EXAMPLE / "notary-root.key").read_bytes())
    assert asn1_shape(ours) == asn1_shape(notarys)
    assert asn1_shape(ours) == [
        (0, "SEQUENCE"),
        (1, "SEQUENCE"),
        (2, "OBJECT :PBES2"),
        (2, "SEQUENCE"),
        (3, "SEQUENCE"),
        (4, "OBJECT :PBKDF2"),
        (4, "SEQUENCE"),
        (5, "OCTET STRING"),  # salt; then the iteration count, and no keyLength and no prf
        (5, "INTEGER :0800"),
        (3, "SEQUENCE"),
        (4, "OBJECT :aes-256-cbc"),
        (4, "OCTET STRING"),
        (1, "OCTET STRING"),
    ]
    params = _Pbkdf2Params.load(
        _Pbes2Params.load(_EncryptedPrivateKeyInfo.load(ours)["encryption_algorithm"]["parameters"].dump())[
            "key_derivation_func"
        ]["parameters"].dump()
    )
    assert len(params["salt"].native) == 8


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_openssl_decrypts_what_we_write_to_notarys_inner_structure(
    keys: dict[str, PrivateKey], keytype: str
) -> None:
    key = keys[keytype]
    pem = encode_private_key(key, PASS, role="root")
    plaintext = openssl_decrypt(pem, PASS)
    assert plaintext == bytes(notary_private_key_info(key))
    shape = asn1_shape(plaintext)
    if keytype == "ecdsa":
        reference = (KEYS_EXAMPLE / "notary-root.decrypted-pkcs8.der").read_bytes()
        assert shape == asn1_shape(reference)
        assert shape[1] == (1, "INTEGER :01")
        sec1 = core.Sequence.load(plaintext)[2].native
        assert asn1_shape(sec1) == asn1_shape(core.Sequence.load(reference)[2].native)  # params + pubkey
    elif keytype == "rsa":
        assert shape == [
            (0, "SEQUENCE"),
            (1, "INTEGER :00"),
            (1, "SEQUENCE"),
            (2, "OBJECT :rsaEncryption"),  # and no NULL after it
            (1, "OCTET STRING"),
        ]
        pkcs1 = core.Sequence.load(plaintext)[2].native
        assert (
            serialization.load_der_private_key(pkcs1, None).private_numbers() == key.crypto.private_numbers()
        )  # type: ignore[union-attr]
    else:
        assert shape == [
            (0, "SEQUENCE"),
            (1, "INTEGER :00"),
            (1, "SEQUENCE"),
            (2, "OBJECT :1.3.6.1.4.1.11591.15.1"),
            (1, "OCTET STRING"),
        ]
        raw = core.Sequence.load(plaintext)[2].native
        public = key.public_key.public
        seed = key.crypto.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        assert raw == public + seed + public


@pytest.mark.parametrize("keytype", ["ecdsa", "rsa"])
def test_openssl_pkcs8_reads_what_we_write(keys: dict[str, PrivateKey], keytype: str, tmp_path: Path) -> None:
    """``openssl pkcs8`` (its own PBES2 code path) decrypts our file to the same key."""
    key = keys[keytype]
    path = tmp_path / "key.pem"
    path.write_bytes(strip_headers(encode_private_key(key, PASS, role="targets", gun="g/h")))
    out = subprocess.run(
        ["openssl", "pkcs8", "-in", str(path), "-passin", "env:NOTAR_TEST_PASS"],
        env={"NOTAR_TEST_PASS": PASS, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    ).stdout
    loaded = serialization.load_pem_private_key(out, None)
    assert PrivateKey(loaded).key_id == key.key_id  # type: ignore[arg-type]


def test_headers_are_sorted_and_gun_is_optional(keys: dict[str, PrivateKey]) -> None:
    key = keys["ed25519"]
    with_gun = encode_private_key(key, PASS, role="targets", gun="127.0.0.1:5000/lab/app").decode()
    assert with_gun.startswith(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\ngun: 127.0.0.1:5000/lab/app\nrole: targets\n\n"
    )
    without = encode_private_key(key, PASS, role="targets/releases").decode()
    assert without.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: targets/releases\n\nMI")
    assert without.endswith("\n-----END ENCRYPTED PRIVATE KEY-----\n")
    body = without.split("\n\n", 1)[1].splitlines()[:-1]
    assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64


@pytest.mark.parametrize("passphrase", [None, ""])
@pytest.mark.parametrize("keytype", KEYTYPES)
def test_no_passphrase_writes_plain_notary_pkcs8(
    keys: dict[str, PrivateKey], keytype: str, passphrase: str | None
) -> None:
    key = keys[keytype]
    pem = encode_private_key(key, passphrase, role="alice")
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\nrole: alice\n\n")
    assert der_of(pem) == bytes(notary_private_key_info(key))
    decoded = decode_private_key(pem, None)
    assert decoded.key.key_id == key.key_id
    assert not decoded.encrypted


@pytest.mark.parametrize("bad", ["", " root", "root ", "ro\nle", "role\r", "a\x00b", "\t"])
def test_invalid_header_values_are_refused(keys: dict[str, PrivateKey], bad: str) -> None:
    with pytest.raises(ValueError, match="invalid role"):
        encode_private_key(keys["ed25519"], PASS, role=bad)
    with pytest.raises(ValueError, match="invalid gun"):
        encode_private_key(keys["ed25519"], PASS, role="targets", gun=bad)


def test_encoding_is_randomised(keys: dict[str, PrivateKey]) -> None:
    a = encode_private_key(keys["ed25519"], PASS, role="root")
    b = encode_private_key(keys["ed25519"], PASS, role="root")
    assert a != b  # fresh salt and IV each time


def test_aligned_plaintext_gets_a_full_padding_block(keys: dict[str, PrivateKey]) -> None:
    plaintext = bytes(32)
    der = encrypt_pbes2(plaintext, b"pw", salt=b"12345678", iv=bytes(16))
    assert len(_EncryptedPrivateKeyInfo.load(der)["encrypted_data"].native) == 48


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_round_trip(keys: dict[str, PrivateKey], keytype: str) -> None:
    key = keys[keytype]
    pem = encode_private_key(key, PASS, role="targets", gun="docker.io/library/x")
    decoded = decode_private_key(pem, PASS)
    assert decoded == DecodedKey(
        key=decoded.key,
        role="targets",
        gun="docker.io/library/x",
        headers={"gun": "docker.io/library/x", "role": "targets"},
        encrypted=True,
    )
    assert decoded.key.key_id == key.key_id
    assert decoded.key.keytype == keytype
    method, sig = decoded.key.sign(b"hello")
    assert key.public_key.verify(b"hello", sig, method)
    assert "PrivateKey(" in repr(decoded) and PASS not in repr(decoded)


def test_passphrase_that_is_not_valid_utf8(keys: dict[str, PrivateKey]) -> None:
    """os.environ hands undecodable bytes over as surrogates; Go would use the raw bytes."""
    raw = b"\xff\xfe-latin1-p\xe4ss"
    passphrase = raw.decode("utf-8", "surrogateescape")
    pem = encode_private_key(keys["ed25519"], passphrase, role="root")
    assert decode_private_key(pem, passphrase).key.key_id == keys["ed25519"].key_id
    assert openssl_decrypt_bytes(pem, raw) == bytes(notary_private_key_info(keys["ed25519"]))


def test_passphrase_callable_is_only_called_for_encrypted_files(keys: dict[str, PrivateKey]) -> None:
    calls: list[int] = []

    def ask() -> str:
        calls.append(1)
        return PASS

    decode_private_key(encode_private_key(keys["ecdsa"], None, role="root"), ask)
    assert calls == []
    decode_private_key(encode_private_key(keys["ecdsa"], PASS, role="root"), ask)
    assert calls == [1]


@settings(
    max_examples=PBKDF2_SAFE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    passphrase=st.text(min_size=1, max_size=40),
    role=st.from_regex(r"[a-z][a-z0-9_/-]{0,30}[a-z0-9]", fullmatch=True),
    gun=st.none() | st.from_regex(r"[a-z0-9.:]{1,20}(/[a-z0-9._-]{1,20}){0,3}", fullmatch=True),
)
def test_round_trip_property(passphrase: str, role: str, gun: str | None) -> None:
    key = PrivateKey.generate("ed25519")
    pem = encode_private_key(key, passphrase, role=role, gun=gun)
    decoded = decode_private_key(pem, passphrase)
    assert decoded.key.key_id == key.key_id
    assert (decoded.role, decoded.gun, decoded.encrypted) == (role, gun, True)
    other = passphrase + "x"
    with pytest.raises(WrongPassphraseError) as exc:
        decode_private_key(pem, other)
    assert other not in str(exc.value)


# --------------------------------------------------------------------------- wrong passphrase / errors


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_wrong_passphrase(keys: dict[str, PrivateKey], keytype: str) -> None:
    pem = encode_private_key(keys[keytype], PASS, role="root")
    for wrong in ["wrong passphrase!", "", PASS.upper()]:
        with pytest.raises(WrongPassphraseError) as exc:
            decode_private_key(pem, wrong)
        assert isinstance(exc.value, KeystoreError)
        assert PASS not in str(exc.value) and (not wrong or wrong not in str(exc.value))
        assert "\n" not in str(exc.value)


def test_encrypted_file_without_passphrase(keys: dict[str, PrivateKey]) -> None:
    pem = encode_private_key(keys["ecdsa"], PASS, role="root")
    with pytest.raises(PassphraseUnavailableError):
        decode_private_key(pem, None)


def _pem(kind: str, der: bytes, **headers: str) -> bytes:
    return encode_pem(kind, der, headers or None)


def _garbage_cases(keys: dict[str, PrivateKey]) -> dict[str, bytes]:
    good = encode_private_key(keys["ecdsa"], PASS, role="root")
    der = der_of(good)
    plain = der_of(encode_private_key(keys["ecdsa"], None, role="root"))
    lines = good.decode().splitlines(keepends=True)
    x25519_pkcs8 = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "empty": b"",
        "garbage": b"\x00\xffnot a key at all\n" * 10,
        "truncated-pem": "".join(lines[: len(lines) // 2]).encode(),
        "bad-base64": good.replace(b"MIHu", b"M!Hu"),
        "truncated-der": _pem("ENCRYPTED PRIVATE KEY", der[:-20], role="root"),
        "trailing-der": _pem("ENCRYPTED PRIVATE KEY", der + b"\x00\x00", role="root"),
        "not-der": _pem("ENCRYPTED PRIVATE KEY", b"hello world, not DER", role="root"),
        "empty-block": b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "plain-truncated": _pem("PRIVATE KEY", plain[:40]),
        "plain-garbage": _pem("PRIVATE KEY", bytes(range(200))),
        "unknown-oid-x25519": _pem("PRIVATE KEY", x25519_pkcs8),
        "certificate": _pem("CERTIFICATE", plain),
        "public-key": encode_public_key(keys["ecdsa"].public_key, role="root"),
        "unknown-pem-type": _pem("OPENSSH PRIVATE KEY", plain),
        "ec-block-holding-rsa": _pem(
            "EC PRIVATE KEY",
            keys["rsa"].crypto.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        ),
        "ed25519-wrong-length": _pem("ED25519 PRIVATE KEY", bytes(95)),
        "ed25519-mismatched-public": _pem("ED25519 PRIVATE KEY", bytes(96)),
        "legacy-bad-dek": _pem(
            "EC PRIVATE KEY", bytes(64), **{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "FOO,00"}
        ),
        "legacy-bad-iv": _pem(
            "EC PRIVATE KEY", bytes(64), **{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,zz"}
        ),
        "legacy-no-dek": _pem("EC PRIVATE KEY", bytes(64), **{"Proc-Type": "4,ENCRYPTED"}),
        "too-large": b"A" * (1 << 20 | 1),
    }


CASES = [
    "empty", "garbage", "truncated-pem", "bad-base64", "truncated-der", "trailing-der", "not-der",
    "empty-block", "plain-truncated", "plain-garbage", "unknown-oid-x25519", "certificate", "public-key",
    "unknown-pem-type", "ec-block-holding-rsa", "ed25519-wrong-length", "ed25519-mismatched-public",
    "legacy-bad-dek", "legacy-bad-iv", "legacy-no-dek", "too-large",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_malformed_files_raise_key_file_error(keys: dict[str, PrivateKey], case: str) -> None:
    data = _garbage_cases(keys)[case]
    with pytest.raises(KeyFileError) as exc:
        decode_private_key(data, PASS)
    message = str(exc.value)
    assert message and "\n" not in message and PASS not in message
    assert "Traceback" not in message


def test_messages_name_the_problem(keys: dict[str, PrivateKey]) -> None:
    cases = _garbage_cases(keys)
    expect = {
        "truncated-pem": "no complete PEM block",
        "bad-base64": "base64",
        "unknown-oid-x25519": "unsupported private key algorithm x25519",
        "certificate": "unsupported key file type 'CERTIFICATE'",
        "too-large": "too large",
        "legacy-bad-dek": "unsupported legacy PEM cipher FOO",
    }
    for case, words in expect.items():
        with pytest.raises(KeyFileError, match=re.escape(words)):
            decode_private_key(cases[case], PASS)


def _pbes2_file(
    key: PrivateKey,
    passphrase: str,
    *,
    cipher_oid: str = "2.16.840.1.101.3.4.1.42",
    prf: str | None = None,
    key_length: int | None = None,
    scheme: str = "1.2.840.113549.1.5.13",
    kdf: str = "1.2.840.113549.1.5.12",
    iterations: int = 2048,
) -> bytes:
    """An ENCRYPTED PRIVATE KEY with chosen PBES2 parameters (encrypted for real where it can be)."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.padding import PKCS7

    plaintext = bytes(notary_private_key_info(key))
    salt, iv = b"saltsalt", b"0123456789abcdef"
    klen = 16 if cipher_oid == "2.16.840.1.101.3.4.1.2" else 32
    digest = {"1.2.840.113549.2.9": "sha256"}.get(prf or "", "sha1")
    dk = hashlib.pbkdf2_hmac(digest, passphrase.encode(), salt, min(max(iterations, 1), 2048), klen)
    padder = PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(dk), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    kdf_params: dict[str, object] = {"salt": salt, "iteration_count": iterations}
    if key_length is not None:
        kdf_params["key_length"] = key_length
    if prf is not None:
        kdf_params["prf"] = _AlgorithmIdentifier({"algorithm": prf, "parameters": core.Null()})
    params = _Pbes2Params(
        {
            "key_derivation_func": {"algorithm": kdf, "parameters": _Pbkdf2Params(kdf_params)},
            "encryption_scheme": {"algorithm": cipher_oid, "parameters": core.OctetString(iv)},
        }
    )
    der = _EncryptedPrivateKeyInfo(
        {"encryption_algorithm": {"algorithm": scheme, "parameters": params}, "encrypted_data": ciphertext}
    ).dump()
    return encode_pem("ENCRYPTED PRIVATE KEY", der, {"role": "targets", "gun": "x/y"})


@pytest.mark.parametrize(
    ("variant", "ok"),
    [
        ({}, True),
        ({"prf": "1.2.840.113549.2.7"}, True),  # explicit hmacWithSHA1
        ({"prf": "1.2.840.113549.2.9"}, True),  # hmacWithSHA256 (cryptography's and OpenSSL 3's default)
        ({"cipher_oid": "2.16.840.1.101.3.4.1.2"}, True),  # AES-128-CBC
        ({"key_length": 32}, True),
        ({"key_length": 16}, False),
        ({"prf": "1.2.840.113549.2.11"}, False),  # hmacWithSHA512
        ({"cipher_oid": "1.2.840.113549.3.7"}, False),  # des-ede3-cbc
        ({"cipher_oid": "2.16.840.1.101.3.4.1.22"}, False),  # aes-192-cbc
        ({"scheme": "1.2.840.113549.1.12.1.3"}, False),  # PBES1 pbeWithSHAAnd3-KeyTripleDES-CBC
        ({"kdf": "1.3.6.1.4.1.11591.4.11"}, False),  # scrypt
        ({"iterations": 0}, False),
        ({"iterations": 10**9}, False),
    ],
)
def test_pbes2_variants(keys: dict[str, PrivateKey], variant: dict[str, object], ok: bool) -> None:
    pem = _pbes2_file(keys["ecdsa"], PASS, **variant)  # type: ignore[arg-type]
    if ok:
        assert decode_private_key(pem, PASS).key.key_id == keys["ecdsa"].key_id
    else:
        with pytest.raises(KeyFileError) as exc:
            decode_private_key(pem, PASS)
        assert (
            "unsupported" in str(exc.value)
            or "does not match" in str(exc.value)
            or "iteration" in str(exc.value)
        )


# --------------------------------------------------------------------------- reading other tools' files


def _cryptography_files(key: PrivateKey) -> dict[str, tuple[bytes, str | None]]:
    raw = key.crypto
    out: dict[str, tuple[bytes, str | None]] = {
        "pkcs8-plain": (
            raw.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            None,
        ),
        "pkcs8-encrypted-sha256": (
            raw.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(PASS.encode()),
            ),
            PASS,
        ),
    }
    if not isinstance(raw, ed25519.Ed25519PrivateKey):
        out["traditional-plain"] = (
            raw.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
            None,
        )
        out["traditional-dek-info"] = (
            raw.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.BestAvailableEncryption(PASS.encode()),
            ),
            PASS,
        )
    return out


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_reads_cryptography_written_files(keys: dict[str, PrivateKey], keytype: str) -> None:
    key = keys[keytype]
    for name, (pem, passphrase) in _cryptography_files(key).items():
        decoded = decode_private_key(pem, passphrase)
        assert decoded.key.key_id == key.key_id, name
        assert decoded.encrypted == (passphrase is not None), name
        assert decoded.role is None
        if passphrase is not None:
            with pytest.raises(WrongPassphraseError):
                decode_private_key(pem, "not the passphrase")


@pytest.mark.parametrize(
    "args",
    [
        ["ec", "-des3"],
        ["ec", "-aes128"],
        ["ec", "-aes256"],
        ["rsa", "-traditional", "-des3"],
        ["rsa", "-traditional", "-aes192"],
        ["pkcs8", "-topk8", "-v2", "aes-128-cbc"],
        ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"],
    ],
    ids=" ".join,
)
def test_reads_openssl_encrypted_files(keys: dict[str, PrivateKey], args: list[str], tmp_path: Path) -> None:
    key = keys["rsa" if args[0] == "rsa" else "ecdsa"]
    plain = tmp_path / "in.pem"
    plain.write_bytes(
        key.crypto.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pem = subprocess.run(
        ["openssl", *args, "-in", str(plain), "-passout", "pass:" + PASS.replace(" ", "-")],
        capture_output=True,
        check=True,
    ).stdout
    assert b"ENCRYPTED" in pem
    decoded = decode_private_key(pem, PASS.replace(" ", "-"))
    assert decoded.key.key_id == key.key_id
    assert decoded.encrypted
    with pytest.raises(WrongPassphraseError):
        decode_private_key(pem, "wrong-passphrase")


def test_reads_openssl_ed25519_pkcs8(tmp_path: Path) -> None:
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True, check=True
    ).stdout
    decoded = decode_private_key(pem, None)
    assert decoded.key.keytype == "ed25519"
    expected = serialization.load_pem_private_key(pem, None)
    assert PrivateKey(expected).key_id == decoded.key.key_id  # type: ignore[arg-type]


def test_reads_legacy_ed25519_block(keys: dict[str, PrivateKey]) -> None:
    key = keys["ed25519"]
    raw = core.Sequence.load(bytes(notary_private_key_info(key)))[2].native  # public || seed || public
    decoded = decode_private_key(_pem("ED25519 PRIVATE KEY", raw, role="timestamp", gun="g"), None)
    assert decoded.key.key_id == key.key_id
    assert (decoded.role, decoded.gun) == ("timestamp", "g")


def test_rfc8410_ed25519_with_mismatched_public_key(keys: dict[str, PrivateKey]) -> None:
    from notar.keystore._pkcs8 import _PrivateKeyInfo

    seed = keys["ed25519"].crypto.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    for public, ok in [(keys["ed25519"].public_key.public, True), (bytes(32), False)]:
        info = _PrivateKeyInfo(
            {
                "version": 1,
                "algorithm": {"algorithm": "1.3.101.112"},
                "private_key": core.OctetString(seed).dump(),
                "public_key": public,
            }
        )
        pem = _pem("PRIVATE KEY", info.dump())
        if ok:
            assert decode_private_key(pem, None).key.key_id == keys["ed25519"].key_id
        else:
            with pytest.raises(KeyFileError, match="does not match"):
                decode_private_key(pem, None)


def test_unsupported_keys_are_key_file_errors() -> None:
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    p224 = ec.generate_private_key(ec.SECP224R1())
    for raw in (small_rsa, p224):
        pem = raw.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with pytest.raises(KeyFileError, match="unsupported"):
            decode_private_key(pem, None)


# --------------------------------------------------------------------------- fuzzing: only our errors escape


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    for wrapped in (
        data,
        _pem("PRIVATE KEY", data),
        _pem("ENCRYPTED PRIVATE KEY", data),
        _pem("EC PRIVATE KEY", data),
    ):
        with contextlib.suppress(KeystoreError):
            decode_private_key(wrapped, PASS)


_FUZZ_KEY = PrivateKey.generate("ed25519")
_FUZZ_PEM = encode_private_key(_FUZZ_KEY, PASS, role="root")
_FUZZ_PLAIN = encode_private_key(_FUZZ_KEY, None, role="root")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([_FUZZ_PEM, _FUZZ_PLAIN]),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=255),
)
def test_flipped_bytes_never_crash(pem: bytes, where: int, xor: int) -> None:
    kind, headers, der = pem_blocks(pem)[0]
    mutated = bytearray(der)
    mutated[where % len(mutated)] ^= xor
    try:
        decoded = decode_private_key(encode_pem(kind, bytes(mutated), headers), PASS)
    except KeystoreError:
        return
    # Whatever survives a flip (e.g. the version byte) is still the same key: the 96-byte form repeats
    # the public key, so a changed seed cannot go unnoticed.
    assert decoded.key.key_id == _FUZZ_KEY.key_id


# --------------------------------------------------------------------------- public key files


@pytest.mark.parametrize("keytype", KEYTYPES)
def test_public_key_pem(keys: dict[str, PrivateKey], keytype: str) -> None:
    pub = keys[keytype].public_key
    pem = encode_public_key(pub, role="alice")
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\nrole: alice\n\n")
    assert PublicKey.from_pem(pem).key_id == pub.key_id
    loaded = serialization.load_pem_public_key(strip_headers(pem))  # a standard SPKI, also for ed25519
    assert PublicKey.from_crypto(loaded).key_id == pub.key_id  # type: ignore[arg-type]


def test_public_key_pem_of_a_certificate_key_is_the_bare_key(keys: dict[str, PrivateKey]) -> None:
    import datetime as dt

    raw = keys["ecdsa"].crypto
    assert isinstance(raw, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com/x")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(raw.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(raw, hashes.SHA256())
    )
    cert_key = PublicKey.from_certificate(cert)
    pem = encode_public_key(cert_key, role="root")
    assert PublicKey.from_pem(pem).key_id == keys["ecdsa"].key_id == cert_key.canonical_key_id


def _rfc1423_encrypt(der: bytes, passphrase: str, name: str) -> dict[str, str]:
    """Encrypt like OpenSSL's PEM_write_bio with a DEK-Info cipher; returns headers and stores the body."""
    import hashlib
    import os

    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.padding import PKCS7

    block, klen = (8, 8) if name == "DES-CBC" else (16, 32)
    iv = os.urandom(block)
    key = b""
    digest = b""
    while len(key) < klen:
        digest = hashlib.md5(digest + passphrase.encode() + iv[:8], usedforsecurity=False).digest()
        key += digest
    key = key[:klen]
    algo = TripleDES(key * 3) if name == "DES-CBC" else algorithms.AES(key)
    padder = PKCS7(block * 8).padder()
    enc = Cipher(algo, modes.CBC(iv)).encryptor()
    body = enc.update(padder.update(der) + padder.finalize()) + enc.finalize()
    return {"Proc-Type": "4,ENCRYPTED", "DEK-Info": f"{name},{iv.hex().upper()}", "_body": body.hex()}


@pytest.mark.parametrize("name", ["DES-CBC", "AES-256-CBC"])
def test_legacy_encrypted_ed25519_and_single_des(keys: dict[str, PrivateKey], name: str) -> None:
    key = keys["ed25519"]
    raw = core.Sequence.load(bytes(notary_private_key_info(key)))[2].native
    headers = _rfc1423_encrypt(raw, PASS, name)
    body = bytes.fromhex(headers.pop("_body"))
    pem = encode_pem("ED25519 PRIVATE KEY", body, {**headers, "role": "snapshot", "gun": "g/h"})
    decoded = decode_private_key(pem, PASS)
    assert decoded.key.key_id == key.key_id and decoded.encrypted
    with pytest.raises(KeystoreError) as exc:  # wrong passphrase: bad padding, or garbage that fails to parse
        decode_private_key(pem, "another passphrase")
    assert isinstance(exc.value, WrongPassphraseError)
    with pytest.raises(PassphraseUnavailableError):
        decode_private_key(pem, None)
