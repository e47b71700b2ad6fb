"""The reference server asks for the client certificate after the handshake, for some paths only
(``serve --client-cert-paths``), and answers as a real Apache does with ``SSLVerifyClient require`` inside
``<Location /secure>`` (server/per_path.py, server/_late_request.py).

The judges are real: Debian's Apache 2.4 with the same configuration, ``openssl s_client`` (with and without
``-enable_pha``), a real JDK 17 HttpClient, and the lab's caller in both client models. Each case's answer is
written by hand, and the lab and Apache must both give it.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from typing import Any

import pytest

from mtls_lab.caller.probe import Enforcement, probe
from mtls_lab.caller.probe import render as render_probe
from mtls_lab.caller.report import render
from mtls_lab.caller.verdict import Outcome
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode
from mtls_lab.report import server_side
from mtls_lab.server import _late_request
from mtls_lab.server.per_path import APACHE_NO_PHA_PAGE, rule_for
from mtls_lab.server.record import CONNECTIONS, Query
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode, TLSVersion
from mtls_lab.server.stack_configs import ClientAuth
from mtls_lab.vocabulary import Reason
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.apache import ApacheServers, ApacheSite
from tests.support.jdk_client import JdkCall, JdkClient
from tests.support.record import wait_for_entry
from tests.support.tls_clients import OPENSSL, needs_openssl

PER_PATH = ApacheSite(ClientAuth.REQUIRED, location="/secure", tls="both")
LATE = {"mode": Mode.MTLS, "client_cert_paths": ("/secure",)}
SUBJECT = "CN=ajo-journeys.aep-mtls.adobe.com"


def _get(path: str, close: bool = True) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{'Connection: close' if close else ''}\r\n\r\n".encode()


def _s_client(pki: LabPaths, port: int, tls: str, who: Identity | None, pha: bool, request: bytes) -> str:
    """``openssl s_client``'s whole output for ``request``: HTTP answers, or the alert it received."""
    assert OPENSSL is not None
    args = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", f"-tls{tls.replace('.', '_')}", "-ign_eof"]
    args += ["-CAfile", str(pki.ca(CA.SERVER_ROOT)), "-servername", "localhost", *(["-enable_pha"] if pha else [])]
    if who is not None:
        args += ["-cert", str(pki.client_leaf(who)), "-key", str(pki.client_key(who))]
        args += ["-cert_chain", str(pki.client_cert(who))]
    done = subprocess.run(args, input=request, capture_output=True, timeout=20)
    return (done.stdout + done.stderr).decode(errors="replace")


def _answer(output: str) -> str:
    """``403``, ``200``, ``alert certificate_required``...: what the client got first."""
    status = re.search(r"HTTP/1\.1 (\d{3}) ", output)
    if status:
        return status.group(1)
    alert = re.search(r"alert (?:certificate )?([a-z ]+?):.*SSL alert number (\d+)", output)
    return f"alert {alert.group(2)}" if alert else f"nothing: {output[-300:]}"


# (TLS version, identity, offers post-handshake auth) -> the answer, written by hand from Apache's measurements
CASES = [
    ("1.3", Identity.ADOBE, False, "403"),  # no post-handshake auth offered: Apache's 403 page
    ("1.3", Identity.ADOBE, True, "200"),
    ("1.3", None, True, "alert 116"),  # certificate_required
    ("1.3", Identity.IMPOSTOR, True, "alert 48"),  # unknown_ca
    ("1.3", Identity.EXPIRED, True, "alert 45"),  # certificate_expired
    ("1.2", Identity.ADOBE, False, "200"),  # renegotiation
    ("1.2", None, False, "alert 40"),  # handshake_failure
    ("1.2", Identity.IMPOSTOR, False, "alert 48"),
]


@needs_openssl
@pytest.mark.parametrize(("tls", "who", "pha", "expected"), CASES, ids=[f"{c[0]}-{c[1]}-pha{c[2]}" for c in CASES])
def test_the_lab_answers_each_client_as_a_real_apache_per_location_does(
    tls: str,
    who: Identity | None,
    pha: bool,
    expected: str,
    pki: LabPaths,
    apache: ApacheServers,
    lab_server: ServerFactory,
) -> None:
    real = apache(PER_PATH)
    lab = lab_server(**LATE)
    apache_said = _s_client(pki, real.port, tls, who, pha, _get("/secure/custom-action"))
    lab_said = _s_client(pki, lab.port, tls, who, pha, _get("/secure/custom-action"))
    assert (_answer(apache_said), _answer(lab_said)) == (expected, expected), (apache_said[-600:], lab_said[-600:])
    if expected == "403":  # Apache's page, byte for byte
        assert APACHE_NO_PHA_PAGE in apache_said and APACHE_NO_PHA_PAGE in lab_said
    # a path outside the rule is never asked: no certificate request at all, on either server
    assert "Cannot perform" not in _s_client(pki, lab.port, tls, who, pha, _get("/open"))


