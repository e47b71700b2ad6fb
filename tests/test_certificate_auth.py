"""Certificate-based custom authentication: the client assertion as Adobe documents it, checked by an
independent implementation (openssl dgst), and the lab identity provider's verdicts over real HTTPS."""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509

from mtls_lab.caller.action import load, parse
from mtls_lab.caller.assertion import ASSERTION_TYPE, LIFETIME, client_assertion
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.rules import ActionError
from mtls_lab.caller.tls import Chain, ClientIdentity
from mtls_lab.certs.inspect import load_pem_chain, x5t, x5t_s256
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.phases import Phase
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Authorize, Mode
from tests.conftest import ServerFactory
from tests.test_cli import _run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
OPENSSL = shutil.which("openssl")
CLIENT = "ajo-lab-app"
# Adobe's Entra ID example (External data sources, "#certificate-credential"), verbatim.
ADOBE_ENTRA = """{
  "type": "customAuthorization",
  "subType": "certificateCredential",
  "aud": "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token",
  "authorizationType": "Bearer",
  "endpoint": "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token",
  "method": "POST",
  "body": {
    "bodyType": "form",
    "bodyParams": {
      "client_id": "<your-client-id>",
      "grant_type": "client_credentials",
      "scope": "https://api.example.com/.default"
    }
  },
  "tokenInResponse": "json://access_token"
}"""


@pytest.fixture(scope="module")
def idp(lab_server: ServerFactory, pki: LabPaths) -> RunningServer:
    """A TLS-only lab server whose identity provider holds today's Adobe leaf and whose routes want its token."""
    leaf = pki.client_leaf(Identity.ADOBE)
    return lab_server(mode=Mode.TLS, authorize=Authorize.TOKEN, idp_register=(leaf,))


def _identity(pki: LabPaths, who: Identity = Identity.ADOBE) -> ClientIdentity:
    return ClientIdentity.from_lab(pki, who, Chain.FULL)


def _leaf(pki: LabPaths, who: Identity = Identity.ADOBE) -> x509.Certificate:
    return load_pem_chain(pki.client_leaf(who))[0]


def _post(server: RunningServer, pki: LabPaths, assertion: str, as_json: bool = False, **form: str) -> httpx.Response:
    body = {
        "client_id": CLIENT,
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **form,
    }
    with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca(CA.SERVER_ROOT)))) as client:
        if as_json:
            return client.post(_endpoint(server), json=body)
        return client.post(_endpoint(server), data=body)


def _endpoint(server: RunningServer) -> str:
    return server.url + "/_lab/idp/token"


def test_the_assertion_is_shaped_as_adobe_documents(pki: LabPaths) -> None:
    first = client_assertion(_identity(pki), CLIENT, "https://idp.example.com/token", now=1_800_000_000)
    second = client_assertion(_identity(pki), CLIENT, "https://idp.example.com/token", now=1_800_000_000)
    header = jwt.get_unverified_header(first)
    assert header == {"alg": "RS256", "x5t": x5t(_leaf(pki))}  # Adobe's two header fields, nothing else
    claims = jwt.decode(first, options={"verify_signature": False})
    assert claims["iss"] == claims["sub"] == CLIENT and claims["aud"] == "https://idp.example.com/token"
    assert claims["iat"] == claims["nbf"] == 1_800_000_000 and claims["exp"] - claims["iat"] == LIFETIME == 600
    assert uuid.UUID(claims["jti"]).version == 4
    assert claims["jti"] != jwt.decode(second, options={"verify_signature": False})["jti"]  # one per token call


def test_x5t_is_the_base64url_sha1_thumbprint(pki: LabPaths) -> None:
    done = (
        subprocess.run(
            [
                OPENSSL or "openssl",
                "x509",
                "-in",
                str(pki.client_leaf(Identity.ADOBE)),
                "-noout",
                "-fingerprint",
                "-sha1",
            ],
            capture_output=True,
            text=True,
        )
        if OPENSSL
        else None
    )
    if done is None:
        pytest.skip("the openssl binary is not installed")
    hex_digest = done.stdout.strip().split("=", 1)[1].replace(":", "")
    expected = base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()
    assert x5t(_leaf(pki)) == expected and len(x5t_s256(_leaf(pki))) == 43
    assert x5t(_leaf(pki, Identity.ADOBE_ROTATED)) != expected


@pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")
def test_openssl_verifies_the_assertion_and_refuses_a_tampered_one(pki: LabPaths, tmp_path: Path) -> None:
    """An independent implementation: `openssl dgst -sha256 -verify` over the JWS signing input."""
    assertion = client_assertion(_identity(pki), CLIENT, "https://idp.example.com/token")
    public = tmp_path / "public.pem"
    subprocess.run(
        [str(OPENSSL), "x509", "-in", str(pki.client_leaf(Identity.ADOBE)), "-noout", "-pubkey", "-out", str(public)],
        check=True,
    )

    def openssl_verifies(token: str) -> bool:
        header, payload, signature = token.split(".")
        (tmp_path / "input").write_bytes(f"{header}.{payload}".encode())
        (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        done = subprocess.run(
            [
                str(OPENSSL),
                "dgst",
                "-sha256",
                "-verify",
                str(public),
                "-signature",
                str(tmp_path / "sig"),
                str(tmp_path / "input"),
            ],
            capture_output=True,
            text=True,
        )
        return done.returncode == 0 and "Verified OK" in done.stdout

    assert openssl_verifies(assertion)
    assert not openssl_verifies(_tampered(assertion))
    other = client_assertion(_identity(pki, Identity.ADOBE_ROTATED), CLIENT, "https://idp.example.com/token")
    assert not openssl_verifies(other)  # signed by another key: not this certificate's


def _tampered(assertion: str) -> str:
    """The same assertion with one claim changed and the signature kept."""
    header, payload, signature = assertion.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_the_identity_provider_accepts_a_registered_leaf_and_refuses_each_failure(
    pki: LabPaths, idp: RunningServer
) -> None:
    good = client_assertion(_identity(pki), CLIENT, _endpoint(idp))
    accepted = _post(idp, pki, good)
    assert accepted.status_code == 200 and accepted.json()["token_type"] == "Bearer"
    assert accepted.headers["cache-control"] == "no-store"
    replayed = _post(idp, pki, good)  # the same assertion again
    assert (replayed.status_code, replayed.json()["mtls_lab_reason"]) == (401, "jti_replayed")


@pytest.mark.parametrize(
    ("case", "status", "error", "reason"),
    [
        ("rotated-leaf", 401, "invalid_client", "certificate_not_registered"),
        ("wrong-audience", 401, "invalid_client", "audience_mismatch"),
        ("tampered", 401, "invalid_client", "signature_invalid"),
        ("expired", 401, "invalid_client", "assertion_expired"),
        ("not-yet-valid", 401, "invalid_client", "assertion_not_yet_valid"),
        ("lives-an-hour", 401, "invalid_client", "lifetime_too_long"),
        ("other-client-id", 401, "invalid_client", "client_mismatch"),
        ("no-thumbprint", 401, "invalid_client", "certificate_not_registered"),
        ("hs256", 401, "invalid_client", "assertion_invalid"),
        ("password-grant", 400, "unsupported_grant_type", "unsupported_grant_type"),
        ("no-assertion-type", 400, "invalid_request", "invalid_request"),
        ("empty-client-id", 400, "invalid_request", "client_id_missing"),
        ("padded-client-id", 401, "invalid_client", "client_id_padded"),
    ],
)
def test_each_refusal_is_an_oauth_error_that_names_itself(
    case: str, status: int, error: str, reason: str, pki: LabPaths, idp: RunningServer
) -> None:
    endpoint, now = _endpoint(idp), time.time()
    assertion = client_assertion(_identity(pki), CLIENT, endpoint)
    form: dict[str, str] = {}
    if case == "rotated-leaf":
        assertion = client_assertion(_identity(pki, Identity.ADOBE_ROTATED), CLIENT, endpoint)
    elif case == "wrong-audience":
        assertion = client_assertion(_identity(pki), CLIENT, "https://login.microsoftonline.com/x/oauth2/v2.0/token")
    elif case == "tampered":
        assertion = _tampered(assertion)
    elif case == "expired":
        assertion = client_assertion(_identity(pki), CLIENT, endpoint, now=now - 3600)
    elif case == "not-yet-valid":
        assertion = client_assertion(_identity(pki), CLIENT, endpoint, now=now + 3600)
    elif case == "lives-an-hour":
        assertion = client_assertion(_identity(pki), CLIENT, endpoint, lifetime=3600)
    elif case == "other-client-id":
        form["client_id"] = "another-app"
    elif case in ("no-thumbprint", "hs256"):
        key = b"a shared secret that is long enough for HS256" if case == "hs256" else _key(pki)
        claims = jwt.decode(assertion, options={"verify_signature": False})
        assertion = jwt.encode(claims, key, algorithm="HS256" if case == "hs256" else "RS256")
    elif case == "password-grant":
        form["grant_type"] = "password"
    elif case == "empty-client-id":  # AJO with an empty client_id: iss = sub = "" and an empty form field
        assertion, form["client_id"] = client_assertion(_identity(pki), "", endpoint), ""
    elif case == "padded-client-id":
        assertion, form["client_id"] = client_assertion(_identity(pki), " " + CLIENT, endpoint), " " + CLIENT
    elif case == "no-assertion-type":
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    refused = _post(idp, pki, assertion, False, **form)
    body = refused.json()
    assert (refused.status_code, body["error"], body["mtls_lab_reason"]) == (status, error, reason)
    assert body["error_description"] and "access_token" not in body


def _key(pki: LabPaths) -> bytes:
    return pki.client_key(Identity.ADOBE).read_bytes()


def test_a_json_body_is_not_a_token_request(pki: LabPaths, idp: RunningServer) -> None:
    assertion = client_assertion(_identity(pki), CLIENT, _endpoint(idp))
    refused = _post(idp, pki, assertion, as_json=True)
    accepted = _post(idp, pki, assertion)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert accepted.status_code == 200


def test_a_live_call_gets_its_token_from_the_identity_provider(pki: LabPaths, idp: RunningServer) -> None:
    action = parse(
        {
            "name": "cert_auth",
            "url": idp.url + "/orders",
            "authentication": {
                "type": "customAuthorization",
                "subType": "certificateCredential",
                "aud": _endpoint(idp),
                "endpoint": _endpoint(idp),
                "method": "POST",
                "body": {"bodyType": "form", "bodyParams": {"client_id": CLIENT, "grant_type": "client_credentials"}},
                "tokenInResponse": "json://access_token",
            },
        }
    )
    options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0)
    verdict = call(action, {}, options)
    assert verdict.outcome.value == "accepted", verdict.explanation
    token_call = verdict.token_call
    assert token_call is not None and token_call.sub_type == "certificateCredential"
    assert token_call.assertion is not None and token_call.assertion["header"]["x5t"] == x5t(_leaf(pki))
    assert token_call.client_certificate is False
    sent = idp.record.newest(2, REQUESTS)
    form = next(e for e in sent if e["path"] == "/_lab/idp/token")
    assert "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" in form["body"]
    assert dict(form["headers"])["content-type"].startswith("application/x-www-form-urlencoded")
    rotated = call(action, {}, CallOptions(pki=pki, identity=lab_identity(pki, "adobe-rotated", Chain.FULL), retries=0))
    assert (
        rotated.failed_call == "token"
        and rotated.status == 401
        and rotated.server_reason == "certificate_not_registered"
    )
    assert "register the new leaf during the overlap" in rotated.fix


