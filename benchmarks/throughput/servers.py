"""The servers measured, each in its own process with the lab PKI, mTLS required, on 127.0.0.1.

- lab: ``mtls-lab serve --mode mtls --quiet --record FILE`` (one process, or ``--workers N``);
- nginx (when installed): ``worker_processes 1``, ``ssl_verify_client on`` against the Adobe-like root,
  a location that answers 200 with a small JSON body, no access log;
- WireMock (when its standalone jar is found): the mock server people pick for mTLS, with
  ``--https-require-client-cert`` (which needs ``--https-truststore``) and one stub for the same POST.
  Its jar turns every command-line error into a ``MissingResourceException``: its output is shown when
  it does not start. The jar comes with the npm package ``wiremock`` (``npm install wiremock``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_lab.certs.layout import CA, LabPaths

from .load import ACTION, HOST, Client, Connection

STORE_PASSWORD = b"benchmark"
READY_TIMEOUT = {"lab": 30.0, "nginx": 15.0, "wiremock": 90.0}

NGINX_CONF = """\
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 1000000;
    server {{
        listen {host}:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {client_ca};
        ssl_verify_client on;
        ssl_verify_depth 2;
        location = {action} {{
            default_type application/json;
            return 200 '{{"accepted":true}}';
        }}
    }}
}}
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    client: Client
    version: str
    log: Path


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def last_lines(path: Path, count: int = 3) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(lines[-count:]) or "(no output)"


def wait_ready(server: Server) -> Server:
    """Return once one mTLS request is answered 2xx; RuntimeError if the server exits or never answers."""
    kind = server.name.split()[0]
    deadline = time.monotonic() + READY_TIMEOUT[kind]
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"exited with status {server.process.returncode}: {last_lines(server.log)}")
        conn = Connection(server.client, close=True)
        try:
            if 200 <= conn.call() < 300:
                return server
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            stop(server)
            raise RuntimeError(f"answered no mTLS request within {READY_TIMEOUT[kind]:g} s: {last_lines(server.log)}")
        time.sleep(0.1)


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def start_lab(
    paths: LabPaths, work: Path, client: Client, workers: int, record: Path, python: Sequence[str] = (sys.executable,)
) -> Server:
    cmd = [*python, "-m", "mtls_lab.cli", "serve", "--mode", "mtls", "--certs", str(paths.root)]
    cmd += ["--port", str(client.port), "--quiet", "--record", str(record), "--workers", str(workers)]
    name = "lab" if workers == 1 else f"lab x{workers}"
    log = work / f"lab-{workers}.log"
    return wait_ready(Server(name, _spawn(cmd, log), client, "mtls-lab (uvicorn, Python)", log))


def start_nginx(paths: LabPaths, work: Path, client: Client) -> Server:
    nginx = shutil.which("nginx")
    if nginx is None:
        raise FileNotFoundError("nginx is not installed")
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            work=work,
            host=HOST,
            port=client.port,
            cert=paths.server_cert,
            key=paths.server_key,
            client_ca=paths.ca(CA.ADOBE_ROOT),
            action=ACTION,
        )
    )
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    log = work / "nginx.log"
    cmd = [nginx, "-e", str(work / "nginx-error.log"), "-p", str(work), "-c", str(conf), "-g", "daemon off;"]
    return wait_ready(Server("nginx", _spawn(cmd, log), client, version.split(": ")[-1], log))


def find_wiremock(given: Path | None) -> Path | None:
    """The WireMock standalone jar: given, $WIREMOCK_JAR, or in an npm ``wiremock`` package (local or global)."""
    if given is not None:
        return given
    if os.environ.get("WIREMOCK_JAR"):
        return Path(os.environ["WIREMOCK_JAR"])
    roots = [Path.cwd() / "node_modules"]
    npm = shutil.which("npm")
    if npm:
        done = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False)
        roots.append(Path(done.stdout.strip()))
    for root in roots:
        jars = sorted(glob.glob(str(root / "wiremock" / "build" / "wiremock-standalone-*.jar")))
        if jars:
            return Path(jars[-1])
    return None


def _java_stores(paths: LabPaths, work: Path) -> tuple[Path, Path]:
    """WireMock's keystore (server certificate and key) and truststore (the Adobe-like root), PKCS#12."""
    key = serialization.load_pem_private_key(paths.server_key.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    protect = serialization.BestAvailableEncryption(STORE_PASSWORD)
    keystore, truststore = work / "wiremock-keystore.p12", work / "wiremock-truststore.p12"
    keystore.write_bytes(pkcs12.serialize_key_and_certificates(b"server", key, cert, None, protect))  # type: ignore[arg-type]
    root = x509.load_pem_x509_certificate(paths.ca(CA.ADOBE_ROOT).read_bytes())
    truststore.write_bytes(pkcs12.serialize_java_truststore([pkcs12.PKCS12Certificate(root, b"adobe-root")], protect))
    return keystore, truststore


def start_wiremock(jar: Path, paths: LabPaths, work: Path, client: Client) -> Server:
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java is not installed")
    keystore, truststore = _java_stores(paths, work)
    root = work / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    body = '{"accepted":true}'
    # with a Content-Length, WireMock writes the answer at once, as nginx does; without one it sends chunks
    # in separate writes, and each answer waits for the client's delayed ACK (about 10-40 ms)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    stub = {"request": {"method": "POST", "url": ACTION}, "response": {"status": 200, "body": body, "headers": headers}}
    (root / "mappings" / "custom-action.json").write_text(json.dumps(stub))
    password = STORE_PASSWORD.decode()
    cmd = [java, "-jar", str(jar), "--root-dir", str(root), "--disable-http", "--bind-address", HOST]
    cmd += ["--https-port", str(client.port), "--https-keystore", str(keystore), "--keystore-type", "PKCS12"]
    cmd += ["--keystore-password", password, "--key-manager-password", password]
    cmd += ["--https-require-client-cert", "--https-truststore", str(truststore), "--truststore-type", "PKCS12"]
    cmd += ["--truststore-password", password, "--disable-banner", "--max-request-journal-entries", "10000"]
    version = jar.stem.replace("wiremock-standalone-", "WireMock ")
    log = work / "wiremock.log"
    return wait_ready(Server("wiremock", _spawn(cmd, log), client, version, log))
