"""One-time setup: upload a signer's encrypted key and its passphrase to Secrets Manager."""

from __future__ import annotations

from dataclasses import dataclass

from notar.errors import NotarError
from notar.keystore import decode_private_key
from notar.release._secrets import SecretsError, SecretsManager

__all__ = ["SignerSecrets", "default_secret_names", "put_signer"]


@dataclass(frozen=True)
class SignerSecrets:
    signer: str
    key_id: str
    key_secret_name: str
    key_secret_arn: str
    passphrase_secret_name: str
    passphrase_secret_arn: str
    region: str


def default_secret_names(signer: str) -> tuple[str, str]:
    """``notar/signers/<name>/key`` and ``notar/signers/<name>/passphrase``."""
    return f"notar/signers/{signer}/key", f"notar/signers/{signer}/passphrase"


def put_signer(
    signer: str,
    key_pem: bytes | bytearray,
    passphrase: str,
    *,
    secrets: SecretsManager,
    key_secret_name: str,
    passphrase_secret_name: str,
    force: bool = False,
    kms_key_id: str | None = None,
) -> SignerSecrets:
    """Check that *passphrase* decrypts the encrypted key *key_pem*, then store both (refusing to
    overwrite existing secrets unless *force*). Raises :class:`SecretsError` / keystore errors."""
    if key_secret_name == passphrase_secret_name:
        raise SecretsError("the key and the passphrase must go into two different secrets")
    if not passphrase:
        raise SecretsError("the passphrase is empty")
    try:
        decoded = decode_private_key(bytes(key_pem), passphrase)
    except NotarError as e:
        raise SecretsError(f"the key file cannot be used: {e}") from None
    if not decoded.encrypted:
        raise SecretsError(
            "the key file is not encrypted: upload the encrypted key file that `notar key generate` writes "
            "(in <trust dir>/private/<key ID>.key)"
        )
    key_id = decoded.key.key_id
    del decoded
    existing = [n for n in (key_secret_name, passphrase_secret_name) if secrets.exists(n) is not None]
    if existing and not force:
        raise SecretsError(
            f"secret(s) {', '.join(existing)} already exist in {secrets.region}; use --force to replace them"
        )
    description = f"notar signer {signer} (key ID {key_id[:12]})"
    key_arn = secrets.put(
        key_secret_name, key_pem, description=f"{description}: encrypted private key", kms_key_id=kms_key_id
    )
    pass_arn = secrets.put(
        passphrase_secret_name,
        passphrase.encode("utf-8", "surrogateescape"),
        description=f"{description}: passphrase",
        kms_key_id=kms_key_id,
    )
    return SignerSecrets(
        signer, key_id, key_secret_name, key_arn, passphrase_secret_name, pass_arn, secrets.region
    )
