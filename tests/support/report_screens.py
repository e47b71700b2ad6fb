"""The screenshots of docs/report.md, taken from a real run: ``python -m tests.support.report_screens``.

After a command block, ``<!-- report-screenshot: FILE.html -> images/NAME.png -->`` says that the block
writes the report FILE.html (in the scratch folder where the docs check runs it) and that the page shows
its first screenful as ``docs/images/NAME.png``. ``run`` runs the page's blocks as the docs check does and
returns where each report landed; ``main`` opens them in headless Chromium and writes the screenshots.
"""

from __future__ import annotations

import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.docs_check import Block, Outcome, Scratch, blocks, steps

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "report.md"
MARK = re.compile(r"<!--\s*report-screenshot:\s*(\S+\.html)(#\S+)?\s*->\s*(\S+\.png)\s*-->")
SCREEN = (1100, 760)  # small enough to keep each PNG near 100 KB, wide enough for the ladder


@dataclass(frozen=True)
class Shot:
    block: Block
    report: str  # the file the block writes, relative to its scratch folder
    element: str | None  # "#id": the box of that element only; None: the first screenful
    image: Path  # under docs/


def shots(page: Path = PAGE) -> list[Shot]:
    """Each screenshot mark, with the command block right before it."""
    text = page.read_text()
    runnable = [b for b in blocks(text) if b.kind in ("sh", "console") and b.skip is None]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        mark = MARK.search(line)
        if mark:
            block = max((b for b in runnable if b.line < number), key=lambda b: b.line)
            found.append(Shot(block, mark.group(1), mark.group(2), page.parent / mark.group(3)))
    return found


def run(pki: Path, scratch_root: Path, page: Path = PAGE) -> tuple[dict[int, list[Outcome]], list[tuple[Shot, Path]]]:
    """Run every block that a mark follows, several at once; the outcomes per block line, each shot's report."""
    marked = shots(page)
    chosen = {shot.block.line: shot.block for shot in marked}

    def one(block: Block) -> tuple[int, list[Outcome]]:
        scratch = Scratch(scratch_root / f"block{block.line}", pki, REPO)
        return block.line, scratch.run_block([s.command for s in steps(block)])

    with ThreadPoolExecutor(max_workers=4) as pool:  # the blocks mostly wait on their own processes
        outcomes = dict(pool.map(one, chosen.values()))
    return outcomes, [(shot, scratch_root / f"block{shot.block.line}" / shot.report) for shot in marked]


def main() -> int:
    sys.path.insert(0, str(REPO))
    from mtls_lab.certs.pki import generate
    from tests.support.browser import CHROMIUM, Browser

    if CHROMIUM is None:
        print("report_screens: chromium is not installed: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate(Path(tmp) / "pki").paths.root
        _, reports = run(pki, Path(tmp))
        browser = Browser(CHROMIUM)
        try:
            for shot, report in reports:
                browser.open(report, SCREEN).screenshot(shot.image, selector=shot.element)
                size = shot.image.stat().st_size // 1024
                print(f"{shot.image.relative_to(REPO)}: {size} KiB, from {report.name}{shot.element or ''}")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
