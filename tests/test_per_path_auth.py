"""Per-path client authentication, judged by a real Apache (``SSLVerifyClient require`` inside
``<Location /secure>``) and a real JDK 17 HttpClient (tests/support/apache.py, tests/support/jdk_client.py).

Apache asks for the certificate after the handshake, for that path only: on TLS 1.3 by post-handshake
authentication, which JDK 17 does not offer (Apache answers 403 "Cannot perform Post-Handshake
Authentication"); on TLS 1.2 by renegotiating, which a JDK answers. The caller's Java model must land where
the JDK lands, name the late request and the fix; the OpenSSL model offers post-handshake auth, as curl does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
import pytest

from mtls_lab.caller.causes import CallFacts
from mtls_lab.caller.report import render
from mtls_lab.caller.verdict import (
    POST_HANDSHAKE_REFUSED,
    TOMCAT_PER_URL,
    Outcome,
    classify_response,
    classify_transport,
)
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.record import CONNECTIONS
from mtls_lab.server.settings import Mode
from mtls_lab.server.stack_configs import ClientAuth
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.apache import ApacheServers, ApacheSite
from tests.support.jdk_client import JdkClient
from tests.support.record import wait_for_entry
from tests.support.stacks import Stacks, StackServer
from tests.support.stacks import available as stacks_available

PER_PATH = ApacheSite(ClientAuth.REQUIRED, location="/secure", tls="both")
VHOST = ApacheSite(ClientAuth.REQUIRED, tls="both")
SUBJECT = "CN=ajo-journeys.aep-mtls.adobe.com"
NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


def test_tls13_java_model_and_jdk_get_apaches_403_and_the_verdict_names_the_late_request(
    apache: ApacheServers, jdk_client: JdkClient, pki: LabPaths
) -> None:
    running = apache(PER_PATH)
    [jdk] = jdk_client.fetch([running.url + "/secure/custom-action"], tls="1.3", method="POST")
    verdict = ajo_call(pki, running.url + "/secure", tls="1.3")
    assert (jdk.status, verdict.status, verdict.outcome) == (403, 403, Outcome.HTTP_ERROR), jdk
    assert verdict.server_reason == POST_HANDSHAKE_REFUSED and verdict.rejection_style == "http_403"
    assert verdict.requested_after_handshake and verdict.offered_post_handshake_auth is False
    assert "post-handshake authentication" in verdict.explanation and "Java" in verdict.explanation
    assert "virtual host" in verdict.fix and "TLS 1.2" in verdict.fix and "weaker" in verdict.fix
    text = render(verdict)
    assert "server requested one: no" not in text and "after the handshake" in text


def test_tls13_openssl_model_offers_post_handshake_auth_as_curl_does(apache: ApacheServers, pki: LabPaths) -> None:
    running = apache(PER_PATH)
    verdict = ajo_call(pki, running.url + "/secure", tls="1.3", behavior="openssl")
    assert verdict.outcome is Outcome.ACCEPTED and verdict.client_cert_sent, verdict.explanation
    assert verdict.offered_post_handshake_auth is True and verdict.requested_after_handshake
    assert any(m["type"] == "CertificateRequest" and m["after_client_finished"] for m in verdict.handshake)


@pytest.mark.parametrize("behavior", ["java", "openssl"])
def test_tls12_both_models_and_the_jdk_answer_apaches_renegotiation(
    behavior: str, apache: ApacheServers, jdk_client: JdkClient, pki: LabPaths
) -> None:
    running = apache(PER_PATH)
    [jdk] = jdk_client.fetch([running.url + "/secure/custom-action"], tls="1.2", method="POST")
    verdict = ajo_call(pki, running.url + "/secure", tls="1.2", behavior=behavior)
    assert jdk.status == 200 and SUBJECT in jdk.body, jdk
    assert verdict.outcome is Outcome.ACCEPTED and verdict.client_cert_sent, verdict.explanation
    assert verdict.requested_after_handshake and any(m["type"] == "HelloRequest" for m in verdict.handshake)
    assert "after the handshake" in render(verdict)


def test_at_the_virtual_host_the_request_is_in_the_handshake_on_both_versions(
    apache: ApacheServers, pki: LabPaths
) -> None:
    running = apache(VHOST)
    for tls in ("1.2", "1.3"):
        verdict = ajo_call(pki, running.url, tls=tls)
        assert verdict.outcome is Outcome.ACCEPTED and verdict.client_cert_sent, (tls, verdict.explanation)
        assert verdict.server_requested_cert and not verdict.requested_after_handshake, tls


# --- whatever the answer looks like, the caller's own facts name a certificate it knows to be unfit ---------


def _facts(**known: object) -> CallFacts:
    base = CallFacts(
        tls="1.3",
        handshake_done=True,
        tls_version="TLSv1.3",
        identity="adobe",
        chain_leaf_only=False,
        behavior="java",
        cert_requested=True,
        cert_sent=True,
        advertised=[],
        leaf_issuer="CN=MTLS LAB stand-in for DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        leaf_not_before=NOW - 400 * DAY,
        leaf_not_after=NOW + 400 * DAY,
        leaf_usages=("clientAuth",),
    )
    return dataclasses.replace(base, **known)  # type: ignore[arg-type]


EXPIRED = {"leaf_expired": True, "leaf_not_after": NOW - 30 * DAY}
NO_CLIENT_AUTH = {"leaf_lacks_client_auth": True, "leaf_usages": ("serverAuth",)}


@pytest.mark.parametrize(
    ("known", "cause"), [(EXPIRED, "expired"), (NO_CLIENT_AUTH, "no_client_auth")], ids=["expired", "eku"]
)
@pytest.mark.parametrize("status", [401, 403])
def test_a_bare_401_or_403_from_the_app_names_the_unfit_certificate(
    known: dict[str, object], cause: str, status: int
) -> None:
    response = httpx.Response(status, text="<h1>Access denied</h1>")
    result = classify_response(response, _facts(**known))
    assert result.likely_cause == cause and "known to be unfit" in result.explanation, result.explanation
    assert "gateway" not in result.explanation.lower()
    sound = classify_response(response, _facts())  # the facts explain nothing: the generic answer stays
    assert sound.likely_cause is None and "known to be unfit" not in sound.explanation


def test_a_close_without_alert_names_the_expired_certificate() -> None:
    exc = httpx.ReadError("EOF occurred in violation of protocol")
    result = classify_transport(exc, _facts(**EXPIRED))
    assert result.likely_cause == "expired" and "without a TLS alert" in result.explanation
    assert classify_transport(exc, _facts()).likely_cause != "expired"


# --- untrusted by the names advertised: the endpoint's own CA names name none of the chain's issuers ------------

ADOBE_CHAIN = (
    "CN=MTLS LAB stand-in for DigiCert Global G2 TLS RSA SHA256 2020 CA1",
    "CN=MTLS LAB stand-in for DigiCert Global Root G2",
)
OTHER_CA = "CN=Example Corp Client CA,O=Example Corp"


@pytest.mark.parametrize("status", [401, 403])
def test_a_bare_401_or_403_names_a_chain_the_advertised_names_do_not_name(status: int) -> None:
    response = httpx.Response(status, text="<h1>Access denied</h1>")
    result = classify_response(response, _facts(advertised=[OTHER_CA], chain_issuers=ADOBE_CHAIN))
    assert result.likely_cause == "untrusted" and "gateway" not in result.explanation.lower(), result.explanation
    # the evidence: the names advertised and the issuers held
    assert OTHER_CA in result.explanation and all(issuer in result.explanation for issuer in ADOBE_CHAIN)
    assert "Adobe's CA chain" in result.fix


@pytest.mark.parametrize(
    "advertised",
    [[OTHER_CA, ADOBE_CHAIN[1]], [ADOBE_CHAIN[0]], []],
    ids=["one-names-the-root", "names-the-intermediate", "no-names"],
)
def test_names_that_fit_the_chain_or_no_names_say_nothing_about_trust(advertised: list[str]) -> None:
    response = httpx.Response(403, text="<h1>Access denied</h1>")
    result = classify_response(response, _facts(advertised=advertised, chain_issuers=ADOBE_CHAIN))
    assert result.likely_cause is None and "advertised" not in result.explanation, result.explanation


def test_the_leaf_issuer_alone_counts_when_the_chain_is_not_known() -> None:
    response = httpx.Response(403, text="<h1>Access denied</h1>")
    assert classify_response(response, _facts(advertised=[OTHER_CA])).likely_cause == "untrusted"
    assert classify_response(response, _facts(advertised=[_facts().leaf_issuer])).likely_cause is None


def test_a_close_without_alert_names_the_chain_the_advertised_names_do_not_name() -> None:
    exc = httpx.ReadError("EOF occurred in violation of protocol")
    result = classify_transport(exc, _facts(advertised=[OTHER_CA], chain_issuers=ADOBE_CHAIN))
    assert result.likely_cause == "untrusted" and "without a TLS alert" in result.explanation
    assert OTHER_CA in result.explanation and ADOBE_CHAIN[0] in result.explanation
    assert classify_transport(exc, _facts(chain_issuers=ADOBE_CHAIN)).likely_cause is None  # no names


def test_an_unfit_certificate_comes_before_the_names() -> None:
    response = httpx.Response(403, text="<h1>Access denied</h1>")
    result = classify_response(response, _facts(advertised=[OTHER_CA], chain_issuers=ADOBE_CHAIN, **EXPIRED))
    assert result.likely_cause == "expired"


@pytest.mark.parametrize(("variant", "cause"), [("optional_no_ca", "untrusted"), ("unadvertised", None)])
def test_nginx_whose_app_answers_403_to_a_chain_of_another_ca(
    variant: str, cause: str | None, pki: LabPaths, real_stacks: Stacks
) -> None:
    """nginx trusts another CA (ssl_client_certificate, or ssl_trusted_certificate, which names none), hands the
    certificate to the app unverified (optional_no_ca), and the app answers 403 (if $ssl_client_verify)."""
    if not stacks_available("nginx"):
        pytest.skip("nginx is not installed here (CI installs it)")
    other = pki.ca(CA.IMPOSTOR_ROOT)
    running = real_stacks.start(StackServer("nginx", ClientAuth.OPTIONAL, other, variant=variant))
    verdict = ajo_call(pki, running.url, behavior="openssl", method="GET")  # curl sends it whatever the names
    assert (verdict.status, verdict.client_cert_sent, verdict.likely_cause) == (403, True, cause), verdict.explanation
    advertised = verdict.advertised_ca_names
    if cause:
        assert advertised == [pki_subject(pki, CA.IMPOSTOR_ROOT)] and advertised[0] in verdict.explanation
        assert "stand-in for DigiCert Global G2" in verdict.explanation  # the issuer held
    else:
        assert advertised == [] and "advertised" not in verdict.explanation


def pki_subject(pki: LabPaths, ca: CA) -> str:
    from mtls_lab.certs.inspect import load_pem_chain

    return load_pem_chain(pki.ca(ca))[0].subject.rfc4514_string()


@pytest.mark.parametrize(("behavior", "offered"), [("openssl", True), ("java", False)])
def test_the_lab_servers_record_says_whether_the_client_offered_post_handshake_auth(
    behavior: str, offered: bool, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS)
    verdict = ajo_call(pki, server.url, tls="1.3", behavior=behavior)
    assert verdict.outcome is Outcome.ACCEPTED and verdict.offered_post_handshake_auth is offered
    port = verdict.attempts[-1].local_port
    entry = wait_for_entry(server.record, lambda e: e["client"] == f"127.0.0.1:{port}", CONNECTIONS)
    assert entry["post_handshake_auth_offered"] is offered


# --- Tomcat: a CLIENT-CERT constraint on some URLs (measured: its JSSE cannot ask after a TLS 1.3 handshake) -------


@pytest.mark.parametrize("behavior", ["java", "openssl"])
def test_tomcats_per_url_401_on_tls13_is_named_whatever_the_client_offers(
    behavior: str, pki: LabPaths, real_stacks: Stacks
) -> None:
    if not stacks_available("tomcat"):
        pytest.skip("tomcat10 is not installed here (CI installs it)")
    running = real_stacks.start(StackServer("tomcat", ClientAuth.NONE, pki.ca(CA.ADOBE_ROOT), variant="url"))
    on13 = ajo_call(pki, running.url + "/secure", tls="1.3", behavior=behavior)
    assert (on13.status, on13.server_reason, on13.rejection_style) == (401, TOMCAT_PER_URL, "http_401"), (
        on13.explanation
    )
    assert on13.requested_after_handshake and "cannot ask after the handshake at all" in on13.explanation
    assert 'certificateVerification="required"' in on13.fix and "weaker" in on13.fix
    assert "which Tomcat cannot do on TLS 1.3" in render(on13) and "gateway" not in on13.explanation
    on12 = ajo_call(pki, running.url + "/secure", tls="1.2", behavior=behavior)  # the sibling: renegotiation
    assert on12.outcome is Outcome.ACCEPTED and on12.client_cert_sent and on12.requested_after_handshake


def test_a_401_without_tomcats_words_is_not_read_as_tomcat() -> None:
    facts = dataclasses.replace(_facts(), cert_requested=False, cert_sent=False)
    other = classify_response(httpx.Response(401, text="<h1>HTTP Status 401 \u2013 Unauthorized</h1>"), facts)
    assert other.server_reason != TOMCAT_PER_URL and "gateway" in other.explanation.lower()
    tomcat = classify_response(
        httpx.Response(401, text="<p><b>Message</b> No client certificate chain in this request"), facts
    )
    assert tomcat.server_reason == TOMCAT_PER_URL
