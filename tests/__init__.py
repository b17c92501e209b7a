"""Test package (a package so that helpers import as ``tests.<module>``)."""

import pytest

# Helper modules imported by test modules get pytest's assertion rewriting too.
pytest.register_assert_rewrite("tests.lab")
