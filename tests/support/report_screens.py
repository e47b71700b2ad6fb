"""The screenshots of the HTML reports shown in the docs, taken from the docs check's own run.

After a command block, ``<!-- report-screenshot: FILE.html -> images/NAME.png -->`` says that the block
writes the report FILE.html (in the scratch folder where the docs check runs it, ``scratch_folder``) and
that the page shows it as ``images/NAME.png`` (relative to the page): the first screenful, or with
``FILE.html#id`` the box of that element. The docs check's update mode (``python -m
tests.support.docs_check``) calls ``retake`` after running a page's blocks; ``tests/test_docs.py`` checks
that each marked report was written by its block, renders, and that its screenshot is there and linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.docs_check import REPO, Block, blocks, scratch_folder

MARK = re.compile(r"<!--\s*report-screenshot:\s*(\S+\.html)(#\S+)?\s*->\s*(\S+\.png)\s*-->")
SCREEN = (1100, 760)  # small enough to keep each PNG near 100 KB, wide enough for the ladder
MAX_BYTES = 200_000


@dataclass(frozen=True)
class Shot:
    page: Path  # absolute
    line: int
    block: Block  # the runnable block right before the mark: it writes the report
    report: str  # the report's file name, in the block's scratch folder
    element: str | None  # "#id": the box of that element only; None: the first screenful
    image: Path  # absolute

    def report_file(self, runs_root: Path) -> Path:
        return scratch_folder(runs_root, self.block) / self.report


def shots(page: Path) -> list[Shot]:
    """Each screenshot mark of a page, with the block that writes its report."""
    text = page.read_text()
    runnable = [b for b in blocks(text, str(page.relative_to(REPO))) if b.runnable]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        mark = MARK.search(line)
        if mark:
            block = max((b for b in runnable if b.line < number), key=lambda b: b.line)
            found.append(Shot(page, number, block, mark.group(1), mark.group(2), page.parent / mark.group(3)))
    return found


def retake(page: Path, runs_root: Path) -> list[str]:
    """Screenshot each marked report of ``page`` that the docs check just wrote under ``runs_root``."""
    marked = shots(page)
    if not marked:
        return []
    from tests.support.browser import CHROMIUM, Browser

    if CHROMIUM is None:
        return [f"{page.relative_to(REPO)}: screenshots not retaken: chromium is not installed"]
    said = []
    browser = Browser(CHROMIUM)
    try:
        for shot in marked:
            opened = browser.open(shot.report_file(runs_root), SCREEN)
            opened.screenshot(shot.image, selector=shot.element)
            opened.close()
            size = shot.image.stat().st_size // 1024
            said.append(f"{shot.image.relative_to(REPO)}: retaken, {size} KiB, from {shot.report}{shot.element or ''}")
    finally:
        browser.close()
    return said
