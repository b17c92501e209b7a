"""The trust UI in real headless Chromium against real processes: `notar server --registry`, the registry,
skopeo and the notar CLI. Asserts what a person reads in each tag's row; saves screenshots to artifacts/."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.client.test_cli_flow import Notar, push_image
from tests.lab import LabPKI, NotarServer, Registry, run_notar_server

pytestmark = pytest.mark.peers

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> Path:
    """Debian's chromium (Playwright's own browsers are not downloadable here); installed if missing."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail("chromium is missing: run `apt-get install -y chromium` as root")
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def ui_server(lab_pki: LabPKI, registry: Registry, tmp_path: Path) -> Iterator[NotarServer]:
    with run_notar_server(lab_pki, tmp_path / "server", extra_args=("--registry", registry.url)) as server:
        yield server


def row_text(page: Page, tag: str) -> str:
    return " ".join(page.locator(f'#tags tr[data-tag="{tag}"]').inner_text().split())


def test_repository_page_in_chromium(
    ui_server: NotarServer, registry: Registry, browser: Browser, tmp_path: Path
) -> None:
    gun = f"{registry.host}/notar/web-{uuid.uuid4().hex[:8]}"
    repo = gun.split("/", 1)[1]
    notar = Notar(tmp_path / "home", ui_server.url, ui_server.ca)
    d1 = push_image(registry, tmp_path / "a", repo, "1.0", "one")
    d2 = push_image(registry, tmp_path / "a", repo, "2.0", "two")
    push_image(registry, tmp_path / "a", repo, "3.0", "three")
    key_id = notar.run("key", "generate", "alice", "--dir", str(tmp_path)).stdout.strip()
    notar.run("signer", "add", "alice", gun, "--key", str(tmp_path / "alice.pub"))
    notar.run("sign", f"{gun}:1.0", f"{gun}:2.0", f"{gun}:3.0")
    push_image(registry, tmp_path / "b", repo, "unsigned", "pushed, never signed")
    moved = push_image(registry, tmp_path / "c", repo, "2.0", "two, rebuilt after signing")
    notar.run("revoke", "-y", f"{gun}:3.0")

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{ui_server.url}/?q={repo}")
    link = page.get_by_role("link", name=gun)
    listing_row = " ".join(page.locator("tr", has=link).inner_text().split())
    assert "2" in listing_row.split() and "Valid" in listing_row  # 1.0 and 2.0 still resolve
    link.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == gun

    one = row_text(page, "1.0")
    assert one.startswith("1.0 Signed") and d1 in one and "alice" in one and key_id[:12] in one
    two = row_text(page, "2.0")
    assert "Signed but stale" in two and d2 in two and moved in two
    three = row_text(page, "3.0")
    assert three.startswith("3.0 Revoked") and "no longer signed" in three
    unsigned = row_text(page, "unsigned")
    assert unsigned.startswith("unsigned Unsigned") and "nobody" in unsigned
    body = page.locator("body").inner_text()
    assert "Root key" in body and "Repository key" in body and key_id in body
    assert "Recent changes" in body and "update" in body

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-repository.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    # keyboard: the first Tab lands on the skip link, Enter moves focus to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    phone = browser.new_context(
        ignore_https_errors=True, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    mobile = phone.new_page()
    mobile.goto(f"{ui_server.url}/repositories/{gun}")
    assert "Signed but stale" in row_text(mobile, "2.0")
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(ARTIFACTS / "web-repository-phone.png"), full_page=True)

    api = page.request.get(f"{ui_server.url}/api/repositories/{gun}").json()
    assert {t["tag"]: t["status"] for t in api["tags"]} == {
        "1.0": "signed",
        "2.0": "stale",
        "3.0": "revoked",
        "unsigned": "unsigned",
    }
    phone.close()
    context.close()
