"""How connections end: the lab server answers the ways real clients close a TLS connection as
``openssl s_server`` does (same PKI, same mode), on TLS 1.2 and 1.3.

A client that has had its answer sends close_notify and closes, or just closes; a client may send its
request and close_notify (and its FIN) at once, or half-close TCP behind its request and wait for the
answer. Each ending runs against the lab and against s_server; what each server sends after the handshake
is decrypted from the wire (``tests/support/tls_tamper.py``, ``ended_call``) and compared: its alerts, and
whether the request was answered. A clean ending never gets a fatal alert from the lab.

The exchange before an ending on a kept connection is an HTTP/1.1 request for the lab and a line echoed by
``s_server -rev`` (``-www`` closes after every answer); an ending that carries the request uses ``-www``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.tls_clients import client_context, identity_files, needs_openssl
from tests.support.tls_tamper import ALERT, ANSWER, APPLICATION_DATA, FIN, PAUSE, Ending, Step, ended_call

CLOSE_NOTIFY = (ALERT, b"\x01\x00")
KEPT = (APPLICATION_DATA, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
LINE = (APPLICATION_DATA, b"hello\n")  # s_server -rev answers it reversed, and keeps the connection
REQUEST = (APPLICATION_DATA, b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
# tlsfuzzer's client-certificate scripts (github.com/tlsfuzzer/tlsfuzzer, e.g. test-certificate-verify.py):
# "GET / HTTP/1.0\n\n", then, once the answer starts, AlertGenerator(AlertDescription.close_notify), which
# passes close_notify (0) as the level: an alert of level 0. OpenSSL answers that with a fatal illegal_parameter
# on TLS 1.2 (TLS 1.3 ignores the level); s_server has answered and closed, and never reads it.
TLSFUZZER_GET = (APPLICATION_DATA, b"GET / HTTP/1.0\n\n")
LEVEL_0_CLOSE = (ALERT, b"\x00\x00")
CLOSED_BY_SERVER = ["warning close_notify"]


@dataclass(frozen=True)
class Case:
    name: str
    lab: tuple[Step, ...]  # what the client sends to the lab after the handshake
    reference: tuple[Step, ...]  # and to s_server
    serve: str  # s_server's mode
    alerts: list[str]  # what both servers send (the reference's, unless `lab_alerts` says otherwise)
    answered: bool
    lab_alerts: list[str] | None = None


CASES = [
    Case(
        "close-notify-then-close",
        (KEPT, PAUSE, CLOSE_NOTIFY, FIN),
        (LINE, PAUSE, CLOSE_NOTIFY, FIN),
        "-rev",
        CLOSED_BY_SERVER,
        answered=True,
    ),
    # OpenSSL 3 calls a FIN without close_notify an unexpected EOF and s_server answers decode_error; the lab,
    # like nginx (SSL_OP_IGNORE_UNEXPECTED_EOF), closes without an alert: a client that closed reads none
    Case(
        "close-without-close-notify",
        (KEPT, PAUSE, FIN),
        (LINE, PAUSE, FIN),
        "-rev",
        ["fatal decode_error"],
        answered=True,
        lab_alerts=[],
    ),
    Case(
        "close-notify-behind-an-unanswered-request",
        (REQUEST, CLOSE_NOTIFY, FIN),
        (REQUEST, CLOSE_NOTIFY, FIN),
        "-www",
        CLOSED_BY_SERVER,
        answered=True,
    ),
    Case(
        "close-notify-behind-a-request-kept-open",
        (REQUEST, CLOSE_NOTIFY),
        (REQUEST, CLOSE_NOTIFY),
        "-www",
        CLOSED_BY_SERVER,
        answered=True,
    ),
    Case("half-close-behind-a-request", (REQUEST, FIN), (REQUEST, FIN), "-www", CLOSED_BY_SERVER, answered=True),
    Case(
        "tlsfuzzer-level-0-close-as-the-answer-starts",
        (TLSFUZZER_GET, ANSWER, LEVEL_0_CLOSE),
        (TLSFUZZER_GET, ANSWER, LEVEL_0_CLOSE),
        "-www",
        CLOSED_BY_SERVER,
        answered=True,
    ),
    Case(
        "tlsfuzzer-level-0-close-after-the-answer",
        (TLSFUZZER_GET, PAUSE, LEVEL_0_CLOSE, FIN),
        (TLSFUZZER_GET, PAUSE, LEVEL_0_CLOSE, FIN),
        "-www",
        CLOSED_BY_SERVER,
        answered=True,
    ),
    Case(
        "close-notify-after-the-answer",
        (REQUEST, PAUSE, CLOSE_NOTIFY, FIN),
        (REQUEST, PAUSE, CLOSE_NOTIFY, FIN),
        "-www",
        CLOSED_BY_SERVER,
        answered=True,
    ),
]
MODES = {Mode.MTLS: ("-Verify", "1", "-verify_return_error"), Mode.MIXED: ("-verify", "1", "-verify_return_error")}
RUNS = [(case, tls, mode) for case in CASES for tls in ("1.2", "1.3") for mode in MODES]
IDS = [f"{c.name}/tls{t}/{m.value}" for c, t, m in RUNS]


@pytest.fixture(scope="module")
def endings(pki: LabPaths, lab_server: ServerFactory, s_server: Callable[..., int]) -> dict[str, tuple[Ending, Ending]]:
    """Every run's ending against s_server and against the lab, by id. They mostly wait (pauses, the servers'
    closes), so they run at once: the lab's all together, s_server's one at a time per s_server (it serves
    one connection at a time, and a queued one would shift the pauses)."""
    identity = identity_files(pki, Identity.ADOBE)
    labs = {mode: lab_server(mode=mode).port for mode in MODES}
    references: dict[int, list[int]] = {}
    for index, (case, _, mode) in enumerate(RUNS):
        references.setdefault(s_server(*MODES[mode], serve=case.serve), []).append(index)

    def lab(index: int) -> Ending:
        case, tls, mode = RUNS[index]
        return ended_call(labs[mode], client_context(pki, tls, identity), case.lab)

    def reference(port: int, indexes: list[int]) -> list[tuple[int, Ending]]:
        return [(i, ended_call(port, client_context(pki, RUNS[i][1], identity), RUNS[i][0].reference)) for i in indexes]

    with ThreadPoolExecutor(max_workers=len(RUNS) + len(references)) as pool:
        ours = pool.map(lab, range(len(RUNS)))
        theirs = [pool.submit(reference, port, indexes) for port, indexes in references.items()]
        by_index = dict(pair for future in theirs for pair in future.result())
        return {IDS[i]: (by_index[i], ending) for i, ending in enumerate(ours)}


@needs_openssl
@pytest.mark.parametrize(("case", "tls", "mode"), RUNS, ids=IDS)
def test_the_lab_ends_connections_as_openssl_does(
    case: Case, tls: str, mode: Mode, endings: dict[str, tuple[Ending, Ending]]
) -> None:
    reference, ours = endings[IDS[RUNS.index((case, tls, mode))]]
    assert (reference.alerts, reference.answered, reference.closed) == (case.alerts, case.answered, True)
    expected = case.alerts if case.lab_alerts is None else case.lab_alerts
    assert (ours.alerts, ours.answered, ours.closed) == (expected, case.answered, True)
    assert not [alert for alert in ours.alerts if alert.startswith("fatal")]  # a clean ending: no fatal alert


@needs_openssl
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_a_request_behind_close_notify_gets_the_answer(tls: str, pki: LabPaths, lab_server: ServerFactory) -> None:
    """The sibling that must stay refused: a request sent after the client's close_notify is not answered."""
    lab: RunningServer = lab_server(mode=Mode.MTLS)
    context = client_context(pki, tls, identity_files(pki, Identity.ADOBE))
    after = ended_call(lab.port, context, (CLOSE_NOTIFY, REQUEST, FIN))
    assert (after.answered, after.closed) == (False, True)  # its close_notify may be lost to a reset: the
    assert after.alerts in ([], CLOSED_BY_SERVER)  # request arrived after the server had closed
    context = client_context(pki, tls, identity_files(pki, Identity.ADOBE))
    before = ended_call(lab.port, context, (REQUEST, CLOSE_NOTIFY, FIN))
    assert (before.alerts, before.answered, before.closed) == (CLOSED_BY_SERVER, True, True)
    assert before.records[0][1].startswith(b"HTTP/1.1 200 ")


