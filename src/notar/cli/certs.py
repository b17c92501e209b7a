"""``notar cert``: code-signing certificates for signer keys (what Notation signatures carry in ``x5c``).

Size: three subcommands (generate, import, show) share the signer lookup, the CA key's formats and
passphrases and the one-line error mapping; the certificate rules themselves live in notar.notation.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from notar.cli._common import BadInput, Context, trust_options
from notar.cli._common import check_name as _check_name
from notar.crypto import DigestSigner
from notar.keystore import (
    REFERENCE_EXTENSION,
    CertificateFileError,
    CertificateInfo,
    FileKeyStore,
    InsecureKeyFileError,
    KeyFileError,
    KeyInfo,
    PassphraseUnavailableError,
    WrongPassphraseError,
    decode_certificate_chain,
    decode_private_key,
    encode_certificate_chain,
    read_regular_file,
    same_public_key,
)
from notar.notation import CertificateRequestError, signing_chain_problems, validity_problems
from notar.notation.certgen import (
    MAX_DAYS,
    issue_signing_certificate,
    parse_subject,
    self_signed_signing_certificate,
)
from notar.notation.envelope import algorithm_for_key
from notar.notation.policy import subject_attributes

__all__ = ["cert"]

CA_PASSPHRASE_ENV = "NOTAR_CA_KEY_PASSPHRASE"  # noqa: S105 (a variable name, not a passphrase)
_PROMPTS = 3
_MAX_CHAIN_FILE = 1 << 20


@click.group()
def cert() -> None:
    """Certificates for signer keys: Notation signatures carry one (x5c) and are trusted through it.

    \b
    A signer key (`notar key generate NAME`) gets a certificate once; `notar key list`
    shows which keys have one and until when. The chain is kept beside the key in the
    trust directory (private/<key ID>.crt; docker and notary read only *.key files there).
    """


def _signer_name(name: str) -> str:
    """The signer-name rule of ``notar key``, as a one-line error."""
    try:
        return _check_name(name)
    except click.BadParameter as e:
        raise BadInput(f"NAME: {e.message}") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _short(key_id: str) -> str:
    return key_id[:7]


def _signer_key(ks: FileKeyStore, name: str, key_id: str | None) -> KeyInfo:
    """The one key stored as signer NAME (``--key-id`` picks among several, by ID or unique prefix): a key
    file, or the reference of a key that stays in AWS KMS (its ``path`` ends in ``.kms``)."""
    found = ks.find(name) + [
        KeyInfo(r.key_id, r.role, None, r.path or Path()) for r in ks.find_references(name)
    ]
    if key_id:
        found = [i for i in found if i.key_id.startswith(key_id.lower())]
        if not found:
            raise BadInput(
                f"no key of signer {name} has an ID starting with {key_id!r} (see `notar key list`)"
            )
    if not found:
        raise BadInput(
            f"no key for signer {name} in {ks.private_dir}: make one with `notar key generate {name}`"
            f" or `notar key load --name {name}`, or give an AWS KMS key with --key awskms:///..."
        )
    if len(found) > 1:
        ids = ", ".join(_short(i.key_id) for i in found)
        raise BadInput(f"signer {name} has {len(found)} keys ({ids}): choose one with --key-id")
    return found[0]


def _is_reference(info: KeyInfo) -> bool:
    return info.path.suffix == REFERENCE_EXTENSION


def _kms_signer(ks: FileKeyStore, info: KeyInfo) -> DigestSigner:
    """The signer of a KMS-backed key from its stored reference (no KMS call until it signs)."""
    from notar.kms import KmsSigner

    ref = ks.reference(info.key_id)
    assert ref is not None
    return KmsSigner(ref.uri, ref.public_key)


def _kms_key(ks: FileKeyStore, name: str, uri: str) -> tuple[KeyInfo, bool]:
    """``--key awskms:///...``: the KMS key's public key (GetPublicKey), kept as signer NAME's reference;
    True when the reference is new."""
    from notar.kms import KeyURIError, KmsKeySpecError, KmsKeyUsageError, KmsSigner

    try:
        kms_signer = KmsSigner.open(uri)
    except (KeyURIError, KmsKeySpecError, KmsKeyUsageError) as e:
        raise BadInput(f"--key: {e}") from None
    current = ks.reference(kms_signer.key_id)
    if current is not None and current.role != name:
        raise BadInput(
            f"--key: {uri} is already the key of signer {current.role} ({current.path}); one KMS key, one signer"
        )
    ref = ks.add_reference(str(kms_signer.uri), kms_signer.public_key, role=name, replace=True)
    return KeyInfo(ref.key_id, name, None, ref.path or Path()), current is None


def _existing(ks: FileKeyStore, info: KeyInfo, force: bool) -> None:
    """Refuse to replace the key's stored chain unless *force* (an unreadable one included)."""
    if force:
        return
    try:
        current = ks.certificate_info(info.key_id)
    except (CertificateFileError, KeyFileError) as e:
        raise BadInput(
            f"key {_short(info.key_id)} of {info.role} has an unreadable certificate ({e}): --force replaces it"
        ) from None
    if current is not None:
        raise BadInput(
            f"key {_short(info.key_id)} of {info.role} already has a certificate ({current.subject}, valid until"
            f" {current.not_after:%Y-%m-%d}) in {current.path}: --force replaces it (verifiers that trust"
            " the old self-signed certificate will not trust the new one)"
        )


