"""Compatibility shim, remove when no file imports it: `notar server` for tests moved to tests.lab.notar.

Import from :mod:`tests.lab` instead; its fixtures (notar_server, notar_notary_cli) are registered by
tests/conftest.py.
"""

from tests.lab import NotarServer, run_notar_server

__all__ = ["NotarServer", "run_notar_server"]
