"""The `mtls-lab` command: help, one-line errors with named exit codes, environment variables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from certs.layout import Identity, LabPaths
from mtls_lab.cli import build_parser, env_arguments, main
from mtls_lab.errors import ExitCode
from tests.clients import client_context, identity_files

SUBCOMMANDS = ["certs", "serve"]


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mtls_lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_top_level_help_lists_the_commands() -> None:
    done = _run("--help")
    assert done.returncode == 0
    for name in SUBCOMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_each_command_explains_itself(command: str) -> None:
    done = _run(command, "--help")
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) > 5


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    assert "commands" in capsys.readouterr().out


def test_certs_twice_is_a_one_line_error_then_if_missing_succeeds(tmp_path: Path) -> None:
    out = str(tmp_path / "certs")
    first = _run("certs", "--out", out)
    assert first.returncode == 0 and "0600" in first.stdout and "never install" in first.stdout
    second = _run("certs", "--out", out)
    assert second.returncode == ExitCode.USAGE
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert "--force" in second.stderr and "--if-missing" in second.stderr
    assert _run("certs", "--out", out, "--if-missing").returncode == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--trust", "nope.pem"], "--trust nope.pem: no such file"),
        (["--trust", "clients/adobe/leaf.pem"], "contains no CA certificate"),
        (["--trust", "manifest.json"], "not a PEM"),
        (["--tls-min", "1.3", "--tls-max", "1.2"], "--tls-min 1.3 is above --tls-max 1.2"),
        (["--pin-sha256", "abc"], "--pin-sha256"),
        (["--advertise-ca", "missing.pem"], "--advertise-ca missing.pem"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(args: list[str], says: str, pki: LabPaths) -> None:
    done = _run("serve", "--certs", str(pki.root), "--port", "0", *args)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert says in done.stderr
    assert done.stderr.startswith("mtls-lab: error: ") and done.stderr.count("\n") == 1


def test_serve_without_a_pki_says_how_to_make_one(tmp_path: Path) -> None:
    done = _run("serve", "--certs", str(tmp_path / "none"))
    assert done.returncode == ExitCode.USAGE and "mtls-lab certs" in done.stderr


def test_port_in_use_is_a_clear_error(pki: LabPaths) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = _run("serve", "--certs", str(pki.root), "--port", str(port))
    assert done.returncode == ExitCode.USAGE and "already in use" in done.stderr


def test_serve_takes_its_settings_from_the_environment(pki: LabPaths) -> None:
    env = {
        **os.environ,
        "MTLS_LAB_MODE": "mixed",
        "MTLS_LAB_CERTS": str(pki.root),
        "MTLS_LAB_PORT": "0",
        "MTLS_LAB_ALLOW_CN": "a.example,b.example",
        "PYTHONUNBUFFERED": "1",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "mtls_lab.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        _check_env_server(process, pki)


def _check_env_server(process: subprocess.Popen[str], pki: LabPaths) -> None:
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "mode=mixed" in line and "allow-cn: a.example, b.example" in line
        url = line.split()[3]
        with httpx.Client(verify=client_context(pki, None, identity_files(pki, Identity.ADOBE))) as client:
            answer = client.post(url + "/x", json={})
        assert answer.status_code == 403 and answer.json()["reason"] == "subject_not_allowed"
    finally:
        process.terminate()
        process.wait(10)


def test_command_line_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    monkeypatch.setenv("MTLS_LAB_MODE", "tls")
    monkeypatch.setenv("MTLS_LAB_TRUST", "a.pem, b.pem")
    monkeypatch.setenv("MTLS_LAB_QUIET", "true")
    assert env_arguments(serve, ["--mode", "mtls"]) == ["--trust", "a.pem", "--trust", "b.pem", "--quiet"]
    assert env_arguments(serve, ["--trust=c.pem"]) == ["--mode", "tls", "--quiet"]
