"""AJO readiness in the user's own CI, the pytest way: ``pytest --ajo-endpoint URL --ajo-trust-store FILE``.

Shipped with the package (``[project.entry-points.pytest11]``) and inert unless one of its options is given:
no item, no import of the caller, nothing else changed. Given, each check is a test with a readable id under
``ajo-readiness::``:

- ``--ajo-trust-store FILE``: the checks of ``mtls-lab trust-store`` (``today/root``, ``migration/intermediate``,
  ``store/lab-ca``, ...), read offline;
- ``--ajo-endpoint URL``: the probe's (``caller/probe.py``), from outside: ``endpoint/server-certificate``,
  ``endpoint/requests-certificate``, ``endpoint/mtls-only``, ``endpoint/names-adobe-ca``, ``endpoint/today``,
  ``endpoint/migration`` (with the trust check: a false signature under each real root). What the probe
  cannot tell from outside is a skip whose reason says where to look (or: give the trust store).

A failure's message is the verdict's cause and its fix; ``--junitxml`` (pytest's own) writes them for CI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mtls_lab.caller.probe import ProbeReport

GROUP = "ajo-readiness"
PASSWORD_ENV = "AJO_TRUST_STORE_PASSWORD"
ENDPOINT_CHECKS = (
    "endpoint/server-certificate",
    "endpoint/requests-certificate",
    "endpoint/mtls-only",
    "endpoint/names-adobe-ca",
    "endpoint/today",
    "endpoint/migration",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "AJO mTLS readiness (mtls-lab): inert unless --ajo-endpoint or --ajo-trust-store")
    group.addoption("--ajo-endpoint", metavar="URL", help="probe this https:// endpoint as AJO's custom action would")
    group.addoption(
        "--ajo-server-ca", metavar="PEM", help="CA that issued the endpoint's certificate (default: system)"
    )
    group.addoption("--ajo-timeout", type=float, default=5.0, help="seconds per probe connection (default 5)")
    group.addoption("--ajo-trust-store", metavar="FILE", help="check this trust store (PEM, folder, PKCS12, JKS)")
    group.addoption(
        "--ajo-trust-store-password", metavar="PASSWORD", help=f"its password (default: ${PASSWORD_ENV}, safer in CI)"
    )
    group.addoption("--ajo-trust-store-format", choices=("pem", "dir", "pkcs12", "jks"), help="default: detected")
    group.addoption("--ajo-roots", metavar="PEM", help="where Adobe's real roots are found (default: certifi's)")
    group.addoption("--ajo-lab-certs", metavar="DIR", help="a lab PKI: read its stand-in CA names as Adobe's")


class ReadinessFailed(Exception):
    """A check that failed: its message is the cause, then the fix."""


@dataclass(frozen=True)
class Outcome:
    ok: bool | None  # None: cannot tell (a skip)
    message: str


class ReadinessItem(pytest.Item):
    def __init__(self, *, check: Callable[[], Outcome], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        outcome = self.check()
        if outcome.ok is None:
            pytest.skip(outcome.message)
        if not outcome.ok:
            raise ReadinessFailed(outcome.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ReadinessFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return GROUP, None, self.name


class Readiness(pytest.Collector):
    def collect(self) -> Iterator[ReadinessItem]:
        config = self.config
        store = config.getoption("ajo_trust_store")
        if store:
            yield from self._store_items(Path(store))
        url = config.getoption("ajo_endpoint")
        if url:
            probe = _ProbeOnce(config, url)
            for name in ENDPOINT_CHECKS:
                yield ReadinessItem.from_parent(self, name=name, check=_endpoint_check(probe, name))

    def _store_items(self, path: Path) -> Iterator[ReadinessItem]:
        from mtls_lab.caller.store_files import StoreFormat, read_store
        from mtls_lab.caller.trust_store import check_store, real_roots
        from mtls_lab.errors import LabError

        config = self.config
        password = config.getoption("ajo_trust_store_password") or os.environ.get(PASSWORD_ENV)
        fmt = config.getoption("ajo_trust_store_format")
        roots = config.getoption("ajo_roots")
        try:
            report = check_store(
                read_store(path, password, StoreFormat(fmt) if fmt else None),
                real_roots(Path(roots) if roots else None),
            )
        except LabError as exc:
            failed = Outcome(False, f"{exc}")
            yield ReadinessItem.from_parent(self, name="trust-store/readable", check=lambda: failed)
            return
        for finding in report.findings:
            outcome = Outcome(finding.ok, "\n".join([finding.says, *(f"fix: {c}" for c in finding.fix)]))
            yield ReadinessItem.from_parent(self, name=finding.check, check=lambda o=outcome: o)


class _ProbeOnce:
    """The probe runs once, at the first endpoint check, and every endpoint check reads its report."""

    def __init__(self, config: pytest.Config, url: str) -> None:
        self.config, self.url = config, url
        self._report: ProbeReport | None = None
        self._error: str | None = None

    def report(self) -> ProbeReport:
        if self._error is None and self._report is None:
            self._run()
        if self._report is None:
            raise ReadinessFailed(self._error)
        return self._report

    def _run(self) -> None:
        from mtls_lab.caller.probe import probe
        from mtls_lab.certs.layout import LabPaths
        from mtls_lab.errors import LabError

        lab = self.config.getoption("ajo_lab_certs")
        try:
            self._report = probe(
                self.url,
                self.config.getoption("ajo_server_ca"),
                LabPaths(Path(lab)) if lab else None,
                [],
                self.config.getoption("ajo_timeout"),
                check_trust=True,
            )
        except LabError as exc:
            self._error = str(exc)


def _endpoint_check(probe: _ProbeOnce, name: str) -> Callable[[], Outcome]:
    def check() -> Outcome:
        return ENDPOINT_READERS[name](probe.report())

    return check


def _server_certificate(r: ProbeReport) -> Outcome:
    if r.server_chain_valid:
        return Outcome(True, "AJO verifies the endpoint's certificate: it does")
    return Outcome(False, f"AJO would refuse the endpoint's own certificate: {r.server_chain_problem}")


def _requests(r: ProbeReport) -> Outcome:
    if r.requests_client_cert:
        return Outcome(True, "the endpoint asks for a client certificate")
    return Outcome(
        False,
        "the endpoint never asks for a client certificate, so AJO sends none\n"
        "fix: require a client certificate (mTLS-only, as Adobe asks), trusting Adobe's root and intermediate",
    )


def _mtls_only(r: ProbeReport) -> Outcome:
    if r.configuration == "mtls-only":
        return Outcome(True, "mTLS-only")
    return Outcome(
        False, f"the endpoint is {r.configuration}: {r.likely_outcome}\n" + "\n".join(f"fix: {f}" for f in r.fixes)
    )


def _names(r: ProbeReport) -> Outcome:
    if not r.requests_client_cert:
        return Outcome(False, "the endpoint never asks for a client certificate: it names no CA to AJO")
    if r.java_sends_certificate:
        named = ", ".join(r.advertised_ca_names) or "no CA names (a Java client then sends its certificate)"
        return Outcome(True, f"the endpoint advertises: {named}")
    return Outcome(
        False,
        f"the endpoint advertises only other CAs ({'; '.join(r.advertised_ca_names)}): AJO's Java client omits its "
        "certificate (model)\nfix: add DigiCert Global Root G2 and DigiCert Assured ID Root G2 (and their "
        "intermediates) to the CAs the endpoint advertises, or advertise none",
    )


def _hierarchy(value: str) -> Callable[[ProbeReport], Outcome]:
    def read(r: ProbeReport) -> Outcome:
        from mtls_lab.caller.trust_check import State

        ready = next(x for x in r.readiness if x.hierarchy == value)
        message = "\n".join([f"{ready.chain}: {ready.why}", *(f"fix: {s}" for s in ready.steps)])
        if ready.state is State.UNKNOWN:
            return Outcome(None, f"{message} (or check the store offline: --ajo-trust-store FILE)")
        return Outcome(ready.state is State.READY, message)

    return read


ENDPOINT_READERS: dict[str, Callable[[ProbeReport], Outcome]] = {
    "endpoint/server-certificate": _server_certificate,
    "endpoint/requests-certificate": _requests,
    "endpoint/mtls-only": _mtls_only,
    "endpoint/names-adobe-ca": _names,
    "endpoint/today": _hierarchy("today"),
    "endpoint/migration": _hierarchy("migration"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Inert without the options; with them, the readiness checks join the run (before -k and -m select)."""
    if not (config.getoption("ajo_endpoint") or config.getoption("ajo_trust_store")):
        return
    collector = Readiness.from_parent(session, name=GROUP, nodeid=GROUP)
    items.extend(collector.collect())
