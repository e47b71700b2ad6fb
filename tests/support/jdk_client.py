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
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_lab.certs.layout import CA, Identity, LabPaths

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "java" / "JdkClient.java"
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")
PASSWORD = "changeit"
PROTOCOLS = {"1.2": "TLSv1.2", "1.3": "TLSv1.3", "both": "TLSv1.2,TLSv1.3"}


def compile_once(source: Path, cache: Path, *javac_args: str) -> Path:
    """``source`` compiled with javac into ``cache``, once per version of it: compiled aside, then renamed
    (pytest-xdist's workers share the cache, and none may load a class another is still writing)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    out = cache / f"{source.stem}-{digest}"
    if not (out / f"{source.stem}.class").exists():
        aside = Path(tempfile.mkdtemp(prefix=f"{out.name}.", dir=cache))
        javac = [str(shutil.which("javac")), *(f"-J{flag}" for flag in QUICK_JVM), *javac_args]
        subprocess.run([*javac, "-d", str(aside), str(source)], check=True, capture_output=True)
        try:
            aside.rename(out)
        except OSError:  # another worker's rename came first: its classes are the same
            shutil.rmtree(aside)
    return out


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
                self._classes = compile_once(SOURCE, self.cache)
            return self._classes

    def identity(self, who: Identity) -> Path:
        """``who``'s certificate chain and key as a PKCS12 file (password ``changeit``), made once."""
        path = self.workdir / f"{who.value}.p12"
        if not path.exists():
            chain = x509.load_pem_x509_certificates(self.pki.client_cert(who).read_bytes())
            key = serialization.load_pem_private_key(self.pki.client_key(who).read_bytes(), None)
            assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)  # the lab's keys
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
        return self.fetch_each([JdkCall(url, tls, who, method) for url in urls])

    def fetch_each(self, calls: list[JdkCall]) -> list[JdkAnswer]:
        """Several calls, each with its own TLS versions and identity, in one JVM (it takes ~0.5 s to start)."""
        args = [str(shutil.which("java")), *QUICK_JVM, "-cp", str(self.classes()), "JdkClient"]
        groups: list[str] = []
        for each in calls:
            identity = str(self.identity(each.who)) if each.who else "-"
            groups += [identity, PROTOCOLS[each.tls], each.method, each.url]
        done = subprocess.run(
            [*args, str(self.pki.ca(CA.SERVER_ROOT)), PASSWORD, *groups], capture_output=True, text=True, timeout=90
        )
        answers = [_parse(line) for line in done.stdout.splitlines() if line.strip()]
        if len(answers) != len(calls):
            raise RuntimeError(f"JdkClient exited {done.returncode}: {done.stdout[-1000:]}{done.stderr[-2000:]}")
        return answers


@dataclasses.dataclass(frozen=True)
class JdkCall:
    """One call of ``fetch_each``: ``tls`` "1.2", "1.3" or "both"; ``who`` None presents no certificate."""

    url: str
    tls: str = "both"
    who: Identity | None = Identity.ADOBE
    method: str = "GET"


def _parse(line: str) -> JdkAnswer:
    url, kind, *rest = line.split("\t")
    if kind == "status":
        return JdkAnswer(url, int(rest[0]), base64.b64decode(rest[1]).decode(errors="replace"), None)
    return JdkAnswer(url, None, "", base64.b64decode(rest[0]).decode(errors="replace"))
