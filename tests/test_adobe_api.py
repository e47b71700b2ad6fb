"""The lab's public-certificate API over real HTTPS: Adobe's format, paging, the gateway's header errors."""

from __future__ import annotations

import datetime as dt
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from cryptography import x509

from mtls_lab.certs.inspect import fingerprint, load_pem_chain
from mtls_lab.certs.layout import ADOBE_CN, CA, AdobeApp, Identity, LabPaths
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.phases import API_PATH, DEFAULT_PORT, ChainMode, Phase

HEADERS = {
    "Authorization": "Bearer lab-token",
    "x-api-key": "lab-key",
    "x-gw-ims-org-id": "LAB@AdobeOrg",
    "Content-Type": "application/json",
}
ISO_MILLIS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SMS_CN, PLATFORM_CN = "ajo-sms.aep-mtls.adobe.com", "Adobe Experience Platform"

# Written by hand from the issue: what each phase lists of AJO's custom-action certificates, in the
# realistic order: nothing of the new hierarchy before `transition`, both hierarchies there, then the switch.
EXPECTED = {
    "current": [Identity.ADOBE],
    "overlap": [Identity.ADOBE, Identity.ADOBE_ROTATED],
    "rotated": [Identity.ADOBE_ROTATED],
    "transition": [Identity.ADOBE_ROTATED, Identity.ADOBE_NEXT],
    "migration": [Identity.ADOBE_NEXT],
}


@pytest.fixture(scope="module")
def api(pki: LabPaths) -> Iterator[RunningAdobeApi]:
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, quiet=True)) as running:
        yield running


@pytest.fixture(scope="module")
def verify(pki: LabPaths) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca(CA.SERVER_ROOT)))


def get(
    api: RunningAdobeApi, verify: ssl.SSLContext, headers: Mapping[str, str] = HEADERS, **params: Any
) -> httpx.Response:
    return httpx.get(api.endpoint, headers=headers, params=params, verify=verify)


def leaf_sha(pki: LabPaths, identity: Identity) -> str:
    return fingerprint(load_pem_chain(pki.client_leaf(identity))[0])


def app_sha(pki: LabPaths, app: AdobeApp) -> str:
    return fingerprint(load_pem_chain(pki.app_leaf(app))[0])


def entry_sha(entry: dict[str, Any]) -> str:
    return fingerprint(x509.load_pem_x509_certificate(entry["publicCertificate"].encode()))


@pytest.mark.parametrize("phase", list(EXPECTED))
def test_each_phase_lists_its_certificates_in_adobes_format(
    phase: str, api: RunningAdobeApi, verify: ssl.SSLContext, pki: LabPaths
) -> None:
    api.set_phase(Phase(phase))
    response = get(api, verify)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["x-mtls-lab-phase"] == phase
    body = response.json()
    assert set(body) == {"results", "total", "count", "_links"}
    assert body["total"] == body["count"] == len(EXPECTED[phase]) + 2, "and the two other applications"
    assert set(body["_links"]) == {"next", "prev", "page"} and (body["_links"]["next"], body["_links"]["prev"]) == (
        {},
        {},
    )
    assert body["_links"]["page"] == {"href": api.endpoint + "?page=1{&limit}", "templated": True}
    listed = []
    for entry in body["results"]:
        assert set(entry) == {"certCommonName", "publicCertificate", "expiryDate"}
        certs = x509.load_pem_x509_certificates(entry["publicCertificate"].encode())
        assert len(certs) == 1, "Adobe's documented shape: the certificate alone"
        assert ISO_MILLIS_UTC.match(entry["expiryDate"])
        assert dt.datetime.fromisoformat(entry["expiryDate"]) == certs[0].not_valid_after_utc
        listed.append((entry["certCommonName"], fingerprint(certs[0])))
    journeys = [(ADOBE_CN, leaf_sha(pki, i)) for i in EXPECTED[phase]]
    sms, platform = (SMS_CN, app_sha(pki, AdobeApp.SMS)), (PLATFORM_CN, app_sha(pki, AdobeApp.PLATFORM))
    assert listed == [platform, *journeys, sms]


def test_the_listing_can_be_limited_to_some_applications(pki: LabPaths, verify: ssl.SSLContext) -> None:
    config = AdobeApiConfig(phase=Phase.TRANSITION, certs=pki.root, applications=(AdobeApp.SMS,), quiet=True)
    with RunningAdobeApi(config) as sms_only:
        body = get(sms_only, verify).json()
    assert [e["certCommonName"] for e in body["results"]] == [SMS_CN] and body["total"] == 1


