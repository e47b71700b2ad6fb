"""AJO's runtime rules and authentication, against a scripted HTTPS endpoint over real sockets."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, TokenCache, call, lab_identity
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.settings import Authorize, Mode
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.support.scripted_endpoint import Script, scripted_endpoint


@pytest.mark.parametrize("status", [500, 502, 429, 400])
def test_http_errors_are_retried_up_to_three_times(status: int, pki: LabPaths) -> None:
    script = Script({"/custom-action": [(status, '{"error": "x"}', {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3)
    assert script.hits["/custom-action"] == 4 and len(verdict.attempts) == 4
    assert verdict.status == status and verdict.jo_status_code == f"http_{status}"


@pytest.mark.parametrize("status", [401, 403, 404])
def test_401_403_404_are_never_retried(status: int, pki: LabPaths) -> None:
    script = Script({"/custom-action": [(status, "no", {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3)
    assert script.hits["/custom-action"] == 1 and len(verdict.attempts) == 1


def test_a_retry_that_succeeds_is_accepted(pki: LabPaths) -> None:
    script = Script({"/custom-action": [(503, "busy", {}), (503, "busy", {}), (200, '{"ok": 1}', {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3)
    assert verdict.outcome.value == "accepted"
    assert [a.status for a in verdict.attempts] == [503, 503, 200]


def test_302_is_followed_and_other_redirects_are_not(pki: LabPaths) -> None:
    script = Script(
        {
            "/custom-action": [(302, "", {"Location": "/moved"})],
            "/moved": [(200, "{}", {})],
            "/other": [(301, "", {"Location": "/moved"})],
        }
    )
    with scripted_endpoint(pki, script) as url:
        assert ajo_call(pki, url).status == 200
        assert script.hits["/moved"] == 1
        moved = call(
            parse({"name": "x", "url": url + "/other"}),
            {},
            CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0),
        )
    assert moved.status == 301 and script.hits["/moved"] == 1


def test_a_first_call_that_times_out_is_not_retried(pki: LabPaths) -> None:
    script = Script(delay={"/custom-action": 1.5})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3, timeout=1)
    assert verdict.outcome.value == "timeout" and verdict.jo_status_code == "timedout"
    assert len(verdict.attempts) == 1
    assert verdict.outcome.exit_code == 5
    # a first attempt that times out has no underlying error (AJO's step event fields)
    assert verdict.step_event.error == "timedout" and verdict.step_event.orig_error is None


def test_the_deadline_reached_during_the_retries_is_a_timeout_that_keeps_the_original_error(pki: LabPaths) -> None:
    """AJO: "If the end of the timeout duration is reached during the retries ... counted as a timeout error";
    the step event keeps the error of the attempt before the retry (actionExecOrigError / ...Code)."""
    script = Script({"/custom-action": [(500, '{"error": "x"}', {})]}, delay={"/custom-action": 0.4})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3, timeout=1)
    assert 2 <= len(verdict.attempts) <= 3 and verdict.attempts[0].status == 500
    assert verdict.outcome.value == "timeout" and verdict.jo_status_code == "timedout"
    assert verdict.to_json()["actionExecError"] == "timedout"
    assert verdict.to_json()["actionExecOrigError"] == "http"
    assert verdict.to_json()["actionExecOrigErrorCode"] == "500"
    assert "during the retries" in verdict.explanation


def test_retries_that_end_inside_the_timeout_keep_the_http_error(pki: LabPaths) -> None:
    script = Script({"/custom-action": [(500, '{"error": "x"}', {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, retries=3, timeout=5)
    assert len(verdict.attempts) == 4 and verdict.jo_status_code == "http_500"
    event = verdict.to_json()
    assert (event["actionExecError"], event["actionExecErrorCode"]) == ("http", "500")
    assert event["actionExecOrigError"] is None and event["actionExecOrigErrorCode"] is None


def test_basic_and_api_key_authentication(pki: LabPaths) -> None:
    script = Script()
    with scripted_endpoint(pki, script) as url:
        ajo_call(pki, url, authentication={"type": "basic", "username": "ajo", "password": "s3cret"})
        ajo_call(pki, url, authentication={"type": "apiKey", "name": "X-Api-Key", "value": "k1"})
        ajo_call(pki, url, authentication={"type": "apiKey", "name": "api_key", "value": "k2", "location": "query"})
    basic, header, query = script.requests
    assert basic["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ajo:s3cret").decode()  # type: ignore[index]
    assert header["headers"]["X-Api-Key"] == "k1"  # type: ignore[index]
    assert str(query["path"]).endswith("?api_key=k2")


def _custom(url: str, **fields: object) -> dict[str, object]:
    """AJO's custom authorization payload for a token endpoint at ``url`` (a GET unless a body is given)."""
    return {
        "type": "customAuthorization",
        "endpoint": url,
        "method": "GET",
        "tokenInResponse": "json://access_token",
        **fields,
    }


