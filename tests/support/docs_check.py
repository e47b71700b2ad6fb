"""The docs check: every command on every page runs, every output shown is real, every link resolves.

Pages: ``README.md``, ``certs/README.md`` and every ``docs/**/*.md`` (``pages()``).

Fenced blocks:
- ``sh``: every line is run (in a scratch directory holding a lab PKI in ``./certs`` and the examples);
  a command fails the check if it exits 2 (usage) or prints a traceback. Lines ending in ``&`` start a
  background server; the check waits for its port. Ports are remapped to free ones, so blocks run in
  parallel.
- ``console``: ``$ `` lines are run the same way and their output must match the lines shown after
  them (``...`` skips any lines; ports, fingerprints, timings and dates are normalised).
- A block right after ``<!-- docs-check: skip: REASON -->`` is not run (Docker, make, real endpoints):
  REASON says what runs it instead.

Links: every relative link ``[text](path#anchor)`` must name a file or folder of the repository, and its
anchor a heading of that page (GitHub's slugs) or an ``id="..."`` in it.

Update mode, ``python -m tests.support.docs_check [PAGE ...]``: every console block's output that no
longer matches is replaced by what its commands print now, the matrix page's table by the real matrix,
and the screenshots of the HTML reports the blocks wrote are retaken (all pages by default). An excerpt
with ``...`` between picked lines is never rewritten: the update names it, to be fixed by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ports

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*docs-check:\s*skip:\s*(.+?)\s*-->")
PORT = re.compile(r"(?<=localhost:)\d{2,5}|(?<=127\.0\.0\.1:)\d{2,5}|(?<=--port )\d{2,5}|(?<=--listen )\d{2,5}")
TOOLS = ("nginx", "openssl", "curl", "jq")  # binaries a block may need besides mtls-lab; without one it is skipped
MATRIX_START, MATRIX_END = "<!-- matrix:start -->", "<!-- matrix:end -->"


def pages(repo: Path = REPO) -> list[Path]:
    """Every page the docs check reads, relative to the repository: the README first."""
    found = [repo / "README.md", repo / "certs" / "README.md", *sorted((repo / "docs").rglob("*.md"))]
    return [path.relative_to(repo) for path in found if path.is_file()]


def runnable_blocks(repo: Path = REPO) -> list[Block]:
    """Every block of every page the check runs, in page order."""
    return [b for page in pages(repo) for b in blocks((repo / page).read_text(), str(page)) if b.runnable]


@dataclass
class Block:
    kind: str
    line: int
    lines: list[str]
    skip: str | None = None
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.kind in ("sh", "console") and self.skip is None


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the command as written, continuation lines included

    @property
    def background(self) -> bool:
        return self.command.endswith("&")


def blocks(text: str, page: str = "README.md") -> list[Block]:
    found: list[Block] = []
    current: Block | None = None
    skip: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if current is None:
            marker = SKIP.search(line)
            if marker:
                skip = marker.group(1)
            elif fence and fence.group(1):
                current, skip = Block(fence.group(1), number, [], skip, page), None
            elif fence:  # a block without a language: never run, but its lines are not prose either
                current, skip = Block("", number, [], skip, page), None
            elif line.strip():
                skip = None if not line.startswith("<!--") else skip
        elif fence and not fence.group(1):
            found.append(current)
            current = None
        else:
            current.lines.append(line)
    return found


def steps(block: Block) -> list[Step]:
    result: list[Step] = []
    pending: Step | None = None  # a command continued with a trailing backslash
    for line in block.lines:
        if pending is not None:
            pending.raw.append(line)
            pending.command = pending.command[:-1].rstrip() + " " + line.strip()
            if not line.rstrip().endswith("\\"):
                pending.command = _strip_comment(pending.command)
                pending = None
            continue
        is_command = (
            line.startswith("$ ") if block.kind == "console" else bool(line.strip()) and not line.startswith("#")
        )
        if is_command:
            text = line[2:] if block.kind == "console" else line
            step = Step(text.strip(), raw=[line])
            result.append(step)
            if text.rstrip().endswith("\\"):
                pending = step
            else:
                step.command = _strip_comment(step.command)
        elif result and block.kind == "console":
            result[-1].expected.append(line)
    return result


def _strip_comment(command: str) -> str:
    return command.split("  #")[0].strip()


def missing_tools(block: Block) -> list[str]:
    """The binaries a block's commands start (``TOOLS``: nginx, openssl, curl, jq) that this machine lacks."""
    used = {tool for step in steps(block) for tool in TOOLS if re.search(rf"(^|[|&;(]\s*){tool} ", step.command)}
    return sorted(tool for tool in used if shutil.which(tool) is None)


