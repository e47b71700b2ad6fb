"""``mtls-lab probe --check-trust`` against real servers whose trust stores hold the real DigiCert roots, or not.

Every "yes" has its "no": the same stack trusting the other root, or neither. Stacks that answer both the
same way (nginx, Java, Go) must say "cannot tell" and name the log line, and their logs must say it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mtls_lab.caller.probe import ProbeReport, probe
from mtls_lab.caller.probe_certs import PROBE_NAME, Hierarchy, forge, probe_identity, real_root
from mtls_lab.caller.stacks import Failure, Stack, answer
from mtls_lab.caller.trust_check import State, Trust
from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.settings import AlertStyle, Mode
from mtls_lab.server.stack_configs import ClientAuth
from tests.conftest import ServerFactory
from tests.support.stacks import Running, Stacks, StackServer, available, wait_for_log
from tests.support.tls_clients import OPENSSL

TODAY, MIGRATION = Hierarchy.TODAY, Hierarchy.MIGRATION
YES, NO, CANNOT = Trust.YES, Trust.NO, Trust.CANNOT_TELL
# which real roots the server trusts -> what the trust check must say for (today, migration)
EXPECTED = {"today": (YES, NO), "both": (YES, YES), "neither": (NO, NO)}


@pytest.fixture(scope="module")
def roots(pki: LabPaths, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Trust stores: today's real root, both real roots, or neither (the lab's own stand-in root)."""
    folder = tmp_path_factory.mktemp("real-roots")
    pems = {h: real_root(h.root).public_bytes(Encoding.PEM) for h in Hierarchy}
    (folder / "today.pem").write_bytes(pems[TODAY])
    (folder / "both.pem").write_bytes(pems[TODAY] + pems[MIGRATION])
    return {"today": folder / "today.pem", "both": folder / "both.pem", "neither": pki.ca(CA.ADOBE_ROOT)}


def _probe(pki: LabPaths, url: str) -> ProbeReport:
    return probe(url + "/", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5, check_trust=True)


def _trust(report: ProbeReport) -> tuple[Trust, Trust]:
    found = {t.hierarchy: t.trust for t in report.trust}
    return found[TODAY.value], found[MIGRATION.value]


@pytest.fixture(scope="module")
def stack_servers(roots: dict[str, Path], real_stacks: Stacks) -> dict[tuple[str, str, str], Running]:
    wanted = [StackServer("openssl", ClientAuth.REQUIRED, roots[t], top) for t in EXPECTED for top in ("1.2", "1.3")]
    wanted += [StackServer("haproxy", ClientAuth.REQUIRED, roots[t]) for t in EXPECTED]
    wanted += [
        StackServer(s, ClientAuth.REQUIRED, roots[t])
        for s in ("nginx", "java", "go", "go-legacy")
        for t in ("today", "neither")
    ]
    started = real_stacks.start_all([s for s in wanted if available(s.stack)])
    names = {path: name for name, path in roots.items()}
    return {(s.stack, names[s.trust], s.tls_max): running for s, running in started.items()}


def _server(servers: dict[tuple[str, str, str], Running], stack: str, trusts: str, top: str = "1.3") -> Running:
    if not available(stack):
        pytest.skip(f"the {stack} server is not installed here (CI installs it)")
    return servers[(stack, trusts, top)]


# s_server on both TLS versions; HAProxy (OpenSSL too) on TLS 1.3
OPENSSL_CASES = [("openssl", t, top) for t in EXPECTED for top in ("1.2", "1.3")] + [
    ("haproxy", t, "1.3") for t in EXPECTED
]


