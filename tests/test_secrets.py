"""No private key material in the server's log, the record, `call --json` or `certs` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.cli import main
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.logs import caught_logs
from tests.support.misbehaving_clients import valid_call


def key_material(pki: LabPaths) -> list[str]:
    """The base64 lines of every private key of the lab PKI."""
    lines: list[str] = []
    for key in pki.key_files():
        lines += [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
    assert len(lines) > 100
    return lines


def leaks(text: str, material: list[str]) -> list[str]:
    found = [line[:16] + "..." for line in material if line in text]
    return found + (["PRIVATE KEY"] if "PRIVATE KEY" in text else [])


def test_the_leak_check_finds_a_key(pki: LabPaths) -> None:
    material = key_material(pki)
    assert leaks(pki.client_key(Identity.ADOBE).read_text(), material)  # the check can fail
    assert leaks("prefix " + material[3] + " suffix", material)
    assert not leaks(pki.client_cert(Identity.ADOBE).read_text(), material)


def test_certs_output_has_no_key_material(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mtls_lab.certs.layout import LabPaths as Paths

    assert main(["certs", "--out", str(tmp_path / "certs")]) == 0
    captured = capsys.readouterr()
    material = key_material(Paths(tmp_path / "certs"))
    assert not leaks(captured.out + captured.err, material)


def test_server_log_record_and_calls_route_have_no_key_material(
    pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path
) -> None:
    record = tmp_path / "calls.jsonl"
    with caught_logs() as logs:
        server = fresh_server(mode=Mode.MIXED, record=record, quiet=False)
        assert valid_call(pki, server.url).status_code == 200
        impostor = ["--identity", "impostor", "--client-behavior", "openssl"]  # sends it, the server rejects it
        rejected = main(["call", "--certs", str(pki.root), "--url", server.url + "/x", *impostor])
        assert rejected != 0
    log_text = "\n".join(logs.format(r) for r in logs.records)
    assert "POST /custom-action -> 200" in log_text and "handshake rejected" in log_text  # the log has content
    material = key_material(pki)
    assert not leaks(log_text, material)
    assert record.read_text() and not leaks(record.read_text(), material)
    assert not leaks(json.dumps(server.record.newest(100)), material)


def test_call_json_has_no_key_material(
    pki: LabPaths, lab_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = lab_server(mode=Mode.MTLS)
    args = ["call", "--certs", str(pki.root), "--url", server.url + "/x", "--json", "--trace"]
    args += ["--cert", str(pki.client_cert(Identity.ADOBE)), "--key", str(pki.client_key(Identity.ADOBE))]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["outcome"] == "accepted"
    assert not leaks(out, key_material(pki))
