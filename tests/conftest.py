"""Shared fixtures: the lab's real peers (tests/lab, see its docstring) and the reference vectors in tests/vectors/."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.lab.fixtures"]

ROOT = Path(__file__).resolve().parents[1]

# Checked-in reference vectors; their origin and how to refresh them: tests/vectors/README.md.
# Nothing in the tests reads outside the repository.
VECTORS_DIR = ROOT / "tests" / "vectors"
VECTORS = VECTORS_DIR / "notary-0.7"
NOTATION_VECTORS = VECTORS_DIR / "notation"


@pytest.fixture(scope="session")
def vectors() -> Path:
    return VECTORS
