"""The package's layering: every import goes down the layers below, so no module
imports one above it and there is no cycle; only dbt_access imports dbt; the
engine and the kinds see the warehouse through a protocol only; the bundled
emulator stands alone. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dbt_braze"

# top to bottom: a module imports only modules of the layers below its own
LAYERS = [
    {"__main__"},
    {"cli"},
    {"commands"},
    {"report", "scaffold"},
    {"engine"},
    {"kinds", "compaction"},
    {"kinds.users", "kinds.events"},
    {"kinds.addressing"},
    {"kinds.base"},
    {"store", "runlog", "progress", "manifest", "selection"},
    {"dbt_access", "settings", "config"},
    {"braze"},
    {"ratelimit", "transport", "rows"},
    {"errors"},
    {""},  # the package itself: its version
]
DBT = {"dbt", "dbt_common"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Modules of the package (dotted, without `dbt_braze.`) and `dbt` that `path` imports."""
    package = (
        module_name(path).split(".")[:-1] if path.name != "__init__.py" else module_name(path).split(".")
    )
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package
                base = package[: len(package) - node.level + 1]
                names = [".".join(["dbt_braze", *base, *([node.module] if node.module else [])])]
            else:
                names = [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            if top == "dbt_braze":
                found.add(name.removeprefix("dbt_braze").removeprefix("."))
            elif top in DBT:
                found.add("dbt")
    return found


GRAPH = {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}
PRODUCT = {name: deps for name, deps in GRAPH.items() if not name.startswith("emulator")}


def layer(name: str) -> int:
    return next(i for i, members in enumerate(LAYERS) if name in members)


def test_every_module_has_a_layer() -> None:
    placed = set().union(*LAYERS)
    assert set(PRODUCT) - {"emulator"} <= placed
    assert placed - {""} <= set(PRODUCT)


@pytest.mark.parametrize("name", sorted(set(PRODUCT) - {"emulator"}))
def test_imports_go_down_the_layers(name: str) -> None:
    above = {dep for dep in PRODUCT[name] - {"dbt", "emulator"} if layer(dep) <= layer(name) and dep != name}
    assert not above, f"{name} imports {sorted(above)}, not below it"


def test_only_dbt_access_imports_dbt() -> None:
    assert {name for name, deps in GRAPH.items() if "dbt" in deps} == {"dbt_access"}


@pytest.mark.parametrize(
    "name", ["engine", "kinds", "kinds.users", "kinds.events", "kinds.addressing", "kinds.base"]
)
def test_the_engine_and_the_kinds_import_nothing_of_the_warehouse_modules(name: str) -> None:
    assert not PRODUCT[name] & {"store", "dbt_access"}


def test_the_emulator_stands_alone() -> None:
    emulator = {name: deps for name, deps in GRAPH.items() if name.startswith("emulator")}
    assert emulator and all(dep.startswith("emulator") for deps in emulator.values() for dep in deps)
    assert {name for name, deps in PRODUCT.items() if "emulator" in deps} == {"cli"}


def test_no_two_test_modules_share_a_name() -> None:
    """pytest imports test modules by their basename (the test folders are no packages):
    a unit and an integration module of one name make the second fail to collect."""
    names = [path.name for path in (PACKAGE.parent / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
