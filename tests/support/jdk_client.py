"""A real JDK 17 HttpClient (tests/java/JdkClient.java) presenting the lab's Adobe-like identity.

AJO's sender is a Java client: this one is the judge of what the caller's Java model predicts. It is
compiled once per version of its source (kept in pytest's cache, like the JSSE server of stacks.py),
presents a PKCS12 identity made from the lab PKI (``adobe`` by default, or none), trusts the lab's server
CA, and offers the TLS versions it is told. One JVM makes every call of one ``fetch`` (a JVM takes about
half a second to start), each on a connection of its own.

    client = JdkClient(pki, cache)            # the ``jdk_client`` session fixture of tests/conftest.py
    [answer] = client.fetch([url + "/secure"], tls="1.3")
    answer.status, answer.body, answer.error  # 403, "...Cannot perform Post-Handshake Authentication...", None
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_lab.certs.layout import CA, Identity, LabPaths

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "java" / "JdkClient.java"
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")
PASSWORD = "changeit"
PROTOCOLS = {"1.2": "TLSv1.2", "1.3": "TLSv1.3", "both": "TLSv1.2,TLSv1.3"}


def available() -> bool:
    return shutil.which("java") is not None and shutil.which("javac") is not None


@dataclasses.dataclass(frozen=True)
class JdkAnswer:
    """What the JDK client got: an HTTP ``status`` and ``body``, or the ``error`` (the exception chain)."""

    url: str
    status: int | None
    body: str
    error: str | None

    def __str__(self) -> str:
        return f"{self.url}: {self.status} {self.body.strip()[:300]}" if self.error is None else self.error


class JdkClient:
    def __init__(self, pki: LabPaths, cache: Path, workdir: Path) -> None:
        if not available():
            pytest.skip("a JDK (java, javac) is not installed here (CI installs it: .ci/run)")
        self.pki, self.cache, self.workdir = pki, cache, workdir
        self._classes: Path | None = None
        self._lock = threading.Lock()

    def classes(self) -> Path:
        with self._lock:
            if self._classes is None:
                digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
                out = self.cache / f"JdkClient-{digest}"
                if not (out / "JdkClient.class").exists():
                    javac = [str(shutil.which("javac")), *(f"-J{flag}" for flag in QUICK_JVM)]
                    subprocess.run([*javac, "-d", str(out), str(SOURCE)], check=True, capture_output=True)
                self._classes = out
            return self._classes

    def identity(self, who: Identity) -> Path:
        """``who``'s certificate chain and key as a PKCS12 file (password ``changeit``), made once."""
        path = self.workdir / f"{who.value}.p12"
        if not path.exists():
            chain = x509.load_pem_x509_certificates(self.pki.client_cert(who).read_bytes())
            key = serialization.load_pem_private_key(self.pki.client_key(who).read_bytes(), None)
            assert isinstance(key, pkcs12.PKCS12PrivateKeyTypes)
            data = pkcs12.serialize_key_and_certificates(
                who.value.encode(),
                key,
                chain[0],
                chain[1:],
                serialization.BestAvailableEncryption(PASSWORD.encode()),
            )
            path.write_bytes(data)
            path.chmod(0o600)
        return path

    def fetch(
        self, urls: list[str], tls: str = "both", who: Identity | None = Identity.ADOBE, method: str = "GET"
    ) -> list[JdkAnswer]:
        """Call each URL with a fresh HttpClient; ``tls``: "1.2", "1.3" or "both"; ``who=None`` presents none."""
        identity = str(self.identity(who)) if who else "-"
        trust = str(self.pki.ca(CA.SERVER_ROOT))
        args = [str(shutil.which("java")), *QUICK_JVM, "-cp", str(self.classes()), "JdkClient"]
        done = subprocess.run(
            [*args, identity, PASSWORD, trust, PROTOCOLS[tls], method, *urls],
            capture_output=True,
            text=True,
            timeout=60,
        )
        answers = [_parse(line) for line in done.stdout.splitlines() if line.strip()]
        if len(answers) != len(urls):
            raise RuntimeError(f"JdkClient exited {done.returncode}: {done.stdout[-1000:]}{done.stderr[-2000:]}")
        return answers


def _parse(line: str) -> JdkAnswer:
    url, kind, *rest = line.split("\t")
    if kind == "status":
        return JdkAnswer(url, int(rest[0]), base64.b64decode(rest[1]).decode(errors="replace"), None)
    return JdkAnswer(url, None, "", base64.b64decode(rest[0]).decode(errors="replace"))
