"""`call --egress`: "Send test request" leaves directly, a live journey through the egress proxy's static IPs.

Modelled on loopback (caller/egress.py): the proxy's path binds 127.0.0.2. The lab server's record shows
the source address each path used, and an endpoint with an IP allow-list refuses one path and accepts the
other, in both directions.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler

import pytest

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.egress import PROXY_ADDRESS, Egress
from mtls_lab.caller.tls import Chain
from mtls_lab.caller.verdict import Verdict
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.scripted_endpoint import https_endpoint
from tests.test_cli import _run


def _call(pki: LabPaths, url: str, egress: Egress) -> Verdict:
    options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0)
    options = replace(options, source_address=egress.source_address)
    return call(parse({"name": "x", "url": url + "/custom-action"}), {}, options)


@pytest.mark.parametrize(("egress", "source"), [(Egress.PROXY, PROXY_ADDRESS), (Egress.DIRECT, "127.0.0.1")])
def test_the_lab_server_sees_each_paths_source_address(
    egress: Egress, source: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS)
    verdict = _call(pki, server.url, egress)
    assert verdict.status == 200 and verdict.journey is not None
    assert verdict.journey.step_event()["actionIsProxy"] is (egress is Egress.PROXY)
    local = verdict.attempts[0].local_port
    entry = next(e for e in server.record.newest(20, REQUESTS) if str(e["client"]).endswith(f":{local}"))
    assert str(entry["client"]).split(":")[0] == source


@contextmanager
def _allow_list(pki: LabPaths, allowed: str) -> Iterator[str]:
    """An HTTPS endpoint that answers 403 to any source address but ``allowed``, as an IP allow-list does."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            ok = self.client_address[0] == allowed
            body = b"{}" if ok else b'{"reason": "ip_not_allowed"}'
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    with https_endpoint(context, Handler) as url:
        yield url


def test_an_allow_list_of_the_proxys_ips_refuses_the_test_request_and_accepts_the_journey(pki: LabPaths) -> None:
    with _allow_list(pki, PROXY_ADDRESS) as url:
        test_request, journey = _call(pki, url, Egress.DIRECT), _call(pki, url, Egress.PROXY)
    assert test_request.status == 403 and journey.status == 200


def test_an_allow_list_without_the_proxys_ips_passes_the_test_and_fails_the_journey(pki: LabPaths) -> None:
    with _allow_list(pki, "127.0.0.1") as url:
        test_request, journey = _call(pki, url, Egress.DIRECT), _call(pki, url, Egress.PROXY)
    assert test_request.status == 200 and journey.status == 403
    assert journey.journey is not None and journey.journey.body and "ip_not_allowed" in journey.journey.body


def test_call_egress_prints_the_path_and_its_meaning(pki: LabPaths, lab_server: ServerFactory) -> None:
    url = lab_server(mode=Mode.MTLS).url + "/custom-action"
    common = ("call", "--certs", str(pki.root), "--url", url, "--server-ca", str(pki.ca(CA.SERVER_ROOT)))
    proxied = _run(*common, "--egress", "proxy")
    assert proxied.returncode == 0 and "actionIsProxy=true" in proxied.stdout
    assert '"Send test request" bypasses the proxy' in proxied.stdout
    direct = _run(*common, "--egress", "direct")
    assert "actionIsProxy=false" in direct.stdout and "egress: direct" in direct.stdout
    assert "egress:" not in _run(*common).stdout
