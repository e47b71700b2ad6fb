"""The real Debian Tomcat 10 (``tomcat10``: /usr/share/tomcat10) on 127.0.0.1, for the tests: one Tomcat, one
``<Connector>`` per configuration, each from ``mtls_lab.server.stack_configs.tomcat``'s snippet.

Tomcat takes seconds to start (a JVM, then catalina): ``start`` launches one ``Bootstrap start`` with a
generated ``CATALINA_BASE`` in a temporary directory, serving every connector it is given, and waits for
"Server startup". Its webapp (tests/java/LabServlet.java, compiled once per version of its source) answers
200 ``ok <client subject>`` or 403 without a certificate; its web.xml holds the per-URL ``CLIENT-CERT``
constraint of ``stack_configs.TOMCAT_CLIENT_CERT`` on ``/secure``, so on a connector that asks for nothing in
the handshake (``tomcat_per_url``), ``/secure`` makes Tomcat ask afterwards. The realm knows the Adobe-like
identity's subject in the role ``ajo``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.server.stack_configs import TOMCAT_CLIENT_CERT, ClientAuth, Files, tomcat, tomcat_per_url
from tests.support.jdk_client import compile_once
from tests.support.ports import free_port, wait_for_port

HOME = Path("/usr/share/tomcat10")
REPO = Path(__file__).resolve().parents[2]
SERVLET = REPO / "tests" / "java" / "LabServlet.java"
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")


def available() -> bool:
    return (
        (HOME / "bin" / "bootstrap.jar").exists() and shutil.which("java") is not None and bool(shutil.which("javac"))
    )


@dataclass(frozen=True)
class Connector:
    """One connector: ``mode`` (certificateVerification), ``tls_max``, ``per_url`` (none in the handshake, the
    CLIENT-CERT constraint on /secure), ``trust`` (caCertificateFile)."""

    mode: ClientAuth
    trust: Path
    tls_max: str = "1.3"
    per_url: bool = False


def servlet_classes(cache: Path) -> Path:
    return compile_once(SERVLET, cache, "-cp", str(HOME / "lib" / "servlet-api.jar"))


def connector_xml(connector: Connector, files: Files, port: int) -> str:
    """The snippet, on 127.0.0.1 and a free port (and TLS 1.2 only when asked)."""
    snippet = (
        tomcat_per_url(files).split("<security-constraint>")[0] if connector.per_url else tomcat(connector.mode, files)
    )
    snippet = snippet.replace('port="443"', f'port="{port}" address="127.0.0.1" maxThreads="8"')
    if connector.tls_max == "1.2":
        snippet = snippet.replace('protocols="TLSv1.2+TLSv1.3"', 'protocols="TLSv1.2"')
    return snippet


def _web_xml() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0" metadata-complete="true">\n'
        "<servlet><servlet-name>lab</servlet-name><servlet-class>LabServlet</servlet-class></servlet>\n"
        "<servlet-mapping><servlet-name>lab</servlet-name><url-pattern>/</url-pattern></servlet-mapping>\n"
        f"{TOMCAT_CLIENT_CERT}</web-app>\n"
    )


@dataclass
class RunningTomcat:
    process: subprocess.Popen[bytes]
    base: Path
    ports: dict[Connector, int]

    def log(self) -> str:
        path = self.base / "output.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def start(pki: LabPaths, connectors: list[Connector], cache: Path) -> RunningTomcat:
    """One Tomcat serving every connector; returns once it says "Server startup"."""
    base = Path(tempfile.mkdtemp(prefix="mtls-lab-tomcat-"))
    for folder in ("conf", "logs", "temp", "work", "webapps/ROOT/WEB-INF/classes"):
        (base / folder).mkdir(parents=True)
    shutil.copytree(servlet_classes(cache), base / "webapps/ROOT/WEB-INF/classes", dirs_exist_ok=True)
    (base / "webapps/ROOT/WEB-INF/web.xml").write_text(_web_xml())
    properties = (HOME / "etc" / "catalina.properties").read_text()
    (base / "conf" / "catalina.properties").write_text(
        properties + "\ntomcat.util.scan.StandardJarScanFilter.jarsToSkip=*.jar\n"
    )
    (base / "conf" / "web.xml").write_text(
        '<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0" metadata-complete="true"/>\n'
    )
    subject = x509.load_pem_x509_certificate(pki.client_leaf(Identity.ADOBE).read_bytes()).subject
    who = ", ".join(subject.rfc4514_string().split(","))  # Java's X500Principal.toString(), the realm's user name
    (base / "conf" / "users.xml").write_text(
        f'<tomcat-users><user username="{who}" password="-" roles="ajo"/></tomcat-users>\n'
    )
    key = base / "conf" / "key.pem"
    key.write_bytes(pki.server_key.read_bytes())
    key.chmod(0o600)
    stores = {
        trust: base / "conf" / f"trust-{n}.p12" for n, trust in enumerate(dict.fromkeys(c.trust for c in connectors))
    }
    for trust, store in stores.items():
        cas = [
            pkcs12.PKCS12Certificate(cert, f"ca{i}".encode())
            for i, cert in enumerate(x509.load_pem_x509_certificates(trust.read_bytes()))
        ]
        store.write_bytes(pkcs12.serialize_java_truststore(cas, serialization.BestAvailableEncryption(b"changeit")))
    # what a per-URL certificate is verified against: the JVM's trust store (CATALINA_OPTS in the snippet)
    jvm_trust = stores[next((c.trust for c in connectors if c.per_url), connectors[0].trust)]
    ports = {c: free_port() for c in dict.fromkeys(connectors)}
    xml = "".join(
        connector_xml(c, Files(cert=pki.server_cert.resolve(), key=key, adobe_cas=stores[c.trust]), port)
        for c, port in ports.items()
    )
    (base / "conf" / "server.xml").write_text(
        '<Server port="-1" shutdown="SHUTDOWN">\n<Service name="Catalina">\n'
        f"{xml}"
        '<Engine name="Catalina" defaultHost="localhost">\n'
        f'<Realm className="org.apache.catalina.realm.MemoryRealm" pathname="{base}/conf/users.xml"/>\n'
        f'<Host name="localhost" appBase="{base}/webapps" unpackWARs="false" autoDeploy="false"/>\n'
        "</Engine>\n</Service>\n</Server>\n"
    )
    args = [
        str(shutil.which("java")),
        *QUICK_JVM,
        f"-Dcatalina.home={HOME}",
        f"-Dcatalina.base={base}",
        *(["-Djavax.net.debug=ssl:handshake"] if os.environ.get("MTLS_LAB_TOMCAT_DEBUG") else []),
        f"-Djavax.net.ssl.trustStore={jvm_trust}",
        "-Djavax.net.ssl.trustStorePassword=changeit",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        f"-Djava.io.tmpdir={base / 'temp'}",
        "-cp",
        f"{HOME / 'bin' / 'bootstrap.jar'}:{HOME / 'bin' / 'tomcat-juli.jar'}",
        "org.apache.catalina.startup.Bootstrap",
        "start",
    ]
    with (base / "output.log").open("wb") as output:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=base)
    running = RunningTomcat(process, base, ports)
    deadline = time.monotonic() + 60
    while "Server startup in" not in running.log():
        if process.poll() is not None or time.monotonic() > deadline:
            said = running.log()[-3000:]
            running.stop()
            raise RuntimeError(f"tomcat did not start: {said}")
        time.sleep(0.05)
    for port in ports.values():
        wait_for_port(port, 5)
    return running