def test_full_chain_is_a_lab_extension(pki: LabPaths, verify: ssl.SSLContext) -> None:
    config = AdobeApiConfig(phase=Phase.MIGRATION, certs=pki.root, chain=ChainMode.FULL, quiet=True)
    with RunningAdobeApi(config) as full:
        results = get(full, verify).json()["results"]
    chains = {e["certCommonName"]: x509.load_pem_x509_certificates(e["publicCertificate"].encode()) for e in results}
    expected = [pki.client_leaf(Identity.ADOBE_NEXT), pki.ca(CA.NEXT_INTERMEDIATE), pki.ca(CA.NEXT_ROOT)]
    assert [fingerprint(c) for c in chains[ADOBE_CN]] == [fingerprint(load_pem_chain(p)[0]) for p in expected]
    old = [pki.app_leaf(AdobeApp.SMS), pki.ca(CA.ADOBE_INTERMEDIATE), pki.ca(CA.ADOBE_ROOT)]
    assert [fingerprint(c) for c in chains[SMS_CN]] == [fingerprint(load_pem_chain(p)[0]) for p in old]


def test_pages_count_from_1_and_links_are_templates(
    api: RunningAdobeApi, verify: ssl.SSLContext, pki: LabPaths
) -> None:
    api.set_phase(Phase.CURRENT)
    first = get(api, verify, limit=1).json()
    assert (first["total"], first["count"], first["_links"]["prev"]) == (3, 1, {})
    assert first["_links"]["next"] == {"href": api.endpoint + "?page=2{&limit}", "templated": True}
    assert get(api, verify, page=1, limit=1).json() == first, "page defaults to 1 (mtls-service.yaml)"
    second = get(api, verify, page=2, limit=1).json()
    third = get(api, verify, page=3, limit=1).json()
    assert second["_links"]["prev"] == {"href": api.endpoint + "?page=1{&limit}", "templated": True}
    assert (third["_links"]["next"], third["_links"]["page"]["href"]) == ({}, api.endpoint + "?page=3{&limit}")
    assert [entry_sha(p["results"][0]) for p in (first, second, third)] == [
        app_sha(pki, AdobeApp.PLATFORM),
        leaf_sha(pki, Identity.ADOBE),
        app_sha(pki, AdobeApp.SMS),
    ]
    beyond = get(api, verify, page=5, limit=1).json()
    assert (beyond["results"], beyond["count"], beyond["total"], beyond["_links"]["next"]) == ([], 0, 3, {})
    assert beyond["_links"]["prev"]["href"] == api.endpoint + "?page=3{&limit}"


