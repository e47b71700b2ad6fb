"""The server's account of its alerts is true: the alert a client received, the alert the server's log
line and record entry say it sent, and the alert ``openssl s_server`` sends for the same malformed TLS.

The malformed TLS comes from ``tests/support/tls_tamper.py``: a real OpenSSL client whose handshake
messages are altered on the way, or who sends crafted records once the handshake is done. Each case
runs on TLS 1.2 and 1.3 against the lab and against ``s_server`` configured the same way (mTLS, the
same server certificate, trusting the Adobe-like root).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from mtls_lab.alerts import Alert, sent_alert
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.server.record import CONNECTIONS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.logs import LogCatcher, caught_logs
from tests.support.record import Entry, wait_for_entry
from tests.support.tls_clients import client_context, identity_files, needs_openssl
from tests.support.tls_tamper import (
    ALERT,
    CERTIFICATE,
    CERTIFICATE_VERIFY,
    CHANGE_CIPHER_SPEC,
    FINISHED,
    HANDSHAKE,
    Tamper,
    corrupt,
    flip_last_byte,
    tampered_call,
)

ECDSA_P256_SHA256, RSA_PKCS1_SHA256 = b"\x04\x03", b"\x04\x01"
MTLS = ("-Verify", "1", "-verify_return_error")


def _scheme(scheme: bytes) -> Callable[[bytes], bytes]:
    return lambda body: scheme + body[2:]  # CertificateVerify: signature scheme, then the signature


def _list_length_off_by_one(body: bytes) -> bytes:
    return body[:-1]  # the last certificate's bytes end one short of what the lengths announce


@dataclass(frozen=True)
class Case:
    name: str
    tamper: Tamper
    alerts: dict[str, str | None]  # by TLS version: the alert a client receives; None: no alert at all
    reference: dict[str, str] = field(default_factory=dict)  # s_server's mode if not -www ("-rev": echo)
    after_handshake: bool = False


CASES = [
    Case(
        "certificate-verify-bad-signature",
        Tamper(rewrite=corrupt(CERTIFICATE_VERIFY, flip_last_byte)),
        {"1.2": "decrypt_error", "1.3": "decrypt_error"},
    ),
    Case(
        "certificate-verify-wrong-signature-type",  # an ECDSA scheme for an RSA key
        Tamper(rewrite=corrupt(CERTIFICATE_VERIFY, _scheme(ECDSA_P256_SHA256))),
        {"1.2": "illegal_parameter", "1.3": "illegal_parameter"},
    ),
    Case(
        "certificate-verify-rsa-pkcs1",  # allowed in TLS 1.2 (the signature then fails), never in TLS 1.3
        Tamper(rewrite=corrupt(CERTIFICATE_VERIFY, _scheme(RSA_PKCS1_SHA256))),
        {"1.2": "decrypt_error", "1.3": "illegal_parameter"},
    ),
    Case(
        "certificate-inconsistent-lengths",
        Tamper(rewrite=corrupt(CERTIFICATE, _list_length_off_by_one)),
        {"1.2": "decode_error", "1.3": "decode_error"},
    ),
    Case(
        "finished-corrupted",  # TLS 1.2's Finished is encrypted as it is: the record no longer decrypts
        Tamper(rewrite=corrupt(FINISHED, flip_last_byte)),
        {"1.2": "bad_record_mac", "1.3": "decrypt_error"},
    ),
    # after the handshake
    Case(
        "alert-level-0",  # RFC 8446 6: TLS 1.3 ignores the level, so it is the client's own fatal alert
        Tamper(after=((ALERT, b"\x00\x28"),)),
        {"1.2": "illegal_parameter", "1.3": None},
        reference={"1.3": "-rev"},  # s_server -www answers illegal_parameter even on TLS 1.3 (see the docs)
        after_handshake=True,
    ),
    Case(
        "alert-too-long",
        Tamper(after=((ALERT, b"\x02\x28\x00"),)),
        {"1.2": "unexpected_message", "1.3": "unexpected_message"},
        after_handshake=True,
    ),
    Case(
        "handshake-message-after-handshake",  # a ServerHello from the client
        Tamper(after=((HANDSHAKE, b"\x02\x00\x00\x00"),)),
        {"1.2": "unexpected_message", "1.3": "unexpected_message"},
        after_handshake=True,
    ),
    Case(
        "change-cipher-spec-after-handshake",
        Tamper(after=((CHANGE_CIPHER_SPEC, b"\x01"),)),
        {"1.2": "unexpected_message", "1.3": "unexpected_message"},
        after_handshake=True,
    ),
    Case(
        "unknown-record-type",
        Tamper(after=((99, b"lab"),)),
        {"1.2": "unexpected_message", "1.3": "unexpected_message"},
        after_handshake=True,
    ),
    Case(
        "record-nobody-encrypted",
        Tamper(after_raw=b"\x17\x03\x03\x00\x20" + b"\x01" * 32),
        {"1.2": "bad_record_mac", "1.3": "bad_record_mac"},
        after_handshake=True,
    ),
]
RUNS = [(case, tls) for case in CASES for tls in ("1.2", "1.3")]


@pytest.fixture(scope="module")
def lab(lab_server: ServerFactory) -> RunningServer:
    return lab_server(mode=Mode.MTLS)


@pytest.fixture
def logs() -> Iterator[LogCatcher]:
    with caught_logs() as catcher:
        yield catcher


def _line_of(logs: LogCatcher, entry: Entry) -> str:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [line for line in logs.lines() if f"[{entry['connection_id']}]" in line]
        if lines:
            assert len(lines) == 1, lines
            return lines[0]
        time.sleep(0.01)
    raise AssertionError(f"no log line names {entry['connection_id']}")


def _entry(lab: RunningServer, port: int) -> Entry:
    return wait_for_entry(lab.record, lambda e: e["client"] == f"127.0.0.1:{port}", CONNECTIONS)


@needs_openssl
@pytest.mark.parametrize(("case", "tls"), RUNS, ids=[f"{c.name}/tls{t}" for c, t in RUNS])
def test_the_alert_received_is_the_alert_the_server_says_it_sent(
    case: Case, tls: str, pki: LabPaths, lab: RunningServer, s_server: Callable[..., int], logs: LogCatcher
) -> None:
    identity = identity_files(pki, Identity.ADOBE)
    received = tampered_call(lab.port, client_context(pki, tls, identity), case.tamper)
    reference = s_server(*MTLS, serve=case.reference.get(tls, "-www"))
    expected = case.alerts[tls]
    want = f"alert:{expected}" if expected else "eof"
    assert received.outcome == want
    assert tampered_call(reference, client_context(pki, tls, identity), case.tamper).outcome == want  # as OpenSSL
    entry = _entry(lab, received.port)
    line = _line_of(logs, entry)
    if expected is None:  # nothing sent: the client's own alert ended it, and only then "the client"
        assert entry["outcome"] == "client_aborted" and entry["alert_sent"] is None
        assert entry["alert_received"]["name"] == "handshake_failure"
        assert "ended by the client" in line and "sent no alert" in line
        return
    sent = entry["alert_sent"]
    assert (sent["name"], sent["level"], sent["observed"]) == (expected, "fatal", True)
    assert entry["outcome"] == ("protocol_error" if case.after_handshake else "rejected")
    assert sent["after_client_finished"] is (case.after_handshake or tls == "1.3")
    assert line.endswith(f"sent alert {expected}") and "client" not in line.split(":", 1)[1]
    assert entry["client_certificate"] == "presented" and entry["tls_version"] == f"TLSv{tls}"
    error = ssl.SSLError(1, entry["error"])
    error.reason = entry["reason"]
    assert sent_alert(error) == Alert.from_label(expected)  # the fallback table agrees where it is used


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_the_client_aborted_only_when_it_did(tls: str, pki: LabPaths, lab: RunningServer, logs: LogCatcher) -> None:
    """A client that does not trust the server's certificate ends the handshake with its own alert."""
    distrusting = ssl.create_default_context(cafile=pki.ca(CA.ADOBE_ROOT))  # not the server's root
    distrusting.minimum_version = distrusting.maximum_version = ssl.TLSVersion[f"TLSv{tls.replace('.', '_')}"]
    received = tampered_call(lab.port, distrusting, Tamper())
    assert received.outcome == "ssl:CERTIFICATE_VERIFY_FAILED"  # the client's own verdict
    entry = _entry(lab, received.port)
    assert (entry["outcome"], entry["alert_sent"]) == ("client_aborted", None)
    assert (entry["alert_received"]["name"], entry["alert_received"]["level"]) == ("unknown_ca", "fatal")
    line = _line_of(logs, entry)
    assert "handshake ended by the client" in line and line.endswith("the client sent alert unknown_ca; sent no alert")
