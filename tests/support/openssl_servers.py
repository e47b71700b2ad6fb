"""``openssl s_server`` as an independent reference server for the tests."""

from __future__ import annotations

import subprocess

from mtls_lab.certs.layout import CA, LabPaths
from tests.support.ports import free_port, wait_for_port
from tests.support.tls_clients import OPENSSL


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
            args = [
                str(OPENSSL),
                "s_server",
                "-accept",
                f"127.0.0.1:{port}",
                "-cert",
                str(self.pki.server_cert),
                "-key",
                str(self.pki.server_key),
                "-CAfile",
                str(self.pki.ca(CA.ADOBE_ROOT)),
                serve,
                "-quiet",
                *flags,
            ]
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
