"""`notar` with every CLI module but ``_common``, ``trust`` and ``keys`` (all that `notar sign` and `notar
inspect` use) replaced by a stub whose attributes are empty click groups: what a command would cost if the
other subcommands (server, gateway, ...) were imported lazily.

With ``BENCH_NO_CA_FOR_HTTP=1`` the registry client is also built with ``verify=False`` (no CA bundle loaded)
for a plain-HTTP or loopback registry.

Run as ``python bench/drivers/lazy_subcommands.py ARGS...``, like ``notar ARGS...`` (client_bench.py does).
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import sys
import types
from typing import Any

import click

KEPT = ("_common", "trust", "keys")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def stub(name: str) -> types.ModuleType:
    """A module whose every public attribute is an empty click group (what notar.cli registers)."""
    module = types.ModuleType(name)

    def getattr_(attr: str) -> click.Group:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return click.Group(attr)

    module.__dict__["__getattr__"] = getattr_  # a module __getattr__ (PEP 562)
    return module


def stub_other_subcommands() -> None:
    """Put a stub in sys.modules for every notar.cli submodule but :data:`KEPT`, before notar.cli loads."""
    spec = importlib.util.find_spec("notar.cli")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("notar.cli not found")
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if info.name not in KEPT:
            sys.modules[f"notar.cli.{info.name}"] = stub(f"notar.cli.{info.name}")


def registry_client_without_ca_for_http() -> None:
    """RegistryClient(..., verify=False) by default for http:// and loopback registries."""
    from notar.registry import RegistryClient

    original = RegistryClient.__init__

    def init(self: RegistryClient, registry: str, **kw: Any) -> None:
        host = registry.split("://")[-1].split("/")[0].rsplit(":", 1)[0]
        if registry.startswith("http://") or host in LOOPBACK_HOSTS:
            kw.setdefault("verify", False)
        original(self, registry, **kw)

    RegistryClient.__init__ = init  # type: ignore[method-assign]


def main() -> int:
    stub_other_subcommands()
    from notar.cli import main as notar_main  # after the stubs: notar.cli imports its submodules

    if os.environ.get("BENCH_NO_CA_FOR_HTTP"):
        registry_client_without_ca_for_http()
    return notar_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
