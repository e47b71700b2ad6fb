"""The `mtls-lab` command: help, one-line errors with named exit codes, environment variables."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import httpx
import pytest

from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.cli.command import build_parser, main
from mtls_lab.cli.options import env_arguments
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support.tls_clients import client_context, identity_files

SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr,arg-type]


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`mtls-lab ARGS` in this process (fast); what a user would see on stdout and stderr, and the exit code."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env or {}),
        contextlib.chdir(cwd or Path.cwd()),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = int(main(list(args)))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else 0
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point, in its own process."""
    return subprocess.run([sys.executable, "-m", "mtls_lab.cli", *args], capture_output=True, text=True, timeout=60)


def test_top_level_help_lists_the_commands() -> None:
    done = _run_process("--help")
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
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr,index]
    monkeypatch.setenv("MTLS_LAB_MODE", "tls")
    monkeypatch.setenv("MTLS_LAB_TRUST", "a.pem, b.pem")
    monkeypatch.setenv("MTLS_LAB_QUIET", "true")
    assert env_arguments(serve, ["--mode", "mtls"]) == ["--trust", "a.pem", "--trust", "b.pem", "--quiet"]
    assert env_arguments(serve, ["--trust=c.pem"]) == ["--mode", "tls", "--quiet"]


# --- call ---------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _call(pki: LabPaths, *args: str) -> subprocess.CompletedProcess[str]:
    return _run("call", "--certs", str(pki.root), *args)


def test_call_exit_codes_follow_the_verdict(pki: LabPaths, lab_server: ServerFactory) -> None:
    mtls, mixed = lab_server(mode=Mode.MTLS), lab_server(mode=Mode.MIXED, trust=(pki.ca(CA.IMPOSTOR_ROOT),))
    assert _call(pki, "--url", mtls.url + "/x").returncode == ExitCode.OK
    assert _call(pki, "--url", mixed.url + "/x").returncode == ExitCode.HTTP_ERROR
    assert _call(pki, "--url", mtls.url + "/x", "--identity", "impostor").returncode == ExitCode.TLS_REJECTED
    untrusted = _call(pki, "--url", mtls.url + "/x", "--server-ca", str(pki.ca(CA.ADOBE_ROOT)))
    assert untrusted.returncode == ExitCode.SERVER_UNTRUSTED


def test_call_json_has_the_verdict_fields(pki: LabPaths, lab_server: ServerFactory) -> None:
    done = _call(pki, "--url", lab_server(mode=Mode.MTLS).url + "/x", "--identity", "none", "--tls", "1.3", "--json")
    verdict = json.loads(done.stdout)
    assert {
        "outcome",
        "phase",
        "alert",
        "status",
        "tls_version",
        "client_cert_sent",
        "jo_status_code",
        "attempts",
        "explanation",
        "fix",
    } <= set(verdict)
    assert (verdict["outcome"], verdict["phase"], verdict["alert"]) == (
        "tls_alert",
        "after_handshake",
        "certificate_required",
    )
    assert len(verdict["attempts"]) == 4  # the first call and AJO's 3 retries
    assert "PRIVATE KEY" not in done.stdout


def test_call_prints_a_verdict_for_people(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.TLS)
    done = _call(
        pki,
        EXAMPLES.joinpath("profile-sync-action.json").as_posix(),
        "--url",
        server.url + "/hook",
        "--context",
        str(EXAMPLES / "profile-sync-context.json"),
    )
    assert done.returncode == ExitCode.HTTP_ERROR
    assert "VERDICT: HTTP_ERROR HTTP 403 no_client_certificate" in done.stdout
    assert "AJO would refuse port" in done.stdout and "model" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["missing.json"], "cannot read the action file"),
        (["--url", "https://x.example", "--cert", "a.pem"], "--cert and --key go together"),
        (["--url", "https://x.example", "--timeout", "40"], "1 to 30 seconds"),
        (["--url", "ftp://x"], "absolute URL"),
    ],
)
def test_call_refuses_bad_input_in_one_line(args: list[str], says: str, pki: LabPaths) -> None:
    done = _call(pki, *args)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1


def test_call_reports_json_errors_with_line_and_column(pki: LabPaths, tmp_path: Path) -> None:
    action = tmp_path / "a.json"
    action.write_text('{"name": "x",\n "url": }')
    done = _call(pki, str(action))
    assert done.returncode == ExitCode.USAGE and f"{action}:2:9: invalid JSON" in done.stderr


def test_call_with_any_pem_identity(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS)
    good = _call(
        pki,
        "--url",
        server.url + "/x",
        "--cert",
        str(pki.client_cert(Identity.ADOBE_ROTATED)),
        "--key",
        str(pki.client_key(Identity.ADOBE_ROTATED)),
    )
    assert good.returncode == ExitCode.OK
    mismatched = _call(
        pki,
        "--url",
        server.url + "/x",
        "--cert",
        str(pki.client_cert(Identity.ADOBE)),
        "--key",
        str(pki.client_key(Identity.IMPOSTOR)),
    )
    assert mismatched.returncode == ExitCode.USAGE and "must match" in mismatched.stderr


def test_call_trace_draws_the_ladder(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.MTLS, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT)))
    done = _call(pki, "--url", server.url + "/x", "--tls", "1.3", "--trace")
    assert done.returncode == ExitCode.TLS_REJECTED
    ladder = " ".join(done.stdout.split("AJO-like call:")[0].split())  # unwrap
    for fact in (
        "ClientHello",
        "CertificateRequest CA names: CN=MTLS LAB impostor root",
        "Certificate (empty:",
        "certificate_required (fatal)",
        "─▶",
        "◀─",
    ):
        assert fact in ladder
    assert "\033[" not in done.stdout  # piped: no colour


def test_probe_command_text_json_and_exit_codes(pki: LabPaths, lab_server: ServerFactory) -> None:
    server = lab_server(mode=Mode.TLS)
    done = _run("probe", server.url + "/hook", "--certs", str(pki.root), "--server-ca", str(pki.ca(CA.SERVER_ROOT)))
    assert done.returncode == ExitCode.PROBLEMS_FOUND and "VERDICT: tls-only" in done.stdout
    good = _run(
        "probe",
        lab_server(mode=Mode.MTLS).url,
        "--certs",
        str(pki.root),
        "--server-ca",
        str(pki.ca(CA.SERVER_ROOT)),
        "--json",
        "--try-identity",
        "impostor",
    )
    report = json.loads(good.stdout)
    assert report["configuration"] == "mtls-only" and report["identities"][0]["rejected_at"] == "TLS"
    refused = _run("probe", "https://127.0.0.1:1/", "--timeout", "1")
    assert refused.returncode == ExitCode.CONNECTION and refused.stderr.count("\n") == 1
    assert "cannot connect (" in refused.stderr and "Traceback" not in refused.stderr
