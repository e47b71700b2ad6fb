"""`mtls-lab health`: ready in every mode (mtls included), and not ready when it should not be."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.certs.pki import generate
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.matrix.health import Health, health_url, probe
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.ports import free_port


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_a_server_trusting_adobe_is_healthy_in_every_mode(pki: LabPaths, lab_server: ServerFactory, mode: Mode) -> None:
    found = probe(lab_server(mode=mode).url, pki)
    assert found.state is Health.HEALTHY, found.describe()
    assert found.mode == mode.value
    assert found.state.exit_code(strict=True) == ExitCode.OK


def test_mtls_trusting_another_ca_is_up_but_rejects_the_probe(pki: LabPaths, lab_server: ServerFactory) -> None:
    found = probe(lab_server(mode=Mode.MTLS, trust=(pki.ca(CA.IMPOSTOR_ROOT),)).url, pki)
    assert found.state is Health.TLS_REJECTED
    assert "alert certificate_required" in found.detail  # Java model: the names do not match, nothing sent
    assert found.state.exit_code(strict=False) == ExitCode.OK  # the server is up: ready
    assert found.state.exit_code(strict=True) == ExitCode.TLS_REJECTED


def test_mixed_trusting_another_ca_gets_no_certificate_and_answers(pki: LabPaths, lab_server: ServerFactory) -> None:
    """The sibling: the same trust in mixed mode lets the probe in without a certificate."""
    found = probe(lab_server(mode=Mode.MIXED, trust=(pki.ca(CA.IMPOSTOR_ROOT),)).url, pki)
    assert found.state is Health.HEALTHY, found.describe()


def test_mtls_without_an_identity_is_rejected(pki: LabPaths, lab_server: ServerFactory) -> None:
    found = probe(lab_server(mode=Mode.MTLS).url, pki, identity=None)
    assert found.state is Health.TLS_REJECTED
    assert "without a certificate" in found.detail


def test_nothing_listening_is_down(pki: LabPaths) -> None:
    found = probe(f"https://127.0.0.1:{free_port()}", pki, timeout=2)
    assert found.state is Health.DOWN
    assert found.state.exit_code(strict=False) == ExitCode.CONNECTION
    assert "refused" in found.detail.lower()


def test_a_server_from_another_pki_is_not_trusted(tmp_path: Path, lab_server: ServerFactory) -> None:
    other = generate(tmp_path / "other").paths
    found = probe(lab_server(mode=Mode.TLS).url, other)
    assert found.state is Health.SERVER_UNTRUSTED
    assert found.state.exit_code(strict=False) == ExitCode.SERVER_UNTRUSTED


def test_health_url() -> None:
    assert health_url("https://server:8443") == "https://server:8443/_lab/health"
    assert health_url("https://server:8443/") == "https://server:8443/_lab/health"
    assert health_url("https://server:8443/_lab/calls") == "https://server:8443/_lab/calls"
    with pytest.raises(LabError, match="https only"):
        health_url("http://server:8443")


def test_cli_prints_one_line_and_exits_by_state(
    pki: LabPaths, lab_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    rejecting = lab_server(mode=Mode.MTLS, trust=(pki.ca(CA.IMPOSTOR_ROOT),)).url
    assert main(["health", "--url", lab_server(mode=Mode.MTLS).url, "--certs", str(pki.root)]) == ExitCode.OK
    assert main(["health", "--url", rejecting, "--certs", str(pki.root)]) == ExitCode.OK
    assert main(["health", "--url", rejecting, "--certs", str(pki.root), "--strict"]) == ExitCode.TLS_REJECTED
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("healthy: ") and lines[0].endswith("(mode mtls)")
    assert lines[1].startswith("tls_rejected: ")


def test_cli_down_is_exit_5(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    assert main(["health", "--url", url, "--certs", str(pki.root), "--timeout", "2"]) == ExitCode.CONNECTION
    assert capsys.readouterr().out.startswith("down: ")
