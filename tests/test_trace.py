"""The handshake trace and its ladder: what each side really sent, observed on the caller's connection."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable

import pytest

from mtls_lab.caller._handshake_trace import MessageLog
from mtls_lab.caller.ladder import render_ladder
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.openssl_servers import s_server_command
from tests.support.ports import free_port, wait_for_port
from tests.support.tls_clients import client_context, identity_files, needs_openssl

ROOT_NAME = "CN=MTLS LAB stand-in for DigiCert Global Root G2,O=MTLS LAB (not a real CA),C=US"


def _kinds(verdict, sent: bool | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["type"] for m in verdict.handshake if sent is None or (m["direction"] == "caller->server") == sent]


def _ours(verdict, kind: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return next(m for m in verdict.handshake if m["direction"] == "caller->server" and m["type"] == kind)


def _theirs(verdict, kind: str) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    return next((m for m in verdict.handshake if m["direction"] == "server->caller" and m["type"] == kind), None)


CASES = [(m, t, w) for m in Mode for t in ("1.2", "1.3") for w in ("adobe", "none", "impostor")]


@pytest.mark.parametrize(("mode", "tls", "who"), CASES, ids=[f"{m.value}/tls{t}/{w}" for m, t, w in CASES])
def test_trace_shows_what_each_side_sent(
    mode: Mode, tls: str, who: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    verdict = ajo_call(pki, lab_server(mode=mode).url, who, tls=tls)
    received = _kinds(verdict, sent=False)
    assert _kinds(verdict)[0] == "ClientHello" and received[0] == "ServerHello"
    assert _theirs(verdict, "ServerHello")["details"]["version"] == f"TLS {tls}"  # type: ignore[index]
    request = _theirs(verdict, "CertificateRequest")
    if mode is Mode.TLS:
        assert request is None and "Certificate" not in _kinds(verdict, sent=True)
        assert verdict.client_cert_sent is False
        return
    assert request is not None and request["details"]["ca_names"] == [ROOT_NAME]
    chain = _ours(verdict, "Certificate")["details"]["chain"]
    expect_sent = who == "adobe"  # impostor: its issuers are not named, so the Java model sends nothing
    assert bool(chain) is expect_sent and verdict.client_cert_sent is expect_sent
    if expect_sent:
        assert [c["subject"].split(",")[0] for c in chain] == [
            "CN=ajo-journeys.aep-mtls.adobe.com",
            "CN=MTLS LAB stand-in for DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        ]
    alert = _theirs(verdict, "Alert")
    if mode is Mode.MTLS and not expect_sent:
        assert alert is not None
        assert alert["details"]["alert"] == ("handshake_failure" if tls == "1.2" else "certificate_required")
        assert alert["after_client_finished"] is (tls == "1.3")
    else:
        assert alert is None


def test_an_openssl_client_sends_the_impostor_chain_and_sees_the_late_alert(
    pki: LabPaths, lab_server: ServerFactory
) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.MTLS).url, "impostor", tls="1.3", behavior="openssl")
    assert "impostor" in _ours(verdict, "Certificate")["details"]["chain"][1]["subject"]
    assert _kinds(verdict, sent=True)[-2:] == ["Finished", "ApplicationData"]
    alert = _theirs(verdict, "Alert")
    assert alert is not None and alert["after_client_finished"] and alert["details"]["alert"] == "unknown_ca"
    ladder = render_ladder(verdict, width=100)
    assert ladder.index("the caller has finished its handshake") < ladder.index("unknown_ca (fatal)")


@pytest.fixture(scope="module")
def s_servers(s_server: Callable[..., int]) -> dict[str, int]:
    base = ("-verify", "1", "-verify_return_error")
    return {"names": s_server(*base), "no_names": s_server(*base, "-no_ca_names")}


@needs_openssl
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_trace_against_openssl_with_and_without_ca_names(tls: str, pki: LabPaths, s_servers: dict[str, int]) -> None:
    named = ajo_call(pki, f"https://localhost:{s_servers['names']}", "impostor", tls=tls, method="GET")
    assert _theirs(named, "CertificateRequest")["details"]["ca_names"] == [ROOT_NAME]  # type: ignore[index]
    assert _ours(named, "Certificate")["details"]["chain"] == []  # Java: the names exclude its issuers
    unnamed = ajo_call(pki, f"https://localhost:{s_servers['no_names']}", "impostor", tls=tls, method="GET")
    assert _theirs(unnamed, "CertificateRequest")["details"]["ca_names"] == []  # type: ignore[index]
    assert len(_ours(unnamed, "Certificate")["details"]["chain"]) == 2  # no names: Java sends it
    assert unnamed.alert == "unknown_ca"
    assert next(m["details"]["alert"] for m in unnamed.handshake if m["type"] == "Alert") == "unknown_ca"
    assert _theirs(named, "ClientHello") is None and named.status == 200
    assert _ours(named, "ClientHello")["details"]["sni"] == "localhost"


def test_narrow_terminal_wraps_and_keeps_every_fact(pki: LabPaths, lab_server: ServerFactory) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.MIXED, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT))).url, tls="1.3")
    wide = render_ladder(verdict, width=200)
    narrow = render_ladder(verdict, width=50)
    assert len(narrow.splitlines()) > len(wide.splitlines())
    assert all(len(line) <= 52 or " " not in line.strip() for line in narrow.splitlines() if "◀─" not in line)
    assert re.findall(r"[\w.:-]+", wide) == re.findall(r"[\w.:-]+", narrow)  # same facts, only wrapped differently
    assert "CN=MTLS LAB impostor root" in " ".join(narrow.split())
    assert "HTTP 403" in narrow and "(empty:" in narrow


def test_json_carries_the_handshake(pki: LabPaths, lab_server: ServerFactory) -> None:
    data = ajo_call(pki, lab_server(mode=Mode.MTLS).url, tls="1.2").to_json()
    first = data["handshake"][0]
    assert (first["direction"], first["type"], first["details"]["versions_offered"]) == (
        "caller->server",
        "ClientHello",
        ["TLS 1.2"],
    )
    assert {m["type"] for m in data["handshake"]} >= {"ServerHello", "CertificateRequest", "Certificate", "Finished"}


def test_no_connection_no_messages(pki: LabPaths) -> None:
    verdict = ajo_call(pki, f"https://127.0.0.1:{free_port()}")
    assert verdict.handshake == [] and "no TLS message" in render_ladder(verdict)


def test_check_internals_notices_a_missing_message_hook() -> None:
    from mtls_lab.caller import _handshake_trace

    _handshake_trace.check_internals()  # this Python has the hook

    class WithoutHook:  # a future Python whose SSLContext lost it
        pass

    with pytest.raises(RuntimeError, match="_msg_callback"):
        _handshake_trace.check_internals(WithoutHook)


@needs_openssl
def test_a_renegotiation_the_server_asks_for_stays_on_the_connections_log(pki: LabPaths) -> None:
    """TLS 1.2, as Apache asks for a certificate for one path: a HelloRequest, then a second handshake on the
    same connection. The log keeps the first handshake, names the HelloRequest, marks the renegotiating
    ClientHello and shows the certificate sent in answer; a new connection still starts a new log."""
    port = free_port()
    trust = pki.ca(CA.ADOBE_ROOT)
    server = subprocess.Popen(
        s_server_command(port, pki, trust, "-tls1_2", "-verify", "2"),  # interactive: "R" renegotiates
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        context = client_context(pki, "1.2", identity_files(pki, Identity.ADOBE))
        log = MessageLog()
        log.install(context)
        assert server.stdin is not None
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as tls:
            tls.settimeout(10)
            time.sleep(0.2)  # s_server reads its commands only once the handshake is done
            server.stdin.write(b"R\n")
            server.stdin.flush()
            time.sleep(0.3)
            server.stdin.write(b"after\n")
            server.stdin.flush()
            assert tls.recv(100) == b"after\n"
        kinds = [(m.sent, m.kind) for m in log.messages]
        assert kinds.count((True, "ClientHello")) == 2, kinds
        hello_request = kinds.index((False, "HelloRequest"))
        second_hello = log.messages[hello_request + 1]
        assert (second_hello.sent, second_hello.kind) == (True, "ClientHello")
        assert second_hello.details.get("renegotiation") is True
        assert "renegotiation" not in log.messages[0].details
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"):
            pass  # a new connection: its ClientHello starts a new log
        assert [(m.sent, m.kind) for m in log.messages].count((True, "ClientHello")) == 1
        assert log.messages[0].kind == "ClientHello" and "renegotiation" not in log.messages[0].details
    finally:
        server.kill()
        server.wait()
        if server.stdin is not None:
            server.stdin.close()
