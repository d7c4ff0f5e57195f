"""The README's "Where things are" map matches the tree: a module added, moved or removed shows up here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
