"""The README's docs check: every command in it runs, and every output shown is real output.

Fenced blocks:
- ``sh``: every line is run (in a scratch directory holding a lab PKI in ``./certs`` and the examples);
  a command fails the check if it exits 2 (usage) or prints a traceback. Lines ending in ``&`` start a
  background server; the check waits for its port. Ports are remapped to free ones.
- ``console``: ``$ `` lines are run the same way and their output must match the lines shown after
  them (``...`` skips any lines; ports, fingerprints, timings and dates are normalised).
- A block right after ``<!-- docs-check: skip: REASON -->`` is not run (Docker, make, real endpoints):
  REASON says what runs it instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*docs-check:\s*skip:\s*(.+?)\s*-->")
PORT = re.compile(r"(?<=localhost:)\d{2,5}|(?<=127\.0\.0\.1:)\d{2,5}|(?<=--port )\d{2,5}|(?<=--listen )\d{2,5}")


@dataclass
class Block:
    kind: str
    line: int
    lines: list[str]
    skip: str | None = None


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the command as written, continuation lines included

    @property
    def background(self) -> bool:
        return self.command.endswith("&")


def blocks(text: str) -> list[Block]:
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
                current, skip = Block(fence.group(1), number, [], skip), None
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


_HANDED: set[int] = set()
_HANDING = threading.Lock()


def free_port() -> int:
    """A free loopback port, never the same twice in this process (blocks run in parallel)."""
    with _HANDING:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
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
            rc, out = self.root / f"rc.{index}", self.root / f"out.{index}"
            code = int(rc.read_text()) if rc.exists() else -1
            outcomes.append(Outcome(command, code, out.read_text(errors="replace") if out.exists() else ""))
        return outcomes


def _wait_for(port: str) -> str:
    return f"for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done"


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


def update(readme: Path, pki: Path, repo: Path, scratch_root: Path) -> str:
    """The README with every console block's output replaced by what its commands print now.

    ``python -m tests.support.docs_check`` writes it back: the outputs shown are always real output. Lines
    after a command that start with ``...`` are kept as they are (an excerpt marker), and a block whose
    output was trimmed with ``...`` keeps only as many leading lines as it showed.
    """
    lines = readme.read_text().splitlines()
    out: list[str] = []
    index = 0
    block_starts = {b.line: b for b in blocks(readme.read_text()) if b.kind == "console" and b.skip is None}
    while index < len(lines):
        number = index + 1
        out.append(lines[index])
        block = block_starts.get(number)
        if block is None:
            index += 1
            continue
        scratch = Scratch(scratch_root / f"block{number}", pki, repo)
        shown = steps(block)
        outcomes = scratch.run_block([s.command for s in shown])
        for step, outcome in zip(shown, outcomes, strict=True):
            out.extend(step.raw)
            text = outcome.output
            for original, used in scratch.ports.items():
                text = text.replace(used, original)  # show the README's own ports
            real = text.rstrip("\n").splitlines()
            if step.background:
                real = real[: len(step.expected)]  # a server's start-up lines; it goes on logging
            elif any(line.strip() == "..." for line in step.expected):
                keep = step.expected.index(next(line for line in step.expected if line.strip() == "..."))
                real = [*real[:keep], "..."]
            out.extend(line.rstrip() for line in real)
        index += len(block.lines) + 1
    return _with_matrix("\n".join(out) + "\n", pki)


def _with_matrix(text: str, pki: Path) -> str:
    from mtls_lab.certs.layout import LabPaths
    from mtls_lab.matrix import runner
    from mtls_lab.matrix.scenarios import SCENARIOS

    start, end = "<!-- matrix:start -->", "<!-- matrix:end -->"
    if start not in text:
        return text
    head, rest = text.split(start, 1)
    table = runner.render_markdown(runner.run(SCENARIOS, LabPaths(pki))).strip()
    return f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"


if __name__ == "__main__":
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mtls_lab.certs.pki import generate

    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate(Path(tmp) / "pki").paths.root
        text = update(repo / "README.md", pki, repo, Path(tmp))
    (repo / "README.md").write_text(text)
    print("README.md: console blocks refreshed with real output")
    from tests.support import report_screens  # docs/report.md's screenshots, from its own commands' reports

    raise SystemExit(report_screens.main())
