"""Run the reference server: blocking for the CLI, or in a background thread for tests and the matrix."""

from __future__ import annotations

import errno
import logging
import socket
import sys

import uvicorn
from cryptography import x509

from mtls_lab.errors import LabError
from mtls_lab.server._uvicorn_tls import tls_protocol_factory
from mtls_lab.server.alert_styles import missing_certificate_tls12
from mtls_lab.server.app import create_app
from mtls_lab.server.background import BackgroundServer
from mtls_lab.server.connections import ConnectionLog
from mtls_lab.server.guard import LabUvicornServer, http_limits
from mtls_lab.server.loaded import LoadedServer, load
from mtls_lab.server.record import CallRecord
from mtls_lab.server.settings import Mode, RejectStyle, ServerConfig
from mtls_lab.server.verify import ClientVerification, verify_client_chain

logger = logging.getLogger("mtls_lab.server")


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket; LabError if the address is taken or not local.

    The socket is made with ``IPPROTO_TCP`` explicitly: asyncio sets TCP_NODELAY on accepted
    connections only when ``sock.proto == IPPROTO_TCP``, and without it every response written in two
    parts waits ~40 ms for the client's delayed ACK (Nagle). ``reuse_port``: workers of one server each
    listen on the same port (``SO_REUSEPORT``: the kernel spreads new connections across them).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(1024)
    except OverflowError as exc:  # a port outside 0-65535
        sock.close()
        raise LabError(f"--port {port}: give a port from 1 to 65535 (0: any free port)") from exc
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise LabError(f"port {port} on {host} is already in use: stop the other server or pick --port") from exc
        raise LabError(f"cannot listen on {host}:{port}: {exc.strerror}: pick another --host or --port") from exc
    return sock


def _missing_certificate_alert(cfg: ServerConfig) -> int | None:
    alert = missing_certificate_tls12(cfg.alert_style) if cfg.mode is Mode.MTLS else None
    return alert.number if alert else None


def make_server(loaded: LoadedServer, record: CallRecord) -> LabUvicornServer:
    return LabUvicornServer(uvicorn_config(loaded, record))


def uvicorn_config(loaded: LoadedServer, record: CallRecord) -> uvicorn.Config:
    """uvicorn's settings for the lab's server: its TLS layer, limits, record and app."""
    cfg = loaded.config
    verifier = None
    if cfg.reject_style is not RejectStyle.ALERT and cfg.mode is not Mode.TLS:
        trusted = list(loaded.trusted_certs)

        def verifier(chain: list[bytes]) -> ClientVerification:
            return verify_client_chain([x509.load_der_x509_certificate(der) for der in chain], trusted)

    factory = tls_protocol_factory(
        loaded.context,
        handshake_timeout=cfg.handshake_timeout,
        connections=ConnectionLog(record, cfg, loaded.context),
        verifier=verifier,
        limits=http_limits(cfg),
        missing_certificate_alert=_missing_certificate_alert(cfg),
    )
    config = uvicorn.Config(
        create_app(loaded, record),
        http=factory,  # type: ignore[arg-type]
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=cfg.keep_alive_timeout,  # type: ignore[arg-type]  # a float: it goes to call_later
    )
    return config


def configure_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("mtls_lab")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def banner(loaded: LoadedServer, port: int, workers: int = 1) -> str:
    """The start-up line (its fourth word is the URL: scripts read it)."""
    host = loaded.config.host
    where = f"[{host}]" if ":" in host else host
    several = f" | {workers} worker processes on the port" if workers > 1 else ""
    return f"mtls-lab server on https://{where}:{port} | {loaded.describe()}{several}"


def serve(config: ServerConfig, workers: int = 1) -> None:
    """Serve until interrupted (the ``mtls-lab serve`` command); ``workers`` processes (``server/workers.py``)."""
    loaded = load(config)
    if workers > 1:
        from mtls_lab.server.workers import serve_workers

        serve_workers(loaded, workers)
        return
    record = CallRecord(config.record)
    sock = bind(config.host, config.port)
    configure_logging(config.quiet)
    print(banner(loaded, sock.getsockname()[1]), flush=True)
    try:
        make_server(loaded, record).run(sockets=[sock])
    finally:
        record.close()
        sock.close()


class RunningServer(BackgroundServer):
    """The reference server in a background thread, on a free loopback port unless told otherwise."""

    def __init__(self, config: ServerConfig, port: int = 0) -> None:
        self.loaded = load(config)
        self.record = CallRecord(config.record)
        super().__init__(make_server(self.loaded, self.record), bind(config.host, port), "server")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"  # a host name, as AJO requires: the caller sends SNI

    def closed(self) -> None:
        self.record.close()