@pytest.mark.parametrize(
    "example", [ADOBE_ENTRA, EXAMPLES / "certificate-auth-action.json"], ids=["adobe-entra-example-pasted", "examples"]
)
def test_the_cli_call_with_certificate_credential_is_accepted(
    example: str | Path, pki: LabPaths, idp: RunningServer, tmp_path: Path
) -> None:
    """--token-url aims the pasted block at the lab's identity provider; aud, equal to the endpoint, follows it."""
    if isinstance(example, Path):
        path = example
    else:
        path = tmp_path / "action.json"
        path.write_text(f'{{"name": "entra_pasted", "url": "https://x.example.com/", "authentication": {example}}}')
    common = ["call", str(path), "--certs", str(pki.root), "--url", idp.url + "/orders", "--token-url", _endpoint(idp)]
    common += ["--context", str(EXAMPLES / "custom-auth-context.json")]
    done = _run(*common, "--json")
    verdict = json.loads(done.stdout)
    assert done.returncode == ExitCode.OK, verdict["explanation"]
    assert verdict["token_call"]["assertion"]["claims"]["aud"] == _endpoint(idp)
    wrong = _run(*common, "--identity", "adobe-rotated")
    assert wrong.returncode == ExitCode.HTTP_ERROR and "token call" in wrong.stdout and "FAILED" in wrong.stdout


