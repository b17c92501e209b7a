"""Fixtures of the moving tests: a second notary-server + notary-signer (export needs a fresh destination)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.notary import NotaryServer, run_notary_server
from tests.lab.pki import LabPKI


@pytest.fixture
def notary_server_with_signer_2(lab_pki: LabPKI, tmp_path: Path) -> Iterator[NotaryServer]:
    """Another fresh Go notary-server with notary-signer, beside ``notary_server_with_signer``."""
    with run_notary_server(lab_pki, tmp_path / "notary-server-2", signer=True) as server:
        yield server
