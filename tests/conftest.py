"""Shared fixtures: the real peers (tests/peers.py) and the reference vectors in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.peers", "tests.servers"]

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The team's shared reference folder: $NOTAR_SHARED_DIR, else ../shared beside the checkout."""
    path = Path(os.environ.get("NOTAR_SHARED_DIR", ROOT.parent / "shared"))
    if not (path / "vectors").is_dir():
        raise RuntimeError(f"reference vectors not found at {path}/vectors (set NOTAR_SHARED_DIR)")
    return path


VECTORS = shared_dir() / "vectors" / "notary-0.7"


@pytest.fixture(scope="session")
def vectors() -> Path:
    return VECTORS
