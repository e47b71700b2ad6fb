"""The classifier: complete tables, and recognition of servers that are not ours."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest

from mtls_lab.alerts import Alert, received_alert
from mtls_lab.caller.verdict import ALERT_CAUSES, TRANSPORT_TABLE, Outcome
from mtls_lab.certs.layout import CA, LabPaths
from tests.support.ajo_call import ajo_call
from tests.support.ports import free_port
from tests.support.scripted_endpoint import NGINX_BAD_CERT_PAGE, NGINX_NO_CERT_PAGE, Script, scripted_endpoint


def _transport_errors(cls: type[Exception] = httpx.TransportError) -> set[type[Exception]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _transport_errors(sub)
    return found


def test_transport_table_covers_every_httpx_transport_error() -> None:
    concrete = {c for c in _transport_errors() if not c.__subclasses__()}
    for cls in concrete:
        for done in (False, True):
            assert any((base, done) in TRANSPORT_TABLE for base in cls.__mro__), (cls, done)


def test_every_ground_truth_alert_has_a_cause_and_fix() -> None:
    ground_truth = {
        "handshake_failure",
        "certificate_required",
        "unknown_ca",
        "certificate_expired",
        "bad_certificate",
        "unsupported_certificate",
        "protocol_version",
    }
    assert ground_truth <= {alert.label for alert in ALERT_CAUSES}


def test_alert_is_found_in_the_reason_or_message_of_a_chained_error() -> None:
    inner = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)")
    outer = httpx.ReadError("read failed")
    outer.__cause__ = inner
    assert received_alert(outer) is Alert.UNKNOWN_CA
    assert received_alert(httpx.ReadError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] x")) is Alert.CERTIFICATE_REQUIRED
    assert received_alert(httpx.ReadError("Server disconnected")) is None


@pytest.mark.parametrize(
    ("page", "reason", "fix_word"),
    [
        (NGINX_NO_CERT_PAGE, "nginx_no_certificate", "ssl_client_certificate"),
        (NGINX_BAD_CERT_PAGE, "nginx_certificate_error", "ssl_client_certificate"),
    ],
)
def test_nginx_400_pages_are_recognised(page: str, reason: str, fix_word: str, pki: LabPaths) -> None:
    with scripted_endpoint(pki, Script({"/custom-action": [(400, page, {})]})) as url:
        verdict = ajo_call(pki, url)
    assert verdict.status == 400 and verdict.server_reason == reason
    assert "nginx" in verdict.explanation and fix_word in verdict.fix


def test_a_plain_400_is_not_mistaken_for_nginx(pki: LabPaths) -> None:
    with scripted_endpoint(pki, Script({"/custom-action": [(400, "bad request", {})]})) as url:
        verdict = ajo_call(pki, url)
    assert verdict.server_reason is None and "nginx" not in verdict.explanation


def test_a_plain_403_without_a_requested_certificate_names_the_cause(pki: LabPaths) -> None:
    with scripted_endpoint(pki, Script({"/custom-action": [(403, "Forbidden", {})]})) as url:
        verdict = ajo_call(pki, url)
    assert verdict.status == 403 and verdict.client_cert_sent is False
    assert "never requested" in verdict.explanation


def test_a_gateway_json_403_after_sending_the_certificate(pki: LabPaths) -> None:
    with scripted_endpoint(
        pki, Script({"/custom-action": [(403, '{"message":"Forbidden"}', {})]}), client_ca=CA.ADOBE_ROOT
    ) as url:
        verdict = ajo_call(pki, url)
    assert verdict.client_cert_sent is True
    assert verdict.server_reason == "gateway_forbidden" and verdict.rejection_style == "gateway_403"
    assert "failed the gateway's truststore check" in verdict.explanation


@pytest.fixture
def silent_mtls_server(pki: LabPaths) -> Iterator[int]:
    """Stock asyncio with CERT_REQUIRED: it rejects without sending the alert (CPython gh-98078)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca(CA.IMPOSTOR_ROOT))
    context.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        loop.create_server(asyncio.Protocol, "127.0.0.1", 0, ssl=context), loop
    ).result(5)
    yield int(server.sockets[0].getsockname()[1])
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.parametrize(("identity", "says"), [("none", "none was sent"), ("adobe", "received the client")])
def test_a_server_that_closes_without_an_alert(
    identity: str, says: str, pki: LabPaths, silent_mtls_server: int
) -> None:
    verdict = ajo_call(pki, f"https://127.0.0.1:{silent_mtls_server}", identity, tls="1.3")
    if verdict.outcome is Outcome.TLS_ALERT:
        pytest.skip("this Python's asyncio delivers handshake alerts (gh-98078 fixed)")
    assert verdict.outcome is Outcome.CONNECTION_ERROR and verdict.alert is None
    assert "without a TLS alert" in verdict.explanation and says in verdict.explanation
    assert verdict.jo_status_code == "internalError"


def test_an_untrusted_server_certificate(pki: LabPaths) -> None:
    from mtls_lab.caller.action import parse
    from mtls_lab.caller.call import CallOptions, call

    with scripted_endpoint(pki, Script()) as url:
        verdict = call(
            parse({"name": "x", "url": url}), {}, CallOptions(pki=pki, server_ca=pki.ca(CA.ADOBE_ROOT), retries=0)
        )
    assert verdict.outcome is Outcome.SERVER_UNTRUSTED and verdict.outcome.exit_code == 4
    assert "rejected the endpoint's certificate" in verdict.explanation


def test_nothing_listening_is_a_connection_error(pki: LabPaths) -> None:
    verdict = ajo_call(pki, f"https://127.0.0.1:{free_port()}")
    assert verdict.outcome is Outcome.CONNECTION_ERROR and verdict.phase.value == "connect"
    assert verdict.client_cert_sent is None and verdict.outcome.exit_code == 5


def test_cause_chain_helpers_walk_wrapped_errors_once() -> None:
    from mtls_lab.errors import cause_of, causes

    inner = ssl.SSLCertVerificationError("verify failed")
    middle = httpx.ConnectError("connect failed")
    middle.__cause__ = inner
    outer = httpx.ConnectError("again")
    outer.__context__ = middle
    inner.__context__ = outer  # a cycle must not loop
    assert list(causes(outer)) == [outer, middle, inner]
    assert cause_of(outer, ssl.SSLCertVerificationError) is inner
    assert cause_of(outer, KeyError) is None
