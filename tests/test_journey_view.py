"""The journey's view of a call: its error branch (status, body, jo_status_code) and the step event's fields.

Against the lab server over real sockets: what the error branch receives is the lab's own answer, and
actionOriginIsMTLS means "mTLS enabled for the endpoint", which a call whose certificate AJO omitted shares
with one that sent it.
"""

from __future__ import annotations

import json
import time

from mtls_lab.caller.journey_view import JO_STATUS_CAVEAT, JourneyView, exposed_body
from mtls_lab.caller.report import render
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.ajo_call import ajo_call
from tests.test_cli import _run


def test_a_403_reaches_the_error_branch_with_the_labs_body(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MIXED)
    before = time.time()
    verdict = ajo_call(pki, server.url, "none")
    assert verdict.status == 403 and verdict.journey is not None
    branch = verdict.journey.error_branch()
    assert branch is not None and branch["jo_status_code"] == "http_403" and branch["status"] == 403
    assert branch["body"] and verdict.server_reason and verdict.server_reason in branch["body"]
    event = verdict.journey.step_event()
    assert event["actionOriginIsMTLS"] is True and verdict.client_cert_sent is False  # enabled, not used
    assert event["actionOriginEndpoint"] == verdict.url and event["actionIsProxy"] is False
    assert event["actionIsThrottled"] is False and event["actionWaitTime"] == 0
    assert verdict.journey.started_at is not None and before <= verdict.journey.started_at <= time.time()
    assert event["actionExecutionOriginTime"] is not None and event["actionExecutionOriginTime"] >= 0
    text = render(verdict)
    assert "journey's error branch: jo_status_code=http_403" in text and JO_STATUS_CAVEAT in text
    assert "actionOriginIsMTLS=true (mTLS enabled for the endpoint, not proof" in text


def test_an_accepted_call_has_no_error_branch(pki: LabPaths, lab_server: ServerFactory) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.MTLS).url, "adobe")
    assert verdict.status == 200 and verdict.journey is not None
    assert verdict.journey.error_branch() is None and verdict.journey.body is None
    assert verdict.journey.step_event()["actionOriginIsMTLS"] is True and verdict.client_cert_sent is True
    assert "journey's error branch" not in render(verdict)


def test_a_tls_only_endpoint_is_not_mtls_enabled(pki: LabPaths, lab_server: ServerFactory) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.TLS).url, "adobe")
    assert verdict.status == 403 and verdict.journey is not None
    assert verdict.journey.step_event()["actionOriginIsMTLS"] is False


def test_a_handshake_failure_has_no_body_and_an_unknown_answer(pki: LabPaths, lab_server: ServerFactory) -> None:
    verdict = ajo_call(pki, lab_server(mode=Mode.MTLS).url, "impostor", behavior="openssl")
    assert verdict.alert and verdict.journey is not None
    branch = verdict.journey.error_branch()
    assert branch == {"jo_status_code": "internalError", "status": None, "body": None}
    assert "body (AJO 26.1): none" in render(verdict)


def test_the_json_output_names_adobes_fields(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MIXED)
    done = _run(
        "call",
        "--certs",
        str(pki.root),
        "--url",
        server.url + "/custom-action",
        "--identity",
        "none",
        "--server-ca",
        str(pki.ca(CA.SERVER_ROOT)),
        "--json",
    )
    assert done.returncode == ExitCode.HTTP_ERROR, done.stderr
    journey = json.loads(done.stdout)["journey"]
    assert journey["error_branch"]["jo_status_code"] == "http_403" and journey["error_branch"]["body"]
    assert set(journey["step_event"]) == {
        "actionOriginIsMTLS",
        "actionIsProxy",
        "actionOriginEndpoint",
        "actionExecutionOriginStartTime",
        "actionExecutionOriginTime",
        "actionIsThrottled",
        "actionWaitTime",
    }
    assert journey["step_event"]["actionExecutionOriginStartTime"].endswith("+00:00")


def test_only_a_non_2xx_body_is_exposed() -> None:
    assert exposed_body(200, '{"ok": true}') is None and exposed_body(204, "") is None
    assert exposed_body(403, '{"reason": "x"}') == '{"reason": "x"}' and exposed_body(500, "") == ""
    long = JourneyView(True, 500, "http_500", "x" * 500, None, "https://e/", None, None)
    assert "..." in long.lines()[0] and len(long.lines()[0]) < 400
    assert "actionOriginIsMTLS=unknown" in long.lines()[1] and "actionExecutionOriginTime=unknown" in long.lines()[1]