@needs_openssl
def test_a_level_0_alert_on_a_kept_connection_still_gets_openssls_illegal_parameter(
    pki: LabPaths, lab_server: ServerFactory, s_server: Callable[..., int]
) -> None:
    """The sibling: where the server still reads (a kept-alive connection, idle), the malformed alert gets
    OpenSSL's fatal illegal_parameter from the lab as from ``s_server -rev`` (TLS 1.2; tests/test_alert_truth.py)."""
    lab: RunningServer = lab_server(mode=Mode.MTLS)
    identity = identity_files(pki, Identity.ADOBE)
    reference = s_server(*MODES[Mode.MTLS], serve="-rev")
    theirs = ended_call(reference, client_context(pki, "1.2", identity), (LINE, PAUSE, LEVEL_0_CLOSE))
    ours = ended_call(lab.port, client_context(pki, "1.2", identity), (KEPT, PAUSE, LEVEL_0_CLOSE))
    assert theirs.alerts == ours.alerts == ["fatal illegal_parameter"]
    assert theirs.answered and ours.answered


@needs_openssl
def test_a_server_that_closes_an_idle_connection_sends_close_notify_and_closes_at_once(
    pki: LabPaths, fresh_server: ServerFactory
) -> None:
    """At the keep-alive timeout, and when the server stops, an idle connection gets close_notify and the FIN
    at once, as from nginx: nothing is unread, so there is nothing to linger for (asyncio waits up to 30 s
    for the client's close_notify). A stop with an idle client waiting is as prompt as one without."""
    lab: RunningServer = fresh_server(mode=Mode.MTLS, keep_alive_timeout=0.2)
    context = client_context(pki, "1.2", identity_files(pki, Identity.ADOBE))
    started = time.monotonic()
    idle = ended_call(lab.port, context, (KEPT,), timeout=3.0)
    assert (idle.alerts, idle.answered, idle.closed) == (CLOSED_BY_SERVER, True, True)
    assert time.monotonic() - started < 1.5  # the timeout, then the close: not a linger of 2 s
    stopping: RunningServer = fresh_server(mode=Mode.MTLS)
    with httpx.Client(verify=client_context(pki, None, identity_files(pki, Identity.ADOBE)), timeout=5) as client:
        assert client.post(stopping.url + "/x", json={}).status_code == 200  # the connection stays in the pool
        started = time.monotonic()
        stopping.stop()
        assert time.monotonic() - started < 1.0