def test_registering_a_ca_is_refused_on_one_line(pki: LabPaths) -> None:
    done = _run("serve", "--certs", str(pki.root), "--port", "0", "--idp-register", str(pki.ca(CA.ADOBE_ROOT)))
    assert done.returncode == ExitCode.USAGE and len(done.stderr.strip().splitlines()) == 1
    assert "register Adobe's leaf only" in done.stderr and "do not use the intermediate or root CA" in done.stderr


def test_certificate_credential_needs_an_identity_and_adobes_guardrails(pki: LabPaths) -> None:
    spec = json.loads(ADOBE_ENTRA)
    action = parse({"name": "x", "url": "https://x.example.com/", "authentication": spec})
    with pytest.raises(Exception, match="signs its client assertion with the client certificate's key"):
        call(action, {}, CallOptions(pki=pki, identity=None))
    changes: list[tuple[dict[str, Any], str]] = [
        ({"method": "GET"}, "method must be POST"),
        ({"aud": ""}, "aud is required"),
        ({"endpoint": "http://login.example.com/token"}, "needs an https token endpoint"),
        ({"body": {"bodyType": "form", "bodyParams": {"client_id": " id"}}}, "without leading or trailing spaces"),
        ({"body": {"bodyType": "form", "bodyParams": {"client_id": "id", "scope": "s" * 1001}}}, "at most 1000"),
        ({"body": {"bodyType": "form", "bodyParams": {"client_id": "id", "client_assertion": "x"}}}, "AJO injects it"),
    ]
    for change, message in changes:
        with pytest.raises(Exception, match=message):
            parse({"name": "x", "url": "https://x.example.com/", "authentication": {**spec, **change}})


GUARDRAILS = [  # (refused, its accepted sibling, the message): Adobe's certificate-based authentication guardrails
    ({"endpoint": "http://login.example.com/token"}, {"endpoint": "https://login.example.com/token"}, "https"),
    ({"endpoint": "https://login.example.com/token?p=1"}, {"endpoint": "https://login.example.com/token"}, "'?'"),
    ({"method": "GET"}, {"method": "POST"}, "method must be POST"),
    ({"client_id": ""}, {"client_id": "id"}, "client_id: required, not empty"),
    ({"client_id": "id "}, {"client_id": "id"}, "without leading or trailing spaces"),
    ({"scope": "s" * 1001}, {"scope": "s" * 1000}, "at most 1000 characters"),
]


@pytest.mark.parametrize(("refused", "accepted", "message"), GUARDRAILS, ids=lambda v: str(v)[:30])
def test_each_guardrail_is_one_line_naming_adobes_rule_and_its_sibling_passes(
    refused: dict[str, str], accepted: dict[str, str], message: str
) -> None:
    spec = json.loads(ADOBE_ENTRA)

    def changed(change: dict[str, str]) -> dict[str, Any]:
        params = {**spec["body"]["bodyParams"], **{k: v for k, v in change.items() if k in ("client_id", "scope")}}
        top = {k: v for k, v in change.items() if k not in ("client_id", "scope")}
        if "endpoint" in top:
            top["aud"] = top["endpoint"]
        body = {**spec["body"], "bodyParams": params}
        return {"name": "x", "url": "https://x.example.com/", "authentication": {**spec, **top, "body": body}}

    with pytest.raises(ActionError, match=re.escape(message)) as caught:
        parse(changed(refused))
    assert "Adobe's certificate-based authentication guardrail" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert parse(changed(accepted)).auth.custom is not None


