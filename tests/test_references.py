"""Comments and docstrings that name a module, a function or a docs page name one that exists.

Read in every comment (``tokenize``) and docstring (``ast``) of the package and of ``tests/support``: the
names in backticks or double backticks that are unmistakably references, and only those:

- a module file: ``server/app.py``, ``record.py`` (from the repository, the file's folder, or, for a bare
  file name, anywhere in the package);
- a dotted module or function of the lab: ``caller.verdict``, ``mtls_lab.server.run``,
  ``server/run.py:bind``, ``caller.verdict:Verdict`` (the leading ``mtls_lab.`` may be left out);
- a function called with no arguments: ``name()`` (a name in the code of the package or ``tests/``, a builtin, or an
  attribute of a module the file imports), ``module.name()`` when ``module`` is a lab or an importable
  module (``ssl.SSLContext.load_cert_chain()``; ``self.x()`` or ``sock.recv()`` name a variable's method and
  are not checked);
- a docs page: ``docs/architecture.md``, ``architecture.md`` (from the repository, its ``docs/``, or the file's folder).

Anything else in backticks (options, values, code) is not a reference. What is checked is what exists when
the test runs, so a rename is followed as soon as it lands.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import io
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"mtls_lab": REPO / "mtls_lab", "server": REPO / "server", "caller": REPO / "caller", "certs": REPO / "certs"}
TOP = {"mtls_lab", "server", "caller", "certs", "tests", "benchmarks", "scripts", "examples", "report", "cli", "matrix"}
SUBPACKAGES = {"server", "caller", "certs", "cli", "report", "matrix", "lifecycle"}  # mtls_lab.<these>

TICKED = re.compile(r"``([^`\n]+?)``|(?<!`)`([^`\n]+?)`(?!`)")
MODULE_FILE = re.compile(r"^(?:[\w-]+/)*\w+\.py$")
DOCS_PAGE = re.compile(r"^(?:[\w.-]+/)*[\w-]+\.md(?:#[\w-]+)?$")
DOTTED_MODULE = re.compile(r"^(?:mtls_lab|tests|" + "|".join(sorted(SUBPACKAGES)) + r")(?:\.\w+)+$")
PATH_FUNCTION = re.compile(r"^((?:[\w-]+/)*\w+\.py|[\w.]+):(\w+)(?:\(\))?$")
SNAKE = re.compile(r"^_*[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")  # check_pair, tokens_issued: names, never prose
# C functions of OpenSSL the comments cite (no Python module holds them): named, so a new one is a choice
OPENSSL_C = frozenset({"set_client_ca_list", "ssl_x509err2alert", "ssl3_dispatch_alert"})
CALL = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(\)$")


def sources() -> list[Path]:
    """The files checked: the package's modules and tests/support's."""
    found = [path for folder in FOLDERS.values() for path in folder.rglob("*.py")]
    return sorted(found + list((REPO / "tests" / "support").rglob("*.py")))


def texts(source: str) -> Iterator[tuple[int, str]]:
    """Every comment and docstring of a source, with the line it starts on."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                yield first.lineno, first.value.value


def references(text: str) -> Iterator[tuple[int, str]]:
    """The backticked names of a text, with their line offset in it."""
    for number, line in enumerate(text.splitlines()):
        for match in TICKED.finditer(line):
            yield number, (match.group(1) or match.group(2)).strip()


def problems(path: Path, source: str, repo: Path = REPO) -> list[str]:
    """``file:line: `name`: what is missing`` for every reference of the source that names nothing."""
    imported = _imported_modules(source)
    found = []
    for start, text in texts(source):
        for offset, name in references(text):
            missing = _missing(name, path, repo, imported)
            if missing:
                where = path.relative_to(repo) if path.is_relative_to(repo) else path
                found.append(f"{where}:{start + offset}: `{name}`: {missing}")
    return sorted(set(found), key=lambda line: (int(line.split(":")[1]), line))


def _missing(name: str, path: Path, repo: Path, imported: set[str]) -> str | None:
    if MODULE_FILE.match(name) and (name.split("/")[0] in TOP or "/" not in name):
        return None if _file_exists(name, path, repo, ".py") else "no such module file"
    if DOCS_PAGE.match(name):
        page = name.partition("#")[0]
        if page.startswith("help/"):
            return None  # a page of Adobe's documentation repositories (AdobeDocs/...), cited, not ours
        return None if _file_exists(page, path, repo, ".md") else "no such docs page"
    if match := PATH_FUNCTION.match(name):
        module, function = match.groups()
        if module.endswith(".py"):
            module = module.removesuffix(".py").replace("/", ".")
        return None if _resolves(f"{module}.{function}") else "no such module or function"
    if DOTTED_MODULE.match(name):
        return None if _resolves(name) else "no such module or name"
    if match := CALL.match(name):
        dotted = match.group(1)
        head = dotted.split(".")[0]
        if "." not in dotted:
            known = dotted in _code_words() or hasattr(builtins, dotted)
            known = known or any(_has(module, dotted) for module in imported)
            return None if known else "no such function in the lab or the modules the file imports"
        if head in SUBPACKAGES | {"mtls_lab", "tests"} or _importable(head):
            return None if _resolves(dotted) else "no such function"
    if SNAKE.match(name):
        known = (
            name in _code_words()
            or name in OPENSSL_C
            or hasattr(builtins, name)
            or any(_has(module, name) for module in imported)
        )
        return None if known else "no such name in the lab's code (a function, field, option or setting)"
    return None