def _read_chain(path: str, *, option: str | None = None) -> tuple[x509.Certificate, ...]:
    try:
        data = read_regular_file(path, limit=_MAX_CHAIN_FILE)
        return decode_certificate_chain(data, what=path)
    except (KeyFileError, CertificateFileError) as e:
        raise BadInput(f"{option}: {e}" if option else str(e)) from None


def _problems(problems: Sequence[object], limit: int = 3) -> str:
    text = "; ".join(str(p) for p in problems[:limit])
    return text + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def _ca_passphrase(path: str) -> str:
    """The CA key's passphrase: $NOTAR_CA_KEY_PASSPHRASE, else a prompt on a terminal."""
    value = os.environ.get(CA_PASSPHRASE_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise BadInput(
            f"--ca-key: {path} is encrypted: set {CA_PASSPHRASE_ENV} or run in a terminal to be asked"
        )
    return getpass.getpass(f"Enter passphrase for CA key {path}: ")


def _notary_style_ca_key(data: bytes, path: str) -> PrivateKeyTypes:
    """A key in notary's own key file format (PEM headers), read by the keystore's reader."""
    try:
        return decode_private_key(data, lambda: _ca_passphrase(path)).key.crypto
    except WrongPassphraseError:
        raise BadInput(f"--ca-key: wrong passphrase for {path}") from None
    except (KeyFileError, PassphraseUnavailableError) as e:
        raise BadInput(f"--ca-key: {path}: {e}") from None


def _load_ca_key(path: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """The CA private key: PEM PKCS#8 (encrypted with any cipher OpenSSL uses, or not), traditional
    ``EC``/``RSA PRIVATE KEY`` (also with ``DEK-Info``), or a notary key file."""
    try:
        data = read_regular_file(path, private=True)
    except (KeyFileError, InsecureKeyFileError) as e:
        raise BadInput(f"--ca-key: {e}") from None
    key: PrivateKeyTypes
    try:
        key = serialization.load_pem_private_key(data, None)
    except TypeError:  # encrypted
        tries = _PROMPTS if not os.environ.get(CA_PASSPHRASE_ENV) and sys.stdin.isatty() else 1
        for attempt in range(tries):
            passphrase = _ca_passphrase(path)
            try:
                key = serialization.load_pem_private_key(data, passphrase.encode("utf-8"))
                break
            except ValueError:
                if attempt + 1 < tries:
                    click.echo("Passphrase incorrect. Please retry.", err=True)
            except UnsupportedAlgorithm as e:
                raise BadInput(f"--ca-key: {path}: unsupported encryption ({e})") from None
        else:
            raise BadInput(f"--ca-key: wrong passphrase for {path} (or the file is damaged)") from None
    except (ValueError, UnsupportedAlgorithm):
        key = _notary_style_ca_key(data, path)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise BadInput(f"--ca-key: {path}: a CA key must be an RSA or EC key, not {type(key).__name__}")
    return key


def _write_out(path: Path, data: bytes, *, force: bool) -> bool:
    """Write *data* to *path* (0644); refuse an existing file unless *force*. True if the file is new."""
    existed = os.path.lexists(path)
    if existed and not force:
        raise BadInput(f"--out: {path} exists: --force replaces it")
    if existed and not path.is_file():
        raise BadInput(f"--out: {path} is not a regular file")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
        tmp.replace(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise BadInput(f"--out: {e.filename or path}: {e.strerror or e}") from None
    return not existed


def _describe(info: CertificateInfo) -> dict[str, Any]:
    leaf = info.leaf
    return {
        "path": str(info.path),
        "subject": info.subject,
        "issuer": leaf.issuer.rfc4514_string(),
        "self_signed": len(info.chain) == 1,
        "not_before": info.not_before.isoformat(),
        "not_after": info.not_after.isoformat(),
        "certificates": len(info.chain),
        "sha256": hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
    }


def _report(
    ctx: Context, verb: str, name: str, info: KeyInfo, stored: CertificateInfo, out: Path | None
) -> None:
    if ctx.output == "json":
        doc = {"name": name, "key_id": info.key_id, "certificate": _describe(stored)}
        if out is not None:
            doc["out"] = str(out)
        click.echo(json.dumps(doc, indent=2))
        return
    kind = "self-signed" if len(stored.chain) == 1 else f"issued by {stored.leaf.issuer.rfc4514_string()}"
    click.echo(
        f"{verb} a certificate for {name} (key {_short(info.key_id)}): {stored.subject}, {kind},"
        f" valid until {stored.not_after:%Y-%m-%d %H:%M:%S} UTC; kept in {stored.path}",
        err=True,
    )
    attributes = subject_attributes(stored.leaf.subject)
    missing = [a for a in ("C", "ST", "O") if not isinstance(attributes, dict) or a not in attributes]
    if missing:
        click.echo(
            f"notar: warning: the subject has no {', '.join(missing)}: a trust policy can name this signer"
            ' only with trustedIdentities "*" (x509.subject identities need C, ST and O)',
            err=True,
        )
    click.echo(str(out) if out is not None else str(stored.path))


@cert.command("generate")
@click.argument("name")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Where to write the chain (PEM). [default: NAME.crt]",
)
@click.option(
    "--subject",
    metavar="DN",
    help='Subject, e.g. "C=US,ST=WA,O=Acme,CN=alice" (C ST L O OU CN SERIALNUMBER STREET POSTALCODE'
    " or dotted OIDs). [default: CN=NAME]",
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    default=365,
    show_default=True,
    help="Validity from now, in days.",
)
@click.option(
    "--ca-cert",
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificate PEM, then any intermediates up to the self-signed root. Needs --ca-key.",
)
@click.option(
    "--ca-key",
    type=click.Path(dir_okay=False, exists=True),
    help=f"The CA's private key (PEM, PKCS#8 or EC/RSA; if encrypted: ${CA_PASSPHRASE_ENV} or a prompt).",
)
@click.option("--key-id", help="Which key of NAME, when it has several (an ID prefix, see `notar key list`).")
@click.option(
    "--key",
    "kms_key",
    metavar="awskms:///KEY",
    help="Certify this AWS KMS key (ECC_NIST_P256/P384/P521 or RSA_2048/3072/4096) and keep it as signer "
    "NAME's key: a self-signed certificate is signed by KMS (one Sign call).",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing certificate of the key and an existing --out file."
)
@trust_options
def generate(
    ctx: Context,
    name: str,
    out: str | None,
    subject: str | None,
    days: int,
    ca_cert: str | None,
    ca_key: str | None,
    key_id: str | None,
    kms_key: str | None,
    force: bool,
) -> None:
    """Make a code-signing certificate for signer NAME's existing key (for Notation signatures).

    NAME is a key made by `notar key generate NAME` (or `notar key load --name NAME`);
    its passphrase comes from DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or a prompt.

    \b
    Self-signed (no --ca-cert): verifiers trust this very certificate:
      notar cert generate alice --subject "C=US,ST=WA,O=Acme,CN=alice"
      notation cert add --type ca --store acme alice.crt
    Issued by your CA: CA.pem holds the CA certificate and any intermediates up to
    the self-signed root (issuing CA first); verifiers trust the root:
      notar cert generate alice --ca-cert ca-chain.pem --ca-key ca.key --days 90

    \b
    The certificate follows the Notary Project rules, checked before anything is written:
    key usage digitalSignature only (critical), extended key usage codeSigning, not a CA,
    RSA 2048/3072/4096 or EC P-256/P-384/P-521 keys (Ed25519 keys cannot sign Notation).
    The chain (leaf first) goes to --out and is kept with the key for signing
    (<trust dir>/private/<key ID>.crt). Trust policies name signers by subject:
    "x509.subject: C=US, ST=WA, O=Acme" needs C, ST and O in --subject.

    \b
    A key that stays in AWS KMS (no key file; nothing secret on disk):
      notar cert generate ci --key awskms:///alias/release-signer --subject "C=US,ST=WA,O=Acme,CN=ci"
    The public key comes from KMS (GetPublicKey), the certificate is signed through KMS
    (Sign, MessageType=DIGEST) or by --ca-key, and the key is kept as signer NAME's
    (private/<key ID>.kms beside private/<key ID>.crt); later `notar cert generate ci`
    finds it without --key. Region and credentials: the standard AWS chain.

    \b
    Exit codes: 0 done; 1 the key could not be unlocked or KMS failed; 2 bad input (the
    message names the file or the rule).
    """
    _signer_name(name)
    if kms_key is not None and key_id is not None:
        raise BadInput("--key and --key-id exclude each other (--key names the key itself)")
    if (ca_cert is None) != (ca_key is None):
        raise BadInput("--ca-cert and --ca-key go together (the CA's certificate chain and its private key)")
    try:
        name_ = parse_subject(subject if subject is not None else f"CN={name}")
    except CertificateRequestError as e:
        raise BadInput(f"--{e}") from None  # "subject: ..." -> "--subject: ..."
    out_path = Path(out) if out else Path(f"{name}.crt")
    if os.path.lexists(out_path) and not force:
        raise BadInput(f"--out: {out_path} exists: --force replaces it")
    ks = ctx.keystore()
    if kms_key is not None:
        _existing_for_uri(ks, kms_key, force)
        info, new_reference = _kms_key(ks, name, kms_key)
    else:
        info, new_reference = _signer_key(ks, name, key_id), False
    try:
        _existing(ks, info, force)
        ca_chain = _read_chain(ca_cert, option="--ca-cert") if ca_cert is not None else None
        issuer_key = _load_ca_key(ca_key) if ca_key is not None else None
        now = _now()
        try:
            if _is_reference(info):
                chain = _kms_certificate(ks, info, name_, now, days, ca_chain, issuer_key)
            else:
                private, _role = ks.get(info.key_id)
                key = private.crypto
                if ca_chain is None or issuer_key is None:
                    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                        raise CertificateRequestError(
                            f"{private.keytype} keys cannot sign Notation signatures (RSA 2048/3072/4096 or EC"
                            f" P-256/P-384/P-521): make an ecdsa key with `notar key generate`"
                        )
                    chain = self_signed_signing_certificate(key, subject=name_, now=now, days=days)
                else:
                    chain = issue_signing_certificate(
                        key.public_key(),
                        subject=name_,
                        now=now,
                        days=days,
                        ca_chain=ca_chain,
                        ca_key=issuer_key,
                    )
        except CertificateRequestError as e:
            raise BadInput(str(e)) from None
        created = _write_out(out_path, encode_certificate_chain(chain), force=force)
        try:
            ks.add_certificate_chain(info.key_id, chain, replace=force)
        except BaseException:
            if created:
                with contextlib.suppress(OSError):
                    out_path.unlink()
            raise
    except BaseException:
        if new_reference:  # the KMS key became NAME's only for this certificate: not without it
            ks.remove_reference(info.key_id)
        raise
    stored = ks.certificate_info(info.key_id)
    assert stored is not None
    _report(ctx, "Generated", name, info, stored, out_path)


def _existing_for_uri(ks: FileKeyStore, uri: str, force: bool) -> None:
    """``--key`` for a KMS key that already has a certificate: refused without --force, before KMS is asked
    to sign (the reference of a known URI names its key ID without a call)."""
    for ref in ks.references():
        if ref.uri == uri:
            _existing(ks, KeyInfo(ref.key_id, ref.role, None, ref.path or Path()), force)


def _kms_certificate(
    ks: FileKeyStore,
    info: KeyInfo,
    subject: x509.Name,
    now: datetime,
    days: int,
    ca_chain: tuple[x509.Certificate, ...] | None,
    issuer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None,
) -> tuple[x509.Certificate, ...]:
    """The chain for a KMS-backed key: self-signed through KMS (the TBSCertificate's digest signed with
    MessageType=DIGEST), or issued by the CA for the KMS public key (no KMS call)."""
    kms_signer = _kms_signer(ks, info)
    if ca_chain is None or issuer_key is None:
        from notar.kms.certificates import self_signed_signing_certificate as kms_self_signed

        return kms_self_signed(kms_signer, subject=subject, now=now, days=days)
    return issue_signing_certificate(
        kms_signer.public_key.to_crypto(),
        subject=subject,
        now=now,
        days=days,
        ca_chain=ca_chain,
        ca_key=issuer_key,
    )


@cert.command("import")
@click.argument("name")
@click.argument("chain_file", metavar="CHAIN.pem", type=click.Path(dir_okay=False, exists=True))
@click.option("--key-id", help="Which key of NAME, when it has several (an ID prefix, see `notar key list`).")
@click.option("--force", is_flag=True, help="Replace an existing certificate of the key.")
@trust_options
def import_chain(ctx: Context, name: str, chain_file: str, key_id: str | None, force: bool) -> None:
    """Keep a certificate chain issued elsewhere (your CA) with signer NAME's key.

    \b
    CHAIN.pem holds PEM certificates: the one for NAME's key first, then each issuer
    up to the self-signed root, e.g. after your CA signed a request for the key:
      cat alice.crt issuing-ca.crt root-ca.crt > alice-chain.pem
      notar cert import alice alice-chain.pem

    \b
    Checked before it is kept: the first certificate's public key is the key's (this
    unlocks the key: DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or a prompt), the chain
    meets the Notary Project rules (leaf: key usage digitalSignature, codeSigning, not a
    CA; CAs: basicConstraints and keyCertSign; each certificate issued by the next; the
    last self-signed) and every certificate is valid now.

    \b
    Exit codes: 0 done; 1 the key could not be unlocked; 2 bad input (the message names
    the file or the rule).
    """
    _signer_name(name)
    chain = _read_chain(chain_file)
    ks = ctx.keystore()
    info = _signer_key(ks, name, key_id)
    _existing(ks, info, force)
    if _is_reference(info):  # a KMS key: its public key is in the reference, nothing to unlock
        ref = ks.reference(info.key_id)
        assert ref is not None
        public = ref.public_key
    else:
        public = ks.get(info.key_id)[0].public_key
    if not same_public_key(chain[0], public):
        later = next((i for i, c in enumerate(chain[1:], 1) if same_public_key(c, public)), None)
        if later is not None:
            raise BadInput(
                f"{chain_file}: the certificate for the key is number {later + 1}; it must come first"
            )
        raise BadInput(
            f"{chain_file}: the first certificate ({chain[0].subject.rfc4514_string()}) is not for {name}'s key"
            f" {_short(info.key_id)} (its public key differs)"
        )
    if algorithm_for_key(chain[0].public_key()) is None:
        raise BadInput(
            f"{chain_file}: {public.keytype} keys cannot sign Notation signatures"
            " (RSA 2048/3072/4096 or EC P-256/P-384/P-521)"
        )
    problems = signing_chain_problems(chain)
    if problems:
        raise BadInput(f"{chain_file}: breaks the Notary Project certificate rules: {_problems(problems)}")
    invalid = validity_problems(chain, _now())
    if invalid:
        raise BadInput(f"{chain_file}: not valid now: {_problems(invalid)}")
    ks.add_certificate_chain(info.key_id, chain, replace=force)
    stored = ks.certificate_info(info.key_id)
    assert stored is not None
    _report(ctx, "Imported", name, info, stored, None)


@cert.command("show")
@click.argument("name")
@click.option("--key-id", help="Which key of NAME, when it has several (an ID prefix, see `notar key list`).")
@trust_options
def show(ctx: Context, name: str, key_id: str | None) -> None:
    """Print the certificate chain kept with signer NAME's key (PEM, leaf first; -o json: details).

    No passphrase is needed. Use the PEM for a verifier's trust store, e.g.
    `notar cert show alice > alice.crt; notation cert add --type ca --store acme alice.crt`
    (for a CA-issued chain, trust the root: the last certificate).
    """
    _signer_name(name)
    ks = ctx.keystore()
    info = _signer_key(ks, name, key_id)
    try:
        stored = ks.certificate_info(info.key_id)
    except (CertificateFileError, KeyFileError) as e:
        raise BadInput(str(e)) from None
    if stored is None:
        raise BadInput(
            f"key {_short(info.key_id)} of {name} has no certificate: `notar cert generate {name}`"
            f" or `notar cert import {name} CHAIN.pem`"
        )
    if ctx.output == "json":
        click.echo(
            json.dumps({"name": name, "key_id": info.key_id, "certificate": _describe(stored)}, indent=2)
        )
    else:
        click.echo(encode_certificate_chain(stored.chain).decode("ascii"), nl=False)