def test_the_record_says_which_path_asked_how_and_what_came_back(pki: LabPaths, lab_server: ServerFactory) -> None:
    lab = lab_server(**LATE)
    refused = ajo_call(pki, lab.url + "/secure", tls="1.3")  # Java model: no post-handshake auth offered
    renegotiated = ajo_call(pki, lab.url + "/secure", tls="1.2")
    for verdict, method, offered, answer, status in (
        (refused, "post_handshake_auth", False, "post_handshake_auth_not_offered", 403),
        (renegotiated, "renegotiation", False, "certificate", 200),
    ):
        client = f"127.0.0.1:{verdict.attempts[-1].local_port}"
        request = _entry(lab, client, Query(kind="request"))
        asked = request["asked_after_handshake"]
        assert (request["status"], request["path"]) == (status, "/secure/custom-action")
        assert asked == {
            "path_rule": "/secure",
            "method": method,
            "required": True,
            "post_handshake_auth_offered": offered,
            "answer": answer,
            "error": asked["error"],
        }
        connection = _entry(lab, client, CONNECTIONS)
        assert [a["answer"] for a in connection["asked_after_handshake"]] == [answer]
        assert connection["certificate_requested"] is False  # nothing was asked in the handshake itself
        if answer == "post_handshake_auth_not_offered":  # OpenSSL's words, as Apache's error log has them
            assert asked["error"] == "error:0A000117:SSL routines::extension not received", asked
    assert renegotiated.outcome is Outcome.ACCEPTED and renegotiated.client_cert_sent


def _entry(lab: RunningServer, client: str, query: Query) -> dict[str, Any]:
    return wait_for_entry(lab.record, lambda e: e["client"] == client, query)


@pytest.mark.parametrize(
    ("tls", "behavior", "accepted"),
    [("1.3", "java", False), ("1.3", "openssl", True), ("1.2", "java", True), ("1.2", "openssl", True)],
)
def test_the_callers_verdict_against_the_lab_is_its_verdict_against_apache(
    tls: str, behavior: str, accepted: bool, pki: LabPaths, apache: ApacheServers, lab_server: ServerFactory
) -> None:
    verdicts = [
        ajo_call(pki, url + "/secure", tls=tls, behavior=behavior)
        for url in (apache(PER_PATH).url, lab_server(**LATE).url)
    ]
    for verdict in verdicts:
        assert (verdict.outcome is Outcome.ACCEPTED) is accepted, verdict.explanation
        assert verdict.requested_after_handshake and "after the handshake" in render(verdict)
    assert verdicts[0].server_reason == verdicts[1].server_reason
    if not accepted:
        assert verdicts[1].server_reason == Reason.APACHE_POST_HANDSHAKE_AUTH and "virtual host" in verdicts[1].fix


def test_a_real_jdk_gets_the_same_answers_from_the_lab_as_from_apache(
    apache: ApacheServers, lab_server: ServerFactory, jdk_client: JdkClient
) -> None:
    calls = []
    for base in (apache(PER_PATH).url, lab_server(**LATE).url):
        calls += [
            JdkCall(base + "/secure/custom-action", tls, who, "POST")
            for tls in ("1.3", "1.2")
            for who in (Identity.ADOBE, None)
        ]
    answers = jdk_client.fetch_each(calls)
    real, lab = answers[:4], answers[4:]
    for apache_answer, lab_answer in zip(real, lab, strict=True):
        assert (apache_answer.status, lab_answer.status) == (apache_answer.status, apache_answer.status), (
            apache_answer,
            lab_answer,
        )
    # by hand: TLS 1.3 -> 403 (with or without a key store: the JDK offers no post-handshake auth); TLS 1.2 -> 200
    # with the certificate, a failed renegotiation without one
    assert [a.status for a in lab] == [403, 403, 200, None], lab
    assert "Cannot perform Post-Handshake Authentication" in lab[0].body and SUBJECT in lab[2].body
    assert lab[3].error is not None


