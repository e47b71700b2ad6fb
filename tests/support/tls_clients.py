"""Independent TLS clients for the tests: ``openssl s_client`` and httpx, each reporting what it saw."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mtls_lab.alerts import Alert, received_alert
from mtls_lab.certs.layout import CA, Identity, LabPaths

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")


@dataclass(frozen=True)
class Seen:
    """What a client observed: an alert, or an HTTP status and body."""

    alert: str | None = None
    status: int | None = None
    body: str = ""
    error: str | None = None

    @property
    def outcome(self) -> str:
        return f"alert:{self.alert}" if self.alert else f"http:{self.status}" if self.status else f"error:{self.error}"


def identity_files(pki: LabPaths, identity: Identity | None, leaf_only: bool = False) -> tuple[Path, Path] | None:
    if identity is None:
        return None
    cert = pki.client_leaf(identity) if leaf_only else pki.client_cert(identity)
    return cert, pki.client_key(identity)


REQUEST = (
    b"POST /custom-action HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
)


def s_client(
    pki: LabPaths, port: int, tls: str, identity: tuple[Path, Path] | None, extra: tuple[str, ...] = ()
) -> Seen:
    """Run ``openssl s_client`` as an independent client and report the alert or HTTP status it got."""
    assert OPENSSL is not None
    args = [
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        f"-tls{tls.replace('.', '_')}",
        "-CAfile",
        str(pki.ca(CA.SERVER_ROOT)),
        "-servername",
        "localhost",
        "-ign_eof",
        *extra,
    ]
    if identity is not None:
        args += ["-cert", str(identity[0]), "-cert_chain", str(identity[0]), "-key", str(identity[1])]
    done = subprocess.run(args, input=REQUEST, capture_output=True, timeout=20)
    output = (done.stdout + done.stderr).decode(errors="replace")
    alert = re.search(r"SSL alert number (\d+)", output)
    status = re.search(r"HTTP/1\.1 (\d{3}) ", output)
    return Seen(
        alert=Alert(int(alert.group(1))).label if alert else None,
        status=int(status.group(1)) if status else None,
        body=output,
        error=None if alert or status else output[-300:],
    )


def client_context(pki: LabPaths, tls: str | None, identity: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca(CA.SERVER_ROOT))
    if tls is not None:
        version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
        context.minimum_version = context.maximum_version = version
    if identity is not None:
        context.load_cert_chain(*identity)
    return context


def strict_server_context(pki: LabPaths) -> ssl.SSLContext:
    """A plain Python server context that requires a client certificate from the Adobe-like root."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca(CA.ADOBE_ROOT))
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def httpx_call(pki: LabPaths, url: str, tls: str | None, identity: tuple[Path, Path] | None) -> tuple[Seen, str | None]:
    """POST with httpx; returns what it saw and the httpx exception type name, if any."""
    context = client_context(pki, tls, identity)
    try:
        with httpx.Client(verify=context, timeout=10) as client:
            response = client.post(url + "/custom-action", json={"profile": "lab"})
    except httpx.TransportError as exc:
        alert = received_alert(exc)
        return Seen(alert=alert.label if alert else None, error=repr(exc)), type(exc).__name__
    return Seen(status=response.status_code, body=response.text), None
