"""`mtls-lab matrix --against MODE=URL`: the matrix against servers that are already running."""

from __future__ import annotations

import pytest

from mtls_lab.certs.layout import LabPaths
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.matrix.against import pair, parse_target, run_against
from mtls_lab.matrix.scenarios import OTHER, ROOT, SCENARIOS, Advertise
from mtls_lab.server.settings import Mode, TLSVersion
from tests.conftest import ServerFactory
from tests.support.ports import free_port


def _targets(lab_server: ServerFactory) -> list[str]:
    return [f"{mode.value}={lab_server(mode=mode).url}" for mode in Mode]


def test_every_verdict_against_three_running_servers(pki: LabPaths, lab_server: ServerFactory) -> None:
    results = run_against(SCENARIOS, _targets(lab_server), pki)
    assert {r.scenario.mode for r in results} == set(Mode)
    assert len(results) >= 40
    assert [r.scenario.id for r in results if not r.match] == []
    assert any(r.actual == "accepted" for r in results) and any(r.actual != "accepted" for r in results)


def test_only_scenarios_of_a_default_server_are_paired(pki: LabPaths) -> None:
    targets = [parse_target(f"{m.value}=https://127.0.0.1:1") for m in Mode]
    chosen = [s for s, _ in pair(SCENARIOS, targets, pki)]
    assert chosen and len(chosen) < len(SCENARIOS)
    assert all(s.trust == ROOT and s.advertise is Advertise.TRUST for s in chosen)
    assert not any(s.pin or s.allow or s.tls_max is not TLSVersion.V1_3 for s in chosen)
    assert any(s.advertise == OTHER for s in SCENARIOS), "the table has rows a default server cannot answer"
    only_mtls = pair(SCENARIOS, [parse_target("mtls=https://127.0.0.1:1")], pki)
    assert {s.mode for s, _ in only_mtls} == {Mode.MTLS}


def test_a_swapped_url_is_an_error_not_mismatches(pki: LabPaths, lab_server: ServerFactory) -> None:
    tls_url = lab_server(mode=Mode.TLS).url
    with pytest.raises(LabError, match="that server runs mode tls"):
        run_against(SCENARIOS, [f"mtls={tls_url}"], pki)


def test_a_server_that_is_down_is_an_error(pki: LabPaths) -> None:
    with pytest.raises(LabError, match="no TLS answer"):
        run_against(SCENARIOS, [f"mixed=https://127.0.0.1:{free_port()}"], pki)


@pytest.mark.parametrize(
    "text",
    ["https://server:8443", "ftls=https://server:8443", "mtls=http://server:8443", "mtls=https://server:8443/x"],
)
def test_bad_targets_say_what_a_good_one_looks_like(text: str) -> None:
    with pytest.raises(LabError, match="mtls=https://server-mtls:8443"):
        parse_target(text)


def test_one_url_per_mode(pki: LabPaths) -> None:
    with pytest.raises(LabError, match="one URL per mode"):
        pair(SCENARIOS, [parse_target("tls=https://a:1"), parse_target("tls=https://b:1")], pki)


def test_the_cli_and_its_environment_variable(
    pki: LabPaths, lab_server: ServerFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = _targets(lab_server)
    args = ["matrix", "--certs", str(pki.root), "--filter", "*/tls1.3/adobe/java"]
    assert main([*args, *(w for t in targets for w in ("--against", t))]) == ExitCode.OK
    by_flags = capsys.readouterr().out
    assert "3 scenarios, 3 as expected, 0 mismatched" in by_flags
    monkeypatch.setenv("MTLS_LAB_AGAINST", ",".join(targets))
    assert main(args) == ExitCode.OK
    assert "3 scenarios, 3 as expected" in capsys.readouterr().out