@needs_openssl
def test_the_connection_stays_open_after_apaches_403_and_other_paths_are_never_asked(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    lab = lab_server(**LATE)
    said = _s_client(pki, lab.port, "1.3", Identity.ADOBE, False, _get("/secure/a", close=False) + _get("/open"))
    statuses = re.findall(r"HTTP/1\.1 (\d{3}) ", said)
    assert statuses == ["403", "403"], said[-800:]
    assert "Cannot perform Post-Handshake Authentication" in said and '"reason":"no_client_certificate"' in said
    assert "asks for one only after the handshake, for requests under /secure" in said


@needs_openssl
def test_a_request_that_ends_the_connection_still_reads_the_renegotiation(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    # "Connection: close" makes the HTTP layer stop reading after the request: the late request reads anyway
    lab = lab_server(**LATE)
    for close in (True, False):
        said = _s_client(
            pki,
            lab.port,
            "1.2",
            Identity.ADOBE,
            False,
            _get("/secure/x", close=close) + (b"" if close else _get("/secure/y")),
        )
        assert re.findall(r"HTTP/1\.1 (\d{3}) ", said) == (["200"] if close else ["200", "200"]), said[-600:]


def test_a_client_that_never_answers_is_closed_at_the_handshake_timeout(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    lab = lab_server(handshake_timeout=0.5, **LATE)
    context = ssl.create_default_context(cafile=pki.ca(CA.SERVER_ROOT))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", lab.port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(_get("/secure/slow"))
        port = tls.getsockname()[1]
        time.sleep(1.0)  # the HelloRequest waits unread: no answer
        entry = wait_for_entry(lab.record, lambda e: e["client"] == f"127.0.0.1:{port}", Query(kind="request"))
    assert entry["asked_after_handshake"]["answer"] == "timed_out" and entry["reason"] == Reason.LATE_CERTIFICATE_FAILED
    # the sibling: the same request answered in time is accepted (test_a_request_that_ends_...)


def test_optional_per_path_lets_the_app_answer_a_call_without_a_certificate(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    lab = lab_server(mode=Mode.MIXED, client_cert_paths=("/secure",))
    none = ajo_call(pki, lab.url + "/secure", identity="none", tls="1.3", behavior="openssl")
    adobe = ajo_call(pki, lab.url + "/secure", tls="1.3", behavior="openssl")
    assert none.status == 403 and none.server_reason == Reason.NO_CLIENT_CERTIFICATE, none.explanation
    assert adobe.outcome is Outcome.ACCEPTED


def test_rule_for_matches_the_path_and_what_is_under_it() -> None:
    rules = ("/secure", "/api/hooks/")
    assert [rule_for(p, rules) for p in ("/secure", "/secure/", "/secure/x", "/api/hooks", "/api/hooks/a")] == [
        "/secure",
        "/secure",
        "/secure",
        "/api/hooks/",
        "/api/hooks/",
    ]
    assert [rule_for(p, rules) for p in ("/securex", "/", "/api/hook", "/other/secure")] == [None] * 4


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--mode", "tls", "--client-cert-paths", "/secure"], "give --mode mtls"),
        (["--client-cert-paths", "secure"], "give a URL path that starts with /"),
        (["--client-cert-paths", "/secure", "--reject-style", "nginx"], "drop --reject-style nginx"),
        (["--client-cert-paths", "/secure", "--alert-style", "java"], "drop --alert-style java"),
        (["--client-cert-paths", "/secure", "--client-cert-header", "X-SSL-Client-Cert"], "drop --client-cert-header"),
    ],
)
def test_bad_client_cert_paths_get_one_line(
    args: list[str], says: str, pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--certs", str(pki.root), "--port", "0", *args]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("mtls-lab: error: ") and err.count("\n") == 1 and says in err, err


def test_the_late_request_checks_asyncios_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    _late_request.check_internals()
    monkeypatch.delattr("asyncio.sslproto.SSLProtocol._do_read")
    with pytest.raises(RuntimeError, match=r"update server/_late_request\.py"):
        _late_request.check_internals()


def test_the_report_puts_the_late_request_in_words(pki: LabPaths, lab_server: ServerFactory) -> None:
    lab = lab_server(**LATE)
    said = {}
    for tls in ("1.3", "1.2"):
        verdict = ajo_call(pki, lab.url + "/secure", tls=tls)
        client = f"127.0.0.1:{verdict.attempts[-1].local_port}"
        connection = server_side.connection_facts(_entry(lab, client, CONNECTIONS))
        request = server_side.request_facts(_entry(lab, client, Query(kind="request")))
        said[tls] = [f for f in connection + request if f.label == "asked after the handshake"]
    assert [f.value for f in said["1.3"]] == [
        "TLS 1.3 post-handshake authentication for /secure/custom-action (rule /secure): the client offered no "
        "post-handshake authentication: nothing could be asked, Apache's 403 (OpenSSL: error:0A000117:SSL "
        "routines::extension not received)",
        "TLS 1.3 post-handshake authentication (rule /secure): the client offered no post-handshake "
        "authentication: nothing could be asked, Apache's 403 (OpenSSL: error:0A000117:SSL routines::extension "
        "not received)",
    ]
    assert [(f.value.split(":")[0], f.tone) for f in said["1.2"]] == [
        ("TLS 1.2 renegotiation for /secure/custom-action (rule /secure)", "good")
    ] * 1 + [("TLS 1.2 renegotiation (rule /secure)", "good")]


@pytest.mark.parametrize("tls_max", [TLSVersion.V1_3, TLSVersion.V1_2])
def test_the_probe_names_the_lab_servers_per_path_request_and_guesses_apache(
    tls_max: TLSVersion, pki: LabPaths, lab_server: ServerFactory
) -> None:
    lab = lab_server(tls_max=tls_max, **LATE)
    server_ca = str(pki.ca(CA.SERVER_ROOT))
    asked = probe(lab.url + "/secure/hook", server_ca, pki, [], timeout=5)
    elsewhere = probe(lab.url + "/open", server_ca, pki, [], timeout=5)  # the sibling: never asked there
    assert asked.enforcement == Enforcement.PATH.value and asked.stack_guess == ["openssl"], render_probe(asked)
    assert "Apache httpd (SSLVerifyClient in a <Location>)" in render_probe(asked)
    assert elsewhere.enforcement == Enforcement.NEVER.value, render_probe(elsewhere)


OPTIONAL_PER_PATH = ApacheSite(ClientAuth.OPTIONAL, location="/secure", tls="both")
# Apache's SSLVerifyClient optional inside <Location>, measured: TLS 1.3 without post-handshake auth still gets
# the 403 page (mod_ssl cannot ask at all); a client that offers it and sends none reaches the app without one;
# an untrusted certificate still fails with OpenSSL's alert. The app decides what a call without one gets: the
# test's CGI answers 200, the lab's app its 403 no_client_certificate.
OPTIONAL_CASES = [
    ("1.3", Identity.ADOBE, False, "403", "403"),
    ("1.3", None, True, "200", "403"),
    ("1.3", Identity.IMPOSTOR, True, "alert 48", "alert 48"),
    ("1.2", None, False, "200", "403"),
    ("1.2", Identity.ADOBE, False, "200", "200"),
]


@needs_openssl
@pytest.mark.parametrize(
    ("tls", "who", "pha", "at_apache", "at_lab"),
    OPTIONAL_CASES,
    ids=[f"{c[0]}-{c[1]}-pha{c[2]}" for c in OPTIONAL_CASES],
)
def test_optional_per_path_is_apaches_optional_location(
    tls: str,
    who: Identity | None,
    pha: bool,
    at_apache: str,
    at_lab: str,
    pki: LabPaths,
    apache: ApacheServers,
    lab_server: ServerFactory,
) -> None:
    real = _s_client(pki, apache(OPTIONAL_PER_PATH).port, tls, who, pha, _get("/secure/custom-action"))
    lab_said = _s_client(
        pki,
        lab_server(mode=Mode.MIXED, client_cert_paths=("/secure",)).port,
        tls,
        who,
        pha,
        _get("/secure/custom-action"),
    )
    assert (_answer(real), _answer(lab_said)) == (at_apache, at_lab), (real[-500:], lab_said[-500:])
    if at_lab == "403" and at_apache == "200":  # both let the call without a certificate through to the app
        assert re.search(r"^ok \r?$", real, re.MULTILINE), real[-300:]  # Apache's CGI: no client subject
        assert '"reason":"no_client_certificate"' in lab_said
