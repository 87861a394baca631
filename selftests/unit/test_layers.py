"""The package's layers (docs/architecture.md) as a test: which layer may import which, and that no
product module imports a test harness or does I/O from the pure model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cisaudit"
# layer -> the cisaudit layers its modules may import
ALLOWED = {
    "model": {"model"},
    "host": {"model", "host"},
    "outputs": {"model", "outputs"},
    "run": {"model", "host", "outputs", "run"},
    "plugin": {"model", "host", "outputs", "run", "publish", "plugin"},
    "publish": {"model", "host", "outputs", "publish"},
}
# the publishers' pure mapping: no I/O either (cisaudit/publish/__init__.py)
PURE_PUBLISH = {"compliance_items.py", "asff.py", "__init__.py"}
# I/O and harness modules the pure model never imports (function-level imports included)
NOT_IN_MODEL = {"subprocess", "socket", "threading", "paramiko", "boto3", "botocore", "testinfra", "pytest", "_pytest"}
# The judging layer runs without pytest: its unit tests judge cases with no test harness around them.
NOT_IN_RUN = {"pytest", "_pytest", "xdist", "pluggy"}
HARNESSES = {"selftests", "bench", "tests", "conftest"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def test_every_module_is_in_a_layer() -> None:
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == {"__init__.py"}, f"modules outside a layer folder: {sorted(top - {'__init__.py'})}"
    assert {_layer(p) for p in _modules()} == set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    layer = _layer(path)
    for name in _imports(path):
        parts = name.split(".")
        assert parts[0] not in HARNESSES, f"{name}: a product module imports a test harness"
        if parts[0] == "cisaudit" and len(parts) > 1:
            assert parts[1] in ALLOWED[layer], f"{name}: the {layer} layer may import {sorted(ALLOWED[layer])}"
        if layer == "model" or (layer == "publish" and path.name in PURE_PUBLISH):
            assert parts[0] not in NOT_IN_MODEL, f"{name}: the pure model does no I/O"
        if layer == "run":
            assert parts[0] not in NOT_IN_RUN, f"{name}: the judging layer runs without pytest"


def test_the_judging_layer_is_checked() -> None:
    """The rule above has modules to apply to (a renamed folder would pass it vacuously)."""
    assert {p.name for p in _modules() if _layer(p) == "run"} >= {"context.py", "checks.py", "judge.py"}


def test_the_checkout_imports_as_no_other_package() -> None:
    """A top-level package of the checkout would shadow a PyPI package of the same name in a user's
    own tests run from it (a `fixtures/` folder once shadowed PyPI's `fixtures`). The suite's
    fixtures come from the plugin (README, "your own tests")."""
    root = PACKAGE.parent
    packages = {p.parent.name for p in root.glob("*/__init__.py")}
    assert packages == {"cisaudit", "selftests"}