def test_limit_defaults_to_25(pki: LabPaths, verify: ssl.SSLContext) -> None:
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, phase=Phase.TRANSITION, quiet=True)) as running:
        assert get(running, verify).json()["count"] == 4
        assert get(running, verify, limit=25).json() == get(running, verify).json()


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "x"}, "page"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
    ],
    ids=["page=0", "page=-1", "page=x", "limit=0", "limit=101"],
)
def test_invalid_paging_is_a_400(
    params: dict[str, str], name: str, api: RunningAdobeApi, verify: ssl.SSLContext
) -> None:
    response = get(api, verify, HEADERS, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["title"] == "BadRequestError" and body["detail"].startswith(name)


def test_paging_limits_are_inclusive(api: RunningAdobeApi, verify: ssl.SSLContext) -> None:
    assert get(api, verify, page=1, limit=100).status_code == 200
    assert get(api, verify, limit=1).status_code == 200


def _without(name: str) -> dict[str, str]:
    return {k: v for k, v in HEADERS.items() if k != name}


@pytest.mark.parametrize(
    ("headers", "status", "code", "message"),
    [
        (_without("Authorization"), 401, "403010", "Oauth token is missing."),
        ({**HEADERS, "Authorization": "Basic bGFiOmxhYg=="}, 401, "401013", "Oauth token is not valid"),
        ({**HEADERS, "Authorization": "Bearer"}, 401, "401013", "Oauth token is not valid"),
        (_without("x-api-key"), 403, "403000", "Api Key is required"),
        (_without("x-gw-ims-org-id"), 400, "400003", "Missing header"),
        ({}, 401, "403010", "Oauth token is missing."),
    ],
    ids=["no-token", "basic-auth", "empty-bearer", "no-api-key", "no-org-id", "nothing"],
)
def test_missing_headers_get_the_gateways_documented_answers(
    headers: dict[str, str], status: int, code: str, message: str, api: RunningAdobeApi, verify: ssl.SSLContext
) -> None:
    response = get(api, verify, headers)
    assert response.status_code == status
    assert response.json() == {"error_code": code, "message": message}
    assert get(api, verify).status_code == 200  # the sibling: every header present


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded"], ids=["none", "text", "form"]
)
def test_a_get_without_json_content_type_gets_the_documented_400(
    content_type: str | None, api: RunningAdobeApi, verify: ssl.SSLContext
) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
    response = get(api, verify, headers if content_type is None else {**headers, "Content-Type": content_type})
    assert response.status_code == 400
    assert response.json() == {
        "type": "/placeholder/type/uri",
        "status": 400,
        "title": "BadRequestError",
        "detail": "A valid content-type must be specified",
    }
    charset = get(api, verify, {**headers, "Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200  # the sibling: JSON with a charset is fine


def test_the_gateway_answers_before_the_content_type(api: RunningAdobeApi, verify: ssl.SSLContext) -> None:
    no_type_no_key = {k: v for k, v in HEADERS.items() if k not in ("Content-Type", "x-api-key")}
    assert get(api, verify, no_type_no_key).json()["error_code"] == "403000"


def test_token_and_api_key_can_be_required(pki: LabPaths, verify: ssl.SSLContext) -> None:
    config = AdobeApiConfig(certs=pki.root, token="right-token", api_key="right-key", quiet=True)
    with RunningAdobeApi(config) as strict:
        good = {**HEADERS, "Authorization": "Bearer right-token", "x-api-key": "right-key"}
        assert get(strict, verify, good).status_code == 200
        wrong_token = get(strict, verify, {**good, "Authorization": "Bearer other"})
        assert (wrong_token.status_code, wrong_token.json()["error_code"]) == (401, "401013")
        wrong_key = get(strict, verify, {**good, "x-api-key": "other"})
        assert (wrong_key.status_code, wrong_key.json()["error_code"]) == (403, "403003")


def test_the_phase_switches_while_running(api: RunningAdobeApi, verify: ssl.SSLContext, pki: LabPaths) -> None:
    api.set_phase(Phase.CURRENT)
    switched = httpx.put(api.url + "/_lab/phase", json={"phase": "rotated"}, verify=verify)
    assert switched.status_code == 200 and switched.json()["phase"] == "rotated"
    serves = switched.json()["serves"]
    assert [s.get("identity") or s["application"] for s in serves] == ["aep", "adobe-rotated", "ajo-sms"]
    body = get(api, verify).json()
    assert [entry_sha(r) for r in body["results"]][1:2] == [leaf_sha(pki, Identity.ADOBE_ROTATED)]
    refused = httpx.put(api.url + "/_lab/phase", json={"phase": "someday"}, verify=verify)
    assert refused.status_code == 400 and "current, overlap, rotated, transition, migration" in refused.json()["detail"]
    assert httpx.get(api.url + "/_lab/phase", verify=verify).json()["phase"] == "rotated"


def test_the_api_is_https_with_the_lab_server_certificate(api: RunningAdobeApi) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(api.endpoint, headers=HEADERS, verify=ssl.create_default_context())


def test_adobe_api_command_serves_the_endpoint(pki: LabPaths, verify: ssl.SSLContext) -> None:
    args = ["-m", "mtls_lab.cli", "adobe-api", "--certs", str(pki.root), "--port", "0", "--phase", "migration"]
    args += ["--app", "ajo-journeys"]
    with subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "phase migration" in line and "the certificate alone, as Adobe documents" in line
            assert "lists adobe-next;" in line and "Content-Type: application/json" in line
            url = re.search(r"https://\S+" + re.escape(API_PATH), line)
            assert url is not None, line
            body = httpx.get(url.group(0), headers=HEADERS, verify=verify).json()
            assert body["count"] == 1
        finally:
            proc.terminate()
            proc.wait(10)


def test_the_cli_reads_the_phases_without_loading_a_web_server() -> None:
    """The phases live apart from the API stand-in, so building the CLI (every command's options) loads no server."""
    code = (
        "import sys; from mtls_lab.cli.command import build_parser; build_parser(); "
        "print(sorted(n for n in ('uvicorn', 'starlette', 'httpx') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
    assert AdobeApiConfig().port == DEFAULT_PORT