@pytest.mark.parametrize(
    ("injection", "where"),
    [
        ({}, ("Authorization", "Bearer tok-1")),  # authorizationType absent: bearer, as in Adobe's example
        ({"authorizationType": "bearer"}, ("Authorization", "Bearer tok-1")),
        ({"authorizationType": "header", "tokenTarget": "X-Token"}, ("X-Token", "tok-1")),
        ({"authorizationType": "queryParam", "tokenTarget": "token"}, ("?token=tok-1", None)),
    ],
)
def test_custom_authorization_injects_the_token(
    injection: dict[str, str], where: tuple[str, str | None], pki: LabPaths
) -> None:
    script = Script({"/token": [(200, '{"data": {"access_token": "tok-1"}}', {})]})
    with scripted_endpoint(pki, script) as url:
        auth = _custom(url + "/token", tokenInResponse="json://data.access_token", **injection)
        assert ajo_call(pki, url, authentication=auth).status == 200
    target = script.requests[-1]
    if where[1] is None:
        assert str(target["path"]).endswith(where[0])
        assert "Authorization" not in target["headers"]  # type: ignore[operator]
    else:
        assert target["headers"][where[0]] == where[1]  # type: ignore[index]


@pytest.mark.parametrize(
    ("cache", "seconds_later", "fetches"),
    [
        (None, 3599, 1),  # AJO's default: one hour
        (None, 3601, 2),
        ({"duration": 2, "timeUnit": "minutes"}, 119, 1),
        ({"duration": 2, "timeUnit": "minutes"}, 121, 2),
        ({"duration": 1500, "timeUnit": "milliseconds"}, 1.4, 1),
        ({"duration": 1500, "timeUnit": "milliseconds"}, 1.6, 2),
        ({"duration": 1, "timeUnit": "days"}, 86399, 1),
        ({"expiryInResponse": "json://expiryDuration", "timeUnit": "minutes"}, 299, 1),  # the answer says 5
        ({"expiryInResponse": "json://expiryDuration", "timeUnit": "minutes"}, 301, 2),
        ({"expiryInResponse": "json://expiryDuration", "timeUnit": "seconds"}, 6, 2),
    ],
)
def test_the_token_is_cached_for_cache_duration(
    cache: dict[str, object] | None, seconds_later: float, fetches: int, pki: LabPaths
) -> None:
    now = [0.0]
    answers: list[tuple[int, str, dict[str, str]]] = [
        (200, f'{{"access_token": "tok-{n}", "expiryDuration": 5}}', {}) for n in (1, 2)
    ]
    script = Script({"/token": answers})
    with scripted_endpoint(pki, script) as url:
        auth = _custom(url + "/token", **({"cacheDuration": cache} if cache else {}))
        action = parse({"name": "x", "url": url + "/custom-action", "authentication": auth})
        tokens = TokenCache(clock=lambda: now[0])
        options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0)
        for _ in range(2):
            call(action, {}, options, tokens, clock=lambda: now[0])
        now[0] = seconds_later
        last = call(action, {}, options, tokens, clock=lambda: now[0])
    assert script.hits["/token"] == fetches and tokens.fetches == fetches
    sent = [r["headers"]["Authorization"] for r in script.requests if r["path"] == "/custom-action"]  # type: ignore[index]
    assert sent == ["Bearer tok-1"] * 2 + [f"Bearer tok-{fetches}"]
    assert last.token_call is not None and last.token_call.cached is (fetches == 1)


@pytest.mark.parametrize(
    ("body_type", "content_type", "sent"),
    [
        ("form", "application/x-www-form-urlencoded; charset=UTF-8", "grant_type=client_credentials&scope=a+b&n=3"),
        ("json", "application/json; charset=UTF-8", '{"grant_type": "client_credentials", "scope": "a b", "n": 3}'),
    ],
)
def test_the_token_call_body_is_serialized_as_body_type_says(
    body_type: str, content_type: str, sent: str, pki: LabPaths
) -> None:
    script = Script({"/token": [(200, '{"access_token": "tok-1"}', {})]})
    params = {"grant_type": "client_credentials", "scope": "a b", "n": 3}
    with scripted_endpoint(pki, script) as url:
        auth = _custom(url + "/token", method="POST", body={"bodyType": body_type, "bodyParams": params})
        assert ajo_call(pki, url, authentication=auth).status == 200
    token_request = script.requests[0]
    assert token_request["method"] == "POST"
    assert token_request["headers"]["Content-Type"] == content_type  # type: ignore[index]
    assert token_request["body"] == sent