_HANDED: set[int] = set()
_HANDING = threading.Lock()


def free_port() -> int:
    """A free loopback port, never the same twice in this process (blocks run in parallel)."""
    with _HANDING:
        while True:
            port = ports.free_port()
            if port not in _HANDED:
                _HANDED.add(port)
                return port


@dataclass
class Outcome:
    command: str
    code: int
    output: str


class Scratch:
    """A scratch directory with a lab PKI and the examples, where one block runs in one bash session."""

    def __init__(self, root: Path, pki: Path, repo: Path) -> None:
        self.root = root
        shutil.copytree(pki, root / "certs")
        shutil.copytree(repo / "examples", root / "examples")
        # `mtls-lab` from this very environment, whether or not it is activated (CI runs .venv/bin/pytest)
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {**os.environ, "PATH": path, "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
        self.ports: dict[str, str] = {}

    def remap(self, command: str) -> str:
        return PORT.sub(lambda m: self.ports.setdefault(m.group(0), str(free_port())), command)

    def run_block(self, commands: list[str], timeout: float = 120) -> list[Outcome]:
        """Run the commands in order in one bash session (exports and background jobs carry over)."""
        script = ["set +e", "trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT"]
        remapped = [self.remap(c) for c in commands]
        for index, command in enumerate(remapped):
            out = f"out.{index}"
            if command.endswith("&"):
                script.append(f"( {command[:-1]} ) > {out} 2>&1 &")
                script.append("job=$!")
                for port in PORT.findall(command):
                    script.append(_wait_for(port))
                script += ["sleep 0.3", f"echo 0 > rc.{index}"]
            else:
                script += [f"{{ {command}\n}} > {out} 2>&1", f"echo $? > rc.{index}"]  # this shell: exports stay
        (self.root / "block.sh").write_text("\n".join(script) + "\n")
        subprocess.run(
            ["bash", "block.sh"],
            cwd=self.root,
            env=self.env,
            timeout=timeout,
            start_new_session=True,
            capture_output=True,
        )
        outcomes = []
        for index, command in enumerate(remapped):
            rc_file, out_file = self.root / f"rc.{index}", self.root / f"out.{index}"
            code = int(rc_file.read_text()) if rc_file.exists() else -1
            output = out_file.read_text(errors="replace") if out_file.exists() else ""
            outcomes.append(Outcome(command, code, output))
        return outcomes


def _wait_for(port: str) -> str:
    return f"for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done"


Runs = dict[str, tuple[list[Outcome], dict[str, str]]]  # block.where -> (outcomes, the ports it used)


def scratch_folder(root: Path, block: Block) -> Path:
    """Where ``run_blocks`` runs a block: what its commands write stays there (docs/report.md's reports)."""
    return root / re.sub(r"[^\w.-]", "_", block.where)


def run_blocks(chosen: Iterable[Block], pki: Path, repo: Path, root: Path, workers: int = 4) -> Runs:
    """Run every block once, several at a time (they mostly wait on their own processes).

    A block that needs a missing binary (``missing_tools``) is not run: its outcomes are empty.
    """
    with BlockRuns(chosen, pki, repo, root, workers) as runs:
        return {where: runs[where] for where in runs.wheres}


class BlockRuns:
    """The blocks started at once, several at a time, each one's outcomes waited for only when asked.

    ``runs[block.where]`` waits for that block alone: the docs check's test of a block, or of a page,
    fails with its own blocks only, while the other pages' blocks go on running (in the background of
    the rest of the suite when the session starts them early: ``tests/conftest.py``).
    """

    def __init__(self, chosen: Iterable[Block], pki: Path, repo: Path, root: Path, workers: int = 4) -> None:
        self.root = root  # the blocks' scratch folders (``scratch_folder``)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docs-block")
        longest_first = sorted(chosen, key=lambda block: -len(steps(block)))  # the pool drains evenly
        self._futures = {block.where: self._pool.submit(_run, block, pki, repo, root) for block in longest_first}

    @property
    def wheres(self) -> list[str]:
        return list(self._futures)

    def __getitem__(self, where: str) -> tuple[list[Outcome], dict[str, str]]:
        return self._futures[where].result()

    def __contains__(self, where: object) -> bool:
        return where in self._futures

    def close(self) -> None:
        """Wait for the blocks still running (each ends its own background jobs), then stop the pool."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BlockRuns:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _run(block: Block, pki: Path, repo: Path, root: Path) -> tuple[list[Outcome], dict[str, str]]:
    if missing_tools(block):
        return [], {}
    scratch = Scratch(scratch_folder(root, block), pki, repo)
    return scratch.run_block([s.command for s in steps(block)]), scratch.ports


_NORMALISE = [
    (re.compile(r"(?<=localhost:)\d+|(?<=127\.0\.0\.1:)\d+|(?<=--port )\d+|(?<=port )\d{4,5}"), "PORT"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "SHA256"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "HEX16"),
    (re.compile(r"\bin \d+ days\b"), "in N days"),
    (re.compile(r"Testing cert #\S+?(?=[,)]|$)"), "Testing cert #X"),
    (re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?"), "DATE"),
    (re.compile(r"\b\d+(\.\d+)? (s|ms)\b"), "N s"),
    (re.compile(r"\b\d+\.\d+ s of calls"), "N s of calls"),
    (re.compile(r"\b\d{2}:\d{2}(:\d{2})?\b"), "TIME"),
]


def normalise(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text.rstrip()


def matches(expected: list[str], actual: str) -> bool:
    """Every expected line appears in order; ``...`` lets any lines pass in between."""
    got = [normalise(line) for line in actual.splitlines()]
    want = [normalise(line) for line in expected]
    while want and not want[-1]:
        want.pop()
    position, gap = 0, False
    for line in want:
        if line.strip() == "...":
            gap = True
            continue
        if gap:
            while position < len(got) and got[position] != line:
                position += 1
        if position >= len(got) or got[position] != line:
            return False
        position, gap = position + 1, False
    return gap or position == len(got) or not got[position:] or all(not g for g in got[position:])


# Links ---------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
ANCHOR_ID = re.compile(r"""\bid=["']([^"']+)["']""")


def outside_fences(text: str) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks, with their numbers."""
    inside, kept = False, []
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append((number, line))
    return kept


def prose(text: str) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks, with their numbers, inline code blanked out."""
    return [(number, INLINE_CODE.sub("``", line)) for number, line in outside_fences(text)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links reduced to their text, lower case, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered as GitHub does) and its ids."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, line in outside_fences(text):
        heading = HEADING.match(line.replace("`", ""))
        if heading:
            base = slug(heading.group(2))
            found.add(f"{base}-{counts[base]}" if base in counts else base)
            counts[base] = counts.get(base, 0) + 1
        found.update(ANCHOR_ID.findall(line))
    return found


def links(text: str) -> list[tuple[int, str]]:
    """Every link target of the page's prose, with its line number."""
    return [(number, m.group(1)) for number, line in prose(text) for m in LINK.finditer(line)]


def broken_links(page: Path, repo: Path = REPO) -> list[str]:
    """What is wrong with the page's relative links: a missing file or folder, or a missing anchor."""
    problems = []
    text = (repo / page).read_text()
    for number, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        where = (repo / page).parent / path if path else repo / page
        if path.startswith("/") or not where.resolve().is_relative_to(repo.resolve()):
            problems.append(f"{page}:{number}: {target}: link inside the repository with a relative path")
        elif not where.exists():
            problems.append(f"{page}:{number}: {target}: no such file")
        elif anchor and where.is_file() and anchor not in anchors(where.read_text()):
            problems.append(f"{page}:{number}: {target}: no heading or id {anchor!r} in {path or page}")
    return problems


# Update mode -----------------------------------------------------------------------------------------


def refreshed(text: str, page: str, runs: Runs, by_hand: list[str] | None = None) -> str:
    """The page with every console block's output replaced by what its commands printed in ``runs``.

    Output that still matches (timings, ports and dates aside) is kept as written, so a refresh changes
    only what changed. Otherwise an output cut short with a trailing ``...`` keeps as many leading lines as
    it showed. An excerpt with ``...`` between shown lines (picked lines of a long output) cannot be
    re-picked by a program: it is kept as written and its command is added to ``by_hand``, to be fixed by
    hand, never replaced by the head of the output.
    """
    lines = text.splitlines()
    by_line = {b.line: b for b in blocks(text, page) if b.kind == "console" and b.where in runs}
    out: list[str] = []
    index = 0
    while index < len(lines):
        out.append(lines[index])
        block = by_line.get(index + 1)
        if block is None:
            index += 1
            continue
        outcomes, ports = runs[block.where]
        if not outcomes:  # not run here (a binary is missing): keep what the page shows
            out.extend(block.lines)
        for step, outcome in zip(steps(block), outcomes, strict=False):
            out.extend(step.raw)
            if matches([*step.expected, "..."] if step.background else step.expected, outcome.output):
                out.extend(step.expected)  # still true: keep it as written (no churn from timings or ports)
                continue
            text_out = outcome.output
            for original, used in ports.items():
                text_out = text_out.replace(used, original)  # show the page's own ports
            real = text_out.rstrip("\n").splitlines()
            if step.background:
                real = real[: len(step.expected)]  # a server's start-up lines; it goes on logging
            elif any(line.strip() == "..." for line in step.expected):
                keep = step.expected.index(next(line for line in step.expected if line.strip() == "..."))
                if any(line.strip() not in ("", "...") for line in step.expected[keep:]):  # picked lines
                    out.extend(step.expected)
                    if by_hand is not None:
                        by_hand.append(f"{block.where}: `{step.command}`")
                    continue
                real = [*real[:keep], "..."]
            out.extend(line.rstrip() for line in real)
        index += len(block.lines) + 1
    return "\n".join(out) + "\n"


def real_matrix(pki: Path) -> str:
    """``mtls-lab matrix --markdown`` for the default scenarios: what the matrix page embeds."""
    from mtls_lab.certs.layout import LabPaths
    from mtls_lab.matrix import runner
    from mtls_lab.matrix.scenarios import SCENARIOS

    return runner.render_markdown(runner.run(SCENARIOS, LabPaths(pki))).strip()


def with_matrix(text: str, matrix: Callable[[], str]) -> str:
    """The page with the table between the matrix markers replaced (pages without markers unchanged)."""
    if MATRIX_START not in text:
        return text
    head, rest = text.split(MATRIX_START, 1)
    return f"{head}{MATRIX_START}\n{matrix()}\n{MATRIX_END}{rest.split(MATRIX_END, 1)[1]}"


def update(chosen: list[Path], pki: Path, repo: Path, scratch_root: Path) -> list[str]:
    """Refresh the chosen pages in place; returns one line per page saying what changed.

    A page's ``report-screenshot`` marks are retaken from the reports its blocks wrote in this run
    (``tests/support/report_screens.py``).
    """
    from tests.support import report_screens

    texts = {page: (repo / page).read_text() for page in chosen}
    console = [b for page in chosen for b in blocks(texts[page], str(page)) if b.runnable and b.kind == "console"]
    runs = run_blocks(console, pki, repo, scratch_root)
    reports = []
    for page in chosen:
        by_hand: list[str] = []
        new = with_matrix(refreshed(texts[page], str(page), runs, by_hand), lambda: real_matrix(pki))
        skipped = [b.where for b in console if b.page == str(page) and not runs[b.where][0]]
        if new != texts[page]:
            (repo / page).write_text(new)
        state = "refreshed" if new != texts[page] else "unchanged"
        reports.append(
            f"{page}: {state}" + (f" (not run, a binary is missing: {', '.join(skipped)})" if skipped else "")
        )
        reports += [f"  kept as written, no longer matches, fix by hand: {where}" for where in by_hand]
        reports += report_screens.retake(repo / page, scratch_root)  # the screenshots of the reports just written
    return reports


def main(argv: list[str]) -> int:
    import tempfile

    from mtls_lab.certs.pki import generate

    known = pages()
    chosen = [Path(a) for a in argv] or known
    unknown = [str(p) for p in chosen if p not in known]
    if unknown:
        print(
            f"docs_check: not a checked page: {', '.join(unknown)}: give paths like docs/lifecycle.md", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate(Path(tmp) / "pki").paths.root
        reports = update(chosen, pki, REPO, Path(tmp))
    print("\n".join(reports))
    return 1 if any("fix by hand" in line for line in reports) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main(sys.argv[1:]))
