"""The pytest plugin (``caller/pytest_plugin.py``), run by pytest's own ``pytester``: inert without its options;
with them, each readiness check is a test, against lab servers in each mode and against real stores."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mtls_lab.certs.layout import CA, LabPaths
from mtls_lab.server.settings import Mode
from tests.conftest import ServerFactory
from tests.support import trust_stores as ts

pytest_plugins = ["pytester"]


def runpytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a process of its own, as a user's CI runs it (the plugin found through its entry point).

    Not in-process: pytester then restores sys.modules after each run, and the caller's modules, imported again by
    the next run, would no longer be the ones this session's classification tables and lab servers hold."""
    return pytester.runpytest_subprocess(*args)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """``{check id: passed | failed | skipped}`` from the run's -rA summary lines."""
    found: dict[str, str] = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "SKIPPED"):
            if line.startswith(word) and "ajo-readiness::" in line:
                check = line.split("ajo-readiness::", 1)[1].split(" ", 1)[0]
                found[check] = word.lower()
    return found


def test_inert_without_its_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_own():\n    assert True\n")
    result = runpytest(pytester, "-q", "--collect-only")
    assert result.outlines[0] == "test_inert_without_its_options.py::test_own"
    assert not any("ajo-readiness" in line for line in result.outlines)
    assert runpytest(pytester, "-q").parseoutcomes() == {"passed": 1}
    assert "--ajo-trust-store" in "\n".join(runpytest(pytester, "--help").outlines)


def test_the_project_run_does_not_collect_it(request: pytest.FixtureRequest) -> None:
    """This very run has the plugin installed: it added no item."""
    assert request.config.pluginmanager.has_plugin("ajo_mtls_lab")
    assert not any("ajo-readiness" in item.nodeid for item in request.session.items)


def test_a_trust_store_is_checked_with_readable_ids_and_junit(pytester: pytest.Pytester, tmp_path: Path) -> None:
    store = ts.keytool_store(tmp_path / "trust.jks", [ts.today_root(), ts.today_intermediate()], "JKS")
    result = runpytest(
        pytester,
        "-rA",
        "--ajo-trust-store",
        str(store),
        "--ajo-trust-store-password",
        ts.STOREPASS,
        "--junitxml",
        "out.xml",
    )
    got = outcomes(result)
    assert got["today/root"] == got["today/intermediate"] == got["today/accepted"] == "passed"
    assert got["today/names-adobe-ca"] == got["store/lab-ca"] == "passed"
    assert got["migration/root"] == got["migration/accepted"] == got["migration/names-adobe-ca"] == "failed"
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "out.xml").iter("testcase")}
    failure = cases["migration/root"].find("failure")
    assert failure is not None
    text = failure.text or ""
    assert "DigiCert Assured ID Root G2 is missing" in text
    assert "fix: keytool -importcert -trustcacerts -noprompt -alias digicert-assured-id-root-g2" in text
    assert cases["today/root"].find("failure") is None


def test_a_ready_store_passes_every_check(pytester: pytest.Pytester, tmp_path: Path) -> None:
    stand_ins = ts.migration_stand_ins()
    cas = [ts.today_root(), ts.today_intermediate(), stand_ins.root, stand_ins.intermediate]
    store = ts.keytool_store(tmp_path / "trust.p12", cas, "PKCS12")
    roots = ts.roots_bundle(tmp_path, stand_ins)
    result = runpytest(
        pytester,
        "-rA",
        "--ajo-trust-store",
        str(store),
        "--ajo-roots",
        str(roots),
        "--ajo-trust-store-password",
        ts.STOREPASS,
    )
    assert set(outcomes(result).values()) == {"passed"}
    assert result.ret == pytest.ExitCode.OK


