"""``openssl s_server`` as an independent reference server for the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mtls_lab.certs.layout import CA, LabPaths
from tests.support.ports import free_port, wait_for_port
from tests.support.tls_clients import OPENSSL


def s_server_command(port: int, pki: LabPaths, trust: Path, *flags: str) -> list[str]:
    """``openssl s_server`` on 127.0.0.1:``port`` with the lab server's certificate, trusting ``trust``."""
    return [
        str(OPENSSL),
        "s_server",
        "-accept",
        f"127.0.0.1:{port}",
        "-cert",
        str(pki.server_cert),
        "-key",
        str(pki.server_key),
        "-CAfile",
        str(trust),
        *flags,
    ]


class OpenSSLServers:
    """``openssl s_server -www`` instances trusting the Adobe-like root: one per set of flags, stopped together."""

    def __init__(self, pki: LabPaths) -> None:
        self.pki = pki
        self.running: dict[tuple[str, ...], tuple[subprocess.Popen[bytes], int]] = {}

    def start(self, *flags: str, serve: str = "-www") -> int:
        """The port of an s_server with these flags; ``serve`` is how it answers (``-www``, ``-rev``: echo)."""
        key = (*flags, serve)
        if key not in self.running:
            port = free_port()
            args = s_server_command(port, self.pki, self.pki.ca(CA.ADOBE_ROOT), serve, "-quiet", *flags)
            process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for_port(port)
            self.running[key] = (process, port)
        return self.running[key][1]

    def stop(self) -> None:
        for process, _ in self.running.values():
            process.terminate()
            process.wait(5)
