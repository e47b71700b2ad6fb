"""Every common server stack, for real on 127.0.0.1 (docs/server-stacks.md).

- each stack answers each client-certificate failure as the measured table says (caller/stacks.py);
- against each of them the verdict names the true cause, its ``client_cert_sent`` is right, and it says
  "clock" only when a sent certificate's dates can be the cause;
- the lab server's ``--alert-style`` answers like the stack it imitates;
- the probe guesses each stack from its answers.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mtls_lab.caller.causes import CallFacts, diagnose
from mtls_lab.caller.probe import answer_of, probe
from mtls_lab.caller.stacks import MEASURED, Failure, MeasuredServer, Stack, answer, guess
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.settings import AlertStyle, Mode
from mtls_lab.server.stack_configs import ClientAuth
from tests.conftest import ServerFactory
from tests.support.apache import ApacheServers, ApacheSite
from tests.support.jdk_client import JdkCall, JdkClient
from tests.support.stacks import Running, Stacks, StackServer, available, present

TABLE = [f for f in Failure if f not in (Failure.SIGNATURE, Failure.VERSION)]  # SIGNATURE: test_trust_check.py
CAUSE = {
    Failure.NOT_SENT: {"not_sent"},
    Failure.UNTRUSTED: {"untrusted"},
    Failure.LEAF_ONLY: {"leaf_only"},
    Failure.SELF_SIGNED: {"self_signed"},
    Failure.EXPIRED: {"expired"},
    Failure.NOT_YET_VALID: {"not_yet_valid"},
    Failure.NO_CLIENT_AUTH: {"no_client_auth"},
    Failure.STACK_PROBE: {"expired", "self_signed"},  # both are true of it: which one depends on the answer
}
SHAPES = [
    (ClientAuth.REQUIRED, "1.3"),
    (ClientAuth.OPTIONAL, "1.3"),
    (ClientAuth.REQUIRED, "1.2"),
    (ClientAuth.NONE, "1.3"),
]


@pytest.fixture(scope="module")
def servers(pki: LabPaths, real_stacks: Stacks) -> dict[tuple[str, ClientAuth, str], Running]:
    """Every measured server, required and optional, and required with TLS 1.2 at most: started together."""
    root = pki.ca(CA.ADOBE_ROOT)
    wanted = [StackServer(m.key, mode, root, top) for m in MEASURED if available(m.key) for mode, top in SHAPES]
    started = real_stacks.start_all(wanted)
    return {(s.stack, s.mode, s.tls_max): running for s, running in started.items()}


def _server(
    servers: dict[tuple[str, ClientAuth, str], Running],
    key: str,
    mode: ClientAuth = ClientAuth.REQUIRED,
    top: str = "1.3",
) -> Running:
    if not available(key):
        pytest.skip(f"the {key} server is not installed here (CI installs it)")
    return servers[(key, mode, top)]


def assert_facts_first(verdict: Verdict, failure: Failure) -> None:
    """The verdict's cause is the true one, it agrees with its own client_cert_sent, and no stray clock."""
    assert verdict.client_cert_sent is (failure is not Failure.NOT_SENT), verdict.explanation
    assert verdict.likely_cause in CAUSE[failure], verdict.explanation
    said = f"{verdict.explanation} {verdict.fix} {verdict.tell_apart}".lower()
    if "clock" in said:
        assert verdict.client_cert_sent and (verdict.likely_cause or "").startswith(("expired", "not_yet_valid"))
    if not verdict.client_cert_sent:
        assert verdict.explanation.startswith(("No client certificate was sent", "nginx answered")), verdict.explanation


@pytest.mark.parametrize(
    ("server", "failure"),
    [(m, f) for m in MEASURED for f in TABLE],
    ids=[f"{m.key}/{f.name.lower()}" for m in MEASURED for f in TABLE],
)
def test_each_real_stack_answers_as_the_table_says_and_the_verdict_names_the_cause(
    server: MeasuredServer, failure: Failure, pki: LabPaths, servers: dict[tuple[str, ClientAuth, str], Running]
) -> None:
    running = _server(servers, server.key)
    for tls in ("1.2", "1.3"):
        verdict = present(pki, running.url, failure, tls)
        assert answer_of(verdict) == answer(server.stack, failure, tls), (tls, verdict.explanation)
        assert_facts_first(verdict, failure)


