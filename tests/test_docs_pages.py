"""The docs pages (docs/*.md) are checked like the README: their commands run and their outputs are real.

``python -m tests.support.docs_check`` refreshes the README; a page's console blocks are refreshed the same
way with ``tests.support.docs_check.update(page, ...)``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mtls_lab.certs.layout import LabPaths
from tests.support.docs_check import Block, Outcome, Scratch, blocks, matches, steps

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "docs").glob("*.md"))
RUNNABLE = [
    (page, block)
    for page in PAGES
    for block in blocks(page.read_text())
    if block.kind in ("sh", "console") and block.skip is None
]


def _id(page: Path, block: Block) -> str:
    return f"{page.name}:{block.line}"


def test_the_stack_and_trust_pages_have_runnable_blocks() -> None:
    names = {page.name for page, _ in RUNNABLE}
    assert {"server-stacks.md", "trust-check.md"} <= names


@pytest.fixture(scope="module")
def page_runs(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Outcome]]:
    root = tmp_path_factory.mktemp("docs-pages")

    def run(item: tuple[Path, Block]) -> tuple[str, list[Outcome]]:
        page, block = item
        scratch = Scratch(root / _id(page, block).replace(":", "-"), pki.root, REPO)
        return _id(page, block), scratch.run_block([s.command for s in steps(block)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, RUNNABLE))


@pytest.mark.parametrize(("page", "block"), RUNNABLE, ids=[_id(p, b) for p, b in RUNNABLE])
def test_docs_page_block_runs_as_shown(page: Path, block: Block, page_runs: dict[str, list[Outcome]]) -> None:
    for step, outcome in zip(steps(block), page_runs[_id(page, block)], strict=True):
        where = f"{_id(page, block)}: `{step.command}`"
        assert "Traceback" not in outcome.output, f"{where}\n{outcome.output}"
        expects_error = any("mtls-lab: error" in line for line in step.expected)
        assert outcome.code != 2 or expects_error, f"{where}: usage error\n{outcome.output}"
        if block.kind == "console":
            expected = [*step.expected, "..."] if step.background else step.expected
            assert matches(expected, outcome.output), (
                f"{where} printed:\n{outcome.output}\n--- the page shows:\n" + "\n".join(step.expected)
            )
