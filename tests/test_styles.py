"""Rejection styles (nginx, gateway), app-side verification, forwarded-certificate headers, and real nginx."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_lab.certs.inspect import load_pem_chain
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.server.forwarded import HeaderError, encode_for, parse_client_cert_header
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.settings import Mode, RejectStyle
from mtls_lab.server.verify import verify_client_chain
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.expectations import PRESENTED
from tests.support.tls_clients import OPENSSL, client_context, identity_files, needs_openssl

WHO = PRESENTED


def _chain(pki: LabPaths, who: str) -> tuple[Path, list[x509.Certificate]]:
    path = pki.client_leaf(Identity.ADOBE) if who == "adobe-leaf" else pki.client_cert(Identity(who))
    return path, load_pem_chain(path)


@needs_openssl
@pytest.mark.parametrize("who", WHO)
def test_app_side_verification_agrees_with_openssl(who: str, pki: LabPaths, tmp_path: Path) -> None:
    _, chain = _chain(pki, who)
    untrusted, leaf = tmp_path / "untrusted.pem", tmp_path / "leaf.pem"
    untrusted.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain[1:]))
    leaf.write_bytes(chain[0].public_bytes(Encoding.PEM))
    args = [str(OPENSSL), "verify", "-CAfile", str(pki.ca(CA.ADOBE_ROOT)), "-purpose", "sslclient"]
    if chain[1:]:
        args += ["-untrusted", str(untrusted)]
    done = subprocess.run([*args, str(leaf)], capture_output=True, text=True)
    ours = verify_client_chain(chain, load_pem_chain(pki.ca(CA.ADOBE_ROOT)))
    openssl_error = re.search(r"error (\d+) at \d+ depth lookup: (.+)", done.stdout + done.stderr)
    if done.returncode == 0:
        assert ours.status == "SUCCESS"
    else:
        assert openssl_error is not None
        assert (ours.status, ours.code, ours.reason) == (
            "FAILED",
            int(openssl_error.group(1)),
            openssl_error.group(2).strip(),
        )


NGINX_BAD = "400 nginx_certificate_error"
BAD_IF_SENT = {"adobe": "accepted", "adobe-rotated": "accepted"}


def _expected(style: RejectStyle, mode: Mode, who: str) -> str:
    if who == "none":
        if style is RejectStyle.GATEWAY:
            return "403 gateway_forbidden"
        return "400 nginx_no_certificate" if mode is Mode.MTLS else "403 no_client_certificate"
    if who in BAD_IF_SENT:
        return "accepted"
    return NGINX_BAD if style is RejectStyle.NGINX else "403 gateway_forbidden"


STYLE_CASES = [
    (s, m, t, w)
    for s in (RejectStyle.NGINX, RejectStyle.GATEWAY)
    for m in (Mode.MTLS, Mode.MIXED)
    for t in ("1.2", "1.3")
    for w in [*WHO, "none"]
]


@pytest.mark.parametrize(
    ("style", "mode", "tls", "who"), STYLE_CASES, ids=[f"{s.value}/{m.value}/tls{t}/{w}" for s, m, t, w in STYLE_CASES]
)
def test_every_style_against_every_identity(
    style: RejectStyle, mode: Mode, tls: str, who: str, pki: LabPaths, lab_server: ServerFactory
) -> None:
    server = lab_server(mode=mode, reject_style=style)
    identity, chain = ("adobe", "leaf") if who == "adobe-leaf" else (who, "full")
    verdict = ajo_call(pki, server.url, identity, tls=tls, chain=chain, behavior="openssl")
    actual = "accepted" if verdict.outcome.value == "accepted" else f"{verdict.status} {verdict.server_reason}"
    assert actual == _expected(style, mode, who), verdict.explanation
    assert verdict.phase.value == "http" and verdict.alert is None  # the handshake always completes
    assert verdict.client_cert_sent is (who != "none")
    if actual != "accepted":
        assert verdict.rejection_style == {"400": "nginx_400", "403": "gateway_403"}[actual[:3]] or (
            actual == "403 no_client_certificate" and verdict.rejection_style == "http_403"
        )


def test_nginx_style_tells_the_app_what_nginx_would(
    pki: LabPaths, fresh_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = fresh_server(mode=Mode.MIXED, reject_style=RejectStyle.NGINX)
    with caplog.at_level(logging.INFO, logger="mtls_lab.server"):
        ajo_call(pki, server.url, "expired", behavior="openssl")
        ajo_call(pki, server.url, "none")
        ajo_call(pki, server.url, "adobe")
    expired, none, adobe = reversed(server.record.newest(3, REQUESTS))
    assert expired["ssl_client_verify"] == "FAILED:certificate has expired" and expired["status"] == 400
    assert none["ssl_client_verify"] == "NONE" and none["status"] == 403
    assert adobe["ssl_client_verify"] == "SUCCESS" and adobe["status"] == 200
    assert "client SSL certificate verify error: (10) certificate has expired" in caplog.text


def test_gateway_style_answers_like_api_gateway(
    pki: LabPaths, lab_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = lab_server(mode=Mode.MTLS, reject_style=RejectStyle.GATEWAY)
    with (
        caplog.at_level(logging.INFO, logger="mtls_lab.server"),
        httpx.Client(verify=client_context(pki, None, identity_files(pki, Identity.IMPOSTOR))) as client,
    ):
        answer = client.post(server.url + "/x", json={})
    assert answer.status_code == 403 and answer.json()["message"] == "Forbidden"
    assert answer.json()["mtls_lab"]["reason"] == "untrusted_client_certificate"
    assert "Access denied. Reason: Could not find issuer for certificate" in caplog.text


# --- forwarded certificates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "x-forwarded-client-cert",
        "X-SSL-Client-Cert",
        "X-Amzn-Mtls-Clientcert",
        "X-Amzn-Mtls-Clientcert-Leaf",
        "X-ARR-ClientCert",
        "Client-Cert",
    ],
)
def test_header_parsers_read_each_documented_format(header: str, pki: LabPaths) -> None:
    chain = load_pem_chain(pki.client_cert(Identity.ADOBE))
    parsed = parse_client_cert_header(header, encode_for(header, chain))
    assert parsed[0] == chain[0]


def test_documented_examples_parse(pki: LabPaths) -> None:
    leaf = load_pem_chain(pki.client_leaf(Identity.ADOBE))[0]
    pem = leaf.public_bytes(Encoding.PEM).decode()
    from urllib.parse import quote

    # Envoy: several hops, quoted Subject with commas and semicolons; the nearest proxy's element is last
    xfcc = (
        f'By=spiffe://lyft.com/frontend;Hash=468ed33b;Subject="/C=US/ST=CA/O=Lyft, Inc.;x";URI=spiffe://a,'
        f'By=spiffe://lyft.com/backend;Hash=9ba61d64;Cert="{quote(pem, safe="")}";Subject="CN=a, O=b"'
    )
    assert parse_client_cert_header("x-forwarded-client-cert", xfcc)[0] == leaf
    with pytest.raises(HeaderError, match="no Cert or Chain"):
        parse_client_cert_header("x-forwarded-client-cert", 'By=spiffe://a;Hash=00;Subject="CN=x"')
    # nginx's older $ssl_client_cert: PEM lines joined with tabs
    assert parse_client_cert_header("X-SSL-Client-Cert", pem.replace("\n", "\t"))[0] == leaf
    with pytest.raises(HeaderError):
        parse_client_cert_header("Client-Cert", ":bm90IGEgY2VydA==:")


@pytest.fixture
def behind_proxy(lab_server: ServerFactory) -> Iterator[ServerFactory]:
    def start(**settings: object):  # type: ignore[no-untyped-def]
        return lab_server(mode=Mode.TLS, client_cert_header="X-SSL-Client-Cert", **settings)

    yield start


def _post_with_header(pki: LabPaths, url: str, value: str | None) -> httpx.Response:
    headers = {"X-SSL-Client-Cert": value} if value is not None else {}
    with httpx.Client(verify=client_context(pki, None, None)) as client:
        return client.post(url + "/x", json={}, headers=headers)


def test_forwarded_certificate_from_a_trusted_proxy(pki: LabPaths, behind_proxy: ServerFactory) -> None:
    server = behind_proxy()
    chain = load_pem_chain(pki.client_cert(Identity.ADOBE))
    ok = _post_with_header(pki, server.url, encode_for("X-SSL-Client-Cert", chain))
    assert ok.status_code == 200 and ok.json()["saw"]["subject"].startswith("CN=ajo-journeys")
    missing = _post_with_header(pki, server.url, None)
    assert missing.status_code == 403 and missing.json()["reason"] == "client_cert_not_forwarded"
    assert ajo_call(pki, server.url).rejection_style == "proxy_header_missing"


def test_spoofed_header_from_an_untrusted_address_is_ignored(
    pki: LabPaths, behind_proxy: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = behind_proxy(trusted_proxies=("10.9.9.9",))
    chain = load_pem_chain(pki.client_cert(Identity.ADOBE))
    with caplog.at_level(logging.WARNING, logger="mtls_lab.server"):
        spoofed = _post_with_header(pki, server.url, encode_for("X-SSL-Client-Cert", chain))
    assert spoofed.status_code == 403 and spoofed.json()["reason"] == "no_client_certificate"
    assert "ignored X-SSL-Client-Cert header from 127.0.0.1: not a --trusted-proxy address" in caplog.text


# --- real nginx in front of the lab server --------------------------------------------------------

NGINX = shutil.which("nginx")


@pytest.fixture(scope="module")
def real_nginx(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    from mtls_lab.server.nginx_conf import NginxSettings, write
    from mtls_lab.server.run import RunningServer
    from mtls_lab.server.settings import ServerConfig
    from tests.support.ports import free_port, wait_for_port

    backend = RunningServer(
        ServerConfig(mode=Mode.TLS, certs=pki.root, client_cert_header="X-SSL-Client-Cert", quiet=True)
    ).start()
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = write(NginxSettings(pki, prefix, port, f"127.0.0.1:{backend.port}"), prefix / "nginx.conf")
    subprocess.run([NGINX, "-p", str(prefix), "-c", str(conf), "-t"], check=True, capture_output=True)
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield f"https://localhost:{port}"
    process.terminate()
    process.wait(10)
    backend.stop()


@pytest.mark.parametrize(
    ("who", "behavior", "expected"),
    [
        ("adobe", "java", "accepted"),
        ("none", "java", "400 nginx_no_certificate"),
        ("impostor", "openssl", "400 nginx_certificate_error"),
        ("expired", "openssl", "400 nginx_certificate_error"),
        ("impostor", "java", "400 nginx_no_certificate"),
    ],
)
def test_real_nginx_and_the_lab_nginx_style_give_the_same_verdicts(
    who: str, behavior: str, expected: str, pki: LabPaths, real_nginx: str, lab_server: ServerFactory
) -> None:
    emulated = lab_server(mode=Mode.MTLS, reject_style=RejectStyle.NGINX).url
    for url in (real_nginx, emulated):
        verdict = ajo_call(pki, url, who, behavior=behavior, tls="1.3")
        actual = "accepted" if verdict.outcome.value == "accepted" else f"{verdict.status} {verdict.server_reason}"
        assert actual == expected, (url, verdict.explanation)
    through = ajo_call(pki, real_nginx, "adobe")
    assert through.status == 200


def test_nginx_conf_command_prints_writes_and_never_overwrites(
    pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mtls_lab.cli import main
    from mtls_lab.errors import ExitCode

    assert main(["nginx-conf", "--certs", str(pki.root), "--listen", "9999"]) == ExitCode.OK
    printed = capsys.readouterr().out
    assert "listen 127.0.0.1:9999 ssl;" in printed and "ssl_verify_client on;" in printed
    assert f"ssl_client_certificate {pki.ca(CA.ADOBE_ROOT).resolve()};" in printed
    assert "proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;" in printed
    out = tmp_path / "nginx.conf"
    assert main(["nginx-conf", "--certs", str(pki.root), "--out", str(out), "--prefix", str(tmp_path)]) == 0
    before = out.read_text()
    assert main(["nginx-conf", "--certs", str(pki.root), "--out", str(out), "--verify", "optional"]) == ExitCode.USAGE
    assert "--force" in capsys.readouterr().err and out.read_text() == before
    if NGINX is not None:
        checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(out)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
