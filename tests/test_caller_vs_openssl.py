"""The caller against `openssl s_server`, an independent strict server, with -verify and -Verify."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from certs.layout import CA, LabPaths
from tests.callers import ajo_call
from tests.clients import OPENSSL, needs_openssl

pytestmark = needs_openssl

IF_SENT = {
    "adobe": "http:200",
    "impostor": "alert:unknown_ca",
    "expired": "alert:certificate_expired",
    "not-yet-valid": "alert:bad_certificate",
    "no-client-auth": "alert:unsupported_certificate",
    "self-signed": "alert:unknown_ca",
    "adobe-leaf": "alert:unknown_ca",
}
JAVA_SENDS = {"adobe", "expired", "not-yet-valid", "no-client-auth"}  # s_server names its -CAfile roots


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s_server(pki: LabPaths) -> Iterator[Callable[[str, str], int]]:
    """``openssl s_server -www`` trusting the Adobe-like root; ``required`` is -Verify, else -verify."""
    running: dict[tuple[str, str], tuple[subprocess.Popen[bytes], int]] = {}

    def get(strictness: str, tls: str) -> int:
        if (strictness, tls) not in running:
            port = _free_port()
            flag = "-Verify" if strictness == "required" else "-verify"
            process = subprocess.Popen(
                [
                    str(OPENSSL),
                    "s_server",
                    "-accept",
                    f"127.0.0.1:{port}",
                    "-cert",
                    str(pki.server_cert),
                    "-key",
                    str(pki.server_key),
                    "-CAfile",
                    str(pki.ca(CA.ADOBE_ROOT)),
                    flag,
                    "1",
                    "-verify_return_error",
                    "-www",
                    f"-tls{tls.replace('.', '_')}",
                    "-quiet",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait(port)
            running[(strictness, tls)] = (process, port)
        return running[(strictness, tls)][1]

    yield get
    for process, _ in running.values():
        process.terminate()
        process.wait(5)


def _wait(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("openssl s_server did not start")


CASES = [
    (s, t, w, b)
    for s in ("optional", "required")
    for t in ("1.2", "1.3")
    for w in [*IF_SENT, "none"]
    for b in ("java", "openssl")
]


def _expected(strictness: str, tls: str, who: str, behavior: str) -> str:
    sent = who != "none" and (behavior == "openssl" or who in JAVA_SENDS)
    if sent:
        return IF_SENT[who]
    if strictness == "optional":
        return "http:200"  # s_server -verify lets a client without a certificate through
    return "alert:handshake_failure" if tls == "1.2" else "alert:certificate_required"


@pytest.mark.parametrize(
    ("strictness", "tls", "who", "behavior"), CASES, ids=[f"{s}/tls{t}/{w}/{b}" for s, t, w, b in CASES]
)
def test_caller_reads_openssl_alerts(
    strictness: str, tls: str, who: str, behavior: str, pki: LabPaths, s_server: Callable[[str, str], int]
) -> None:
    port = s_server(strictness, tls)
    identity, chain = ("adobe", "leaf") if who == "adobe-leaf" else (who, "full")
    verdict = ajo_call(
        pki, f"https://localhost:{port}", identity, behavior=behavior, tls=tls, chain=chain, method="GET"
    )
    seen = f"alert:{verdict.alert}" if verdict.alert else f"http:{verdict.status}"
    assert seen == _expected(strictness, tls, who, behavior), verdict.explanation
