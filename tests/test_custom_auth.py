"""Custom authorization exactly as AJO documents it: Adobe's examples pasted unchanged, one-line errors for
misspelled fields, form versus json bodies against real token endpoints (the lab server's), over real TLS."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mtls_lab.caller.action import ActionError, load, parse
from mtls_lab.caller.auth import AuthorizationType, BodyType, TimeUnit, parse_auth
from mtls_lab.caller.call import CallOptions, call, lab_identity
from mtls_lab.caller.tls import Chain
from mtls_lab.certs.layout import LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Authorize, Mode
from mtls_lab.server.tokens import TokenIssuer
from tests.conftest import ServerFactory
from tests.test_cli import _run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Adobe's examples (Journey Optimizer, "External data sources", "Custom authentication mode"), verbatim:
# the bearer example even ends with trailing commas.
ADOBE_BEARER = """{
    "type": "customAuthorization",
    "endpoint": "https://<your_auth_endpoint>/epsilon/oauth2/access_token",
    "method": "POST",
    "headers": {
      "Authorization": "Basic EncodeBase64(<epsilon Client Id>:<epsilon Client Secret>)"
    },
    "body": {
      "bodyType": "form",
      "bodyParams": {
        "scope": "cn mail givenname uid employeeNumber",
        "grant_type": "password",
        "username": "<epsilon User Name>",
        "password": "<epsilon User Password>"
      }
    },
    "tokenInResponse": "json://access_token",
    "cacheDuration": {
      "duration": 5,
      "timeUnit": "minutes"
    },
  },"""
ADOBE_HEADER = """{
  "type": "customAuthorization",
  "endpoint": "https://myapidomain.com/v2/user/login",
  "method": "POST",
  "headers": {
    "x-retailer": "any value"
  },
  "body": {
    "bodyType": "form",
    "bodyParams": {
      "secret": "any value",
      "username": "any value"
    }
  },
  "tokenInResponse": "json://token",
  "cacheDuration": {
    "expiryInResponse": "json://expiryDuration",
    "timeUnit": "minutes"
  },
  "authorizationType": "header",
  "tokenTarget": "x-auth-token"
} """


def _action_file(tmp_path: Path, authentication: str, url: str) -> Path:
    """An action file with Adobe's authentication block pasted in, unchanged."""
    path = tmp_path / "action.json"
    path.write_text(
        '{\n"name": "pasted_from_ajo",\n"url": "' + url + '",\n"method": "POST",\n'
        '"payload": [{"path": "orderId", "type": "constant", "value": "ORD-1"}],\n'
        '"authentication": ' + authentication + "\n}\n"
    )
    return path


@pytest.fixture(scope="module")
def token_server(lab_server: ServerFactory) -> RunningServer:
    """The token endpoints live on a TLS-only server (AJO makes the token call without a certificate), whose own
    routes authorize callers by the token."""
    return lab_server(mode=Mode.TLS, authorize=Authorize.TOKEN)


@pytest.mark.parametrize(
    ("example", "token_path", "header"),
    [(ADOBE_BEARER, "/_lab/oauth2/token", "authorization"), (ADOBE_HEADER, "/_lab/login", "x-auth-token")],
    ids=["bearer-epsilon", "header-expiry-in-response"],
)
def test_adobes_examples_pasted_unchanged_are_accepted(
    example: str,
    token_path: str,
    header: str,
    pki: LabPaths,
    lab_server: ServerFactory,
    token_server: RunningServer,
    tmp_path: Path,
) -> None:
    target = lab_server(mode=Mode.MTLS)
    path = _action_file(tmp_path, example, target.url + "/orders")
    done = _run("call", str(path), "--certs", str(pki.root), "--token-url", token_server.url + token_path, "--json")
    verdict = json.loads(done.stdout)
    assert done.returncode == ExitCode.OK, verdict["explanation"]
    assert verdict["outcome"] == "accepted" and verdict["token_call"]["client_certificate"] is False
    sent = dict(target.record.newest(1, REQUESTS)[0]["headers"])[header]
    assert TokenIssuer.of_lab(pki).verify(sent.removeprefix("Bearer ")) is None  # the token the lab issued
    assert header != "authorization" or sent.startswith("Bearer ")


