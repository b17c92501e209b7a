"""``notar sign --format v1|notation|cosign`` as a process, against the real Debian docker-registry (no
referrers API: the ``sha256-<hex>`` tag schema) and `notar server`.

One command signs in all three formats; then each is read back by an independent path: ``notar verify``
(a process) verifies the Notation signature with a trust store holding the signer's certificate and the
cosign signature with the public key; Notary v1 through ``notar inspect`` and the Go ``notary list``.
Failures are reported per tag and per format, never undo another format, and leave nothing that claims
success.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notar.keystore import CallbackPassphrases, FileKeyStore
from notar.notation.certgen import parse_subject, self_signed_signing_certificate
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    ManifestNotFoundError,
    RegistryClient,
    list_referrers,
    read_cosign_signatures,
)
from tests.lab import NotarServer, NotaryCLI, Registry
from tests.signing.support import PASSPHRASES, Notar, push, push_index, refusing_proxy, unique_repo

pytestmark = pytest.mark.peers
_REPO = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"


@pytest.fixture
def notar(notar_server: NotarServer, tmp_path: Path) -> Notar:
    return Notar(tmp_path / "home", notar_server.url, notar_server.ca)


def test_one_command_signs_in_all_three_formats_and_each_verifies(
    notar: Notar, registry: Registry, notar_notary_cli: NotaryCLI, tmp_path: Path
) -> None:
    repo = unique_repo("sign/all")
    image = f"{registry.host}/{repo}"
    one = push(registry.host, repo, "1.0", "one").manifest.digest
    two = push(registry.host, repo, "2.0", "two").manifest.digest
    key_id = notar.signer("alice", image)

    run = notar.ok("sign", f"{image}:1.0", f"{image}:2.0", "--format", "v1,notation", "--format", "cosign",
                   "-o", "json")  # fmt: skip
    report = run.json()
    assert [(r["tag"], r["format"], r["status"]) for r in report] == [
        ("1.0", "v1", "signed"), ("2.0", "v1", "signed"),
        ("1.0", "notation", "signed"), ("2.0", "notation", "signed"),
        ("1.0", "cosign", "signed"), ("2.0", "cosign", "signed"),
    ]  # fmt: skip
    assert {r["tag"]: r["digest"] for r in report} == {"1.0": one, "2.0": two}
    assert all(r["error"] is None and r["repository"] == image for r in report)
    v1, notation, cosign = report[0], report[2], report[4]
    assert v1["roles"] == ["targets/alice", "targets/releases"]
    assert notation["referrers"] == "referrers tag schema" and notation["envelope"] == "application/jose+json"
    assert cosign["signature_tag"] == f"sha256-{one[7:]}.sig" and cosign["key_id"] == key_id
    assert f"Signed {image}:1.0 ({one}) in targets/alice, targets/releases" in run.stderr
    assert f"Signed {image}:1.0 ({one}) with Notation (JWS): signature {notation['signature']}" in run.stderr

    # Notation: `notar verify` with a trust store holding alice's certificate (strict)
    notar.trust_certificate(notar.cwd / "alice.crt")
    for tag, digest in (("1.0", one), ("2.0", two)):
        verified = notar.ok("verify", f"{image}:{tag}")
        assert verified.stdout == f"Successfully verified signature for {image}@{digest}\n"
    # ... and not with another certificate in the store
    other = Notar(tmp_path / "other")
    other.ok("key", "generate", "mallory", "--dir", str(other.cwd))
    other.ok("cert", "generate", "mallory")
    other.trust_certificate(other.cwd / "mallory.crt")
    refused = other("verify", f"{image}:1.0")
    assert refused.code == 1 and "authenticity failed" in refused.stderr

    # cosign: `notar verify --key` with alice's public key
    cosign_run = notar.ok("verify", "--key", str(notar.cwd / "alice.pub"), f"{image}:2.0", "-o", "json")
    assert cosign_run.json()["verified"] is True

    # Notary v1: notar inspect and the Go notary client
    inspected = json.loads(notar.ok("inspect", image).stdout)
    assert {t["SignedTag"]: t["Digest"] for t in inspected[0]["SignedTags"]} == {
        "1.0": one[7:],
        "2.0": two[7:],
    }
    listed = notar_notary_cli.run("list", image).stdout.splitlines()
    rows = {fields[0]: fields[1] for fields in map(str.split, listed[2:]) if fields}
    assert rows == {"1.0": one[7:], "2.0": two[7:]}, listed


def test_default_format_is_v1_and_the_json_keeps_the_old_keys(notar: Notar, registry: Registry) -> None:
    repo = unique_repo("sign/default")
    image = f"{registry.host}/{repo}"
    digest = push(registry.host, repo, "1.0", "default").manifest.digest
    notar.signer("alice", image, cert=False)
    [entry] = notar.ok("sign", f"{image}:1.0", "-o", "json").json()
    assert entry["format"] == "v1" and entry["status"] == "signed"
    assert {k: entry[k] for k in ("repository", "tag", "digest", "roles")} == {
        "repository": image, "tag": "1.0", "digest": digest, "roles": ["targets/alice", "targets/releases"],
    }  # fmt: skip
    with RegistryClient(registry.host) as client:  # nothing but v1 was written
        assert sorted(client.tags(repo)) == ["1.0"]


def test_formats_from_the_environment(notar: Notar, registry: Registry) -> None:
    repo = unique_repo("sign/env")
    image = f"{registry.host}/{repo}"
    digest = push(registry.host, repo, "1.0", "env").manifest.digest
    notar.signer("alice", cert=False)
    run = notar.ok("sign", f"{image}:1.0", "-o", "json", env={"NOTAR_SIGN_FORMATS": "cosign"})
    assert [(r["format"], r["status"]) for r in run.json()] == [("cosign", "signed")]
    with RegistryClient(registry.host) as client:
        found = read_cosign_signatures(client, repo, digest)
    assert found.manifest is not None and len(found.payloads) == 1


def test_cose_envelope_expiry_and_user_metadata(notar: Notar, registry: Registry) -> None:
    repo = unique_repo("sign/cose")
    image = f"{registry.host}/{repo}"
    digest = push(registry.host, repo, "1.0", "cose").manifest.digest
    notar.signer("alice")
    run = notar.ok("sign", f"{image}:1.0", "--format", "notation", "--envelope", "cose", "--expiry", "2h",
                   "-a", "build=1234", "--annotation", "team=core")  # fmt: skip
    assert "with Notation (COSE)" in run.stderr
    notar.trust_certificate(notar.cwd / "alice.crt")
    verified = notar.ok("verify", f"{image}@{digest}", "-o", "json").json()
    [signature] = verified["signatures"]
    assert signature["mediaType"] == "application/cose" and signature["verified"]
    assert signature["userMetadata"] == {"build": "1234", "team": "core"}
    assert signature["expiry"] is not None


def test_an_index_and_with_recursive_its_children(notar: Notar, registry: Registry) -> None:
    repo = unique_repo("sign/index")
    image = f"{registry.host}/{repo}"
    index = push_index(registry.host, repo, "multi", "multi")
    children = [i.manifest.digest for i in index.images]
    notar.signer("alice", image)
    report = notar.ok("sign", f"{image}:multi", "--format", "v1,notation,cosign", "--recursive",
                      "-o", "json").json()  # fmt: skip
    by = {(r["format"], r["digest"]): r for r in report}
    assert len(report) == 9
    for digest in (index.manifest.digest, *children):
        assert by[("notation", digest)]["status"] == "signed" and by[("cosign", digest)]["status"] == "signed"
    assert by[("v1", index.manifest.digest)]["status"] == "signed"
    for child in children:
        assert (
            by[("v1", child)]["status"] == "skipped" and by[("v1", child)]["index"] == index.manifest.digest
        )
    notar.trust_certificate(notar.cwd / "alice.crt")
    for digest in (index.manifest.digest, *children):
        notar.ok("verify", f"{image}@{digest}")
        notar.ok("verify", "--key", str(notar.cwd / "alice.pub"), f"{image}@{digest}")
    # without --recursive, only the index
    plain = notar.ok("sign", f"{image}:multi", "--format", "cosign", "-o", "json").json()
    assert [r["digest"] for r in plain] == [index.manifest.digest]


# -------------------------------------------------------------------------------------- failures


def test_a_registry_that_refuses_artifact_manifests_fails_notation_only(
    notar: Notar, registry: Registry
) -> None:
    """A proxy answers 400 to manifest PUTs with a subject: Notation fails for each tag, v1 and cosign
    sign, the exit code is 1, and no referrers index claims a signature."""
    repo = unique_repo("sign/refused")
    with refusing_proxy(registry.host) as proxy:
        host = f"127.0.0.1:{proxy.server_address[1]}"
        image = f"{host}/{repo}"
        digest = push(host, repo, "1.0", "refused").manifest.digest
        notar.signer("alice", image)
        run = notar("sign", f"{image}:1.0", "--format", "v1,notation,cosign", "-o", "json")
        assert run.code == 1, run.stderr
        assert proxy.refused, "the proxy saw no manifest PUT with a subject"
        statuses = {r["format"]: (r["status"], r["error"]) for r in run.json()}
        assert statuses["v1"] == ("signed", None) and statuses["cosign"] == ("signed", None)
        assert statuses["notation"][0] == "failed" and "MANIFEST_INVALID" in statuses["notation"][1]
        [line] = run.error_lines()
        assert line.startswith(f"notar: error: Notation failed for {image}:1.0 ({digest}): ")
        with RegistryClient(host) as client:
            referrers = list_referrers(client, repo, digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
            assert referrers.referrers == () and referrers.index is None  # no sha256-<hex> tag at all
            assert read_cosign_signatures(client, repo, digest).manifest is not None
        assert notar.ok("resolve", f"{image}:1.0").stdout.strip() == f"{image}@{digest}"


def test_a_key_without_certificate_fails_notation_and_not_the_others(
    notar: Notar, registry: Registry
) -> None:
    repo = unique_repo("sign/nocert")
    image = f"{registry.host}/{repo}"
    one = push(registry.host, repo, "1.0", "nocert one").manifest.digest
    two = push(registry.host, repo, "2.0", "nocert two").manifest.digest
    key_id = notar.signer("alice", image, cert=False)
    run = notar("sign", f"{image}:1.0", f"{image}:2.0", "--format", "notation,cosign,v1", "-o", "json")
    assert run.code == 1
    [line] = run.error_lines()  # one line for both tags
    assert line == (
        f"notar: error: Notation failed for {image}:1.0 ({one}), {image}:2.0 ({two}): signer alice's key "
        f"{key_id[:7]} has no certificate: Notation signatures need one; make it with `notar cert generate "
        "alice` (or `notar cert import alice CHAIN.pem`)"
    )
    statuses = [(r["format"], r["status"]) for r in run.json()]
    assert statuses == [("notation", "failed")] * 2 + [("cosign", "signed")] * 2 + [("v1", "signed")] * 2
    with RegistryClient(registry.host) as client, pytest.raises(ManifestNotFoundError):
        client.get_manifest(repo, f"sha256-{one[7:]}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "notary"), "unknown signature format 'notary' (one of v1, notation, cosign)"),
        (("--format", ","), "--format: no format given"),
        (("--envelope", "cose"), "--envelope applies to --format notation only"),
        (("--format", "cosign", "--expiry", "1h"), "--expiry applies to --format notation only"),
        (("--format", "notation", "--expiry", "soon"), "--expiry: 'soon' is not a duration"),
        (("--format", "notation", "-a", "novalue"), "--annotation: annotation 'novalue' must be KEY=VALUE"),
        (("--format", "notation", "-a", "io.cncf.notary.x=1"), "is reserved by the Notary Project"),
        (("--signer", "alice"), "--signer applies to --format cosign or --format notation only"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    notar: Notar, registry: Registry, args: tuple[str, ...], message: str
) -> None:
    run = notar("sign", f"{registry.host}/sign/bad:1.0", *args)
    assert run.code == 2 and message in run.one_line_error(), run.stderr


def test_several_signers_need_signer_and_unresolvable_tags_sign_nothing(
    notar: Notar, registry: Registry
) -> None:
    notar.signer("alice", cert=False)
    notar.signer("bob", cert=False)
    ambiguous = notar("sign", f"{registry.host}/sign/two:1.0", "--format", "cosign")
    assert ambiguous.code == 2
    assert (
        "holds the keys of 2 signers (alice, bob): choose one with --signer NAME"
        in ambiguous.one_line_error()
    )
    # every tag is resolved before anything is signed: one tag that is not there, nothing signed
    repo = unique_repo("sign/missing")
    digest = push(registry.host, repo, "1.0", "there").manifest.digest
    missing = notar("sign", f"{registry.host}/{repo}:1.0", f"{registry.host}/{repo}:2.0", "--format", "cosign",
                    "--signer", "bob")  # fmt: skip
    assert missing.code == 1
    assert f"GET manifest {repo}:2.0: HTTP 404: MANIFEST_UNKNOWN" in missing.one_line_error()
    with RegistryClient(registry.host) as client:
        assert read_cosign_signatures(client, repo, digest).manifest is None
    closed = notar("sign", "127.0.0.1:9/sign/app:1.0", "--format", "cosign", "--signer", "alice")
    assert closed.code == 1
    assert closed.one_line_error() == (
        "notar: error: registry http://127.0.0.1:9: GET manifest sign/app:1.0: cannot connect: "
        "[Errno 111] Connection refused"
    )


def test_broken_and_expired_certificates_fail_notation_only(notar: Notar, registry: Registry) -> None:
    """An unreadable stored chain, then a chain that expired: Notation fails with one line, cosign signs."""
    repo = unique_repo("sign/badcert")
    image = f"{registry.host}/{repo}"
    digest = push(registry.host, repo, "1.0", "bad certificates").manifest.digest
    key_id = notar.signer("alice")
    stored = notar.trust_dir / "private" / f"{key_id}.crt"
    stored.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    run = notar("sign", f"{image}:1.0", "--format", "notation,cosign", "-o", "json")
    assert run.code == 1
    [line] = run.error_lines()
    assert line.startswith(
        f"notar: error: Notation failed for {image}:1.0 ({digest}): signer alice's certificate"
    )
    assert "cannot be read" in line and "notar cert generate alice --force" in line
    assert [(r["format"], r["status"]) for r in run.json()] == [("notation", "failed"), ("cosign", "signed")]

    store = FileKeyStore(notar.trust_dir, CallbackPassphrases(lambda _k, _a: PASSPHRASES[_REPO]))
    key = store.get(key_id)[0]
    then = datetime.now(UTC) - timedelta(days=30)
    expired = self_signed_signing_certificate(
        key.crypto, subject=parse_subject("C=US,O=Acme,CN=alice"), now=then, days=2
    )
    store.add_certificate_chain(key_id, expired, replace=True)
    run = notar("sign", f"{image}:1.0", "--format", "notation,cosign")
    assert run.code == 1
    [line] = run.error_lines()
    assert "the certificate chain is not valid at the signing time" in line, line
    with RegistryClient(registry.host) as client:
        referrers = list_referrers(client, repo, digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
        assert referrers.referrers == ()
        sig = read_cosign_signatures(client, repo, digest).manifest
        assert sig is not None and len(sig.json()["layers"]) == 2  # both runs signed cosign