@pytest.mark.parametrize(("stack", "trusts", "top"), OPENSSL_CASES, ids=["/".join(c) for c in OPENSSL_CASES])
def test_openssl_servers_tell_trusted_from_untrusted(
    stack: str, trusts: str, top: str, pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    report = _probe(pki, _server(stack_servers, stack, trusts, top).url)
    assert report.stack_guess == ["openssl"]
    assert _trust(report) == EXPECTED[trusts]
    version = "1.2" if top == "1.2" else "1.3"
    for found in report.trust:  # the answers are the measured table's SIGNATURE / UNTRUSTED cells
        failure = Failure.SIGNATURE if found.trust is YES else Failure.UNTRUSTED
        assert found.answer == answer(Stack.OPENSSL, failure, version)


@pytest.mark.parametrize("trusts", list(EXPECTED))
def test_the_lab_server_tells_trusted_from_untrusted(
    trusts: str, pki: LabPaths, roots: dict[str, Path], lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS, trust=(roots[trusts],))
    assert _trust(_probe(pki, server.url)) == EXPECTED[trusts]


def test_the_lab_server_in_java_style_cannot_be_told(
    pki: LabPaths, roots: dict[str, Path], lab_server: ServerFactory
) -> None:
    server = lab_server(mode=Mode.MTLS, trust=(roots["today"],), alert_style=AlertStyle.JAVA)
    assert _trust(_probe(pki, server.url)) == (CANNOT, CANNOT)


@pytest.mark.parametrize("trusts", ["today", "neither"])
def test_nginx_cannot_be_told_from_outside_but_its_error_log_can(
    trusts: str, pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    running = _server(stack_servers, "nginx", trusts)
    report = _probe(pki, running.url)
    assert _trust(report) == (CANNOT, CANNOT) and report.stack_guess == ["nginx"]
    assert all(t.answer == "400 nginx_certificate_error" for t in report.trust)
    signature, unknown = "(7:certificate signature failure)", "(20:unable to get local issuer certificate)"
    assert all(signature in t.look_in_log and unknown in t.look_in_log for t in report.trust)
    log = wait_for_log(running, unknown)
    assert (signature in log) is (trusts == "today")  # today's probe: trusted; the migration's: not
    assert unknown in log


@pytest.mark.parametrize("trusts", ["today", "neither"])
def test_java_cannot_be_told_from_outside_but_its_log_can(
    trusts: str, pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    running = _server(stack_servers, "java", trusts)
    report = _probe(pki, running.url)
    assert _trust(report) == (CANNOT, CANNOT) and report.stack_guess == ["java"]
    assert all(t.answer == "alert certificate_unknown" for t in report.trust)
    assert all("signature check failed" in t.look_in_log for t in report.trust)
    mine = f"rejected on {running.port}: "
    log = "\n".join(line for line in wait_for_log(running, "unable to find valid").splitlines() if mine in line)
    assert ("signature check failed" in log) is (trusts == "today")
    assert "unable to find valid certification path" in log


@pytest.mark.parametrize("stack", ["go", "go-legacy"])
def test_go_cannot_be_told_from_outside(
    stack: str, pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    running = _server(stack_servers, stack, "today")
    report = _probe(pki, running.url)
    assert _trust(report) == (CANNOT, CANNOT) and report.stack_guess == [stack]
    assert all(t.answer == answer(Stack(stack), Failure.SIGNATURE, "1.3") for t in report.trust)
    hint = 'while trying to verify candidate authority certificate \\"DigiCert Global Root G2\\"'
    assert hint in wait_for_log(running, hint)  # the log line the verdict names (Caddy logs JSON)
    untrusting = _probe(pki, _server(stack_servers, stack, "neither").url)
    assert _trust(untrusting) == (CANNOT, CANNOT)


def test_readiness_per_hierarchy(pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]) -> None:
    today = _probe(pki, _server(stack_servers, "openssl", "today").url)
    states = {r.hierarchy: r for r in today.readiness}
    assert states["today"].state is State.READY and states["migration"].state is State.NOT_READY
    assert (
        "DigiCert Assured ID Root G2" in states["migration"].steps[0]
        and "before Adobe switches" in states["migration"].steps[0]
    )
    assert any("does not trust DigiCert Assured ID Root G2" in fix for fix in today.fixes)
    both = _probe(pki, _server(stack_servers, "openssl", "both").url)
    assert [r.state for r in both.readiness] == [State.READY, State.READY]
    java = _probe(pki, _server(stack_servers, "java", "today").url)
    assert java.readiness[0].state is State.UNKNOWN and "signature check failed" in java.readiness[0].why


def test_without_check_trust_nothing_is_claimed(
    pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    report = probe(
        _server(stack_servers, "openssl", "today").url + "/", str(pki.ca(CA.SERVER_ROOT)), pki, [], timeout=5
    )
    assert (
        report.trust == [] and report.readiness[0].state is State.UNKNOWN and "--check-trust" in report.readiness[0].why
    )


def test_a_tls_only_endpoint_is_not_asked(pki: LabPaths, lab_server: ServerFactory) -> None:
    report = _probe(pki, lab_server(mode=Mode.TLS).url)
    assert _trust(report) == (Trust.NOT_ASKED, Trust.NOT_ASKED)
    assert [r.state for r in report.readiness] == [State.NOT_READY, State.NOT_READY]


# --- the probe chain itself --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hierarchy", list(Hierarchy))
def test_the_probe_chain_never_validates_and_never_stays_on_disk(hierarchy: Hierarchy, tmp_path: Path) -> None:
    chain = forge(hierarchy)
    leaf, intermediate = chain.certs
    root = real_root(hierarchy.root)
    assert leaf.subject.rfc4514_string().startswith(f"CN={PROBE_NAME},O=mtls-lab trust probe")
    assert intermediate.issuer == root.subject and hierarchy.intermediate in intermediate.subject.rfc4514_string()
    with pytest.raises(VerificationError):  # a real verifier that trusts the real root refuses it
        PolicyBuilder().store(Store([root])).build_client_verifier().verify(leaf, [intermediate])
    if OPENSSL is not None:
        for name, cert in (("root", root), ("intermediate", intermediate), ("leaf", leaf)):
            (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        args = ["-CAfile", "root.pem", "-untrusted", "intermediate.pem", "leaf.pem"]
        done = subprocess.run([OPENSSL, "verify", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode != 0 and "certificate signature failure" in done.stdout + done.stderr
    with probe_identity(chain) as identity:
        folder = identity.cert_file.parent
        assert identity.cert_file.stat().st_mode & 0o077 == 0 and identity.key_file.stat().st_mode & 0o077 == 0
        assert b"false by construction" in identity.cert_file.read_bytes()
    assert not folder.exists()


def test_the_false_signature_needs_the_roots_key_type(
    pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running]
) -> None:
    """Signed with an EC key, the probe intermediate does not even match the RSA root: trusted or not, unknown_ca."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from mtls_lab.caller.action import parse
    from mtls_lab.caller.call import CallOptions, call
    from mtls_lab.caller.probe import answer_of
    from mtls_lab.caller.tls import ClientBehavior

    url = _server(stack_servers, "openssl", "today").url + "/"
    action = parse({"name": "key_type", "url": url, "method": "GET", "timeout": 5})
    answers = []
    for key in (None, ec.generate_private_key(ec.SECP256R1())):
        with probe_identity(forge(TODAY, false_root_key=key)) as chain:
            options = CallOptions(pki=pki, identity=chain, behavior=ClientBehavior.OPENSSL, retries=0)
            answers.append(answer_of(call(action, {}, options)))
    assert answers == ["alert decrypt_error", "alert unknown_ca"]


def test_probe_check_trust_from_the_command_line(
    pki: LabPaths, stack_servers: dict[tuple[str, str, str], Running], capsys: pytest.CaptureFixture[str]
) -> None:
    from mtls_lab.cli import main
    from mtls_lab.errors import ExitCode

    url = _server(stack_servers, "openssl", "both").url + "/"
    args = ["probe", url, "--server-ca", str(pki.ca(CA.SERVER_ROOT)), "--certs", str(pki.root), "--check-trust"]
    assert main([*args, "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert [t["trust"] for t in data["trust"]] == ["yes", "yes"] and data["stack_guess"] == ["openssl"]
    assert [r["state"] for r in data["readiness"]] == ["READY at the TLS layer"] * 2
    assert main(args) == ExitCode.OK
    text = capsys.readouterr().out
    assert "trusts DigiCert Global Root G2: yes" in text and "a guess" in text and "READINESS" in text
