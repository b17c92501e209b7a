"""Ten ``notar sign --format notation`` processes at once on one digest, against the real Debian registry
(no referrers API: every signer merges its entry into the one ``sha256-<hex>`` index): all ten signatures
stay findable, and ``notar verify -o json`` verifies every one of them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from notar.registry import ARTIFACT_TYPE_NOTATION_SIGNATURE, RegistryClient, list_referrers
from tests.lab import Registry
from tests.signing.support import Notar, push, unique_repo

pytestmark = pytest.mark.peers

SIGNERS = 10
DEADLINE = 240.0  # seconds for all of them: only against hangs


def test_ten_parallel_signers_keep_all_ten_referrers(registry: Registry, tmp_path: Path) -> None:
    repo = unique_repo("sign/parallel")
    image = f"{registry.host}/{repo}"
    digest = push(registry.host, repo, "1.0", "ten signers").manifest.digest
    notar = Notar(tmp_path / "home")
    notar.signer("ci")
    notar.trust_certificate(notar.cwd / "ci.crt")
    argv = [sys.executable, "-m", "notar", "sign", f"{image}:1.0", "--format", "notation", "-o", "json"]
    procs = [
        subprocess.Popen(argv, env=notar.env, cwd=notar.cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(SIGNERS)
    ]  # fmt: skip
    deadline = time.monotonic() + DEADLINE
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [code for code, _, _ in outputs] == [0] * SIGNERS, [err for _, _, err in outputs]
    written = {line.split("signature ")[1].strip() for _, _, err in outputs for line in err.splitlines()}
    assert len(written) == SIGNERS  # ten different signature manifests

    with RegistryClient(registry.host) as client:
        found = list_referrers(client, repo, digest, artifact_type=ARTIFACT_TYPE_NOTATION_SIGNATURE)
    assert {r.digest for r in found.referrers} == written
    report = notar.ok("verify", f"{image}@{digest}", "-o", "json").json()
    assert report["verified"] is True
    assert {s["digest"] for s in report["signatures"]} == written
    assert all(s["verified"] for s in report["signatures"])
