"""Each tag's Notation and cosign signatures in real headless Chromium: `notar server --registry URL
--notation-config DIR --cosign-key FILE` against the real registry, images pushed with skopeo, v1 signed with
the notar CLI, Notation and cosign signatures made with notar's libraries. Asserts what a person reads in the
row; saves screenshots to artifacts/ (desktop and phone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from notar.registry import RegistryClient
from tests.client.test_cli_flow import Notar
from tests.gateway.signing import CosignSigner, NotationSigner
from tests.lab import LabPKI, NotarServer, Registry, run_notar_server
from tests.registry.artifacts import push_image
from tests.registry.images import make_image
from tests.web.test_browser import ARTIFACTS, CHROMIUM_ARGS, ensure_chromium

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Signers:
    def __init__(self, work: Path) -> None:
        self.notation = NotationSigner("release-bot")
        self.cosign = CosignSigner()
        self.config = self.notation.config_dir(work / "notation")
        self.key = self.cosign.pub(work / "cosign.pub")


@pytest.fixture
def signers(tmp_path: Path) -> Signers:
    return Signers(tmp_path)


@pytest.fixture
def ui_server(lab_pki: LabPKI, registry: Registry, tmp_path: Path, signers: Signers) -> Iterator[NotarServer]:
    extra = (
        "--registry",
        registry.url,
        "--notation-config",
        str(signers.config),
        "--cosign-key",
        str(signers.key),
    )
    with run_notar_server(lab_pki, tmp_path / "server", extra_args=extra) as server:
        yield server


def row_text(page: Page, tag: str) -> str:
    return " ".join(page.locator(f'#tags tr[data-tag="{tag}"]').inner_text().split())


def test_signatures_section_in_chromium(
    ui_server: NotarServer, registry: Registry, browser: Browser, signers: Signers, tmp_path: Path
) -> None:
    gun = f"{registry.host}/notar/sigs-{uuid.uuid4().hex[:8]}"
    repo = gun.split("/", 1)[1]
    release, unsigned = make_image(f"release {repo}\n"), make_image(f"unsigned {repo}\n")
    with RegistryClient(registry.host) as client:
        push_image(client, repo, release, "1.0")
        push_image(client, repo, unsigned, "2.0")
        signers.notation.sign(client, repo, release.manifest.data)
        NotationSigner("intruder").sign(client, repo, release.manifest.data)
        signers.cosign.sign(client, repo, gun, release.manifest.digest)
    notar = Notar(tmp_path / "home", ui_server.url, ui_server.ca)
    notar.run("key", "generate", "alice", "--dir", str(tmp_path))
    notar.run("signer", "add", "alice", gun, "--key", str(tmp_path / "alice.pub"))
    notar.run("sign", f"{gun}:1.0")

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{ui_server.url}/repositories/{gun}")
    assert page.locator("h1").inner_text() == gun
    header = " ".join(page.locator("#tags thead").inner_text().split())
    assert header.endswith("Notation / cosign")
    policy = " ".join(page.locator("#signature-policy").inner_text().split())
    assert f"verified with the trust policy {signers.config / 'trustpolicy.json'}" in policy
    assert f"verified with {signers.key}" in policy

    one = row_text(page, "1.0")
    assert one.startswith("1.0 Signed") and "alice" in one
    assert "NOTATION Verified CN=release-bot,O=notar-tests,ST=WA,C=US signed 20" in one
    assert (
        "NOTATION Not verified CN=intruder,O=notar-tests,ST=WA,C=US" in one and "authenticity failed" in one
    )
    assert "COSIGN Verified key-based" in one
    cells = page.locator('#tags tr[data-tag="1.0"] .sig')
    assert [cells.nth(i).get_attribute("data-verified") for i in range(cells.count())] == ["yes", "no", "yes"]
    two = row_text(page, "2.0")
    assert two.startswith("2.0 Unsigned") and two.endswith("no signatures")
    body = page.locator("body").inner_text()
    assert "sha256-" not in " ".join(
        page.locator("#tags th.tag").all_inner_texts()
    )  # signature tags are no tags
    assert "Root key" in body

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-signatures.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    phone = browser.new_context(
        ignore_https_errors=True, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    mobile = phone.new_page()
    mobile.goto(f"{ui_server.url}/repositories/{gun}")
    assert "Verified" in row_text(mobile, "1.0")
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(ARTIFACTS / "web-signatures-phone.png"), full_page=True)

    api = page.request.get(f"{ui_server.url}/api/repositories/{gun}").json()
    items = next(t for t in api["tags"] if t["tag"] == "1.0")["signatures"]["items"]
    assert [(s["format"], s["verified"]) for s in items] == [
        ("notation", True),
        ("notation", False),
        ("cosign", True),
    ]
    phone.close()
    context.close()
