"""AJO's runtime rules and authentication, against a scripted HTTPS endpoint over real sockets."""

from __future__ import annotations

import base64
import itertools

import pytest

from mtls_lab.caller.action import parse
from mtls_lab.caller.call import CallOptions, TokenCache, call, lab_identity
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.certs.layout import LabPaths
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.settings import Mode
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


@pytest.mark.parametrize(
    ("inject", "where"),
    [
        ({"location": "bearer"}, ("Authorization", "Bearer tok-1")),
        ({"location": "header", "name": "X-Token"}, ("X-Token", "tok-1")),
        ({"location": "query", "name": "token"}, ("?token=tok-1", None)),
    ],
)
def test_custom_authorization_injects_the_token(
    inject: dict[str, str], where: tuple[str, str | None], pki: LabPaths
) -> None:
    script = Script({"/token": [(200, '{"data": {"access_token": "tok-1"}}', {})]})
    with scripted_endpoint(pki, script) as url:
        auth = {
            "type": "customAuthorization",
            "endpoint": url + "/token",
            "tokenPath": "data.access_token",
            "inject": inject,
        }
        assert ajo_call(pki, url, authentication=auth).status == 200
    target = script.requests[-1]
    if where[1] is None:
        assert str(target["path"]).endswith(where[0])
    else:
        assert target["headers"][where[0]] == where[1]  # type: ignore[index]


def test_the_token_is_cached_for_cache_seconds(pki: LabPaths) -> None:
    clock_values = itertools.count(0.0, 0.001)
    now = [0.0]
    script = Script({"/token": [(200, '{"access_token": "tok-1"}', {}), (200, '{"access_token": "tok-2"}', {})]})
    with scripted_endpoint(pki, script) as url:
        action = parse(
            {
                "name": "x",
                "url": url + "/custom-action",
                "authentication": {"type": "customAuthorization", "endpoint": url + "/token", "cacheSeconds": 60},
            }
        )
        tokens = TokenCache(clock=lambda: now[0] + next(clock_values))
        options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), retries=0)
        for _ in range(3):
            call(action, {}, options, tokens)
        now[0] = 61.0
        call(action, {}, options, tokens)
    assert script.hits["/token"] == 2 and tokens.fetches == 2
    sent = [r["headers"]["Authorization"] for r in script.requests if r["path"] == "/custom-action"]  # type: ignore[index]
    assert sent == ["Bearer tok-1"] * 3 + ["Bearer tok-2"]


def test_a_failing_token_call_is_explained(pki: LabPaths) -> None:
    script = Script({"/token": [(500, "down", {})]})
    with scripted_endpoint(pki, script) as url:
        verdict = ajo_call(pki, url, authentication={"type": "customAuthorization", "endpoint": url + "/token"})
    assert verdict.outcome.value == "http_error" and "token call" in verdict.explanation
    assert script.hits["/custom-action"] == 0


def test_custom_authorization_against_the_lab_token_endpoint(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS)
    action = parse(
        {
            "name": "x",
            "url": server.url + "/orders",
            "authentication": {"type": "customAuthorization", "endpoint": server.url + "/_lab/token"},
        }
    )
    options = CallOptions(pki=pki, identity=lab_identity(pki, "adobe", Chain.FULL), behavior=ClientBehavior.JAVA)
    assert call(action, {}, options).status == 200
    entry = server.record.newest(1, REQUESTS)[0]
    bearer = dict(entry["headers"])["authorization"]
    assert bearer.startswith("Bearer lab-token-")
