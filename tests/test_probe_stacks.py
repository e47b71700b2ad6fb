"""The probe names what each real endpoint enforces, and where (docs/probe.md): nginx, Apache httpd (at the
virtual host and per location), HAProxy, Caddy, a JSSE server and openssl s_server, each in each mode, started
for real (tests/support/stacks.py); the advice fits the class and the stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mtls_lab.caller.probe import Enforcement, ProbeReport, probe
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.settings import Mode, TLSVersion
from mtls_lab.server.stack_configs import ClientAuth
from tests.conftest import ServerFactory
from tests.support.apache import ApacheServers, ApacheSite
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


# --- TLS 1.3 only: the request after the handshake comes only to a client that offers post-handshake auth --------

PHA_ONLY = ApacheSite(REQUIRED, location="/secure", tls="1.3")  # Apache's 403 "Cannot perform Post-Handshake ..."
OWN_PAGE = ApacheSite(REQUIRED, location="/secure", tls="1.3", forbidden_page="Access denied")  # ErrorDocument 403
DENIED = ApacheSite(NONE, tls="1.3", denied="/secure", forbidden_page="Access denied")  # a 403, no certificate asked
OPEN = ApacheSite(NONE, tls="1.3")  # 200 to every path
LATE = "a TLS 1.3 post-handshake CertificateRequest"


def _probe_apache(apache: ApacheServers, pki: LabPaths, site: ApacheSite) -> tuple[ProbeReport, int]:
    """The probe of the site's /secure, and the number of requests Apache logged for it."""
    running = apache(site)
    before = running.access_log().count("GET /secure")
    report = probe(running.url + "/secure", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5)
    return report, _settled(lambda: running.access_log().count("GET /secure")) - before


def _settled(count: Callable[[], int], quiet: float = 0.4, seconds: float = 5.0) -> int:
    """``count()`` once it has not changed for ``quiet`` seconds: Apache writes a request's access-log line after
    its answer has left, so the probe can be done before the last line is there."""
    deadline = time.monotonic() + seconds
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


@pytest.mark.parametrize(("site", "answer"), [(PHA_ONLY, "Cannot perform Post-Handshake"), (OWN_PAGE, "HTTP 403")])
def test_on_tls13_only_a_client_offering_post_handshake_auth_sees_the_late_request(
    site: ApacheSite, answer: str, apache: ApacheServers, pki: LabPaths
) -> None:
    report, requests = _probe_apache(apache, pki, site)
    assert (report.enforcement, report.configuration) == (Enforcement.PATH.value, "per-path"), report.asked_late
    assert LATE in report.asked_late and answer in report.asked_late and (report.tls12, report.tls13) == (False, True)
    # the names come from that CertificateRequest: SSLCACertificateFile, the Adobe-like root
    assert report.advertised_ca_names == [pki_subject(pki, CA.ADOBE_ROOT)] and report.java_sends_certificate
    # the connection that offered post-handshake auth is the stack probe's: AJO's default, TLS 1.3 pinned, and it
    assert requests == 3 and report.stack_guess == ["openssl"], report.stack_observed
    assert "no renegotiation can take its place" in report.likely_outcome
    fixes = " ".join(report.fixes)
    assert "<VirtualHost>" in fixes and "virtual host or port of its own" in fixes and "weaker fix" in fixes
    assert "require a client certificate" not in fixes and "instead of requesting it optionally" not in fixes


@pytest.mark.parametrize(("site", "requests"), [(DENIED, 3), (OPEN, 2)], ids=["bare-403", "200"])
def test_a_tls13_endpoint_that_never_asks_stays_tls_only(
    site: ApacheSite, requests: int, apache: ApacheServers, pki: LabPaths
) -> None:
    report, made = _probe_apache(apache, pki, site)
    assert (report.enforcement, report.asked_late) == (Enforcement.NEVER.value, "")
    # a bare 403 on TLS 1.3 is worth one connection that offers post-handshake auth; a 200 is not
    assert made == requests and "require a client certificate" in " ".join(report.fixes)


def test_with_tls12_too_the_renegotiation_names_the_request_and_no_connection_is_added(
    apache: ApacheServers, pki: LabPaths
) -> None:
    report, requests = _probe_apache(apache, pki, ApacheSite(REQUIRED, location="/secure", tls="both"))
    assert report.enforcement == Enforcement.PATH.value and "renegotiation" in report.asked_late
    assert "post-handshake authentication on TLS 1.3" in report.asked_late and LATE not in report.asked_late
    assert report.advertised_ca_names == [pki_subject(pki, CA.ADOBE_ROOT)]  # from the renegotiation's request
    # AJO's default, TLS 1.2 and 1.3 pinned, the stack probe (on TLS 1.2, where it renegotiates): as before
    assert requests == 4 and "On TLS 1.2 the renegotiation lets AJO's client send" in report.likely_outcome


def pki_subject(pki: LabPaths, ca: CA) -> str:
    from mtls_lab.certs.inspect import load_pem_chain

    return load_pem_chain(pki.ca(ca))[0].subject.rfc4514_string()


@pytest.mark.parametrize(("lowest", "how"), [(TLSVersion.V1_3, LATE), (TLSVersion.V1_2, "renegotiation")])
def test_the_reference_servers_client_cert_paths_probe_as_apache_does(
    lowest: TLSVersion, how: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS, client_cert_paths=("/secure",), tls_min=lowest)
    report = probe(server.url + "/secure", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5)
    assert report.enforcement == Enforcement.PATH.value and how in report.asked_late, report.asked_late
    assert report.advertised_ca_names == [pki_subject(pki, CA.ADOBE_ROOT)] and report.stack_guess == ["openssl"]
