"""docs/lifecycle.md is a contract too: its commands run, its outputs are real (the README's docs check).

When the docs check covers every page of ``docs/`` (tests/test_docs.py), this file is redundant.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.matrix.scenarios import SCENARIOS
from tests.support.docs_check import Block, Outcome, Scratch, blocks, matches, steps

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "lifecycle.md"
TEXT = PAGE.read_text()
RUNNABLE = [b for b in blocks(TEXT) if b.kind in ("sh", "console") and b.skip is None]


@pytest.fixture(scope="module")
def block_runs(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Outcome]]:
    """Every runnable block, run once, several at a time (they mostly wait on their own processes)."""
    root = tmp_path_factory.mktemp("lifecycle-docs")

    def run(block: Block) -> tuple[int, list[Outcome]]:
        scratch = Scratch(root / f"block{block.line}", pki.root, REPO)
        return block.line, scratch.run_block([s.command for s in steps(block)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, RUNNABLE))


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"lifecycle.md:{b.line}" for b in RUNNABLE])
def test_lifecycle_page_block_runs_as_shown(block: Block, block_runs: dict[int, list[Outcome]]) -> None:
    shown = steps(block)
    for step, outcome in zip(shown, block_runs[block.line], strict=True):
        where = f"docs/lifecycle.md:{block.line}: `{step.command}`"
        assert "Traceback" not in outcome.output, f"{where}\n{outcome.output}"
        expects_error = any("mtls-lab: error" in line for line in step.expected)
        assert outcome.code != 2 or expects_error, f"{where}: usage error\n{outcome.output}"
        if block.kind == "console":
            expected = [*step.expected, "..."] if step.background else step.expected
            assert matches(expected, outcome.output), f"{where} printed:\n{outcome.output}"


def test_the_rows_the_page_names_exist() -> None:
    import re

    ids = {s.id for s in SCENARIOS}
    quoted = set(re.findall(r"`((?:tls|mtls|mixed)/tls[^`\s]*)`", TEXT))
    assert quoted and quoted <= ids, quoted - ids