def _file_exists(name: str, path: Path, repo: Path, suffix: str) -> bool:
    candidates = [repo / name, path.parent / name, repo / "docs" / name]
    if name.startswith("mtls_lab/"):
        candidates.append(repo / name.removeprefix("mtls_lab/"))
    if any(candidate.is_file() for candidate in candidates):
        return True
    if "/" in name:
        return False
    # a bare file name: one of the package's, or a docs page
    folders = [repo / "docs", repo] if suffix == ".md" else [*FOLDERS.values(), repo / "tests", repo / "benchmarks"]
    return any(next(folder.rglob(name), None) is not None for folder in folders if folder.is_dir())


def _resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` is a module, or a name inside one (``mtls_lab.`` added for the subpackages)."""
    parts = dotted.split(".")
    if parts[0] in SUBPACKAGES:
        parts = ["mtls_lab", *parts]
    for split in range(len(parts), 0, -1):
        module = ".".join(parts[:split])
        if not _importable(module):
            continue
        target: object = importlib.import_module(module)
        for attribute in parts[split:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@cache
def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _has(module: str, name: str) -> bool:
    """Whether a module, or a class it holds, has the attribute (``accept()`` of ``socket.socket``)."""
    if not _importable(module):
        return False
    held = vars(importlib.import_module(module)).values()
    return name in dir(importlib.import_module(module)) or any(isinstance(v, type) and hasattr(v, name) for v in held)


def _imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@cache
def _code_words() -> frozenset[str]:
    """Every identifier and word of a string in the code of the package and the tests (docstrings and
    comments left out: a stale name must not vouch for itself), and of the report templates."""
    words: set[str] = set()
    paths = [*sources(), *(REPO / "tests").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]
    for path in paths:
        if path == Path(__file__):
            continue  # its made-up stale names
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree) if _has_docstring(node)}  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                words.add(node.id)
            elif isinstance(node, ast.Attribute):
                words.add(node.attr)
            elif isinstance(node, ast.arg | ast.keyword) and node.arg:
                words.add(node.arg)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                words.add(node.name)
            elif isinstance(node, ast.alias):
                words.update(node.name.split("."))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                words.update(re.findall(r"\w+", node.value))
    for template in (REPO / "mtls_lab").rglob("templates/*"):
        words.update(re.findall(r"\w+", template.read_text()))
    return frozenset(words)


def _has_docstring(node: ast.AST) -> bool:
    if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) or not node.body:
        return False
    first = node.body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def test_every_reference_in_a_comment_or_docstring_names_what_exists() -> None:
    found = [problem for path in sources() for problem in problems(path, path.read_text())]
    assert found == [], "comments and docstrings name what does not exist (fix the name or the text):\n" + "\n".join(
        found
    )


def test_the_package_is_read() -> None:
    names = {path.relative_to(REPO).as_posix() for path in sources()}
    assert {"server/run.py", "caller/verdict.py", "mtls_lab/errors.py", "tests/support/docs_check.py"} <= names
    assert len(names) > 60


STALE = '''"""Checks pairs with ``check_pair`` and ``check_pair()`` (see `certs/keypairs.py`).

The record is ``server/record.py``'s, read by ``caller.verdict`` and ``caller.verdict:classify``; the
answer is drawn by ``report/collect.py:no_such_step``; ``--port``, `True`, ``sock.recv()``, ``e.g.``.
"""

import ssl


def f() -> None:
    # `mtls_lab.server.recorder` writes it; ``ssl.SSLContext.load_cert_chian()`` loads; see `gone.md#x`
    # ``ssl.create_default_context()`` and ``diagnose()`` and ``len()`` exist; ``lost_helper()`` does not
    pass
'''


def test_a_stale_name_fails_with_its_file_line_and_name() -> None:
    found = problems(REPO / "server" / "fake.py", STALE)
    assert found == [
        "server/fake.py:1: `certs/keypairs.py`: no such module file",
        "server/fake.py:1: `check_pair()`: no such function in the lab or the modules the file imports",
        "server/fake.py:1: `check_pair`: no such name in the lab's code (a function, field, option or setting)",
        "server/fake.py:3: `caller.verdict:classify`: no such module or function",
        "server/fake.py:4: `report/collect.py:no_such_step`: no such module or function",
        "server/fake.py:11: `gone.md#x`: no such docs page",
        "server/fake.py:11: `mtls_lab.server.recorder`: no such module or name",
        "server/fake.py:11: `ssl.SSLContext.load_cert_chian()`: no such function",
        "server/fake.py:12: `lost_helper()`: no such function in the lab or the modules the file imports",
    ], found


def test_what_exists_and_ordinary_words_pass() -> None:
    fine = '''"""Names ``server/record.py``, `record.py`, ``caller.verdict``, ``mtls_lab.server.run:serve``,
``server/run.py:bind``, ``docs/development.md``, `development.md#the-docs-check`, ``diagnose()``,
``ssl.SSLContext.load_cert_chain()``, ``self.close()``, ``sock.recv()``, ``--port``, `None`, ``e.g.``,
``[SSL] PEM lib``, ``a.b``, `HTTP 403`, ``x=1``.
"""
'''
    assert problems(REPO / "server" / "fake.py", fine) == []
