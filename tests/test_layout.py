"""The map of the code: one import name, subpackages that read top-down, and old names that cannot return.

- The wheel installs ``mtls_lab`` and nothing else: ``certs/``, ``server/`` and ``caller/`` (the user's
  layout) install as its subpackages, so no ``server.py`` or generated ``./certs`` next to the user can
  shadow them.
- Layers: the base (``mtls_lab/*.py``: errors, alerts, the OpenSSL bridge) imports no feature; ``server``
  and ``caller`` never import each other; nothing below the CLI imports the CLI (``LAYERS`` below).
- ruff bans the old top-level names (TID251).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from mtls_lab.certs.layout import LabPaths

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
TOP = "mtls_lab"
BASE = "base"  # the modules at the package root: mtls_lab/errors.py, alerts.py, _openssl.py, ...

# Which features each feature may import (the base may be imported by all; the CLI imports anything).
LAYERS: dict[str, set[str]] = {
    BASE: set(),
    "certs": {BASE},
    "server": {BASE, "certs"},
    "caller": {BASE, "certs"},
    "lifecycle": {BASE, "certs", "server"},
    "matrix": {BASE, "certs", "server", "caller", "lifecycle"},
    "report": {BASE, "certs", "server", "caller", "lifecycle", "matrix"},
    "cli": {BASE, "certs", "server", "caller", "lifecycle", "matrix", "report"},
}


def source_modules() -> dict[str, Path]:
    """Every module of the package, by its installed name, from pyproject's package-dir mapping."""
    modules: dict[str, Path] = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            name = ".".join([package, *parts]).removesuffix(".__init__")
            modules.setdefault(name, path)
    return modules


def feature(module: str) -> str:
    """``mtls_lab.server.app`` -> ``server``; a module at the package root -> the base (``__main__``: the CLI)."""
    parts = module.split(".")
    if len(parts) == 1:
        return BASE
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if parts[1] in LAYERS else BASE


def imported(source: str, module: str) -> set[str]:
    """The mtls_lab modules ``source`` imports anywhere (functions and TYPE_CHECKING blocks included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import: use the absolute mtls_lab name"
            if node.module == TOP:  # `from mtls_lab import errors`: the names are modules
                names.update(f"{TOP}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module or "")
    return {name for name in names if name == TOP or name.startswith(TOP + ".")}


def violations(module: str, source: str) -> list[str]:
    """``module imports X: FEATURE may not import FEATURE`` for each import that breaks the layers."""
    own = feature(module)
    found = []
    for name in sorted(imported(source, module)):
        if name == TOP:
            continue
        target = feature(name)
        if target != own and target not in LAYERS[own]:
            found.append(f"{module} imports {name}: {own} may not import {target}")
    return found


def test_every_module_belongs_to_a_layer() -> None:
    modules = source_modules()
    assert len(modules) > 40
    assert {feature(m) for m in modules} == set(LAYERS)


def test_the_layers_read_top_down() -> None:
    broken = [v for name, path in source_modules().items() for v in violations(name, path.read_text())]
    assert broken == []


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("mtls_lab.errors", "from mtls_lab.server.run import serve", "base may not import server"),
        ("mtls_lab.server.app", "from mtls_lab.caller.verdict import Verdict", "server may not import caller"),
        ("mtls_lab.caller.call", "import mtls_lab.server.loaded", "caller may not import server"),
        ("mtls_lab.matrix.runner", "def f():\n    from mtls_lab.cli import main", "matrix may not import cli"),
        ("mtls_lab.certs.pki", "if True:\n    from mtls_lab.lifecycle import phases", "certs may not import lifecycle"),
    ],
)
def test_the_layering_check_catches_a_violation(module: str, source: str, why: str) -> None:
    assert [v.split(": ", 1)[1] for v in violations(module, source)] == [why]


def test_the_listed_packages_are_every_folder_of_the_package() -> None:
    folders = {name.removesuffix(".__init__") for name, path in source_modules().items() if path.name == "__init__.py"}
    assert set(SETUPTOOLS["packages"]) == folders


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources pyproject names (the generated PKI left out)."""
    source = tmp_path_factory.mktemp("source")
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__", "*.pem", "manifest.json", "ca", "clients")
    for folder in SETUPTOOLS["package-dir"].values():
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=120)
    return next(out.glob("*.whl"))


def test_the_wheel_installs_only_mtls_lab(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {TOP, wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == [TOP]
    modules = {n.removesuffix(".py").replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py")}
    assert modules == set(source_modules()), "the wheel and the sources differ: is a subpackage missing in pyproject?"


def _clashing_folder(tmp_path: Path) -> Path:
    """A user's folder holding its own server.py, caller.py and a certs/ package: none may be imported."""
    for name in ("server.py", "caller.py"):
        (tmp_path / name).write_text(f"raise SystemExit('the user\\'s {name} was imported')\n")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "__init__.py").write_text("raise SystemExit('the user\\'s certs/ was imported')\n")
    return tmp_path


def test_a_folder_with_its_own_server_caller_and_certs_shadows_nothing(tmp_path: Path, pki: LabPaths) -> None:
    folder = _clashing_folder(tmp_path)
    env = {**os.environ, "PYTHONSAFEPATH": ""}  # python -m puts the working folder first on sys.path
    version = subprocess.run(
        [sys.executable, "-m", "mtls_lab.cli", "--version"], cwd=folder, env=env, capture_output=True, text=True
    )
    assert (version.returncode, version.stdout.strip()) == (0, "mtls-lab 0.1.0"), version.stderr
    script = shutil.which("mtls-lab", path=str(Path(sys.executable).parent))
    assert script is not None
    scenario = "mtls/tls1.3/adobe/java"
    matrix = subprocess.run(
        [script, "matrix", "--only", scenario, "--certs", str(pki.root)], cwd=folder, capture_output=True, text=True
    )
    assert matrix.returncode == 0, matrix.stderr
    assert "1 scenarios, 1 as expected" in matrix.stdout


def test_the_clashing_folder_would_be_imported_by_the_old_names(tmp_path: Path) -> None:
    """The sibling: the same folder does shadow a top-level ``server`` (what the old layout installed)."""
    done = subprocess.run([sys.executable, "-c", "import server"], cwd=_clashing_folder(tmp_path), capture_output=True)
    assert b"the user's server.py was imported" in done.stderr


def test_ruff_bans_the_old_top_level_names(tmp_path: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff is not None
    module = tmp_path / "old.py"
    module.write_text("from server.app import create_app\nimport caller.call\nfrom mtls_lab.certs import pki\n")
    done = subprocess.run(
        [ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "--select", "TID251", str(module)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stdout.count("TID251") == 2, done.stdout  # server and caller; mtls_lab.certs is the new name


def test_the_wheel_carries_the_report_templates(wheel: Path) -> None:
    """The HTML report renders from package data: a wheel without its templates would fail at the first report."""
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted((ROOT / "mtls_lab" / "report" / "templates").iterdir())
    assert templates
    missing = [t.name for t in templates if f"mtls_lab/report/templates/{t.name}" not in names]
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_the_code_map_names_every_module() -> None:
    """docs/architecture.md is where a newcomer finds their way: every module of the package is on it."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    unnamed = [
        name
        for name, path in source_modules().items()
        if path.name not in ("__init__.py", "__main__.py") and f"`{path.name}`" not in text
    ]
    assert unnamed == [], "docs/architecture.md does not name these modules"
