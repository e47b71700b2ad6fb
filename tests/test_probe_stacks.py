"""The probe names what each real endpoint enforces, and where (docs/probe.md): nginx, Apache httpd (at the
virtual host and per location), HAProxy, Caddy, a JSSE server and openssl s_server, each in each mode, started
for real (tests/support/stacks.py); the advice fits the class and the stack.
"""

from __future__ import annotations

import pytest

from mtls_lab.caller.probe import Enforcement, ProbeReport, probe
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.stack_configs import ClientAuth
from tests.support.stacks import Stacks, StackServer, available

NONE, OPTIONAL, REQUIRED = ClientAuth.NONE, ClientAuth.OPTIONAL, ClientAuth.REQUIRED
# (stack, mode, TLS max, variant) -> what the probe must name
CASES: list[tuple[str, ClientAuth, str, str, Enforcement]] = [
    *[
        (stack, mode, "1.3", "", enforced)
        for stack in ("openssl", "haproxy", "go", "go-legacy", "java", "apache", "tomcat")
        for mode, enforced in (
            (NONE, Enforcement.NEVER),
            (OPTIONAL, Enforcement.OPTIONAL),
            (REQUIRED, Enforcement.HANDSHAKE),
        )
    ],
    ("nginx", NONE, "1.3", "", Enforcement.NEVER),
    ("nginx", OPTIONAL, "1.3", "", Enforcement.OPTIONAL),
    ("nginx", OPTIONAL, "1.3", "optional_no_ca", Enforcement.OPTIONAL),
    ("nginx", REQUIRED, "1.3", "", Enforcement.HTTP),  # ssl_verify_client on: 400 without one, not "mixed"
    ("apache", REQUIRED, "1.3", "location", Enforcement.PATH),  # TLS 1.2 and 1.3 enabled
    ("apache", REQUIRED, "1.2", "location", Enforcement.PATH),  # TLS 1.2 only: the first look renegotiates
    ("tomcat", NONE, "1.3", "url", Enforcement.PATH),  # a CLIENT-CERT constraint on /secure
]
GUESS = {"apache": ["openssl"], "tomcat": ["java"]}
IDS = [f"{s}/{m.value}{'/' + v if v else ''}/tls{t}" for s, m, t, v, _ in CASES]


@pytest.fixture(scope="module")
def reports(pki: LabPaths, real_stacks: Stacks) -> dict[str, ProbeReport]:
    root = pki.ca(CA.ADOBE_ROOT)
    wanted = {i: StackServer(s, m, root, t, v) for i, (s, m, t, v, _) in zip(IDS, CASES, strict=True) if available(s)}
    started = real_stacks.start_all(list(wanted.values()))
    server_ca = str(pki.ca(CA.SERVER_ROOT))
    # the per-path ones at the path they protect; the others at / (Tomcat's webapp protects /secure everywhere)
    return {
        i: probe(
            started[s].url + ("/secure" if s.variant in ("location", "url") else "/"), server_ca, pki, [], timeout=5
        )
        for i, s in wanted.items()
    }


@pytest.mark.parametrize(("stack", "mode", "top", "variant", "enforced"), CASES, ids=IDS)
def test_the_probe_names_what_the_endpoint_enforces(
    stack: str,
    mode: ClientAuth,
    top: str,
    variant: str,
    enforced: Enforcement,
    reports: dict[str, ProbeReport],
) -> None:
    if not available(stack):
        pytest.skip(f"the {stack} server is not installed here (CI installs it)")
    report = reports[IDS[CASES.index((stack, mode, top, variant, enforced))]]
    assert (report.enforcement, report.configuration) == (enforced.value, enforced.configuration), report.asked_late
    fixes = " ".join(report.fixes)
    # only an optional request is told to require the certificate
    assert ("instead of requesting it optionally" in fixes) is (enforced is Enforcement.OPTIONAL)
    assert ("require a client certificate" in fixes) is (enforced is Enforcement.NEVER)
    assert bool(report.asked_late) is (enforced is Enforcement.PATH)
    if enforced is Enforcement.PATH:
        # Apache with TLS 1.3 enabled asks by post-handshake authentication (the Java model does not offer it,
        # as JDK 17 does not); TLS 1.2 only, and Tomcat, by renegotiation
        how = "post-handshake authentication" if (stack, top) == ("apache", "1.3") else "renegotiation"
        assert how in report.asked_late and report.stack_guess == GUESS[stack], report.asked_late
        assert "<VirtualHost>" in fixes and "TLS 1.2" in fixes and "weaker fix" in fixes
        assert "post-handshake authentication" in report.likely_outcome and "Tomcat: HTTP 401" in report.likely_outcome
        assert report.java_sends_certificate  # Apache names the Adobe-like root: the renegotiation would work
        assert all(r.state.value == "NOT READY" and "post-handshake" in r.why for r in report.readiness)
    if enforced is Enforcement.HTTP:
        assert "400" in report.likely_outcome or report.java_sends_certificate


def test_an_optional_request_is_told_the_setting_of_its_stack(reports: dict[str, ProbeReport]) -> None:
    if not available("nginx"):
        pytest.skip("nginx is not installed here (CI installs it)")
    assert "ssl_verify_client on" in " ".join(reports["nginx/optional/tls1.3"].fixes)
    assert "ssl_verify_client" not in " ".join(reports["nginx/required/tls1.3"].fixes)