def test_the_password_comes_from_the_environment(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ts.keytool_store(tmp_path / "trust.p12", [ts.today_root()], "PKCS12")
    assert outcomes(runpytest(pytester, "-rA", "--ajo-trust-store", str(store)))["trust-store/readable"] == "failed"
    monkeypatch.setenv("AJO_TRUST_STORE_PASSWORD", ts.STOREPASS)
    assert outcomes(runpytest(pytester, "-rA", "--ajo-trust-store", str(store)))["today/root"] == "passed"


def test_lab_stores_flags_fail(pytester: pytest.Pytester, tmp_path: Path, pki: LabPaths) -> None:
    lab = ts.pem_bundle(tmp_path / "lab.pem", [ts.today_root(), ts.today_intermediate()])
    lab.write_bytes(lab.read_bytes() + pki.ca(CA.ADOBE_ROOT).read_bytes())
    result = runpytest(pytester, "-rA", "--ajo-trust-store", str(lab), "-k", "store")
    assert outcomes(result) == {"store/expired": "passed", "store/pinned-leaf": "passed", "store/lab-ca": "failed"}
    assert "must never be in a real store" in result.stdout.str()


# --- against lab servers, in each mode ------------------------------------------------------------


def _endpoint(pytester: pytest.Pytester, pki: LabPaths, url: str) -> dict[str, str]:
    ca = str(pki.ca(CA.SERVER_ROOT))
    return outcomes(runpytest(pytester, "-rA", "--ajo-endpoint", url, "--ajo-server-ca", ca, "--ajo-timeout", "3"))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Mode.TLS, {"endpoint/requests-certificate": "failed", "endpoint/mtls-only": "failed"}),
        (Mode.MIXED, {"endpoint/requests-certificate": "passed", "endpoint/mtls-only": "failed"}),
        (Mode.MTLS, {"endpoint/requests-certificate": "passed", "endpoint/mtls-only": "passed"}),
    ],
    ids=["tls-only", "mixed", "mtls-only"],
)
def test_against_lab_servers_in_each_mode(
    mode: Mode, expected: dict[str, str], pytester: pytest.Pytester, pki: LabPaths, lab_server: ServerFactory
) -> None:
    got = _endpoint(pytester, pki, lab_server(mode=mode).url + "/hook")
    assert {k: got[k] for k in expected} == expected
    assert got["endpoint/server-certificate"] == "passed"
    # the lab server trusts its stand-in root, not the real DigiCert roots: an OpenSSL server says so
    assert got["endpoint/today"] == got["endpoint/migration"] == "failed"


def test_an_endpoint_trusting_the_real_roots_is_ready(
    pytester: pytest.Pytester, pki: LabPaths, lab_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("real")
    real = ts.pem_bundle(folder / "real.pem", [ts.today_root(), ts.real_root_of_migration()])
    got = _endpoint(pytester, pki, lab_server(mode=Mode.MTLS, trust=(real,)).url)
    assert got["endpoint/today"] == got["endpoint/migration"] == got["endpoint/names-adobe-ca"] == "passed"


def test_an_endpoint_naming_other_cas_fails_names(
    pytester: pytest.Pytester, pki: LabPaths, lab_server: ServerFactory
) -> None:
    url = lab_server(mode=Mode.MTLS, advertise_ca=str(pki.ca(CA.IMPOSTOR_ROOT))).url
    pytester_result = runpytest(
        pytester, "-rA", "--ajo-endpoint", url, "--ajo-server-ca", str(pki.ca(CA.SERVER_ROOT)), "-k", "names"
    )
    assert outcomes(pytester_result) == {"endpoint/names-adobe-ca": "failed"}
    assert "AJO's Java client omits its certificate" in pytester_result.stdout.str()


def test_an_unreachable_endpoint_fails_each_check_with_one_cause(pytester: pytest.Pytester) -> None:
    from tests.support.ports import free_port

    result = runpytest(pytester, "-rA", "--ajo-endpoint", f"https://127.0.0.1:{free_port()}/", "--ajo-timeout", "1")
    assert set(outcomes(result).values()) == {"failed"}
    assert result.ret == pytest.ExitCode.TESTS_FAILED
