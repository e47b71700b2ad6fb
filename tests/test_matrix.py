"""The pytest matrix: every scenario of the table, the real caller against real servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtls_lab import cli
from mtls_lab.caller.tls import Chain, ClientBehavior
from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.errors import ExitCode
from mtls_lab.matrix import runner
from mtls_lab.matrix.scenarios import SCENARIOS, Scenario
from mtls_lab.server.settings import Mode, TLSVersion


@pytest.fixture(scope="module")
def servers(pki: LabPaths) -> Iterator[runner.ServerPool]:
    pool = runner.ServerPool(pki)
    yield pool
    pool.stop()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario(scenario: Scenario, pki: LabPaths, servers: runner.ServerPool) -> None:
    result = runner.run_one(scenario, pki, servers.target(scenario), servers.token(scenario))
    assert (result.actual, result.verdict.client_cert_sent) == (scenario.expect, scenario.sent), (
        result.verdict.explanation
    )


def test_ids_are_unique_and_readable() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids))
    assert "mixed/tls1.3/adobe/java" in ids and "mtls/tls1.2/none/java" in ids


def _differences(a: Scenario, b: Scenario) -> list[str]:
    sa, sb = a.settings(), b.settings()
    return [key for key in sa if sa[key] != sb[key]]


def test_every_accepted_row_has_a_rejected_sibling_differing_in_one_setting() -> None:
    for accepted in (s for s in SCENARIOS if s.accepted):
        siblings = [s for s in SCENARIOS if not s.accepted and len(_differences(accepted, s)) == 1]
        assert siblings, f"{accepted.id} has no rejected sibling"


def test_the_matrix_covers_what_the_issue_asks() -> None:
    grid = {(s.mode, s.tls, s.identity, s.chain) for s in SCENARIOS if s.behavior is ClientBehavior.JAVA}
    core = (Identity.ADOBE, None, Identity.IMPOSTOR, Identity.EXPIRED, Identity.NO_CLIENT_AUTH, Identity.SELF_SIGNED)
    for mode in Mode:
        for tls in TLSVersion:
            for identity in core:
                assert (mode, tls, identity, Chain.FULL) in grid, (mode, tls, identity)
            if mode is not Mode.TLS:
                assert (mode, tls, Identity.ADOBE, Chain.LEAF) in grid
    expects = {s.expect for s in SCENARIOS}
    assert {"403 subject_not_allowed", "403 fingerprint_not_pinned", "alert protocol_version"} <= expects


def test_matrix_command_json_markdown_and_selection(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["matrix", "--certs", str(pki.root), "--filter", "mtls/tls1.3/adobe*"]
    assert cli.main([*args, "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["mismatches"] == 0 and data["rows"]
    assert all(row["id"].startswith("mtls/tls1.3/adobe") and row["match"] for row in data["rows"])
    assert {"server", "caller", "expected", "actual", "match"} <= set(data["rows"][0])
    assert cli.main([*args, "--markdown"]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("| scenario | expected | actual | match | fix |")
    assert cli.main(["matrix", "--certs", str(pki.root), "--only", "tls/tls1.2/adobe/java"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "tls/tls1.2/adobe/java" in out and "1 scenarios, 1 as expected" in out


def test_matrix_exits_non_zero_when_a_verdict_differs(
    pki: LabPaths, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = next(s for s in SCENARIOS if s.id == "mtls/tls1.3/adobe/java")
    from dataclasses import replace

    monkeypatch.setattr("mtls_lab.matrix.scenarios.SCENARIOS", [replace(wrong, expect="403 no_client_certificate")])
    assert cli.main(["matrix", "--certs", str(pki.root)]) == ExitCode.MISMATCH
    assert "MISMATCH: expected 403 no_client_certificate" in capsys.readouterr().out


def test_matrix_refuses_unknown_selections(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["matrix", "--certs", str(pki.root), "--only", "nope"]) == ExitCode.USAGE
    assert "matrix --list" in capsys.readouterr().err
    assert cli.main(["matrix", "--filter", "zzz*"]) == ExitCode.USAGE


def test_no_progress_indicator_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    assert runner.terminal_progress(io.StringIO()) is None


def test_demo_generates_the_pki_and_tells_the_story(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    certs = tmp_path / "certs"
    assert cli.main(["demo", "--certs", str(certs)]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "generated the lab PKI" in captured.err and (certs / "manifest.json").exists()
    out = captured.out
    for chapter in (
        "1. The endpoint as the customer configured it",
        "2. What Adobe's advice changes",
        "pinning",
        "the CA migration",
        "TLS versions",
        "the intermediate",
    ):
        assert chapter in out
    assert "UNEXPECTED" not in out and out.count("[as the story says]") >= 10
    assert "Every step behaved as the story says." in out
    assert cli.main(["demo", "--certs", str(certs)]) == ExitCode.OK  # reuses the PKI, touches no key
    assert "generated" not in capsys.readouterr().err
