"""Package names imported on first use (PEP 562), so that a command loads only the modules it needs.

A package says in which of its modules each public name lives and gets a module ``__getattr__`` from
:func:`lazy_getattr`; the same names are imported under ``TYPE_CHECKING`` for type checkers and listed in
``__all__`` (``tests/test_lazy_exports.py`` checks that the three agree). The ``__getattr__`` is defined
under ``if not TYPE_CHECKING`` so that mypy still rejects a name the package does not have. Why:
``notar resolve`` must not pay for the registry client, the key store or the signing formats
(``bench/startup_bench.py``, docs/benchmarks.md "CLI start-up").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, namespace: dict[str, Any], where: Mapping[str, Sequence[str]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for *package*: *where* maps a submodule (``"cache"`` for ``package.cache``)
    to the names it provides; a name is imported on first use and then kept in *namespace* (the package's
    ``globals()``), so that ``__getattr__`` is not called again for it."""
    modules = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
