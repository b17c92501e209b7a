"""Packages whose names are imported on first use (notar._lazy): what they list, import and type-check agree."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

LAZY_PACKAGES = ["notar.client", "notar.registry", "notar.keystore", "notar.signing"]


def _type_checking_names(package: str) -> dict[str, str]:
    """name -> submodule, from the package's ``if TYPE_CHECKING:`` imports."""
    module = importlib.import_module(package)
    tree = ast.parse(Path(str(module.__file__)).read_text())
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    for alias in stmt.names:
                        names[alias.asname or alias.name] = stmt.module.removeprefix(f"{package}.")
    return names


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_names_agree(package: str) -> None:
    module = importlib.import_module(package)
    where = {name: sub for sub, names in module._WHERE.items() for name in names}
    assert where == _type_checking_names(package)
    assert set(where) <= set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    for name, sub in where.items():
        assert getattr(module, name) is getattr(importlib.import_module(f"{package}.{sub}"), name)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_unknown_name_is_an_attribute_error(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = module.no_such_name