def test_the_bearer_example_sends_its_form_with_encode_base64(
    pki: LabPaths, token_server: RunningServer, lab_server: ServerFactory, tmp_path: Path
) -> None:
    target = lab_server(mode=Mode.MTLS)
    action = load(_action_file(tmp_path, ADOBE_BEARER, target.url + "/orders"))
    assert any("trailing commas" in w for w in action.warnings)
    call(action.with_token_url(token_server.url + "/_lab/oauth2/token"), {}, _options(pki))
    token_call = next(
        e for e in reversed(token_server.record.newest(20, REQUESTS)) if e["path"] == "/_lab/oauth2/token"
    )
    headers = dict(token_call["headers"])
    assert headers["content-type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    expected = base64.b64encode(b"<epsilon Client Id>:<epsilon Client Secret>").decode()
    assert headers["authorization"] == f"Basic {expected}"
    assert "grant_type=password" in token_call["body"] and "scope=cn+mail+givenname" in token_call["body"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tokenInResponce", "json://access_token", "unknown field 'tokenInResponce': did you mean tokenInResponse?"),
        ("cacheDuraton", {"duration": 1, "timeUnit": "hours"}, "did you mean cacheDuration?"),
        ("authorisationType", "bearer", "did you mean authorizationType?"),
        ("TokenTarget", "x", "did you mean tokenTarget?"),
        ("endPoint", "https://idp.example.com/token", "did you mean endpoint?"),
        ("grant_type", "password", "unknown field 'grant_type': AJO's fields here: type, subType"),
        ("tokenPath", "access_token", "tokenPath is not an AJO field (the lab's old name): use tokenInResponse"),
        ("cacheSeconds", 60, 'use cacheDuration, e.g. {"duration": 3600, "timeUnit": "seconds"}'),
        ("inject", {"location": "bearer"}, "inject is not an AJO field (the lab's old name): use authorizationType"),
    ],
)
def test_misspelled_and_lab_only_fields_name_the_documented_one(field: str, value: object, message: str) -> None:
    spec = {**_custom(), field: value}
    with pytest.raises(ActionError) as error:
        parse_auth(spec, "action.json")
    assert message in str(error.value) and "\n" not in str(error.value)
    parse_auth(_custom(), "action.json")  # the sibling without the field is accepted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": {"bodytype": "form", "bodyParams": {}}}, "body: unknown field 'bodytype': did you mean bodyType?"),
        ({"body": {"bodyType": "xml", "bodyParams": {}}}, "bodyType 'xml': use one of form, json"),
        ({"body": None}, "body is mandatory with POST"),
        ({"cacheDuration": {"duration": 5, "timeunit": "minutes"}}, "did you mean timeUnit?"),
        ({"cacheDuration": {"duration": 5, "timeUnit": "weeks"}}, "use one of milliseconds, seconds, minutes"),
        ({"cacheDuration": {"duration": 5, "expiryInResponse": "json://e", "timeUnit": "hours"}}, "mutually exclusive"),
        ({"cacheDuration": {"duration": 1.5, "timeUnit": "hours"}}, "give an integer"),
        ({"authorizationType": "cookie"}, "authorizationType 'cookie': use one of bearer, header, queryParam"),
        ({"authorizationType": "header"}, "tokenTarget is mandatory with authorizationType header"),
        ({"tokenInResponse": "access_token"}, 'give "response" or a selector like "json://access_token"'),
        ({"method": "PUT"}, "the token call uses GET or POST"),
        ({"headers": {"Authorization": "Basic EncodeUrl(a:b)"}}, "EncodeBase64(...) is the only function"),
        ({"aud": "https://idp.example.com/token"}, 'aud belongs to certificate-based authentication: add "subType"'),
        ({"subType": "certificate"}, "subType 'certificate' (did you mean certificateCredential?)"),
    ],
)
def test_values_ajo_would_refuse_are_one_line_errors(change: dict[str, object], message: str) -> None:
    spec = {**_custom(), **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    with pytest.raises(ActionError) as error:
        parse_auth(spec, "action.json")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_documented_field_is_read() -> None:
    auth = parse_auth(
        _custom(
            headers={"Authorization": "Basic EncodeBase64(id:secret)"},
            body={"bodyType": "json", "bodyParams": {"client_id": "EncodeBase64(x)", "nested": {"a": 1}}},
            cacheDuration={"duration": 2, "timeUnit": "days"},
            authorizationType="Bearer",  # Adobe's Entra ID example writes it with a capital B
        ),
        "action.json",
    )
    custom = auth.custom
    assert custom is not None and custom.body_type is BodyType.JSON
    assert custom.headers == {"Authorization": "Basic " + base64.b64encode(b"id:secret").decode()}
    assert custom.body_params == {"client_id": base64.b64encode(b"x").decode(), "nested": {"a": 1}}
    assert custom.cache.fixed_seconds == 2 * 86400 and custom.cache.unit is TimeUnit.DAYS
    assert custom.authorization_type is AuthorizationType.BEARER
    form = parse_auth(_custom(body={"bodyType": "form", "bodyParams": {"a": "1", "nested": {"b": 2}}}), "x")
    assert form.custom is not None and form.custom.body_params == {"a": "1"}  # a form cannot carry a nested object
    assert any("nested" in w for w in form.warnings)


@pytest.mark.parametrize("unit", list(TimeUnit))
def test_every_time_unit_is_read(unit: TimeUnit) -> None:
    auth = parse_auth(_custom(cacheDuration={"duration": 3, "timeUnit": unit.value}), "x")
    assert auth.custom is not None and auth.custom.cache.fixed_seconds == pytest.approx(3 * unit.seconds)


@pytest.mark.parametrize(
    ("path", "body_type", "accepted", "error"),
    [
        ("/_lab/oauth2/token", "form", True, None),
        ("/_lab/oauth2/token", "json", False, "invalid_request"),  # a form-only endpoint, like Entra ID or Okta
        ("/_lab/token", "form", True, None),
        ("/_lab/token", "json", True, None),
    ],
)
def test_form_and_json_token_requests_against_real_token_endpoints(
    path: str, body_type: str, accepted: bool, error: str | None, pki: LabPaths, token_server: RunningServer
) -> None:
    target_server = token_server  # TLS only; the target authorizes by the token
    body = {
        "bodyType": body_type,
        "bodyParams": {"grant_type": "client_credentials", "client_id": "ajo", "client_secret": "s"},
    }
    auth = _custom(endpoint=token_server.url + path, body=body)
    verdict = call(
        parse({"name": "x", "url": target_server.url + "/orders", "authentication": auth}), {}, _options(pki)
    )
    if accepted:
        assert verdict.outcome.value == "accepted", verdict.explanation
        return
    assert verdict.failed_call == "token" and verdict.status == 400 and verdict.server_reason == error
    assert "sent as JSON" in verdict.explanation and '"bodyType": "form"' in verdict.fix
    assert verdict.token_call is not None and verdict.token_call.error == error


def test_a_target_that_authorizes_by_token_refuses_a_call_without_one(pki: LabPaths, lab_server: ServerFactory) -> None:
    target = lab_server(mode=Mode.TLS, authorize=Authorize.TOKEN)
    verdict = call(parse({"name": "x", "url": target.url + "/orders"}), {}, _options(pki))
    assert verdict.status == 401 and verdict.server_reason == "token_missing"
    auth = _custom(endpoint=target.url + "/_lab/token", method="GET", body=None)
    auth = {k: v for k, v in auth.items() if v is not None}
    with_token = call(parse({"name": "x", "url": target.url + "/orders", "authentication": auth}), {}, _options(pki))
    assert with_token.outcome.value == "accepted"


def test_the_examples_folder_holds_each_authentication_mode() -> None:
    kinds = {}
    for path in sorted(EXAMPLES.glob("*-action.json")):
        auth = load(path).auth
        kinds[path.name] = (auth.kind.value, auth.custom.authorization_type.value if auth.custom else None)
    assert kinds["custom-auth-action.json"] == ("customAuthorization", "bearer")
    assert kinds["header-auth-action.json"] == ("customAuthorization", "header")
    assert kinds["query-auth-action.json"] == ("customAuthorization", "queryParam")
    assert kinds["basic-auth-action.json"] == ("basic", None)
    assert kinds["api-key-action.json"] == ("apiKey", None)


@pytest.mark.parametrize("name", ["custom-auth", "header-auth", "query-auth", "basic-auth", "api-key"])
def test_each_example_runs_against_the_lab(
    name: str, pki: LabPaths, token_server: RunningServer, lab_server: ServerFactory
) -> None:
    """The examples point at https://localhost:8443; here --url and --token-url aim them at running lab servers."""
    target = lab_server(mode=Mode.MTLS)
    action = load(EXAMPLES / f"{name}-action.json").with_url(target.url + "/ajo/v1/orders")
    if action.auth.custom is not None:
        path = action.auth.custom.endpoint.removeprefix("https://localhost:8443")
        action = action.with_token_url(token_server.url + path)
    verdict = call(action, {"event": {"orderId": "ORD-7781"}}, _options(pki))
    assert verdict.outcome.value == "accepted", verdict.explanation
    entry = target.record.newest(1, REQUESTS)[0]
    received = dict(entry["headers"])
    expected = {"basic-auth": "authorization", "api-key": "x-api-key", "header-auth": "x-auth-token"}
    if name == "query-auth":
        assert entry["query"].startswith("access_token=ey") and "authorization" not in received
    else:
        assert expected.get(name, "authorization") in received


def _custom(**fields: object) -> dict[str, object]:
    return {
        "type": "customAuthorization",
        "endpoint": "https://idp.example.com/oauth2/token",
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
        **fields,
    }


def _options(pki: LabPaths) -> CallOptions:
    return CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0)


def test_the_cli_names_a_misspelled_field_on_one_line(tmp_path: Path) -> None:
    misspelled = ADOBE_HEADER.replace('"tokenTarget"', '"tokenTraget"')
    done = _run("call", str(_action_file(tmp_path, misspelled, "https://crm.example.com/orders")))
    assert done.returncode == ExitCode.USAGE and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "unknown field 'tokenTraget': did you mean tokenTarget?" in done.stderr