def test_a_refused_guardrail_is_one_line_and_exit_2_on_the_cli(tmp_path: Path) -> None:
    spec = json.loads(ADOBE_ENTRA)
    action = tmp_path / "pasted.json"
    bad = {**spec, "endpoint": spec["endpoint"] + "?p=1"}
    action.write_text(json.dumps({"name": "pasted", "url": "https://x.example.com/", "authentication": bad}))
    before = action.read_bytes()
    done = _run("call", str(action))
    assert done.returncode == ExitCode.USAGE and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "'?'" in done.stderr and "Traceback" not in done.stderr and action.read_bytes() == before


@pytest.fixture
def adobe_api(pki: LabPaths) -> Iterator[RunningAdobeApi]:
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, phase=Phase.OVERLAP, quiet=True)) as running:
        yield running


def test_idp_leaves_writes_the_listed_leaves_for_upload(
    pki: LabPaths, adobe_api: RunningAdobeApi, fresh_server: ServerFactory, tmp_path: Path
) -> None:
    out = tmp_path / "leaves"
    args = (
        "idp-leaves",
        "--api",
        adobe_api.url,
        "--token",
        "t",
        "--api-key",
        "k",
        "--org-id",
        "o@AdobeOrg",
        "--certs",
        str(pki.root),
        "--out",
        str(out),
    )
    done = _run(*args)
    assert done.returncode == ExitCode.OK, done.stderr
    files = sorted(out.glob("*.pem"))
    assert len(files) == 2 and all(f.name.startswith("ajo-journeys.aep-mtls.adobe.com-") for f in files)
    written = [load_pem_chain(f) for f in files]
    assert all(len(certs) == 1 for certs in written)  # the leaf alone, as Adobe asks
    assert {certs[0] for certs in written} == {_leaf(pki), _leaf(pki, Identity.ADOBE_ROTATED)}
    assert x5t(_leaf(pki)) in done.stdout and "thumbprint" in done.stdout
    again = _run(*args)
    assert again.returncode == ExitCode.OK and again.stdout.count("kept ") == 2  # nothing rewritten
    files[0].write_text(files[1].read_text())
    clash = _run(*args)
    assert clash.returncode == ExitCode.USAGE and "nothing is overwritten" in clash.stderr
    files[0].unlink()
    _run(*args)
    # what it wrote is what the identity provider registers: both leaves of the overlap get a token
    server = fresh_server(mode=Mode.TLS, authorize=Authorize.TOKEN, idp_register=tuple(files))
    for who in (Identity.ADOBE, Identity.ADOBE_ROTATED):
        assertion = client_assertion(_identity(pki, who), CLIENT, _endpoint(server))
        assert _post(server, pki, assertion).status_code == 200


def test_the_examples_folder_has_the_certificate_example() -> None:
    custom = load(EXAMPLES / "certificate-auth-action.json").auth.custom
    assert custom is not None and custom.certificate_credential and custom.aud == custom.endpoint


def test_token_url_moves_aud_only_when_it_was_the_endpoint() -> None:
    spec = json.loads(ADOBE_ENTRA)
    same = parse({"name": "x", "url": "https://x.example.com/", "authentication": spec})
    other = parse({"name": "x", "url": "https://x.example.com/", "authentication": {**spec, "aud": "api://lab"}})
    assert same.with_token_url("https://localhost:9/t").auth.custom.aud == "https://localhost:9/t"  # type: ignore[union-attr]
    assert other.with_token_url("https://localhost:9/t").auth.custom.aud == "api://lab"  # type: ignore[union-attr]
