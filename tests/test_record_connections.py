"""Every connection on the record: each kind of rejected handshake in the matrix is in /_lab/calls and the
JSONL file with its alert and the certificate that was (or was not) presented; requests link to their
connection; the filters of /_lab/calls; and a flood of garbage stays bounded.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_lab.certs.inspect import fingerprint, load_pem_chain
from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.matrix.runner import call_at, server_config
from mtls_lab.matrix.scenarios import SCENARIOS, Scenario
from mtls_lab.server import record as record_module
from mtls_lab.server.record import CONNECTIONS, REQUESTS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import AlertStyle, Mode
from tests.conftest import ServerFactory
from tests.support.logs import caught_logs
from tests.support.record import entries, wait_for_entry
from tests.support.tls_clients import client_context, identity_files


def _kinds() -> list[Scenario]:
    """One matrix row per kind of rejected handshake: alert, certificate sent or not, TLS version."""
    kinds: dict[tuple[str, bool | None, Any], Scenario] = {}
    for scenario in SCENARIOS:
        if scenario.expect.startswith("alert ") and scenario.trust_sync is None and scenario.tls is not None:
            kinds.setdefault((scenario.expect, scenario.sent, scenario.tls), scenario)
    return list(kinds.values())


KINDS = _kinds()


def _calls(server: RunningServer, query: str) -> list[dict[str, Any]]:
    """GET /_lab/calls (with the Adobe-like certificate, which every mode lets through)."""
    pki = LabPaths(server.loaded.config.certs)
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        answer = client.get(f"{server.url}/_lab/calls?{query}")
    assert answer.status_code == 200, answer.text
    calls: list[dict[str, Any]] = answer.json()["calls"]
    return calls


def _leaf_sha256(pki: LabPaths, scenario: Scenario) -> str:
    assert scenario.identity is not None
    return fingerprint(load_pem_chain(pki.client_leaf(scenario.identity))[0])


def test_every_kind_of_rejected_handshake_in_the_matrix_is_covered() -> None:
    alerts = {s.expect for s in KINDS}
    assert alerts >= {
        "alert handshake_failure",
        "alert certificate_required",
        "alert unknown_ca",
        "alert certificate_expired",
        "alert unsupported_certificate",
        "alert protocol_version",
    }, alerts
    assert {s.sent for s in KINDS} == {True, False}  # presented and not presented


@pytest.mark.parametrize("scenario", KINDS, ids=[s.id for s in KINDS])
def test_a_rejected_handshake_is_on_the_record_with_its_alert_and_certificate(
    scenario: Scenario, pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path
) -> None:
    config = dataclasses.replace(server_config(scenario, pki), record=tmp_path / "record.jsonl")
    server = fresh_server(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
    result = call_at(scenario, pki, server.url)
    assert result.actual == scenario.expect  # the matrix row holds
    alert = scenario.expect.removeprefix("alert ")
    listed = _calls(server, "rejected=1&kind=connection&limit=5")
    assert len(listed) == 1, listed  # the caller's one rejected connection (the listing's own is not recorded)
    entry = listed[0]
    assert entry["record_version"] == 2 and entry["outcome"] == "rejected"
    assert (entry["alert_sent"]["name"], entry["alert_sent"]["observed"]) == (alert, True)
    assert entry["alert_sent"]["after_client_finished"] is (
        entry["tls_version"] == "TLSv1.3" and alert != "protocol_version"
    )
    assert [json.dumps(e, sort_keys=True) for e in entries(tmp_path / "record.jsonl", "connection")] == [
        json.dumps(entry, sort_keys=True)
    ]  # the JSONL file holds the same entry
    if scenario.sent:
        leaf = _leaf_sha256(pki, scenario)
        assert entry["client_certificate"] == "presented" and entry["client_chain"][0]["sha256"] == leaf
        assert entry["ssl_client_verify"].startswith("FAILED:")
        assert _calls(server, f"fingerprint={leaf}&kind=connection") == [entry]
        assert _calls(server, f"fingerprint={'0' * 64}&kind=connection") == []  # the sibling: another leaf
    elif alert == "protocol_version":  # no common version: the handshake ended at the ClientHello
        assert (entry["client_certificate"], entry["certificate_requested"], entry["client_chain"]) == (
            "not_sent",
            False,
            [],
        )
        assert entry["versions_offered"] == ["TLSv1.3"] and entry["tls_version"] is None
    else:  # asked, and the client sent an empty Certificate
        assert (entry["client_certificate"], entry["client_chain"], entry["ssl_client_verify"]) == ("empty", [], "NONE")
        assert entry["certificate_requested"] and entry["ca_names_advertised"] == list(server.loaded.advertised)
    assert entry["sni"] == "localhost" and entry["requests"] == 0


def test_an_accepted_connection_links_its_requests(pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MTLS)
    context = client_context(pki, "1.3", identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        statuses = [client.post(f"{server.url}/kept/{i}", json={}).status_code for i in range(3)]
    assert statuses == [200] * 3
    calls = server.record.newest(10, REQUESTS)
    (connection_id,) = {c["connection_id"] for c in calls}
    entry = wait_for_entry(server.record, lambda e: e["connection_id"] == connection_id, CONNECTIONS)
    assert (entry["outcome"], entry["requests"], entry["alert_sent"]) == ("accepted", 3, None)
    assert entry["client_certificate"] == "presented" and entry["ssl_client_verify"] == "SUCCESS"
    assert [c["subject"] for c in entry["client_chain"]] == [
        c.subject.rfc4514_string() for c in load_pem_chain(pki.client_cert(Identity.ADOBE))
    ]  # the whole chain as sent: leaf and intermediate
    assert entry["versions_offered"] == ["TLSv1.3"] and entry["tls_version"] == "TLSv1.3"


def test_last_request_is_the_newest_request_when_its_connection_closed_after_it(
    pki: LabPaths, fresh_server: ServerFactory
) -> None:
    """``limit=1`` is the newest entry: the connection's, written when it closed, after its request, with no
    headers and no body. ``last=request`` is the newest request."""
    server = fresh_server(mode=Mode.MTLS)
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        assert client.post(f"{server.url}/hook", json={"firstName": "Ada"}).status_code == 200
    wait_for_entry(server.record, lambda e: e["requests"] == 1, CONNECTIONS)
    (newest,) = _calls(server, "limit=1")
    assert newest["kind"] == "connection" and "headers" not in newest  # what a reader of the newest entry got
    (last,) = _calls(server, "last=request")
    assert (last["kind"], last["path"], json.loads(last["body"])) == ("request", "/hook", {"firstName": "Ada"})
    assert last["connection_id"] == newest["connection_id"] and last["headers"]
    assert _calls(server, "last=connection") == [newest]  # the sibling: the newest connection
    assert _calls(server, "last=request&rejected=1") == []  # filters still apply: that request was accepted


def test_the_lab_routes_alone_leave_no_connection_entry(pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MIXED)
    for _ in range(3):
        assert _calls(server, "limit=1") == []  # monitoring the lab does not fill its record
    with httpx.Client(verify=client_context(pki, None, None), timeout=5) as client:
        assert client.post(server.url + "/x", json={}).status_code == 403  # the sibling: a real call
    wait_for_entry(server.record, lambda e: e["requests"] == 1, CONNECTIONS)
    assert len(server.record.newest(10, CONNECTIONS)) == 1


def test_a_flood_of_garbage_is_one_line_each_and_bounded_in_memory(
    pki: LabPaths, fresh_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_module, "MEMORY_LIMIT", 20)
    server = fresh_server(mode=Mode.MTLS)  # no --record: the newest entries in memory
    flood = 60
    with caught_logs() as logs:
        for _ in range(flood):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"\x00" * 64)
                sock.recv(10)  # the server closes without an alert
        lines = logs.wait_for(flood)
    assert len(lines) == flood and all("wrong version number, sent no alert" in line for line in lines)
    kept = server.record.newest(1000)
    assert len(kept) == 20 and all(e["outcome"] == "rejected" for e in kept)  # the newest, no more


def _rejected(server: RunningServer, pki: LabPaths, identity: Identity) -> None:
    context = client_context(pki, None, identity_files(pki, identity))
    with pytest.raises(httpx.TransportError), httpx.Client(verify=context, timeout=5) as client:
        client.post(f"{server.url}/custom-action", json={})


@pytest.mark.parametrize(
    ("style", "alert"), [(AlertStyle.JAVA, "certificate_unknown"), (AlertStyle.OPENSSL, "certificate_expired")]
)
def test_the_record_names_openssls_own_verify_error_of_each_connection_whatever_the_alert_style(
    style: AlertStyle, alert: str, pki: LabPaths, fresh_server: ServerFactory
) -> None:
    # --alert-style java replaces OpenSSL's error to choose its alert; the verify callback notes the
    # original on the connection's own state, so each entry names its connection's real error
    server = fresh_server(mode=Mode.MTLS, alert_style=style)
    _rejected(server, pki, Identity.EXPIRED)
    _rejected(server, pki, Identity.SELF_SIGNED)
    expired, self_signed = reversed(_calls(server, "rejected=1&kind=connection&limit=5"))
    assert expired["alert_sent"]["name"] == alert
    assert expired["error"] == "certificate verify failed: certificate has expired", expired["error"]
    assert self_signed["error"].startswith("certificate verify failed: self-signed certificate"), self_signed["error"]
