"""Bad input to the CLI: one line naming the file or option and the fix, a named exit code, no traceback."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mtls_lab.certs.layout import Identity, LabPaths
from mtls_lab.cli import main
from mtls_lab.errors import ExitCode
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory

PASSWORD = "lab-secret"


@pytest.fixture(scope="module")
def files(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good and bad PEM files next to each other."""
    root = tmp_path_factory.mktemp("bad-input")
    key = serialization.load_pem_private_key(pki.client_key(Identity.ADOBE).read_bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    made = {
        "encrypted.pem": encrypted,
        "text.pem": b"hello, not PEM\n",
        "empty.pem": b"",
        "binary.pem": bytes(range(256)) * 4,
    }
    for name, data in made.items():
        (root / name).write_bytes(data)
    paths = {name.removesuffix(".pem"): root / name for name in made}
    paths |= {
        "cert": pki.client_cert(Identity.ADOBE),
        "key": pki.client_key(Identity.ADOBE),
        "other-key": pki.client_key(Identity.IMPOSTOR),
        "directory": root,
        "missing": root / "missing.pem",
    }
    return paths


def _fails(capsys: pytest.CaptureFixture[str], args: list[str], says: str, code: ExitCode = ExitCode.USAGE) -> str:
    assert main(args) == code
    err = capsys.readouterr().err
    assert err.startswith("mtls-lab: error: ") and err.count("\n") == 1, err
    assert says in err, err
    return err


# --- call: the client certificate and key -------------------------------------------------------

IDENTITY_CASES = [
    ("cert", "missing", "no such file"),
    ("text", "key", "holds no PEM certificate: give the certificate (chain) in PEM"),
    ("empty", "key", "--cert"),
    ("binary", "binary", "holds no PEM certificate"),
    ("key", "key", "holds a private key, not a certificate"),
    ("cert", "text", "--key"),
    ("cert", "cert", "holds a certificate, not a private key: give the private key of --cert"),
    ("cert", "other-key", "the key must match the first certificate"),
    ("cert", "directory", "a directory, not a file: check --cert/--key"),
    ("cert", "encrypted", "the key is encrypted: give its password with --key-password"),
]


@pytest.mark.parametrize(("cert", "key", "says"), IDENTITY_CASES, ids=[f"{c}+{k}" for c, k, _ in IDENTITY_CASES])
def test_call_names_what_is_wrong_with_the_identity_files(
    cert: str, key: str, says: str, files: dict[str, Path], pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["call", "--certs", str(pki.root), "--url", "https://127.0.0.1:9/x", "--retries", "0"]
    _fails(capsys, [*args, "--cert", str(files[cert]), "--key", str(files[key])], says)


def test_an_encrypted_key_with_the_wrong_password_and_with_the_right_one(
    files: dict[str, Path], pki: LabPaths, lab_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = lab_server(mode=Mode.MTLS)
    args = ["call", "--certs", str(pki.root), "--url", server.url + "/x", "--retries", "0"]
    args += ["--cert", str(files["cert"]), "--key", str(files["encrypted"])]
    _fails(capsys, [*args, "--key-password", "wrong"], "wrong --key-password: give the password the key was")
    assert main([*args, "--key-password", PASSWORD]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "ACCEPTED" in out and PASSWORD not in out


# --- call: URLs, identities, other files --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://[::1", "not a valid URL"),
        ("https://exa mple.com/x", "spaces and control characters are not allowed"),
        ("", "url: required"),
        ("localhost:8443/x", "give an absolute URL"),
        ("https://localhost:99999/x", "the port is not a number from 1 to 65535"),
    ],
)
def test_call_refuses_invalid_urls(url: str, says: str, pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(capsys, ["call", "--certs", str(pki.root), "--url", url], says)


def test_an_unknown_identity_is_a_usage_error(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["call", "--certs", str(pki.root), "--identity", "nobody"])
    assert stop.value.code == ExitCode.USAGE
    out, err = capsys.readouterr()
    assert out == "" and "usage:" not in err  # one line, not argparse's whole usage above it
    assert err == (
        "mtls-lab call: error: argument --identity: invalid choice: 'nobody' (choose from 'adobe', "
        "'adobe-rotated', 'adobe-next', 'impostor', 'expired', 'not-yet-valid', 'no-client-auth', "
        "'self-signed', 'none') (see mtls-lab call --help)\n"
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--mode", "strict"], "mtls-lab serve: error: argument --mode: invalid choice: 'strict'"),
        (["call", "--tls"], "mtls-lab call: error: argument --tls: expected one argument"),
        (["probe"], "mtls-lab probe: error: the following arguments are required: url"),
        (["demo", "--sender", "marketo"], "mtls-lab demo: error: argument --sender: invalid choice: 'marketo'"),
        (["serve", "--port", "two"], "mtls-lab serve: error: argument --port: invalid int value: 'two'"),
        (["launch"], "mtls-lab: error: argument COMMAND: invalid choice: 'launch'"),
    ],
)
def test_every_usage_error_is_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    assert stop.value.code == ExitCode.USAGE and out == ""
    assert err.startswith(says) and err.count("\n") == 1 and err.endswith("--help)\n"), err
    assert "(from MTLS_LAB_" not in err  # typed on the command line


def test_a_bad_value_from_the_environment_names_its_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTLS_LAB_SENDER", "marketo")
    with pytest.raises(SystemExit) as stop:
        main(["call"])
    err = capsys.readouterr().err
    assert stop.value.code == ExitCode.USAGE and err.count("\n") == 1
    assert "argument --sender: invalid choice: 'marketo'" in err and "(from MTLS_LAB_SENDER)" in err, err
    # the command line wins over the environment: a good --sender is used, the variable's value is not read
    monkeypatch.setenv("MTLS_LAB_TLS", "1.4")
    with pytest.raises(SystemExit):
        main(["call", "--sender", "ajo-sms"])
    err = capsys.readouterr().err
    assert "(from MTLS_LAB_TLS)" in err and "marketo" not in err, err


@pytest.mark.parametrize("bad", ["text", "empty", "missing", "directory", "key"])
def test_call_refuses_a_server_ca_file_without_certificates(
    bad: str, files: dict[str, Path], pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(capsys, ["call", "--certs", str(pki.root), "--server-ca", str(files[bad])], "--server-ca")


@pytest.mark.parametrize("bad", ["text", "missing", "directory"])
def test_call_refuses_a_bad_context_file(
    bad: str, files: dict[str, Path], pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(capsys, ["call", "--certs", str(pki.root), "--context", str(files[bad])], str(files[bad]))


def test_invalid_action_json_names_line_column_and_field(
    pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "name": "x",\n  "url": "https://h/x",,\n}')
    _fails(capsys, ["call", "--certs", str(pki.root), str(broken)], f"{broken}:3:24: invalid JSON")
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"name": "x", "url": "https://h/x", "method": "DELETE"}')
    _fails(capsys, ["call", "--certs", str(pki.root), str(wrong)], "method")


# --- serve --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--handshake-timeout", "0"], "--handshake-timeout 0: give a number of seconds above 0"),
        (["--header-timeout", "-1"], "--header-timeout -1"),
        (["--body-timeout", "nan"], "--body-timeout nan"),
        (["--keep-alive-timeout", "inf"], "--keep-alive-timeout inf"),
        (["--max-body", "-5"], "--max-body -5: give a number of bytes"),
        (["--port", "70000"], "--port 70000: give a port from 1 to 65535"),
        (["--trust", "."], "--trust .: no such file"),
    ],
)
def test_serve_refuses_settings_it_could_not_work_with(
    args: list[str], says: str, pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(capsys, ["serve", "--certs", str(pki.root), *args], says)


def test_a_port_in_use_is_one_line(pki: LabPaths, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        says = f"port {port} on 127.0.0.1 is already in use"
        _fails(capsys, ["serve", "--certs", str(pki.root), "--port", port], says)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("server/key.pem", "server key"),
        ("server/cert.pem", "server certificate"),
        ("clients/adobe/leaf.pem", "is damaged"),
    ],
)
def test_a_damaged_pki_says_regenerate_it(
    damage: str, says: str, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "certs"
    shutil.copytree(pki.root, copy)
    (copy / damage).write_text("damaged\n")
    err = _fails(capsys, ["serve", "--certs", str(copy), "--port", "0"], says)
    assert f"mtls-lab certs --out {copy} --force" in err


def test_a_server_key_that_belongs_to_another_certificate(
    pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "certs"
    shutil.copytree(pki.root, copy)
    shutil.copy(pki.client_key(Identity.IMPOSTOR), copy / "server" / "key.pem")
    _fails(capsys, ["serve", "--certs", str(copy), "--port", "0"], "does not belong to server certificate")


# --- certs --------------------------------------------------------------------------------------


def test_certs_into_an_unwritable_place_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _fails(capsys, ["certs", "--out", str(blocker / "certs")], "choose a writable directory with --out")
