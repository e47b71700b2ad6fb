"""The README is the contract: its commands run, its outputs are real, its matrix is the real matrix."""

from __future__ import annotations

import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.cli.command import build_parser
from mtls_lab.matrix import runner
from mtls_lab.matrix.scenarios import SCENARIOS
from tests.support.docs_check import Block, Outcome, Scratch, blocks, matches, steps

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
BLOCKS = blocks(README)
RUNNABLE = [b for b in BLOCKS if b.kind in ("sh", "console") and b.skip is None]


def test_the_readme_has_runnable_blocks_and_every_skip_says_why() -> None:
    assert len(RUNNABLE) >= 5
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip) > 10, f"README line {block.line}: say what runs this block instead"


@pytest.fixture(scope="module")
def block_runs(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Outcome]]:
    """Every runnable block, run once, several at a time (they mostly wait on their own processes)."""
    root = tmp_path_factory.mktemp("readme")

    def run(block: Block) -> tuple[int, list[Outcome]]:
        if _needs_missing_nginx(block):
            return block.line, []
        scratch = Scratch(root / f"block{block.line}", pki.root, REPO)
        return block.line, scratch.run_block([s.command for s in steps(block)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, RUNNABLE))


def _needs_missing_nginx(block: Block) -> bool:
    return any("nginx " in s.command.split("#")[0] for s in steps(block)) and shutil.which("nginx") is None


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"README:{b.line}" for b in RUNNABLE])
def test_readme_block_runs_as_shown(block: Block, block_runs: dict[int, list[Outcome]]) -> None:
    if _needs_missing_nginx(block):
        pytest.skip("nginx is not installed")
    shown = steps(block)
    for step, outcome in zip(shown, block_runs[block.line], strict=True):
        where = f"README:{block.line}: `{step.command}`"
        assert "Traceback" not in outcome.output, f"{where}\n{outcome.output}"
        expects_error = any("mtls-lab: error" in line for line in step.expected)
        assert outcome.code != 2 or expects_error, f"{where}: usage error\n{outcome.output}"
        if block.kind == "console":
            expected = [*step.expected, "..."] if step.background else step.expected  # servers go on logging
            assert matches(expected, outcome.output), (
                f"{where} printed:\n{outcome.output}\n--- the README shows:\n" + "\n".join(step.expected)
            )


def _mtls_lab_commands() -> list[tuple[int, str]]:
    found = []
    for block in BLOCKS:
        for step in steps(block) if block.kind in ("sh", "console") else []:
            command = step.command.rstrip("&").strip()
            for part in command.split("&&"):
                try:
                    words = shlex.split(part.split("|")[0].strip(), comments=True)
                except ValueError:
                    continue
                while words and "=" in words[0]:
                    words = words[1:]  # VAR=value prefixes
                if words and words[0] == "mtls-lab":
                    found.append((block.line, part.strip()))
    return found


@pytest.mark.parametrize(("line", "command"), _mtls_lab_commands(), ids=lambda v: str(v)[:60])
def test_every_mtls_lab_command_in_the_readme_parses(line: int, command: str) -> None:
    words = shlex.split(command.split("|")[0], comments=True)
    words = words[next(i for i, w in enumerate(words) if w == "mtls-lab") + 1 :]
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:
        if exc.code not in (0, None):
            pytest.fail(f"README:{line}: `{command}` does not parse")


def test_the_readme_matrix_is_the_real_matrix(pki: LabPaths) -> None:
    start, end = "<!-- matrix:start -->", "<!-- matrix:end -->"
    assert start in README and end in README, "the README must embed `mtls-lab matrix --markdown`"
    shown = README.split(start, 1)[1].split(end, 1)[0].strip()
    real = runner.render_markdown(runner.run(SCENARIOS, pki)).strip()
    assert shown == real, "the README's matrix differs from the real run: regenerate with `mtls-lab matrix --markdown`"


def test_scenario_ids_the_readme_names_exist() -> None:
    """Ids quoted in the prose and tables (``mtls/tls1.3/...``; ``*`` allowed) name real scenarios."""
    import fnmatch
    import re

    ids = {s.id for s in SCENARIOS}
    quoted = set(re.findall(r"`((?:tls|mtls|mixed)/tls[^`\s]*)`", README))
    assert quoted, "the README should point readers at matrix rows"
    for text in quoted:
        pattern = text.replace("...", "*")
        assert any(fnmatch.fnmatch(i, pattern) or fnmatch.fnmatch(i, pattern + "*") for i in ids), text