@pytest.mark.parametrize("server", MEASURED, ids=[m.key for m in MEASURED])
def test_no_common_version_is_protocol_version_everywhere(
    server: MeasuredServer, pki: LabPaths, servers: dict[tuple[str, ClientAuth, str], Running]
) -> None:
    running = _server(servers, server.key, top="1.2")
    verdict = present(pki, running.url, Failure.NOT_SENT, "1.3")
    assert answer_of(verdict) == answer(server.stack, Failure.VERSION, "1.3") == "alert protocol_version"
    assert "TLS 1.3" in verdict.fix and verdict.client_cert_sent is False
    assert answer_of(present(pki, running.url, Failure.NOT_SENT, "1.2")) != "alert protocol_version"  # 1.2 is served


@pytest.mark.parametrize("server", MEASURED, ids=[m.key for m in MEASURED])
def test_optional_lets_a_missing_certificate_through_but_still_judges_a_sent_one(
    server: MeasuredServer, pki: LabPaths, servers: dict[tuple[str, ClientAuth, str], Running]
) -> None:
    running = _server(servers, server.key, ClientAuth.OPTIONAL)
    missing = present(pki, running.url, Failure.NOT_SENT, "1.3")
    # the handshake completes; the app decides (s_server -www serves anyone, the others' snippets answer 403)
    assert missing.phase.value == "http" and missing.status == (200 if server.key == "openssl" else 403)
    assert missing.client_cert_sent is False
    untrusted = present(pki, running.url, Failure.UNTRUSTED, "1.3")
    assert answer_of(untrusted) == answer(server.stack, Failure.UNTRUSTED, "1.3")


@pytest.mark.parametrize("server", MEASURED, ids=[m.key for m in MEASURED])
def test_tls_only_never_asks_so_no_certificate_goes(
    server: MeasuredServer, pki: LabPaths, servers: dict[tuple[str, ClientAuth, str], Running]
) -> None:
    running = _server(servers, server.key, ClientAuth.NONE)
    from tests.support.ajo_call import ajo_call

    verdict = ajo_call(pki, running.url, "adobe", method="GET", timeout=5)
    assert verdict.server_requested_cert is False and verdict.client_cert_sent is False
    # the Java servers' app checks the certificate itself (tests/java/MtlsServer.java, LabServlet.java)
    assert verdict.phase.value == "http" and verdict.status == (403 if server.stack is Stack.JAVA else 200)
    if verdict.status == 403:  # the app wanted a certificate the TLS layer never asked for
        assert verdict.likely_cause is None and "never requested" in verdict.explanation


@pytest.mark.parametrize("server", MEASURED, ids=[m.key for m in MEASURED])
@pytest.mark.parametrize("mode", [ClientAuth.REQUIRED, ClientAuth.OPTIONAL], ids=["required", "optional"])
def test_the_probe_guesses_each_stack(
    server: MeasuredServer, mode: ClientAuth, pki: LabPaths, servers: dict[tuple[str, ClientAuth, str], Running]
) -> None:
    running = _server(servers, server.key, mode)
    report = probe(running.url + "/", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5)
    assert report.stack_guess == [server.stack.value], report.stack_observed


# --- the lab server imitating each stack ------------------------------------------------------------------------

IMITATES = {AlertStyle.OPENSSL: Stack.OPENSSL, AlertStyle.JAVA: Stack.JAVA, AlertStyle.GO: Stack.GO}
# OpenSSL encrypts its TLS 1.3 certificate_required with no hook to change it (server/alert_styles.py)
KNOWN_GAPS = {(AlertStyle.JAVA, Failure.NOT_SENT, "1.3"): "alert certificate_required"}


@pytest.mark.parametrize("style", list(AlertStyle), ids=[s.value for s in AlertStyle])
def test_the_lab_server_answers_like_the_stack_it_imitates(
    style: AlertStyle, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS, alert_style=style)
    for failure in TABLE:
        for tls in ("1.2", "1.3"):
            verdict = present(pki, server.url, failure, tls)
            expected = KNOWN_GAPS.get((style, failure, tls), answer(IMITATES[style], failure, tls))
            assert answer_of(verdict) == expected, (failure, tls)
            assert_facts_first(verdict, failure)
    assert probe(server.url + "/", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5).stack_guess == [
        IMITATES[style].value
    ]


def test_a_java_server_that_names_other_cas_gets_no_certificate_and_the_verdict_says_so(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    """The issue's case: AJO's Java client sends an empty Certificate, JSSE answers bad_certificate: not a clock."""
    server = lab_server(mode=Mode.MTLS, alert_style=AlertStyle.JAVA, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT)))
    from tests.support.ajo_call import ajo_call

    verdict = ajo_call(pki, server.url, "adobe", tls="1.2")
    assert (verdict.alert, verdict.client_cert_sent, verdict.likely_cause) == ("bad_certificate", False, "not_sent")
    assert "clock" not in (verdict.explanation + verdict.fix).lower()
    assert "names no CAs or names an issuer" in verdict.explanation and "Java (JSSE)" in verdict.explanation


