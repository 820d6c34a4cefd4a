"""docs/architecture.md stays the map of the code: every module is named in it, and every
import between the apps is one its table allows."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()
PACKAGE = ROOT / "ecsportal"
# Django's and the style guide's conventional files say what they hold by their name.
CONVENTIONAL = {
    "__init__", "apps", "admin", "models", "views", "urls", "forms", "selectors", "services",
    "consumers", "routing", "registry",
}  # fmt: skip
TOP_LEVEL = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}


def _modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if "migrations" in relative.parts or path.stem in CONVENTIONAL:
            continue
        found.append(relative.as_posix())
    return found


def _named(module: str) -> bool:
    stem = module.rsplit("/", 1)[-1].removesuffix(".py")
    if "management/commands/" in module:
        return f"manage.py {stem}" in DOC
    if "templatetags/" in module:
        return f"template tags `{stem}`" in DOC or f"(`{stem}`:" in DOC
    return re.search(rf"[`/.]{re.escape(stem)}(\.py)?[`.(]", DOC) is not None


def test_every_module_is_on_the_map():
    assert [m for m in _modules() if not _named(m)] == []


def _table() -> dict[str, str]:
    """App → its "may import" cell."""
    rows = re.findall(r"^\| `ecsportal/(\w+)` \|.*\| ([^|]+) \|$", DOC, re.M)
    return dict(rows)


def _imports(app: str) -> set[str]:
    """The other apps and top-level modules `app` imports (ui is everyone's)."""
    found = set()
    for path in (PACKAGE / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.ImportFrom) and node.module == "ecsportal":
                names = [f"ecsportal.{a.name}" for a in node.names]
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "ecsportal" and len(parts) > 1 and parts[1] not in (app, "ui"):
                    found.add(parts[1])
    return found


def test_every_import_between_apps_is_one_the_map_allows():
    table = _table()
    assert len(table) >= 12
    undeclared = {}
    for app, allowed in table.items():
        if app in ("demo", "ui"):  # the demo may import everything; ui imports Django only
            continue
        missing = {t for t in _imports(app) if not re.search(rf"\b{t}\b", allowed)}
        if missing:
            undeclared[app] = sorted(missing)
    assert undeclared == {}
