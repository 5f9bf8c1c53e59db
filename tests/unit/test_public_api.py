"""Each package's public names are what its ``__all__`` says.

For ``agentsms`` and every subpackage of it that declares ``__all__`` (a package's
``__init__`` is its public face; a plain module's ``__all__`` may list only what it
re-exports for ``import *`` or for mypy):

* every name in ``__all__`` exists on the module, once;
* every public name (no leading underscore) the module defines at top level (``def``,
  ``class``, an assignment) is in ``__all__``;
* every public name it re-exports is in ``__all__``: a name imported from one of the
  package's own modules (a submodule imported as such is not an export), or any name
  imported as itself (``import x as x``, ``from m import x as x``).

Names imported from elsewhere for the package's own use (``Mapping``, ``httpx``,
``agentsms.errors.invalid``) are not exports, and names under ``if TYPE_CHECKING:`` are
not bound at run time.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from pathlib import Path

import pytest

import agentsms


def _packages() -> list[str]:
    names = ["agentsms"]
    for info in pkgutil.walk_packages(agentsms.__path__, "agentsms."):
        if info.ispkg and ".migrations" not in info.name:
            names.append(info.name)
    return sorted(names)


def _tree(module: types.ModuleType) -> ast.Module:
    assert module.__file__ is not None
    return ast.parse(Path(module.__file__).read_text(encoding="utf-8"))


def _declares_all(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(target, ast.Name) and target.id == "__all__"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
        for node in tree.body
    )


def _from_own_modules(node: ast.ImportFrom, package: str) -> bool:
    return node.level > 0 or (node.module or "").startswith(package + ".")


def _exports(module: types.ModuleType, tree: ast.Module) -> set[str]:
    """The public names ``module`` defines or re-exports (see the module docstring)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                found.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                as_itself = alias.asname is not None and alias.asname == alias.name
                reexported = isinstance(node, ast.ImportFrom) and _from_own_modules(
                    node, module.__name__
                )
                value = getattr(module, bound, None)
                if (as_itself or reexported) and not isinstance(value, types.ModuleType):
                    found.add(bound)
    return {name for name in found if not name.startswith("_") and name != "__all__"}


DECLARING = [name for name in _packages() if _declares_all(_tree(importlib.import_module(name)))]


def test_the_rule_covers_the_package_and_its_subpackages() -> None:
    assert {"agentsms", "agentsms.agents", "agentsms.client", "agentsms.webhooks"} <= set(DECLARING)


@pytest.mark.parametrize("name", DECLARING)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    declared = list(module.__all__)
    assert len(declared) == len(set(declared)), f"{name}.__all__ repeats a name"
    missing = sorted(n for n in declared if not hasattr(module, n))
    assert missing == [], f"{name}.__all__ names what the module does not have"
    unlisted = sorted(_exports(module, _tree(module)) - set(declared))
    assert unlisted == [], f"{name} exports names its __all__ leaves out"
