"""The probe against the reference server and against `openssl s_server`, and its one-line errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from mtls_lab.caller.probe import ProbeError, probe
from mtls_lab.caller.tls import Chain, ClientIdentity
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import ADVERTISE_NONE, Mode, TLSVersion
from tests.conftest import ServerFactory
from tests.support.ports import free_port
from tests.support.tls_clients import needs_openssl


def _probe(pki: LabPaths, url: str, tries: list[ClientIdentity] | None = None):  # type: ignore[no-untyped-def]
    return probe(url, str(pki.ca(CA.SERVER_ROOT)), pki, tries or [], timeout=3)


@pytest.mark.parametrize(
    ("mode", "configuration", "java_sends"),
    [(Mode.TLS, "tls-only", False), (Mode.MIXED, "mixed", True), (Mode.MTLS, "mtls-only", True)],
)
def test_probe_classifies_each_mode(
    mode: Mode, configuration: str, java_sends: bool, pki: LabPaths, lab_server: ServerFactory
) -> None:
    report = _probe(pki, lab_server(mode=mode).url + "/hook")
    assert report.configuration == configuration
    assert report.requests_client_cert is (mode is not Mode.TLS)
    assert report.java_sends_certificate is java_sends
    assert report.tls12 and report.tls13 and report.ajo_default_version == "TLSv1.3"
    assert report.server_chain_valid and report.server_chain[0]["subject"].startswith("CN=localhost")
    if mode is Mode.MTLS:
        assert report.without_cert == "rejected after the handshake (TLS 1.3) with alert certificate_required"
    if mode is Mode.TLS:
        assert "403" in report.likely_outcome and report.fixes
    if mode is Mode.MIXED:
        assert any("mTLS-only" in fix for fix in report.fixes)


@pytest.mark.parametrize(
    ("advertise", "names", "java_sends"),
    [
        ("trust", ["stand-in for DigiCert Global Root G2"], True),
        ("none", [], True),
        ("other", ["impostor root"], False),
    ],
)
def test_probe_reads_the_advertised_names(
    advertise: str, names: list[str], java_sends: bool, pki: LabPaths, lab_server: ServerFactory
) -> None:
    setting = {"trust": "trust", "none": ADVERTISE_NONE, "other": str(pki.ca(CA.IMPOSTOR_ROOT))}[advertise]
    report = _probe(pki, lab_server(mode=Mode.MTLS, advertise_ca=setting).url)
    assert len(report.advertised_ca_names) == len(names)
    assert all(want in got for want, got in zip(names, report.advertised_ca_names, strict=True))
    assert report.java_sends_certificate is java_sends
    assert report.names_adobe_today is (advertise == "trust")
    if not java_sends:
        assert "handshake fails" in report.likely_outcome


def test_probe_sees_the_tls_range(pki: LabPaths, lab_server: ServerFactory) -> None:
    only12 = _probe(pki, lab_server(mode=Mode.MIXED, tls_max=TLSVersion.V1_2).url)
    assert (only12.tls12, only12.tls13, only12.ajo_default_version) == (True, False, "TLSv1.2")
    only13 = _probe(pki, lab_server(mode=Mode.MIXED, tls_min=TLSVersion.V1_3).url)
    assert (only13.tls12, only13.tls13) == (False, True)


def test_probe_tries_identities_and_names_the_level(pki: LabPaths, lab_server: ServerFactory) -> None:
    tries = [ClientIdentity.from_lab(pki, i, Chain.FULL) for i in (Identity.IMPOSTOR, Identity.ADOBE)]
    report = _probe(pki, lab_server(mode=Mode.MTLS).url, tries)
    impostor, adobe = report.identities
    assert (impostor.answer, impostor.rejected_at) == ("alert unknown_ca", "TLS")
    assert adobe.answer == "accepted (HTTP 200)"
    allow = _probe(pki, lab_server(mode=Mode.MTLS, allow_cn=("x.example",)).url, tries[1:])
    assert (allow.identities[0].answer, allow.identities[0].rejected_at) == ("HTTP 403 subject_not_allowed", "HTTP")


def test_probe_reports_an_untrusted_server_chain_and_carries_on(pki: LabPaths, lab_server: ServerFactory) -> None:
    report = probe(lab_server(mode=Mode.MTLS).url, str(pki.ca(CA.ADOBE_ROOT)), pki, [], timeout=3)
    assert not report.server_chain_valid and "rejected the endpoint's certificate" in report.server_chain_problem
    assert report.requests_client_cert and report.configuration == "mtls-only"


@needs_openssl
@pytest.mark.parametrize(
    ("flags", "configuration", "names", "versions"),
    [
        (("-verify", "1"), "mixed", 1, (True, True)),
        (("-Verify", "1"), "mtls-only", 1, (True, True)),
        (("-Verify", "1", "-no_ca_names"), "mtls-only", 0, (True, True)),
        (("-verify", "1", "-tls1_2"), "mixed", 1, (True, False)),
        (("-Verify", "1", "-tls1_3"), "mtls-only", 1, (False, True)),
        ((), "tls-only", 0, (True, True)),
    ],
    ids=["verify", "Verify", "Verify-no_ca_names", "verify-tls1_2", "Verify-tls1_3", "no-verify"],
)
def test_probe_sees_what_openssl_was_told(
    flags: tuple[str, ...],
    configuration: str,
    names: int,
    versions: tuple[bool, bool],
    pki: LabPaths,
    s_server: Callable[..., int],
) -> None:
    report = _probe(pki, f"https://localhost:{s_server(*flags)}/")
    assert report.configuration == configuration
    assert len(report.advertised_ca_names) == names
    assert (report.tls12, report.tls13) == versions


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes | None], int]]:
    """A TCP server that answers every connection with fixed bytes (None: stays silent)."""
    sockets: list[socket.socket] = []

    def start(answer: bytes | None) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                sockets.append(conn)
                if answer is not None:
                    conn.recv(4096)
                    conn.sendall(answer)
                    conn.close()

        threading.Thread(target=serve, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize(
    ("answer", "code", "says"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", ExitCode.PLAIN_HTTP, "plain HTTP"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", ExitCode.NOT_TLS, "does not speak TLS"),
        (None, ExitCode.TIMEOUT, "never answered"),
    ],
)
def test_probe_errors_are_one_line_with_distinct_codes(
    answer: bytes | None, code: ExitCode, says: str, pki: LabPaths, raw_server: Callable[[bytes | None], int]
) -> None:
    with pytest.raises(ProbeError) as error:
        probe(f"https://localhost:{raw_server(answer)}/", "system", pki, [], timeout=1)
    assert error.value.exit_code == code and says in str(error.value) and "\n" not in str(error.value)


def test_probe_of_nothing_listening(pki: LabPaths) -> None:
    port = free_port()
    with pytest.raises(ProbeError) as error:
        probe(f"https://127.0.0.1:{port}/", "system", pki, [], timeout=1)
    assert error.value.exit_code == ExitCode.CONNECTION and "cannot connect" in str(error.value)
    assert {ExitCode.CONNECTION, ExitCode.PLAIN_HTTP, ExitCode.NOT_TLS, ExitCode.TIMEOUT}.__len__() == 4
