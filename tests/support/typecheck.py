"""Run mypy (strict, from pyproject.toml) over the package as it installs and over the tests:
``python -m tests.support.typecheck``.

The repository keeps the user's layout (``certs/``, ``server/``, ``caller/`` at the top) and setuptools'
``package-dir`` installs those folders as ``mtls_lab.certs``, ``mtls_lab.server`` and ``mtls_lab.caller``.
mypy cannot follow that mapping (it names modules after folders, and the editable install's import hook
is invisible to it), so this builds a tree of symbolic links laid out as the wheel installs the package,
under ``build/typecheck/``, checks it, and prints mypy's messages with the repository's real paths.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "typecheck"
LOCATION = re.compile(r"^([^\s:]+\.pyi?)(?=:)", re.MULTILINE)


def package_dirs() -> dict[str, Path]:
    """pyproject's package-dir mapping: import name -> source folder."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in setuptools["package-dir"].items()}


def build_tree() -> Path:
    """``build/typecheck/<top>/`` with a link for every entry of each mapped folder, mapped names included."""
    shutil.rmtree(TREE, ignore_errors=True)
    for name, source in package_dirs().items():
        target = TREE.joinpath(*name.split("."))
        if "." in name:
            target.symlink_to(source, target_is_directory=True)
            continue
        target.mkdir(parents=True)
        for entry in source.iterdir():
            if entry.name != "__pycache__":
                (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (TREE / "tests").symlink_to(ROOT / "tests", target_is_directory=True)  # the tests, checked as strictly
    return TREE


def real_paths(output: str) -> str:
    """mypy's messages with each link-tree path replaced by the file it points at, relative to the repository."""

    def real(match: re.Match[str]) -> str:
        return os.path.relpath(os.path.realpath(TREE / match.group(1)), ROOT)

    return LOCATION.sub(real, output)


def main() -> int:
    tree = build_tree()
    top = next(name for name in package_dirs() if "." not in name)
    env = {**os.environ, "MYPYPATH": str(tree)}
    config = ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache")]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *config, "-p", top, "-p", "tests", *sys.argv[1:]],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(real_paths(done.stdout))
    sys.stderr.write(done.stderr)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
