"""The signing event's small parts, without peers: option parsing, the signer key choice, the event runner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notar.crypto import PrivateKey
from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.notation.certgen import parse_subject, self_signed_signing_certificate
from notar.registry import Descriptor, parse_reference
from notar.signing import (
    AmbiguousSignerError,
    Format,
    Outcome,
    SigningSetupError,
    Status,
    Subject,
    Unavailable,
    choose_signer_key,
    is_signature_tag,
    open_signing_key,
    parse_annotations,
    parse_duration,
    parse_formats,
    sign_event,
)

DIGEST = "sha256:" + "ab" * 32


def subject(tag: str = "1.0", digest: str = DIGEST) -> Subject:
    ref = parse_reference(f"registry.example.com/team/app:{tag}")
    return Subject(ref, Descriptor("application/vnd.oci.image.manifest.v1+json", digest, 123))


def test_formats_in_order_without_repeats_and_comma_lists() -> None:
    assert parse_formats(["cosign", "v1,notation", " Notation , v1"]) == (
        Format.COSIGN,
        Format.V1,
        Format.NOTATION,
    )
    assert parse_formats([""]) == ()
    with pytest.raises(SigningSetupError, match="unknown signature format 'dct'"):
        parse_formats(["v1,dct"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("12h", 43200), ("3h20m", 12000), ("365d", 365 * 86400), ("90s", 90), ("1D", 86400)],
)
def test_durations_like_notation_expiry(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "h", "1x", "1h 2m", "-1h", "0m", "m30", "1h30", "999999d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SigningSetupError):
        parse_duration(text)


def test_annotations() -> None:
    assert parse_annotations(["a=1", "b==2", "c="], notation=True) == {"a": "1", "b": "=2", "c": ""}
    assert parse_annotations(["io.cncf.notary.x=1"], notation=False) == {"io.cncf.notary.x": "1"}
    for bad, why in (["a"], "KEY=VALUE"), (["=1"], "KEY=VALUE"), (["a=1", "a=2"], "twice"):
        with pytest.raises(SigningSetupError, match=why):
            parse_annotations(bad, notation=True)
    with pytest.raises(SigningSetupError, match="reserved"):
        parse_annotations(["io.cncf.notary.x=1"], notation=True)


def test_signature_tags_are_not_images() -> None:
    hexdigest = "ab" * 32
    assert is_signature_tag(f"sha256-{hexdigest}") and is_signature_tag(f"sha256-{hexdigest}.sig")
    assert is_signature_tag(f"sha256-{hexdigest}.att")
    assert (
        not is_signature_tag("sha256-abc") and not is_signature_tag("1.0") and not is_signature_tag("latest")
    )


# ----------------------------------------------------------------------------------- the key choice


def certify(store: FileKeyStore, key: PrivateKey, name: str) -> None:
    chain = self_signed_signing_certificate(
        key.crypto, subject=parse_subject(f"C=US,O=Acme,CN={name}"), now=datetime.now(UTC), days=30
    )
    store.add_certificate_chain(key.key_id, chain)


def store_with(tmp_path: Path, *names: str, certified: Sequence[str] = ()) -> FileKeyStore:
    store = FileKeyStore(tmp_path / "trust", CallbackPassphrases(lambda _k, _a: "pass"))
    store.add(PrivateKey.generate(), role="root")
    store.add(PrivateKey.generate(), role="targets", gun="registry.example.com/team/app")
    for name in names:
        key = PrivateKey.generate()
        store.add(key, role=name)
        if name in certified:
            certify(store, key, name)
    return store


def test_the_only_signer_is_chosen_and_opened_with_its_chain(tmp_path: Path) -> None:
    store = store_with(tmp_path, "alice", certified=["alice"])
    chosen = choose_signer_key(store, None)
    assert chosen.name == "alice" and not chosen.referenced
    key = open_signing_key(store, chosen)
    assert key.signer.public_key.key_id == chosen.key_id and key.chain is not None
    assert key.require_chain() == key.chain


def test_no_signer_key_several_signers_and_several_keys(tmp_path: Path) -> None:
    empty = store_with(tmp_path / "empty")
    with pytest.raises(SigningSetupError, match="no signer key in .*notar key generate NAME"):
        choose_signer_key(empty, None)
    two = store_with(tmp_path / "two", "alice", "bob")
    with pytest.raises(
        AmbiguousSignerError, match=r"keys of 2 signers \(alice, bob\): choose one with --signer"
    ):
        choose_signer_key(two, None)
    assert choose_signer_key(two, "bob").name == "bob"
    with pytest.raises(SigningSetupError, match="no key for signer carol") as missing:
        choose_signer_key(two, "carol")
    assert not isinstance(missing.value, AmbiguousSignerError)
    # one signer, two keys: the one with a certificate; without exactly one, ambiguous
    double = store_with(tmp_path / "double", "alice", "alice", certified=[])
    with pytest.raises(AmbiguousSignerError, match="signer alice has 2 keys"):
        choose_signer_key(double, "alice")
    key = PrivateKey.generate()
    double.add(key, role="alice")
    certify(double, key, "alice")
    assert choose_signer_key(double, "alice").key_id == key.key_id


def test_a_key_without_certificate_names_the_command(tmp_path: Path) -> None:
    store = store_with(tmp_path, "alice")
    key = open_signing_key(store, choose_signer_key(store, "alice"))
    with pytest.raises(SigningSetupError, match="`notar cert generate alice`"):
        key.require_chain()


# ------------------------------------------------------------------------------------- the event


class Broken:
    format = Format.COSIGN

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        raise RuntimeError("boom")


class Short:
    format = Format.NOTATION

    def sign(self, subjects: Sequence[Subject]) -> list[Outcome]:
        return [Outcome(subjects[0], self.format, Status.SIGNED)]


def test_one_format_failing_never_hides_another() -> None:
    subjects = [subject("1.0"), subject("2.0", "sha256:" + "cd" * 32)]
    outcomes = sign_event(subjects, [Unavailable(Format.V1, "no trust server"), Broken(), Short()])
    assert [(o.format, o.subject.tag, o.status) for o in outcomes] == [
        (Format.V1, "1.0", Status.FAILED),
        (Format.V1, "2.0", Status.FAILED),
        (Format.COSIGN, "1.0", Status.FAILED),
        (Format.COSIGN, "2.0", Status.FAILED),
        (Format.NOTATION, "1.0", Status.FAILED),
        (Format.NOTATION, "2.0", Status.FAILED),
    ]
    assert outcomes[0].error == "no trust server"
    assert outcomes[2].error == "internal error: RuntimeError: boom"
    assert "once per subject" in (outcomes[4].error or "")
    entry = outcomes[0].to_json()
    assert entry == {
        "repository": "registry.example.com/team/app",
        "tag": "1.0",
        "digest": DIGEST,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 123,
        "index": None,
        "format": "v1",
        "status": "failed",
        "error": "no trust server",
    }
