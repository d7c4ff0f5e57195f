"""The README's "Where things are" map matches the tree: a module added, moved or removed shows up here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.helpers import ROOT


def tree_map() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```\n(.*?)```", section, re.S).group(1)


def test_every_package_and_module_of_the_shipped_code_is_on_the_map() -> None:
    text = tree_map()
    for top in ("handler", "transforms"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            where = path.relative_to(ROOT)
            assert re.search(rf"(?<![\w.]){re.escape(path.name)}\b", text), f"{where} is not on the map"
        for package in sorted(p for p in (ROOT / top).iterdir() if (p / "__init__.py").exists()):
            assert f"{package.name}/" in text, f"{package.relative_to(ROOT)}/ is not on the map"


def test_nothing_on_the_map_is_missing_from_the_tree() -> None:
    shipped = {p.name for top in ("handler", "transforms") for p in (ROOT / top).rglob("*.py")}
    shipped_part = tree_map().split("\ndevstack/", 1)[0]  # below it: tests, bench and scripts
    named = set(re.findall(r"(?<![\w.])(\w+\.py)\b", shipped_part))
    assert named <= shipped, f"on the map but not in the tree: {sorted(named - shipped)}"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_unit_tests_mirror_the_packages_and_the_map_names_every_test_folder() -> None:
    packages = {p.name for p in (ROOT / "transforms").iterdir() if (p / "__init__.py").exists()}
    unit = {p.name for p in (ROOT / "tests" / "unit").iterdir() if (p / "__init__.py").exists()}
    assert unit == packages | {"handler"}
    integration = {p.name for p in (ROOT / "tests" / "integration").iterdir() if (p / "__init__.py").exists()}
    tests_part = tree_map().split("\ntests/", 1)[1]
    for name in sorted(unit | integration | {"unit", "integration", "support"}):
        assert f"{name}/" in tests_part, f"tests/.../{name}/ is not on the map"


def test_test_modules_import_shared_code_from_tests_support_only() -> None:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        from_tests = {name for name in imported_modules(path) if name == "tests" or name.startswith("tests.")}
        assert all(name.startswith("tests.support") for name in from_tests), (
            f"{path.relative_to(ROOT)} imports {sorted(from_tests)}: shared code lives in tests/support/")


def test_nothing_shipped_nor_run_by_make_imports_tests() -> None:
    for top in ("handler", "transforms", "devstack", "bench", "scripts"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found = {name for name in imported_modules(path) if name == "tests" or name.startswith("tests.")}
            assert not found, f"{path.relative_to(ROOT)} imports {sorted(found)}"