def test_token_in_response_takes_the_whole_answer(pki: LabPaths) -> None:
    script = Script({"/token": [(200, "bare-token-7\n", {"content-type": "text/plain"})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, authentication=_custom(url + "/token", tokenInResponse="response"))
    assert verdict.status == 200
    assert script.requests[-1]["headers"]["Authorization"] == "Bearer bare-token-7"  # type: ignore[index]


def test_a_token_selector_that_finds_nothing_is_explained(pki: LabPaths) -> None:
    script = Script({"/token": [(200, '{"token": "t"}', {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, authentication=_custom(url + "/token"))
    assert verdict.failed_call == "token" and verdict.server_reason == "no_token_in_response"
    assert "its fields: token" in verdict.explanation and "tokenInResponse" in verdict.fix
    assert script.hits["/custom-action"] == 0


def test_a_failing_token_call_is_explained(pki: LabPaths) -> None:
    script = Script({"/token": [(500, "down", {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, authentication=_custom(url + "/token"))
    assert verdict.outcome.value == "http_error" and "token call" in verdict.explanation
    assert verdict.failed_call == "token" and verdict.token_call is not None
    assert verdict.token_call.status == 500
    assert script.hits["/custom-action"] == 0


def test_the_token_call_is_made_without_the_client_certificate(pki: LabPaths) -> None:
    """AJO most likely makes the token call without its certificate (a model); --token-cert presents it."""
    script = Script({"/token": [(200, '{"access_token": "tok-1"}', {})]})
    with scripted_endpoint(pki, script, client_ca=CA.ADOBE_ROOT) as url:
        auth = _custom(url + "/token")
        without = ajo_call(pki, url, authentication=auth)
        presented = call(
            parse({"name": "x", "url": url + "/custom-action", "authentication": auth}),
            {},
            CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0, token_cert=True),
        )
    token_calls = [r for r in script.requests if r["path"] == "/token"]
    assert [r["client_certificate"] for r in token_calls] == [False, True]
    actions = [r for r in script.requests if r["path"] == "/custom-action"]
    assert [r["client_certificate"] for r in actions] == [True, True]  # the action's call always presents it
    assert without.token_call is not None and without.token_call.client_certificate is False
    assert presented.token_call is not None and presented.token_call.client_certificate is True


def test_a_token_endpoint_that_requires_mtls_fails_the_token_call(pki: LabPaths, lab_server: ServerFactory) -> None:
    """Adobe: "OAuth token endpoints must not use mTLS". An mTLS-only one refuses the certificate-less token call."""
    token_server, target = lab_server(mode=Mode.MTLS), lab_server(mode=Mode.TLS, authorize=Authorize.TOKEN)
    auth = {
        "type": "customAuthorization",
        "endpoint": token_server.url + "/_lab/token",
        "method": "POST",
        "body": {"bodyType": "form", "bodyParams": {"grant_type": "client_credentials"}},
        "tokenInResponse": "json://access_token",
    }
    action = parse({"name": "x", "url": target.url + "/orders", "authentication": auth})
    options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0, tls="1.3")
    failed = call(action, {}, options)
    assert failed.failed_call == "token" and failed.alert == "certificate_required"
    assert "token call" in failed.explanation and "without one" in failed.explanation
    assert "turn mTLS off on the token endpoint" in failed.fix
    assert failed.token_call is not None and failed.token_call.client_certificate is False
    # the sibling: the same call presenting the certificate on the token call gets its token, and is accepted
    accepted = call(action, {}, dataclasses.replace(options, token_cert=True))
    assert accepted.outcome.value == "accepted" and accepted.failed_call is None


def test_custom_authorization_against_the_lab_token_endpoint(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS)
    action = parse(
        {
            "name": "x",
            "url": server.url + "/orders",
            "authentication": {
                "type": "customAuthorization",
                "endpoint": server.url + "/_lab/token",
                "method": "GET",
                "tokenInResponse": "json://access_token",
            },
        }
    )
    options = CallOptions(
        pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), behavior=ClientBehavior.JAVA, token_cert=True
    )
    verdict = call(action, {}, options)
    assert verdict.status == 200
    entry = server.record.newest(1, REQUESTS)[0]
    assert dict(entry["headers"])["authorization"].startswith("Bearer ey")  # a JWT the lab issued
