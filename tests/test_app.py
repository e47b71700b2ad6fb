"""The endpoint's answers: 403 bodies, authorization, keep-alive, the record, and the lab routes."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from mtls_lab.certs.inspect import fingerprint, load_pem_chain
from mtls_lab.certs.layout import ADOBE_CN, CA, Identity, LabPaths
from mtls_lab.server.record import REQUESTS
from mtls_lab.server.run import RunningServer
from mtls_lab.server.settings import Mode, ServerConfig
from tests.conftest import ServerFactory
from tests.support.record import entries, requests
from tests.support.tls_clients import client_context, identity_files


def _client(pki: LabPaths, identity: Identity | None, tls: str | None = None) -> httpx.Client:
    return httpx.Client(verify=client_context(pki, tls, identity_files(pki, identity)), timeout=10)


def _post(
    pki: LabPaths, server: RunningServer, identity: Identity | None, path: str = "/custom-action"
) -> httpx.Response:
    with _client(pki, identity) as client:
        return client.post(server.url + path, json={"firstName": "Ada"})


def test_accepted_call_echoes_what_the_server_saw(pki: LabPaths, lab_server: ServerFactory) -> None:
    response = _post(pki, lab_server(mode=Mode.MTLS), Identity.ADOBE)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] is True
    assert body["received"] == {"method": "POST", "path": "/custom-action", "body": {"firstName": "Ada"}}
    saw = body["saw"]
    assert saw["client_certificate_presented"] is True
    assert saw["subject"].startswith(f"CN={ADOBE_CN}")
    assert "stand-in for DigiCert Global G2 TLS RSA SHA256 2020 CA1" in saw["issuer"]
    assert saw["sha256"] == fingerprint(load_pem_chain(pki.client_leaf(Identity.ADOBE))[0])
    assert saw["tls_version"] == "TLSv1.3" and saw["cipher"]


@pytest.mark.parametrize("mode", [Mode.TLS, Mode.MIXED])
def test_no_certificate_is_the_community_questions_403(mode: Mode, pki: LabPaths, lab_server: ServerFactory) -> None:
    response = _post(pki, lab_server(mode=mode), None if mode is Mode.MIXED else Identity.ADOBE)
    assert response.status_code == 403
    body = response.json()
    assert body["reason"] == "no_client_certificate"
    assert body["saw"]["client_certificate_presented"] is False
    assert body["saw"]["mode"] == mode.value
    assert ("never asked" in body["message"]) == (mode is Mode.TLS)
    assert "Server side" in body["fix"]


def test_mixed_mode_explains_the_advertised_names(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MIXED, trust=(pki.ca(CA.IMPOSTOR_ROOT),))
    body = _post(pki, server, None).json()
    assert "impostor root" in body["message"]
    assert body["saw"]["advertised_ca_names"] == [load_pem_chain(pki.ca(CA.IMPOSTOR_ROOT))[0].subject.rfc4514_string()]


def test_subject_not_on_the_allow_list(pki: LabPaths, lab_server: ServerFactory) -> None:
    denied = _post(pki, lab_server(mode=Mode.MTLS, allow_cn=("partner.example.com",)), Identity.ADOBE)
    assert denied.status_code == 403
    assert denied.json()["reason"] == "subject_not_allowed"
    assert "partner.example.com" in denied.json()["message"]
    assert _post(pki, lab_server(mode=Mode.MTLS, allow_cn=(ADOBE_CN,)), Identity.ADOBE).status_code == 200


def test_pinning_breaks_at_rotation_and_trusting_the_root_survives(pki: LabPaths, lab_server: ServerFactory) -> None:
    current = fingerprint(load_pem_chain(pki.client_leaf(Identity.ADOBE))[0])
    pinned = lab_server(mode=Mode.MTLS, pins=(current.upper(),))
    assert _post(pki, pinned, Identity.ADOBE).status_code == 200
    rotated = _post(pki, pinned, Identity.ADOBE_ROTATED)
    assert rotated.status_code == 403
    assert rotated.json()["reason"] == "fingerprint_not_pinned"
    assert "rotat" in rotated.json()["message"]
    assert _post(pki, lab_server(mode=Mode.MTLS), Identity.ADOBE_ROTATED).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
def test_target_takes_ajo_methods_on_any_path(method: str, pki: LabPaths, lab_server: ServerFactory) -> None:
    with _client(pki, Identity.ADOBE) as client:
        ok = client.request(method, lab_server(mode=Mode.MTLS).url + "/v1/journeys/profile/42?x=1")
        assert ok.status_code == 200
        assert ok.json()["received"]["path"] == "/v1/journeys/profile/42"
        assert client.delete(lab_server(mode=Mode.MTLS).url + "/v1/x").status_code == 405  # AJO has no DELETE


def test_lab_routes_need_no_certificate(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MIXED)
    with _client(pki, None) as client:
        health = client.get(server.url + "/_lab/health")
        assert health.status_code == 200 and health.json()["mode"] == "mixed"
        assert client.get(server.url + "/_lab/nothing").status_code == 404
        assert client.get(server.url + "/_lab/calls?limit=x").status_code == 400


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_keep_alive_requests_all_see_the_certificate(tls: str, pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MTLS)
    with _client(pki, Identity.ADOBE, tls) as client:
        answers = [client.post(server.url + f"/call/{i}", json={"i": i}) for i in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.json()["saw"]["sha256"] for a in answers} == {
        fingerprint(load_pem_chain(pki.client_leaf(Identity.ADOBE))[0])
    }
    calls = server.record.newest(10, REQUESTS)
    assert len(calls) == 5
    assert len({c["client"] for c in calls}) == 1, "all five requests must share one connection"
    assert len({c["connection_id"] for c in calls}) == 1 and calls[0]["connection_id"]
    assert all(c["tls_version"] == f"TLSv{tls}" for c in calls)


def test_record_keeps_every_call_as_one_whole_line(pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    server = fresh_server(mode=Mode.MIXED, record=record)
    n = 40
    statuses: list[int] = []

    def call(identity: Identity | None, i: int) -> None:
        with _client(pki, identity) as client:
            statuses.append(client.post(server.url + f"/c/{i}", json={"i": i, "pad": "x" * 3000}).status_code)

    threads = [threading.Thread(target=call, args=(Identity.ADOBE if i % 2 else None, i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = requests(record)  # every line whole (each parses), connections in between
    assert len(calls) == n
    assert sorted(e["path"] for e in calls) == sorted(f"/c/{i}" for i in range(n))
    assert sorted(e["status"] for e in calls) == sorted(statuses)
    refused = [e for e in calls if e["status"] == 403]
    assert len(refused) == n // 2 and all(e["reason"] == "no_client_certificate" for e in refused)
    newest = server.record.newest(3, REQUESTS)
    assert [e["path"] for e in newest] == [e["path"] for e in reversed(calls[-3:])]


def test_record_truncates_big_bodies_but_keeps_their_size(pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MTLS, record_body_limit=100)
    with _client(pki, Identity.ADOBE) as client:
        client.post(server.url + "/big", content=b"A" * 5000)
    entry = server.record.newest(1, REQUESTS)[0]
    assert entry["body"] == "A" * 100
    assert entry["body_size"] == 5000 and entry["body_truncated"] is True


def test_restart_appends_to_the_record(pki: LabPaths, tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    for run in range(2):
        with RunningServer(ServerConfig(mode=Mode.MTLS, certs=pki.root, record=record, quiet=True)) as server:
            _post(pki, server, Identity.ADOBE, f"/run/{run}")
    assert [e["path"] for e in requests(record)] == ["/run/0", "/run/1"]
    assert len(entries(record, "connection")) == 2  # each run recorded its connection before it stopped


def test_calls_route_lists_newest_first(pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MTLS)
    for i in range(3):
        _post(pki, server, Identity.ADOBE, f"/n/{i}")
    with _client(pki, Identity.ADOBE) as client:  # mtls: TLS wants a cert
        calls = client.get(server.url + "/_lab/calls?limit=2&kind=request").json()["calls"]
    assert [c["path"] for c in calls] == ["/n/2", "/n/1"]
    assert calls[0]["client_certificate"]["common_name"] == ADOBE_CN


def test_bodies_over_the_limit_get_413_and_are_recorded(pki: LabPaths, fresh_server: ServerFactory) -> None:
    server = fresh_server(mode=Mode.MTLS, max_body=1000, record_body_limit=10)
    with _client(pki, Identity.ADOBE) as client:
        answer = client.post(server.url + "/huge", content=b"B" * 5000)
        assert answer.status_code == 413 and answer.json()["reason"] == "body_too_large"
        assert client.post(server.url + "/small", content=b"C" * 999).status_code == 200
    huge, small = server.record.newest(2, REQUESTS)[1], server.record.newest(2, REQUESTS)[0]
    assert (huge["status"], huge["body"], huge["body_size"], huge["body_truncated"]) == (413, "B" * 10, 5000, True)
    assert (small["status"], small["body_size"]) == (200, 999)
