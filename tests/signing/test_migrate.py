"""``notar migrate`` as a process against `notar server` and the real registry.

One repository holds every case the migration must tell apart:

* ``1.0`` and ``5.0`` signed in ``targets`` (valid) -- ``1.0``'s registry tag was then moved to another
  image: the v1 digest is what gets signed, never the tag's;
* ``2.0`` signed, then revoked;
* ``3.0`` signed only into ``targets/releases`` and ``targets/bob``, whose metadata expires seconds later
  (signed with a clock set back; a trust server refuses what has expired already): once expired, the
  client ignores those roles, so v1 does not vouch for ``3.0`` now;
* ``4.0`` pushed, never signed;
* ``5.0`` already carries a Notation signature by the migrating signer's certificate.

The first run signs exactly ``1.0``; the second skips everything; a dry run writes nothing; trust data that
fails verification (a pinned root that is not the repository's) is refused as a whole.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import pytest

from notar.client import Repository, TrustCache, TrustServer
from notar.encoding import GoTime
from notar.keystore import EnvPassphrases, FileKeyStore
from notar.registry import (
    ARTIFACT_TYPE_NOTATION_SIGNATURE,
    RegistryClient,
    list_referrers,
    parse_reference,
    read_cosign_signatures,
)
from notar.tuf import DEFAULT_EXPIRY_DAYS, FileMeta, roles
from tests.lab import NotarServer, Registry
from tests.signing.support import PASSPHRASES, Notar, push, unique_repo

pytestmark = pytest.mark.peers
EXPIRES_IN = 6  # seconds


def sign_with_expiring_metadata(
    admin: Notar, server: NotarServer, image: str, tag: str, digest: str, size: int
) -> float:
    """Sign *tag* as the admin does, with a clock set back so that the delegations it writes expire
    EXPIRES_IN seconds from now (a trust server refuses metadata that has expired already); returns when
    (``time.monotonic()``)."""
    past = GoTime.now().add(days=-DEFAULT_EXPIRY_DAYS[roles.TARGETS], seconds=EXPIRES_IN)
    store = FileKeyStore(admin.trust_dir, EnvPassphrases("notar", environ=PASSPHRASES))
    repo = Repository(
        parse_reference(image).name,
        server=TrustServer(server.url, verify=ssl.create_default_context(cafile=str(server.ca))),
        cache=TrustCache(admin.trust_dir),
        keys=store,
        clock=lambda: past,
    )
    repo.sign({tag: FileMeta(size, {"sha256": bytes.fromhex(digest[7:])})}, initialize=False)
    return time.monotonic() + EXPIRES_IN


@pytest.fixture
def lab(notar_server: NotarServer, registry: Registry, tmp_path: Path) -> dict[str, object]:
    """The repository described in the module docstring; returns names and digests."""
    repo = unique_repo("migrate/app")
    image = f"{registry.host}/{repo}"
    admin = Notar(tmp_path / "admin", notar_server.url, notar_server.ca)
    images = {
        tag: push(registry.host, repo, tag, f"migrate {tag}") for tag in ("1.0", "2.0", "3.0", "4.0", "5.0")
    }
    digests = {tag: i.manifest.digest for tag, i in images.items()}
    admin.ok("sign", f"{image}:1.0", f"{image}:2.0", f"{image}:5.0")  # no signers yet: into targets
    admin.ok("revoke", "-y", f"{image}:2.0")
    admin.signer("bob", image, cert=False)  # adds targets/bob and targets/releases
    three = images["3.0"].manifest
    expires = sign_with_expiring_metadata(admin, notar_server, image, "3.0", three.digest, three.size)
    moved = push(registry.host, repo, "1.0", "migrate 1.0, pushed again")  # the tag moves; v1 does not
    # the migrating signer: key + certificate on another machine, which trusts the repository on first use
    ci = Notar(tmp_path / "ci", notar_server.url, notar_server.ca)
    ci.signer("ci")
    ci.ok("sign", f"{image}:5.0", "--format", "notation", "--signer", "ci")  # 5.0 has a Notation signature
    ci.trust_certificate(ci.cwd / "ci.crt")
    time.sleep(max(0.0, expires - time.monotonic() + 1))  # targets/releases and targets/bob have expired
    return {"image": image, "repo": repo, "digests": digests, "moved": moved.manifest.digest, "ci": ci}


def report(run_stdout: str) -> dict[str, dict[str, object]]:
    return {entry["tag"]: entry for entry in json.loads(run_stdout)}


def test_migrate_signs_exactly_what_v1_vouches_for_and_a_second_run_skips_all(
    lab: dict[str, object], registry: Registry
) -> None:
    ci, image, repo, digests = lab["ci"], lab["image"], lab["repo"], lab["digests"]
    assert (
        isinstance(ci, Notar)
        and isinstance(image, str)
        and isinstance(repo, str)
        and isinstance(digests, dict)
    )

    dry = ci.ok("migrate", image, "--format", "notation", "--signer", "ci", "--dry-run", "-o", "json")
    planned = report(dry.stdout)
    assert {t: e["status"] for t, e in planned.items()} == {
        "1.0": "would-sign", "2.0": "skipped", "3.0": "skipped", "4.0": "skipped", "5.0": "skipped",
    }  # fmt: skip
    with RegistryClient(registry.host) as client:  # the dry run wrote nothing
        assert list_referrers(client, repo, digests["1.0"]).referrers == ()

    first = ci.ok("migrate", image, "--format", "notation", "--signer", "ci", "-o", "json")
    done = report(first.stdout)
    assert {t: e["status"] for t, e in done.items()} == {
        "1.0": "signed", "2.0": "skipped", "3.0": "skipped", "4.0": "skipped", "5.0": "skipped",
    }  # fmt: skip
    assert done["1.0"]["digest"] == digests["1.0"] != lab["moved"]  # v1's digest, not the moved tag's
    assert done["1.0"]["v1_role"] == "targets" and done["1.0"]["format"] == "notation"
    assert done["5.0"]["reason"] == "already signed by the same certificate" and done["5.0"]["signature"]
    assert done["2.0"]["reason"].startswith("not vouched for by Notary v1: unsigned or revoked")
    assert "targets/releases" in done["3.0"]["reason"] and "expired" in done["3.0"]["reason"]
    assert done["4.0"]["digest"] is None and done["2.0"]["digest"] is None
    assert "1 signed, 4 skipped" in first.stderr
    # what was signed verifies, by digest (the tag now names another image)
    ci.ok("verify", f"{image}@{digests['1.0']}")
    unsigned = ci("verify", f"{image}@{digests['2.0']}")
    assert unsigned.code == 1
    with RegistryClient(registry.host) as client:
        for tag in ("2.0", "3.0", "4.0"):
            assert list_referrers(client, repo, digests[tag]).referrers == ()
        assert list_referrers(client, repo, lab["moved"]).referrers == ()  # type: ignore[arg-type]

    second = ci.ok("migrate", image, "--format", "notation", "--signer", "ci", "-o", "json")
    again = report(second.stdout)
    assert {t: e["status"] for t, e in again.items()} == dict.fromkeys(
        ("1.0", "2.0", "3.0", "4.0", "5.0"), "skipped"
    )
    assert again["1.0"]["signature"] == done["1.0"]["signature"]
    with RegistryClient(registry.host) as client:
        found = list_referrers(client, repo, digests["1.0"], artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
        assert len(found.referrers) == 1


def test_migrate_to_cosign_one_tag_and_text_report(lab: dict[str, object], registry: Registry) -> None:
    ci, image, repo, digests = lab["ci"], lab["image"], lab["repo"], lab["digests"]
    assert (
        isinstance(ci, Notar)
        and isinstance(image, str)
        and isinstance(repo, str)
        and isinstance(digests, dict)
    )
    run = ci.ok("migrate", f"{image}:5.0", "--format", "cosign", "--signer", "ci")
    assert run.stdout.startswith(f"signed      5.0 ({digests['5.0']}): signature sha256:")
    assert len(run.stdout.splitlines()) == 1
    ci.ok("verify", "--key", str(ci.cwd / "ci.pub"), f"{image}@{digests['5.0']}")
    again = ci.ok("migrate", image, "--format", "cosign", "--signer", "ci")
    lines = {line.split()[1]: line for line in again.stdout.splitlines()}
    assert lines["5.0"].startswith("skipped") and "already signed by the same key" in lines["5.0"]
    assert lines["1.0"].startswith("signed")
    revoked = ci.ok("migrate", f"{image}:2.0", "--format", "cosign", "--signer", "ci").stdout
    assert revoked.startswith("skipped     2.0: not vouched for by Notary v1")
    with RegistryClient(registry.host) as client:
        assert read_cosign_signatures(client, repo, digests["2.0"]).manifest is None


def test_invalid_trust_data_is_refused_and_bad_input(
    lab: dict[str, object], notar_server: NotarServer, tmp_path: Path
) -> None:
    image = lab["image"]
    assert isinstance(image, str)
    fresh = Notar(tmp_path / "fresh", notar_server.url, notar_server.ca)
    fresh.signer("ci")
    pinned = fresh("migrate", image, "--format", "notation", "--signer", "ci", "--root-key-id", "0" * 64)
    assert pinned.code == 1
    assert pinned.one_line_error().startswith(
        f"notar: error: refusing to migrate {image}: its Notary v1 trust data is not valid now: "
    )
    unknown = fresh("migrate", f"{image}-nothing", "--format", "notation", "--signer", "ci")
    assert unknown.code == 1 and "has no Notary v1 trust data" in unknown.one_line_error()
    no_cert = Notar(tmp_path / "nocert", notar_server.url, notar_server.ca)
    no_cert.signer("ci", cert=False)
    line = no_cert("migrate", image, "--format", "notation", "--signer", "ci")
    assert line.code == 2 and "has no certificate" in line.one_line_error()
    cosign_ok = no_cert("migrate", image, "--format", "cosign", "--signer", "ci", "--dry-run")
    assert cosign_ok.code == 0, cosign_ok.stderr
    for args, message in (
        (("--format", "notation", "--signer", "nobody"), "no key for signer nobody"),
        (("--format", "v1", "--signer", "ci"), "Invalid value for '--format'"),
        (("--format", "cosign"), "Missing option '--signer'"),
    ):
        run = fresh("migrate", image, *args)
        assert run.code == 2 and message in run.stderr, run.stderr
    digest_ref = fresh("migrate", f"{image}@sha256:{'a' * 64}", "--format", "cosign", "--signer", "ci")
    assert digest_ref.code == 2 and "give IMAGE or IMAGE:TAG" in digest_ref.one_line_error()