# --- the clock, only when the dates can be the cause ------------------------------------------------------------


def _facts(sent: bool, not_before: dt.datetime, not_after: dt.datetime, tls: str = "1.3") -> CallFacts:
    return CallFacts(
        tls=tls,
        handshake_done=True,
        tls_version=f"TLSv{tls}",
        identity="adobe" if sent else None,
        chain_leaf_only=False,
        behavior="openssl",
        cert_requested=True,
        cert_sent=sent,
        advertised=[],
        leaf_issuer="CN=MTLS LAB stand-in for DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        leaf_not_before=not_before,
        leaf_not_after=not_after,
        leaf_usages=("serverAuth", "clientAuth"),
    )


NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def test_a_certificate_that_just_became_valid_makes_a_slow_clock_a_possible_cause() -> None:
    found = diagnose("alert bad_certificate", _facts(True, NOW - dt.timedelta(hours=3), NOW + 300 * DAY))
    assert found is not None and found.causes[0].failure is Failure.UNTRUSTED  # Go 1.19: likelier
    assert any(c.clock and c.failure is Failure.NOT_YET_VALID for c in found.causes)  # OpenSSL: not yet valid
    assert "clock" in found.explanation and "date -u" in found.tell_apart
    # its sibling: a certificate valid for months names no clock
    settled = diagnose("alert bad_certificate", _facts(True, NOW - 100 * DAY, NOW + 300 * DAY))
    assert settled is not None and "clock" not in settled.explanation + settled.fix


