"""House rules that keep the tree honest: the engine never imports Qt, packages are listed."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_ENGINE = ("PySide6", "quantdesk.app", "shiboken6")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_and_kernels_never_import_qt():
    offenders = []
    for folder in ("core", "kernels"):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _imports(path):
                if name.split(".")[0] in FORBIDDEN_IN_ENGINE or name.startswith("quantdesk.app"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_app_never_imports_llama_cpp():
    offenders = [f"{p.relative_to(ROOT)}" for p in (ROOT / "app").rglob("*.py")
                 if any(n.split(".")[0] == "llama_cpp" for n in _imports(p))]
    assert not offenders, offenders


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for folder in ("app", "core", "kernels"):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("quantdesk", *rel)))
    assert found == listed, {"missing": sorted(found - listed), "stale": sorted(listed - found)}
