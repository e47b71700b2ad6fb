"""The docs are the contract: on every page, commands run, outputs are real, links resolve.

Pages: ``README.md``, ``certs/README.md`` and ``docs/**/*.md`` (``tests/support/docs_check.py``). Refresh
the outputs shown with ``python -m tests.support.docs_check`` (docs/development.md).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.cli.command import build_parser
from mtls_lab.matrix.scenarios import SCENARIOS
from tests.support import docs_check, report_screens
from tests.support.browser import Browser
from tests.support.docs_check import MATRIX_END, MATRIX_START, Block, BlockRuns, blocks, matches, steps

REPO = docs_check.REPO
PAGES = docs_check.pages()
TEXTS = {str(page): (REPO / page).read_text() for page in PAGES}
BLOCKS = [block for page, text in TEXTS.items() for block in blocks(text, page)]
RUNNABLE = [block for block in BLOCKS if block.runnable]  # docs_check.runnable_blocks(): the session runs them
DOCS_PAGES = [page for page in PAGES if page.parts[0] == "docs"]
README_LIMIT = 200  # lines: a newcomer reads it in five minutes; the rest lives in docs/


def test_the_pages_are_found_and_have_runnable_blocks() -> None:
    assert Path("README.md") in PAGES and Path("docs/README.md") in PAGES
    assert len(DOCS_PAGES) >= 15
    assert len(RUNNABLE) >= 30


def test_every_skip_says_why() -> None:
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip) > 10, f"{block.where}: say what runs this block instead"


def test_the_readme_is_short() -> None:
    lines = TEXTS["README.md"].count("\n")
    assert lines <= README_LIMIT, f"README.md has {lines} lines: move detail into a docs/ page (at most {README_LIMIT})"


def test_every_reader_of_the_record_route_is_run_and_asks_for_the_last_request_by_name() -> None:
    """Every command block that reads ``/_lab/calls`` is run by this check, and nothing the product ships reads
    the last call as ``limit=1`` (a connection's entry is written when it closes, after its requests: the
    newest entry is the connection; ``last=request`` is the last call, docs/reference/record.md)."""
    readers = [block for block in BLOCKS if any("/_lab/calls" in line for line in block.lines)]
    assert any("last=request" in line for block in readers for line in block.lines), "show last=request"
    assert [block.where for block in readers if not block.runnable] == []
    shipped = [*PAGES, *sorted(p.relative_to(REPO) for p in (REPO / "examples").iterdir() if p.is_file())]
    code = [
        p.relative_to(REPO)
        for folder in ("mtls_lab", "server", "caller", "certs")
        for p in (REPO / folder).rglob("*.py")
    ]
    shipped += [Path("docker-compose.yml"), *sorted(code)]
    newest_entry = re.compile(r"_lab/calls\?(?:[^\s'\"]*&)?limit=1(?![0-9])")
    found = [str(p) for p in shipped if (REPO / p).is_file() and newest_entry.search((REPO / p).read_text())]
    assert found == [], f"{found}: read the last call with /_lab/calls?last=request"


def test_every_page_has_one_title() -> None:
    for page, text in TEXTS.items():
        titles = [line for _, line in docs_check.prose(text) if line.startswith("# ")]
        assert len(titles) == 1 and text.startswith("# "), f"{page}: one `# Title`, on the first line"


@pytest.fixture
def block_runs(docs_block_runs: BlockRuns | None, request: pytest.FixtureRequest) -> BlockRuns:
    """Every runnable block of every page, started once with the session (``tests/conftest.py``), or with
    the first docs test under pytest-xdist; ``block_runs[where]`` waits for that block only."""
    if docs_block_runs is not None:
        return docs_block_runs
    on_demand: BlockRuns = request.getfixturevalue("docs_blocks_on_demand")
    return on_demand


@pytest.fixture
def runs_root(block_runs: BlockRuns) -> Path:
    """Where the blocks run, one folder each (``docs_check.scratch_folder``): what they write stays there."""
    return block_runs.root


ERROR_LINE = re.compile(r"mtls-lab( [a-z-]+)?: error: ")  # the one line of a user error (a command's own too)


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.where for block in RUNNABLE])
def test_block_runs_as_shown(block: Block, block_runs: BlockRuns) -> None:
    missing = docs_check.missing_tools(block)
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    outcomes, _ = block_runs[block.where]
    for step, outcome in zip(steps(block), outcomes, strict=True):
        where = f"{block.where}: `{step.command}`"
        assert "Traceback" not in outcome.output, f"{where}\n{outcome.output}"
        expects_error = any(ERROR_LINE.match(line) for line in step.expected)
        assert outcome.code != 2 or expects_error, f"{where}: usage error\n{outcome.output}"
        if block.kind == "console":
            expected = [*step.expected, "..."] if step.background else step.expected  # servers go on logging
            assert matches(expected, outcome.output), (
                f"{where} printed:\n{outcome.output}\n--- the page shows:\n"
                + "\n".join(step.expected)
                + "\n(refresh with `python -m tests.support.docs_check`, then read the diff)"
            )


def _mtls_lab_commands() -> list[tuple[str, str]]:
    found = []
    for block in BLOCKS:
        for step in steps(block) if block.kind in ("sh", "console") else []:
            if any(ERROR_LINE.match(line) and ": error: argument " in line for line in step.expected):
                continue  # a page showing a usage error on purpose (its block test checks that it is one)
            command = step.command.rstrip("&").strip()
            for part in re.split(r"&&|\|\||;", command):  # each command of a list
                try:
                    words = shlex.split(part.split("|")[0].strip(), comments=True)
                except ValueError:
                    continue
                while words and "=" in words[0]:
                    words = words[1:]  # VAR=value prefixes
                if words and words[0] == "mtls-lab":
                    found.append((block.where, part.strip()))
    return found


@pytest.mark.parametrize(("where", "command"), _mtls_lab_commands(), ids=lambda v: str(v)[:60])
def test_every_mtls_lab_command_parses(where: str, command: str) -> None:
    words = shlex.split(command.split("|")[0], comments=True)
    words = words[next(i for i, w in enumerate(words) if w == "mtls-lab") + 1 :]
    words = words[: next((i for i, w in enumerate(words) if re.match(r"^\d*[<>]", w)), len(words))]  # redirections
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:
        if exc.code not in (0, None):
            pytest.fail(f"{where}: `{command}` does not parse")


def test_the_matrix_page_is_the_real_matrix(pki: LabPaths) -> None:
    (page,) = [page for page, text in TEXTS.items() if MATRIX_START in text]
    assert page == "docs/matrix.md" and MATRIX_END in TEXTS[page]
    shown = TEXTS[page].split(MATRIX_START, 1)[1].split(MATRIX_END, 1)[0].strip()
    assert shown == docs_check.real_matrix(pki.root), (
        "docs/matrix.md's table differs from the real run: refresh it with `python -m tests.support.docs_check`"
    )


def test_scenario_ids_the_pages_name_exist() -> None:
    """Ids quoted in the prose and tables (``mtls/tls1.3/...``; ``*`` allowed) name real scenarios."""
    ids = {s.id for s in SCENARIOS}
    quoted = {(page, text) for page, t in TEXTS.items() for text in re.findall(r"`((?:tls|mtls|mixed)/tls[^`\s]*)`", t)}
    assert {page for page, _ in quoted} >= {"README.md", "docs/troubleshooting.md"}
    for page, text in sorted(quoted):
        pattern = text.replace("...", "*")
        assert any(fnmatch.fnmatch(i, pattern) or fnmatch.fnmatch(i, pattern + "*") for i in ids), f"{page}: {text}"


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_relative_links_resolve(page: Path) -> None:
    assert docs_check.broken_links(page) == []


def test_the_link_check_catches_a_missing_page_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text('# A\n\n## Two words\n\n<a id="here"></a>\n')
    (tmp_path / "README.md").write_text(
        "# R\n\n[ok](docs/a.md#two-words) [id](docs/a.md#here) [web](https://example.com/x) "
        "[self](#r) `[code](docs/nowhere.md)`\n\n"
        "[gone](docs/b.md) [no anchor](docs/a.md#three-words)\n\n"
        "```sh\n[in a block](docs/nowhere.md)\n```\n"
    )
    problems = docs_check.broken_links(Path("README.md"), tmp_path)
    assert len(problems) == 2, problems
    assert "README.md:5: docs/b.md: no such file" in problems[0]
    assert "no heading or id 'three-words'" in problems[1]


def test_the_update_mode_rewrites_only_what_changed_and_never_a_picked_excerpt() -> None:
    page = (
        "# P\n\n```console\n$ mtls-lab same\nstill true (0.1 s)\n$ mtls-lab changed\nold line\n"
        "$ mtls-lab long\nfirst\n...\n$ mtls-lab picked\nhead\n...\nVERDICT: old\n...\n```\n"
    )
    (block,) = blocks(page, "p.md")
    outcomes = [
        docs_check.Outcome("mtls-lab same", 0, "still true (0.9 s)\n"),
        docs_check.Outcome("mtls-lab changed", 0, "new line\n"),
        docs_check.Outcome("mtls-lab long", 0, "FIRST\nsecond\nthird\n"),
        docs_check.Outcome("mtls-lab picked", 0, "head\nmiddle\nVERDICT: new\n"),
    ]
    by_hand: list[str] = []
    new = docs_check.refreshed(page, "p.md", {block.where: (outcomes, {})}, by_hand)
    assert new == page.replace("old line", "new line").replace("first\n", "FIRST\n")
    assert by_hand == ["p.md:3: `mtls-lab picked`"]


def test_slugs_follow_github() -> None:
    assert docs_check.slug("Seeing the handshake: --trace") == "seeing-the-handshake---trace"
    assert docs_check.slug('What "mTLS-only" means in server terms') == "what-mtls-only-means-in-server-terms"
    assert docs_check.slug("The certificate's lifecycle") == "the-certificates-lifecycle"
    assert docs_check.anchors("# A\n## B\n## B\n") == {"a", "b", "b-1"}
    assert docs_check.anchors("# `mtls-lab call`\n```sh\n# a comment, not a heading\n```\n") == {"mtls-lab-call"}


def test_the_index_links_every_docs_page() -> None:
    index = REPO / "docs" / "README.md"
    linked = {
        (index.parent / target.partition("#")[0]).resolve() for _, target in docs_check.links(TEXTS["docs/README.md"])
    }
    for page in DOCS_PAGES:
        assert page == Path("docs/README.md") or (REPO / page).resolve() in linked, (
            f"docs/README.md does not link {page}"
        )
    assert "docs/README.md" in {target for _, target in docs_check.links(TEXTS["README.md"])}


def test_docs_pages_named_in_the_code_exist() -> None:
    """Code comments and help texts point at docs/ pages: those pages must exist."""
    folders = ["mtls_lab", "server", "caller", "certs", "tests", "benchmarks"]
    named = {
        (str(path.relative_to(REPO)), name)
        for folder in folders
        for path in (REPO / folder).rglob("*.py")
        if path != Path(__file__)  # this file names made-up pages on purpose
        for name in re.findall(r"\bdocs/[\w/.-]+\.md\b", path.read_text())
    }
    assert named, "the code should cite its docs pages"
    for where, name in sorted(named):
        assert (REPO / name).is_file(), f"{where} names {name}, which does not exist"


def test_no_seed_in_the_product() -> None:
    """Users speak of "the community question"; nothing the product ships says "seed"."""
    shipped = [REPO / "README.md", REPO / "docker-compose.yml", REPO / "Dockerfile"]
    for folder in ("docs", "examples", "mtls_lab", "server", "caller", "certs"):
        shipped += [
            p for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in (".md", ".py", ".json", ".yml")
        ]
    said = [str(p.relative_to(REPO)) for p in shipped if "seed" in p.read_text(errors="replace").lower()]
    assert said == []


SHOTS = [shot for page in PAGES for shot in report_screens.shots(REPO / page)]


def test_report_screenshots_are_of_reports_their_blocks_wrote(
    block_runs: BlockRuns, runs_root: Path, browser: Browser
) -> None:
    """docs/report.md shows each report kind; each screenshot's report is written by the block before it."""
    assert {shot.report for shot in SHOTS} >= {"probe-tls-only.html", "call-mtls-other-ca.html", "matrix.html"}
    assert all(block_runs[shot.block.where][0] for shot in SHOTS)  # the blocks ran
    kinds = set()
    for shot in SHOTS:
        report = shot.report_file(runs_root)
        assert report.is_file(), f"{shot.page.name}:{shot.line}: the block before the mark does not write {shot.report}"
        page = browser.open(report)
        kinds.add(page.evaluate("document.body.className"))
        headline = page.evaluate("document.querySelector('#verdict .headline').getBoundingClientRect().bottom")
        assert page.errors == [] and 0 < headline <= page.evaluate("innerHeight"), report.name
        page.close()
        image = shot.image.read_bytes()
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) < report_screens.MAX_BYTES, shot.image.name
        link = f"]({shot.image.relative_to(shot.page.parent)})"
        assert link in shot.page.read_text(), f"{shot.page.name}: no link to {shot.image.name} after its mark"
    assert kinds == {"report-call", "report-probe", "report-matrix"}
