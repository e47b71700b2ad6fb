"""A scheduled trust-sync through the whole lifecycle, checked phase by phase with live calls.

The schedule is what Adobe asks for: a one-time staging of the next hierarchy as soon as possible, and
a recurring run (here with ``--prune``) that follows the public-certificate API. The endpoint is a real
mTLS server trusting the bundle (restarted when the bundle changes, as ``nginx -s reload`` would); AJO is
the lab's caller with the Java model. In every phase AJO presents the certificates the API lists in it
(a model), from the moment the phase starts: before the scheduled run of that phase has happened. So each
phase is checked twice: with the store the earlier runs left, and after this phase's run. ``openssl
verify`` checks the same chains against the same bundle, independently of the lab's server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.phases import Phase
from mtls_lab.lifecycle.synced import scheduled_run
from mtls_lab.lifecycle.trust_sync import Change
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode, ServerConfig
from tests.support.ajo_call import ajo_call
from tests.support.tls_clients import OPENSSL

# Written by hand from Adobe's pages: what AJO presents in each phase, and what must still be trusted.
STILL_TRUSTED = {Phase.MIGRATION: (Identity.ADOBE_ROTATED,)}  # "leave both hierarchies trusted" meanwhile


@pytest.fixture(scope="module")
def api(pki: LabPaths) -> Iterator[RunningAdobeApi]:
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, quiet=True)) as running:
        yield running


@dataclass
class Endpoint:
    """An mTLS endpoint trusting the bundle; ``reload()`` restarts it when trust-sync wrote a new one."""

    pki: LabPaths
    bundle: Path
    server: RunningServer | None = None
    started: list[RunningServer] = field(default_factory=list)

    def reload(self) -> None:
        if self.server is not None:
            self.server.request_stop()  # joined at the end: waiting for each one costs a tenth of a second
        config = ServerConfig(mode=Mode.MTLS, certs=self.pki.root, trust=(self.bundle,), quiet=True)
        self.server = RunningServer(config).start()
        self.started.append(self.server)

    def outcome(self, identity: Identity) -> str:
        assert self.server is not None
        verdict = ajo_call(self.pki, self.server.url, identity.value)
        return "accepted" if verdict.outcome.value == "accepted" else f"refused: {verdict.alert or verdict.status}"


def openssl_verifies(pki: LabPaths, bundle: Path, identity: Identity) -> bool:
    """``openssl verify`` of the chain AJO sends (leaf + intermediate) against the bundle alone."""
    assert OPENSSL is not None
    args = [OPENSSL, "verify", "-purpose", "sslclient", "-CAfile", str(bundle)]
    args += ["-untrusted", str(pki.client_cert(identity)), str(pki.client_leaf(identity))]
    return subprocess.run(args, capture_output=True).returncode == 0


def schedule(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, stage: bool) -> list[tuple[Phase, str, str]]:
    """Run the schedule; every (phase, when, identity) AJO could not reach, with what happened."""
    bundle = tmp_path / "adobe-trust.pem"
    bundle.write_bytes(pki.ca(CA.ADOBE_ROOT).read_bytes())  # where most endpoints start: today's root
    endpoint = Endpoint(pki, bundle)
    endpoint.reload()
    failures: list[tuple[Phase, str, str]] = []
    try:
        for number, phase in enumerate(Phase):
            api.set_phase(phase)
            failures += _check(endpoint, phase, "before this phase's run")
            report = scheduled_run(api, pki, bundle, number, staged=stage)
            assert report.count(Change.REMOVED) == 0, f"{phase.value}: --prune removed a CA a phase needs"
            if report.bundle_changed:  # what a cron job reloads on (--json: "bundle_changed")
                endpoint.reload()
            failures += _check(endpoint, phase, "after this phase's run")
    finally:
        for server in endpoint.started:
            server.request_stop()
        for server in endpoint.started:
            server.stop()
    return failures


def _check(endpoint: Endpoint, phase: Phase, when: str) -> list[tuple[Phase, str, str]]:
    failures = []
    for identity in (*phase.identities, *STILL_TRUSTED.get(phase, ())):
        outcome = endpoint.outcome(identity)
        if OPENSSL is not None:
            assert openssl_verifies(endpoint.pki, endpoint.bundle, identity) is (outcome == "accepted"), (
                f"{phase.value} {when}: openssl verify and the lab server disagree on {identity.value}"
            )
        if outcome != "accepted":
            failures.append((phase, when, f"{identity.value} {outcome}"))
    return failures


def test_a_schedule_that_staged_the_next_hierarchy_never_refuses_ajo(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    assert schedule(api, pki, tmp_path, stage=True) == []


def test_without_staging_the_switch_outruns_the_schedule(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    """The sibling: the API lists the new hierarchy only once AJO uses it, so a schedule alone is one run late."""
    assert schedule(api, pki, tmp_path, stage=False) == [
        (Phase.TRANSITION, "before this phase's run", "adobe-next refused: certificate_required")
    ]