def test_the_dates_are_compared_as_moments_and_printed_in_utc_to_the_second() -> None:
    """CallFacts holds datetimes: a date in another zone compares by its moment, and prints as ISO 8601 UTC."""
    became = dt.datetime(2026, 1, 31, 13, 0, 0, 500, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 12:00 UTC
    found = diagnose("alert bad_certificate", _facts(True, became, became + 300 * DAY))
    near = diagnose("alert bad_certificate", _facts(True, NOW - dt.timedelta(hours=3), NOW + 300 * DAY))
    assert found is not None and near is not None
    assert not any(c.clock for c in found.causes)  # long ago: no clock cause
    behind = next(c for c in near.causes if c.clock)
    assert behind.why.startswith("The certificate became valid only at ") and behind.why[37:57].endswith("Z")
    gone = diagnose("alert certificate_expired", _facts(True, became - 400 * DAY, became))
    assert gone is not None and "2026-01-31T12:00:00Z" in " ".join(c.why for c in gone.causes)


def test_certificate_expired_for_a_valid_certificate_points_at_the_endpoints_clock() -> None:
    found = diagnose("alert certificate_expired", _facts(True, NOW - 100 * DAY, NOW + 300 * DAY))
    assert found is not None and found.causes[0].clock and "clock is probably ahead" not in found.fix
    assert "clock" in found.causes[0].why and found.fix == "Server side: fix the endpoint's clock (NTP)."
    # nothing sent: whatever the alert, the cause is the missing certificate, and no clock
    unsent = diagnose("alert certificate_expired", _facts(False, NOW - 100 * DAY, NOW + 300 * DAY))
    assert unsent is not None and unsent.causes[0].failure is Failure.NOT_SENT
    assert "clock" not in unsent.explanation + unsent.fix


def test_the_stack_guess_prefers_the_stacks_that_fit_every_answer() -> None:
    java = {
        (Failure.NOT_SENT, "1.2"): "alert bad_certificate",
        (Failure.STACK_PROBE, "1.3"): "alert certificate_unknown",
    }
    assert guess(java) == [Stack.JAVA]
    both = {(Failure.NOT_SENT, "1.2"): "alert handshake_failure"}  # OpenSSL and Go 1.20+ alike
    assert guess(both) == [Stack.OPENSSL, Stack.GO]
    assert guess({(Failure.STACK_PROBE, "1.3"): "HTTP 418"}) == []


def test_the_probe_reads_a_rejection_against_an_accepted_sibling_of_the_same_chain(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    """A Java server says certificate_unknown for an expired certificate; it accepted the current one of the same
    issuer, so trust is ruled out. An impostor (another issuer) gets no such note: trust stays a possibility."""
    from mtls_lab.caller.tls import Chain, ClientIdentity
    from mtls_lab.certs.layout import Identity

    tries = [ClientIdentity.from_lab(pki, i, Chain.FULL) for i in (Identity.ADOBE, Identity.EXPIRED, Identity.IMPOSTOR)]
    server = lab_server(mode=Mode.MTLS, alert_style=AlertStyle.JAVA)
    adobe, expired, impostor = probe(server.url + "/", str(pki.ca(CA.SERVER_ROOT)), pki, tries, timeout=5).identities
    assert adobe.rejected_at == "-" and expired.answer == impostor.answer == "alert certificate_unknown"
    assert expired.cause.startswith("The client certificate expired on") and "accepted adobe" in expired.note
    assert impostor.note == "" and "CA it does not trust" in impostor.cause


def test_alert_style_goes_with_tls_alerts_only(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    from mtls_lab.cli import main
    from mtls_lab.errors import ExitCode

    args = ["serve", "--certs", str(pki.root), "--alert-style", "java", "--reject-style", "nginx", "--port", "0"]
    assert main(args) == ExitCode.USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--alert-style java goes with --reject-style alert" in error


def test_the_record_names_the_alert_the_java_style_really_sent(pki: LabPaths, fresh_server: ServerFactory) -> None:
    """The TLS 1.2 bad_certificate is rewritten after OpenSSL wrote handshake_failure: the record follows the wire;
    a restyled verification keeps OpenSSL's own reason."""
    server = fresh_server(mode=Mode.MTLS, alert_style=AlertStyle.JAVA)
    assert answer_of(present(pki, server.url, Failure.NOT_SENT, "1.2")) == "alert bad_certificate"
    assert answer_of(present(pki, server.url, Failure.EXPIRED, "1.3")) == "alert certificate_unknown"
    expired, missing = (e for e in server.record.newest(10) if e.get("kind") == "connection")
    assert (missing["alert_sent"]["name"], missing["alert_sent"]["observed"]) == ("bad_certificate", True)
    assert missing["error"] == "no client certificate"
    assert expired["alert_sent"]["name"] == "certificate_unknown" and "certificate has expired" in expired["error"]


# --- per-path client authentication, judged by a real JDK 17 client ---------------------------------------------


def test_tomcat_asks_per_url_after_the_handshake_and_a_jdk_answers_on_tls12_only(
    pki: LabPaths, real_stacks: Stacks, jdk_client: JdkClient
) -> None:
    """A CLIENT-CERT constraint on /secure, certificateVerification="none": Tomcat renegotiates on TLS 1.2; on TLS
    1.3 its JSSE cannot ask after the handshake and the constraint answers 401."""
    if not available("tomcat"):
        pytest.skip("tomcat10 is not installed here (CI installs it)")
    running = real_stacks.start(StackServer("tomcat", ClientAuth.NONE, pki.ca(CA.ADOBE_ROOT), variant="url"))
    secure = running.url + "/secure"
    on12, without, on13, elsewhere = jdk_client.fetch_each(
        [
            JdkCall(secure, "1.2"),
            JdkCall(secure, "1.2", None),
            JdkCall(secure, "1.3"),
            JdkCall(running.url + "/", "1.3"),
        ]
    )
    assert on12.status == 200 and "CN=ajo-journeys.aep-mtls.adobe.com" in on12.body, on12
    assert without.status is None and "bad_certificate" in (without.error or ""), without
    assert on13.status == 401, on13
    # not asked elsewhere: the app sees no certificate
    assert elsewhere.status == 403 and "no client certificate" in elsewhere.body, elsewhere


def test_apache_advertises_the_names_of_sslcadnrequestfile_and_a_jdk_follows_them(
    pki: LabPaths, apache: ApacheServers, jdk_client: JdkClient
) -> None:
    """SSLCADNRequestFile replaces the advertised names, not the trust: naming the impostor root makes the JDK
    omit its certificate (rejected); naming Adobe's root again lets it through."""
    named = {
        ca: apache(ApacheSite(ClientAuth.REQUIRED, ca_names=pki.ca(ca))) for ca in (CA.IMPOSTOR_ROOT, CA.ADOBE_ROOT)
    }
    other, adobe = jdk_client.fetch_each([JdkCall(running.url + "/", "1.3") for running in named.values()])
    assert other.status is None and other.error, other  # no certificate sent: the handshake fails
    assert adobe.status == 200, adobe


def test_per_path_settings_exist_for_apache_and_tomcat_only(capsys: pytest.CaptureFixture[str]) -> None:
    from mtls_lab.cli import main
    from mtls_lab.errors import ExitCode

    assert main(["stacks", "--config", "apache", "--mode", "per-path"]) == ExitCode.OK
    assert "<Location /secure>\n    SSLVerifyClient require\n</Location>" in capsys.readouterr().out
    assert main(["stacks", "--config", "nginx", "--mode", "per-path"]) == ExitCode.USAGE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--config apache, tomcat" in error
