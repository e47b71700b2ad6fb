"""A scripted HTTPS endpoint for caller tests: real TLS on loopback, answers chosen per path.

Not the lab server: it plays endpoints the lab server is not, e.g. one that fails with 500 twice then
succeeds, redirects, is slow, or answers with nginx's 400 pages.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mtls_lab.certs.layout import CA, LabPaths

NGINX_NO_CERT_PAGE = (
    "<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n"
    "<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent</center>\r\n"
    "<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)
NGINX_BAD_CERT_PAGE = NGINX_NO_CERT_PAGE.replace("No required SSL certificate was sent", "The SSL certificate error")


@dataclass
class Script:
    """Per path: a list of (status, body) answers, the last one repeating."""

    answers: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[dict[str, object]] = field(default_factory=list)
    delay: dict[str, float] = field(default_factory=dict)

    def answer(self, path: str) -> tuple[int, str, dict[str, str]]:
        self.hits[path] += 1
        options = self.answers.get(path, [(200, '{"ok": true}', {})])
        return options[min(self.hits[path], len(options)) - 1]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            script.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body.decode(errors="replace"),
                    "client_certificate": bool(self.connection.getpeercert()),
                }
            )
            time.sleep(script.delay.get(path, 0))
            status, text, headers = script.answer(path)
            data = text.encode()
            self.send_response(status)
            content_type = "text/html" if text.startswith("<") else "application/json"
            self.send_header("Content-Type", headers.pop("content-type", content_type))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def scripted_endpoint(
    pki: LabPaths, script: Script, client_ca: CA | None = None, server_pem: Path | None = None
) -> Iterator[str]:
    """Serve ``script`` over TLS on a free loopback port; yields the base URL.

    ``server_pem``: a PEM file holding the server's key and chain, instead of the lab server's.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if server_pem is None:
        context.load_cert_chain(pki.server_cert, pki.server_key)
    else:
        context.load_cert_chain(server_pem)
    if client_ca is not None:
        context.load_verify_locations(pki.ca(client_ca))
        context.verify_mode = ssl.CERT_OPTIONAL
    with https_endpoint(context, _handler(script)) as url:
        yield url


@contextmanager
def https_endpoint(context: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded ``http.server`` behind ``context`` on a free loopback port: its URL, stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def json_body(data: object) -> str:
    return json.dumps(data)
