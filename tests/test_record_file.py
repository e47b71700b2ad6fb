"""The record file: never truncated, safe under rotation, and a failed write is reported, never dropped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.server import record as record_module
from mtls_lab.server.record import CallRecord
from tests.conftest import ServerFactory
from tests.support.logs import caught_logs
from tests.support.record import requests
from tests.support.tls_clients import client_context, identity_files

FULL = Path("/dev/full")  # every write fails with ENOSPC: a full disk on demand


def _post(pki: LabPaths, url: str, path: str = "/custom-action") -> httpx.Response:
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        return client.post(url + path, json={"n": 1})


def _health(pki: LabPaths, url: str) -> dict[str, object]:
    context = client_context(pki, None, identity_files(pki, Identity.ADOBE))
    with httpx.Client(verify=context, timeout=5) as client:
        answer: dict[str, object] = client.get(url + "/_lab/health").json()
    return answer


@pytest.mark.skipif(not FULL.exists(), reason="/dev/full is Linux only")
def test_a_full_disk_is_reported_in_the_answer_the_log_and_health(
    pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path
) -> None:
    failing, healthy = fresh_server(record=FULL), fresh_server(record=tmp_path / "calls.jsonl")
    with caught_logs() as logs:
        answer = _post(pki, failing.url)
        assert answer.status_code == 200  # the caller still gets its answer...
        assert answer.headers["x-lab-record"] == "failed"  # ...and sees that it was not recorded
        errors = logs.wait_for(2)  # the request, then its connection (recorded when it closed)
    assert _health(pki, failing.url)["record_errors"] == 2  # the health check's own connection is not recorded
    assert len(errors) == 2 and all("could not write call to /dev/full" in e and "No space left" in e for e in errors)
    sibling = _post(pki, healthy.url)
    assert sibling.status_code == 200 and "x-lab-record" not in sibling.headers
    assert _health(pki, healthy.url)["record_errors"] == 0


@pytest.mark.parametrize("where", ["directory", "under-a-file", "read-only"])
def test_an_unwritable_record_path_is_a_one_line_error_at_start(where: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    paths = {"directory": tmp_path, "under-a-file": blocker / "calls.jsonl", "read-only": Path("/sys/calls.jsonl")}
    path = paths[where]
    if where == "read-only" and not Path("/sys").is_dir():
        pytest.skip("no /sys")
    with pytest.raises(LabError, match=r"cannot open the record file .*: choose a writable --record path"):
        CallRecord(path)
    assert CallRecord(tmp_path / "ok.jsonl").path is not None  # the sibling opens


def test_serve_with_an_unwritable_record_exits_2_in_one_line(
    pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--certs", str(pki.root), "--port", "0", "--record", str(tmp_path)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("mtls-lab: error: cannot open the record file") and err.count("\n") == 1


def test_the_record_file_is_private(pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    fresh_server(record=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rename_rotation_starts_a_new_file(pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    server = fresh_server(record=path)
    _post(pki, server.url, "/before")
    path.rename(tmp_path / "calls.jsonl.1")  # what logrotate does by default
    _post(pki, server.url, "/after")
    assert [e["path"] for e in requests(tmp_path / "calls.jsonl.1")] == ["/before"]
    assert [e["path"] for e in requests(path)] == ["/after"]


def test_copytruncate_rotation_keeps_whole_lines(pki: LabPaths, fresh_server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    server = fresh_server(record=path)
    _post(pki, server.url, "/before")
    os.truncate(path, 0)  # logrotate copytruncate
    _post(pki, server.url, "/after")
    text = path.read_text()
    assert text.startswith("{")  # at offset 0, not after a hole of zeros
    assert [e["path"] for e in requests(path)] == ["/after"]  # (the connections may close before or after)


def test_a_line_cut_short_is_skipped_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text('{"path": "/whole"}\n{"path": "/cut sh')  # a full disk cut the last write
    record = CallRecord(path)
    try:
        assert record.append({"path": "/next"})
        assert [e["path"] for e in record.newest(10)] == ["/next", "/whole"]
    finally:
        record.close()


def test_the_memory_record_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_module, "MEMORY_LIMIT", 5)
    record = CallRecord()
    for n in range(8):
        record.append({"n": n})
    assert [e["n"] for e in record.newest(100)] == [7, 6, 5, 4, 3]
