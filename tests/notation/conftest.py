"""Fixtures for the notar.notation tests: the vector directories and a config dir builder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOTATION_VECTORS

E2E = NOTATION_VECTORS / "notation-e2e"
NOTATION_GO = NOTATION_VECTORS / "notation-go"
LAYOUTS = E2E / "registry" / "oci_layout"
GO_TESTDATA = NOTATION_GO / "internal" / "testdata"
GO_MOCK = NOTATION_GO / "internal" / "mock" / "testdata"
GO_TRUSTSTORE_CONFIG = NOTATION_GO / "verifier" / "testdata"  # holds truststore/x509/...


@pytest.fixture
def e2e_config(tmp_path: Path) -> Path:
    """A notation config dir: the e2e trust policy file and e2e.crt in the ``ca:e2e`` store."""
    config = tmp_path / "notation"
    store = config / "truststore" / "x509" / "ca" / "e2e"
    store.mkdir(parents=True)
    shutil.copy(E2E / "config" / "localkeys" / "e2e.crt", store / "e2e.crt")
    shutil.copy(E2E / "config" / "trustpolicies" / "trustpolicy.json", config / "trustpolicy.json")
    return config


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[[str, str, dict[str, bytes]], Path]:
    """Write files into ``<tmp>/cfg/truststore/x509/<type>/<name>/`` and return the config dir."""

    def make(store_type: str, name: str, files: dict[str, bytes]) -> Path:
        config = tmp_path / "cfg"
        directory = config / "truststore" / "x509" / store_type / name
        directory.mkdir(parents=True, exist_ok=True)
        for file_name, data in files.items():
            (directory / file_name).write_bytes(data)
        return config

    return make
