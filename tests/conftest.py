from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.certs.pki import generate
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import ServerConfig

if TYPE_CHECKING:
    from tests.support.apache import ApacheServers
    from tests.support.browser import Browser
    from tests.support.docs_check import BlockRuns
    from tests.support.jdk_client import JdkClient
    from tests.support.stacks import Stacks

ServerFactory = Callable[..., RunningServer]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPaths:
    """One lab PKI for the whole session."""
    return generate(tmp_path_factory.mktemp("pki") / "certs").paths


@pytest.fixture(scope="session")
def lab_server(pki: LabPaths) -> Iterator[ServerFactory]:
    """Start (or reuse) a reference server for a configuration: ``lab_server(mode=Mode.MIXED, ...)``."""
    running: dict[ServerConfig, RunningServer] = {}

    def get(**settings: object) -> RunningServer:
        config = dataclasses.replace(ServerConfig(certs=pki.root, quiet=True), **settings)  # type: ignore[arg-type]
        if config not in running:
            running[config] = RunningServer(config).start()
        return running[config]

    yield get
    for server in running.values():
        server.request_stop()
    for server in running.values():
        server.stop()


def _start_docs_blocks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BlockRuns:
    """The blocks the selected docs tests need: those of the selected ``test_block_runs_as_shown`` cases
    (``-k community`` runs that page's blocks only), or every block when another test reads them."""
    from tests.support import docs_check

    every = docs_check.runnable_blocks()
    chosen: set[str] = set()
    for item in request.session.items:
        if item.path.name != "test_docs.py" or "block_runs" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        if getattr(item, "originalname", None) != "test_block_runs_as_shown" or callspec is None:
            chosen = {block.where for block in every}
            break
        chosen.add(callspec.params["block"].where)
    pki: LabPaths = request.getfixturevalue("pki")
    return docs_check.BlockRuns(
        [block for block in every if block.where in chosen], pki.root, docs_check.REPO, tmp_path_factory.mktemp("docs")
    )


@pytest.fixture(scope="session", autouse=True)
def docs_block_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BlockRuns | None]:
    """The docs check's command blocks (``tests/test_docs.py``), started with the session when those tests
    are selected: they mostly wait on their own processes, so they run behind the rest of the suite, and
    each block's test waits for its own block only.

    Under pytest-xdist every worker collects every test but runs only its share, so no worker can tell at
    the start whether the docs tests are its: there the blocks start with the first docs test of the worker
    that runs them (``docs_blocks_on_demand``; ``--dist loadfile`` gives test_docs.py to one worker).
    """
    under_xdist = hasattr(request.config, "workerinput")
    if under_xdist or not any(item.path.name == "test_docs.py" for item in request.session.items):
        yield None
        return
    runs = _start_docs_blocks(request, tmp_path_factory)
    yield runs
    runs.close()


@pytest.fixture(scope="session")
def docs_blocks_on_demand(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BlockRuns]:
    """The docs blocks started when a docs test first asks for them (under pytest-xdist: ``docs_block_runs``)."""
    runs = _start_docs_blocks(request, tmp_path_factory)
    yield runs
    runs.close()


@pytest.fixture
def fresh_server(pki: LabPaths) -> Iterator[ServerFactory]:
    """A server of the test's own (not shared), stopped at the end of the test."""
    started: list[RunningServer] = []

    def start(**settings: object) -> RunningServer:
        config = dataclasses.replace(ServerConfig(certs=pki.root, quiet=True), **settings)  # type: ignore[arg-type]
        started.append(RunningServer(config).start())
        return started[-1]

    yield start
    for server in started:
        server.request_stop()
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def s_server(pki: LabPaths) -> Iterator[Callable[..., int]]:
    """``s_server(*flags)``: the port of an ``openssl s_server -www`` trusting the Adobe-like root."""
    from tests.support.openssl_servers import OpenSSLServers
    from tests.support.tls_clients import OPENSSL

    if OPENSSL is None:
        pytest.skip("the openssl binary is not installed")
    servers = OpenSSLServers(pki)
    yield servers.start
    servers.stop()


@pytest.fixture
def tmp_certs(tmp_path: Path) -> Path:
    return tmp_path / "certs"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the tests that look at the HTML reports as people do (tests/support/browser.py)."""
    from tests.support.browser import CHROMIUM, Browser

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian's package `chromium`; .ci/run installs it)")
    opened = Browser(CHROMIUM)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def real_stacks(
    pki: LabPaths, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Stacks]:
    """Real server stacks (openssl s_server, HAProxy, Caddy, a JSSE server, nginx), each configuration started once."""
    from tests.support.stacks import Stacks

    java_cache = pytestconfig.cache.mkdir("java-classes") if pytestconfig.cache else None
    stacks = Stacks(pki, tmp_path_factory.mktemp("stacks"), java_cache)
    stacks.compile_java_in_background()
    yield stacks
    stacks.stop()


@pytest.fixture(scope="session")
def apache(pki: LabPaths) -> Iterator[ApacheServers]:
    """``apache(ApacheSite(...))``: the real apache2 for that site (tests/support/apache.py), once per session."""
    from tests.support.apache import ApacheServers

    servers = ApacheServers(pki)
    yield servers
    servers.stop()


@pytest.fixture(scope="session")
def jdk_client(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> JdkClient:
    """A real JDK 17 HttpClient presenting the Adobe-like identity (tests/support/jdk_client.py)."""
    from tests.support.jdk_client import JdkClient

    cache = pytestconfig.cache.mkdir("java-classes") if pytestconfig.cache else tmp_path_factory.mktemp("java")
    return JdkClient(pki, cache, tmp_path_factory.mktemp("jdk-client"))
