"""The real Debian apache2 (mod_ssl) on 127.0.0.1, for the tests: client authentication at the virtual host
or inside ``<Location /secure>``, on TLS 1.2, TLS 1.3 or both.

The mod_ssl directives are ``mtls_lab.server.stack_configs.apache``'s snippet (the one docs/server-stacks.md
shows); this module wraps it in the smallest complete ``apache2.conf`` (its own ServerRoot, pid file, logs
and a free port in a temporary directory), starts ``apache2 -DFOREGROUND`` and stops it by its pid. Every
path answers 200 ``ok <the client certificate's subject>`` (a CGI script: GET and POST alike), so a test
sees whether the certificate arrived. Started as root, Apache's children run as ``www-data``: the
directory is world-readable, the keys are read by the parent only.

    with apache_server(pki, ApacheSite(ClientAuth.REQUIRED, location="/secure", tls="both")) as running:
        running.url  # https://localhost:PORT

``ApacheServers`` (the ``apache`` session fixture of tests/conftest.py) starts each site once per session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.stack_configs import ClientAuth, Files, apache
from tests.support.ports import free_port, wait_for_port

APACHE2 = shutil.which("apache2") or ("/usr/sbin/apache2" if os.access("/usr/sbin/apache2", os.X_OK) else None)
MODULES = Path("/usr/lib/apache2/modules")
_LOADED = ("mpm_event", "authz_core", "alias", "cgi", "socache_shmcb", "ssl")
ANSWER_CGI = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok %s\\n' \"$SSL_CLIENT_S_DN\"\n"
_STOPS = 10.0


def available() -> bool:
    return APACHE2 is not None and (MODULES / "mod_ssl.so").exists()


def skip_unless_available() -> None:
    if not available():
        pytest.skip("apache2 is not installed here (CI installs it: .ci/run)")


@dataclasses.dataclass(frozen=True)
class ApacheSite:
    """One Apache configuration.

    ``mode``: SSLVerifyClient (none, optional, require); ``location``: a path such as ``/secure`` to ask for
    the certificate there only (else at the virtual host); ``tls``: ``"1.2"``, ``"1.3"`` or ``"both"``;
    ``trust``: SSLCACertificateFile (None: the lab's Adobe-like root); ``ca_names``: SSLCADNRequestFile;
    ``forbidden_page``: ``ErrorDocument 403`` with this text (a server team's own page in place of Apache's);
    ``denied``: a path whose every request Apache refuses with 403 (``Require all denied``), certificate or not.
    """

    mode: ClientAuth = ClientAuth.REQUIRED
    location: str | None = None
    tls: str = "both"
    trust: Path | None = None
    ca_names: Path | None = None
    forbidden_page: str | None = None
    denied: str | None = None


@dataclasses.dataclass
class RunningApache:
    site: ApacheSite
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> str:
        """One line per request: ``"GET /secure HTTP/1.1" 403 TLSv1.3 <client subject or ->``."""
        path = self.workdir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_access(self, text: str, seconds: float = 5) -> str:
        """The access log once it contains ``text`` (Apache writes a request's line after its answer left)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and text not in self.access_log():
            time.sleep(0.05)
        return self.access_log()

    def wait_for_log(self, text: str, seconds: float = 5) -> str:
        """The error log once it contains ``text`` (Apache writes it as it goes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and text not in self.error_log():
            time.sleep(0.05)
        return self.error_log()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the parent stops its children
            try:
                self.process.wait(_STOPS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def config(pki: LabPaths, site: ApacheSite, port: int, workdir: Path) -> str:
    """The whole apache2.conf: the lab's wrapping around stack_configs.apache's snippet."""
    files = Files(
        cert=pki.server_cert.resolve(),
        key=(workdir / "key.pem"),
        adobe_cas=(site.trust or pki.ca(CA.ADOBE_ROOT)).resolve(),
    )
    snippet = apache(site.mode, files, location=site.location, ca_names=site.ca_names, protocols=site.tls)
    modules = "".join(f"LoadModule {name}_module {MODULES}/mod_{name}.so\n" for name in _LOADED)
    user = ""
    if os.geteuid() == 0:  # Apache refuses to serve as root: its children become www-data
        account = next((name for name in ("www-data", "nobody") if _exists(name)), "nobody")
        user = f"User {account}\nGroup {'www-data' if account == 'www-data' else 'nogroup'}\n"
    if site.forbidden_page is not None:
        snippet += f'\nErrorDocument 403 "{site.forbidden_page}"'
    if site.denied is not None:
        snippet += f"\n<Location {site.denied}>\n    Require all denied\n</Location>"
    body = "".join(f"    {line}\n" for line in snippet.splitlines())
    return (
        f"ServerRoot {workdir}\nDefaultRuntimeDir {workdir}/run\nPidFile {workdir}/run/httpd.pid\n"
        f"Mutex file:{workdir}/run default\nErrorLog {workdir}/error.log\nLogLevel info ssl:info\n"
        f"{modules}{user}ServerName localhost\nListen 127.0.0.1:{port}\n"
        "StartServers 1\nServerLimit 1\nThreadsPerChild 16\nMaxRequestWorkers 16\nTimeout 10\n"
        f"SSLSessionCache shmcb:{workdir}/run/ssl_scache(65536)\n"
        'LogFormat "\\"%r\\" %>s %{SSL_PROTOCOL}x %{SSL_CLIENT_S_DN}x" lab\n'
        f"CustomLog {workdir}/access.log lab\n"
        f'ScriptAliasMatch "^/" "{workdir}/www/answer.cgi"\n'
        f"<Directory {workdir}/www>\n    Require all granted\n</Directory>\n"
        f"<VirtualHost 127.0.0.1:{port}>\n    ServerName localhost\n{body}"
        "    SSLOptions +StdEnvVars\n</VirtualHost>\n"
    )


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def start(pki: LabPaths, site: ApacheSite) -> RunningApache:
    """Start Apache for ``site`` on a free port; ``RunningApache.stop`` ends it."""
    skip_unless_available()
    workdir = Path(tempfile.mkdtemp(prefix="mtls-lab-apache-"))  # its children (www-data) read www/
    workdir.chmod(0o755)
    (workdir / "run").mkdir()
    (workdir / "www").mkdir(mode=0o755)
    cgi = workdir / "www" / "answer.cgi"
    cgi.write_text(ANSWER_CGI)
    cgi.chmod(0o755)
    key = workdir / "key.pem"
    key.write_bytes(pki.server_key.read_bytes())
    key.chmod(0o600)  # read by the parent (root) before it forks
    port = free_port()
    (workdir / "apache2.conf").write_text(config(pki, site, port, workdir))
    args = [str(APACHE2), "-d", str(workdir), "-f", str(workdir / "apache2.conf"), "-DFOREGROUND"]
    with (workdir / "output.log").open("wb") as output:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    running = RunningApache(site, port, process, workdir)
    try:
        wait_for_port(port, 15)
    except RuntimeError:
        said = (workdir / "output.log").read_text(errors="replace") + running.error_log()
        running.stop()
        raise RuntimeError(f"apache2 did not start: {said[-2000:]}") from None
    return running


@contextlib.contextmanager
def apache_server(pki: LabPaths, site: ApacheSite) -> Iterator[RunningApache]:
    running = start(pki, site)
    try:
        yield running
    finally:
        running.stop()


class ApacheServers:
    """Each site started once (several tests share it); ``stop`` ends them all."""

    def __init__(self, pki: LabPaths) -> None:
        self.pki = pki
        self.running: dict[ApacheSite, RunningApache] = {}
        self._lock = threading.Lock()

    def __call__(self, site: ApacheSite) -> RunningApache:
        skip_unless_available()
        with self._lock:
            if site not in self.running:
                self.running[site] = start(self.pki, site)
            return self.running[site]

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()
