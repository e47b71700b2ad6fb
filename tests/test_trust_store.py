"""``mtls-lab trust-store``: real stores built with keytool and openssl, with and without each of Adobe's CAs.

Today's root and intermediate are the real ones (certifi's root; DigiCert's intermediate, its signature checked
here). The migration's intermediate is not at hand: its stand-ins carry the real subjects and a lab key, and
count only with ``--roots`` naming the stand-in root as "the real one" (tests/support/trust_stores.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from mtls_lab.caller.store_files import StoreFormat, read_store
from mtls_lab.caller.trust_store import check_store, real_roots
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.cli import main
from tests.support import trust_stores as ts

pytestmark = pytest.mark.skipif(not (shutil.which("keytool") and shutil.which("openssl")), reason="needs keytool")


@pytest.fixture(scope="module")
def stand_ins() -> ts.StandIns:
    return ts.migration_stand_ins()


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory, stand_ins: ts.StandIns) -> Path:
    return ts.roots_bundle(tmp_path_factory.mktemp("roots"), stand_ins)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, bool], str]:
    code = main(["trust-store", *args, "--json"])
    out, err = capsys.readouterr()
    if code == 2:
        return code, {}, err
    data = json.loads(out)
    return code, {f["check"]: f["ok"] for f in data["findings"]}, out


def test_todays_intermediate_is_the_real_one() -> None:
    ts.today_intermediate().verify_directly_issued_by(ts.today_root())


# --- which CAs, in which format -------------------------------------------------------------------

Builder = Callable[[Path, list[x509.Certificate]], Path]
BUILDERS: dict[str, Builder] = {
    "pem": lambda p, c: ts.pem_bundle(p / "bundle.pem", c),
    "dir": lambda p, c: ts.pem_folder(p / "cas", c),
    "pkcs12": lambda p, c: ts.keytool_store(p / "trust.p12", c, "PKCS12"),
    "jks": lambda p, c: ts.keytool_store(p / "trust.jks", c, "JKS"),
}


@dataclass(frozen=True)
class Case:
    id: str
    cas: tuple[str, ...]  # today-root, today-intermediate, next-root, next-intermediate
    failing: frozenset[str]


CASES = [
    Case("all-four", ("today-root", "today-intermediate", "next-root", "next-intermediate"), frozenset()),
    Case(
        "today-only",
        ("today-root", "today-intermediate"),
        frozenset({"migration/root", "migration/intermediate", "migration/accepted", "migration/names-adobe-ca"}),
    ),
    Case(
        "roots-only",
        ("today-root", "next-root"),
        frozenset({"today/intermediate", "today/accepted", "migration/intermediate", "migration/accepted"}),
    ),
    Case(
        "intermediates-only",
        ("today-intermediate", "next-intermediate"),
        frozenset({"today/root", "today/accepted", "migration/root", "migration/accepted"}),
    ),
]


def _cas(stand_ins: ts.StandIns, names: tuple[str, ...]) -> list[x509.Certificate]:
    every = {
        "today-root": ts.today_root(),
        "today-intermediate": ts.today_intermediate(),
        "next-root": stand_ins.root,
        "next-intermediate": stand_ins.intermediate,
    }
    return [every[n] for n in names]


@pytest.mark.parametrize("fmt", list(BUILDERS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_format_with_and_without_each_ca(
    fmt: str, case: Case, tmp_path: Path, stand_ins: ts.StandIns, roots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = BUILDERS[fmt](tmp_path, _cas(stand_ins, case.cas))
    code, checks, out = run(capsys, str(store), "--password", ts.STOREPASS, "--roots", str(roots))
    failing = {c for c, ok in checks.items() if not ok}
    expected = case.failing if fmt in ("pkcs12", "jks") else {c for c in case.failing if "names" not in c}
    assert failing == expected, out
    assert code == (0 if not expected else 1)
    assert ("today/names-adobe-ca" in checks) is (fmt in ("pkcs12", "jks"))


def test_stand_ins_without_roots_are_refused(
    tmp_path: Path, stand_ins: ts.StandIns, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sibling of all-four: with certifi's real roots, the stand-ins carry the names, not the key."""
    store = ts.pem_bundle(tmp_path / "b.pem", _cas(stand_ins, CASES[0].cas))
    code, checks, out = run(capsys, str(store))
    assert code == 1
    assert {c for c, ok in checks.items() if not ok} == {
        "migration/root",
        "migration/intermediate",
        "migration/accepted",
    }
    assert "carries the name DigiCert Assured ID Root G2 but not the real root's key" in out
    assert "the real DigiCert Assured ID Root G2 did not sign it" in out


def test_a_cross_signed_root_is_recognised_by_subject_and_key(tmp_path: Path) -> None:
    real = ts.today_root()
    signer = ec.generate_private_key(ec.SECP256R1())
    cross = ts.ca_cert(real.subject, ts.named("TEST LAB cross-signer"), real.public_key(), signer)  # type: ignore[arg-type]
    report = check_store(read_store(ts.pem_bundle(tmp_path / "b.pem", [cross, ts.today_intermediate()])))
    assert report.finding("today/root").ok
    assert "re-issued or cross-signed" in report.finding("today/root").says
    assert report.finding("today/accepted").ok
    other_key = ts.ca_cert(real.subject, real.subject, signer.public_key(), signer)  # same name, another key
    refused = check_store(read_store(ts.pem_bundle(tmp_path / "c.pem", [other_key, ts.today_intermediate()])))
    assert not refused.finding("today/root").ok


def test_the_commands_are_for_the_stores_format(tmp_path: Path) -> None:
    for fmt, expected in (
        ("pem", "cat DigiCertAssuredIDRootG2.pem >> "),
        ("dir", "openssl rehash "),
        ("jks", "keytool -importcert -trustcacerts -noprompt -alias digicert-assured-id-root-g2"),
        ("pkcs12", "-storetype PKCS12 -storepass:env STOREPASS"),
    ):
        store = BUILDERS[fmt](tmp_path / fmt, [ts.today_root(), ts.today_intermediate()])
        report = check_store(read_store(store, ts.STOREPASS))
        assert any(expected in c for c in report.finding("migration/root").fix), fmt


def test_a_command_from_the_report_really_fixes_the_store(tmp_path: Path, stand_ins: ts.StandIns) -> None:
    """keytool's own command, run as printed (with the CA file at hand instead of curl), makes the store ready."""
    store = ts.keytool_store(tmp_path / "trust.jks", [ts.today_root(), ts.today_intermediate()], "JKS")
    anchors = real_roots(ts.roots_bundle(tmp_path, stand_ins))
    before = check_store(read_store(store, ts.STOREPASS), anchors)
    (tmp_path / "DigiCertAssuredIDRootG2.pem").write_bytes(ts.pem(stand_ins.root))
    (tmp_path / "DigiCertAssuredIDClientCAG2.pem").write_bytes(ts.pem(stand_ins.intermediate))
    for check in ("migration/root", "migration/intermediate"):
        command = before.finding(check).fix[1]
        subprocess.run(command, shell=True, cwd=tmp_path, check=True, env={"STOREPASS": ts.STOREPASS, "PATH": _path()})
    assert check_store(read_store(store, ts.STOREPASS), anchors).ready


def _path() -> str:
    import os

    return os.environ["PATH"]


# --- the store-wide flags -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pem", "jks"])
def test_expired_entry_pinned_leaf_and_lab_ca_are_flagged(
    fmt: str, tmp_path: Path, pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [ts.today_root(), ts.today_intermediate()]
    leaf = x509.load_pem_x509_certificate(pki.client_leaf(Identity.ADOBE).read_bytes())
    lab = x509.load_pem_x509_certificate(pki.ca(CA.ADOBE_ROOT).read_bytes())
    for extra, check in (
        (ts.self_signed("TEST LAB expired CA", expired=True), "store/expired"),
        (leaf, "store/pinned-leaf"),
        (lab, "store/lab-ca"),
    ):
        folder = tmp_path / check.replace("/", "-")
        folder.mkdir()
        store = BUILDERS[fmt](folder, [*good, extra])
        code, checks, out = run(capsys, str(store), "--password", ts.STOREPASS)
        assert checks[check] is False, out
        assert code == 1
        assert checks["today/accepted"] is True  # the rest of the store is still read
    sibling = BUILDERS[fmt](tmp_path, good)
    _, checks, _ = run(capsys, str(sibling), "--password", ts.STOREPASS)
    assert checks["store/expired"] and checks["store/pinned-leaf"] and checks["store/lab-ca"]


def test_a_pkcs12_made_by_openssl_is_empty_to_java(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = [ts.today_root(), ts.today_intermediate()]
    store = ts.openssl_pkcs12(tmp_path / "openssl.p12", good)
    code, checks, out = run(capsys, str(store), "--password", ts.STOREPASS)
    assert checks["store/java-sees-all"] is False and code == 1, out
    assert "keytool lists 0" in out
    _, checks, _ = run(capsys, str(BUILDERS["pkcs12"](tmp_path, good)), "--password", ts.STOREPASS)
    assert checks["store/java-sees-all"] is True


def test_a_folder_without_hash_links_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ts.pem_folder(tmp_path / "cas", [ts.today_root(), ts.today_intermediate()], rehash=False)
    code, checks, out = run(capsys, str(store))
    assert checks["store/hash-links"] is False and code == 1
    assert f"openssl rehash {store}" in out


# --- bad input: one line, exit 2, the file untouched ----------------------------------------------


def _bad_inputs(tmp_path: Path, pki: LabPaths) -> list[tuple[str, Path, list[str], str]]:
    good = [ts.today_root()]
    text = tmp_path / "nginx.conf"
    text.write_text("ssl_client_certificate /etc/nginx/ca.pem;\n")
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    with_key = tmp_path / "with-key.pem"
    with_key.write_bytes(ts.pem(*good) + pki.client_key(Identity.ADOBE).read_bytes())
    der = tmp_path / "root.crt"
    subprocess.run(
        ["openssl", "x509", "-in", str(pki.ca(CA.ADOBE_ROOT)), "-outform", "DER", "-out", str(der)], check=True
    )
    p12 = ts.keytool_store(tmp_path / "t.p12", good, "PKCS12")
    jks = ts.keytool_store(tmp_path / "t.jks", good, "JKS")
    keyed_p12 = ts.openssl_pkcs12(
        tmp_path / "keyed.p12",
        [x509.load_pem_x509_certificate(pki.client_leaf(Identity.ADOBE).read_bytes())],
        pki.client_key(Identity.ADOBE),
    )
    keyed_jks = tmp_path / "keyed.jks"
    subprocess.run(
        [
            "keytool",
            "-genkeypair",
            "-alias",
            "server",
            "-keyalg",
            "EC",
            "-dname",
            "CN=TEST LAB server",
            "-keystore",
            str(keyed_jks),
            "-storetype",
            "JKS",
            "-storepass",
            ts.STOREPASS,
            "-keypass",
            ts.STOREPASS,
        ],
        check=True,
        capture_output=True,
    )
    return [
        ("text", text, [], "not a trust store"),
        ("empty", empty, [], "the file is empty"),
        ("private-key", with_key, [], "holds a private key"),
        ("der", der, [], "a DER file, not a trust store"),
        ("pkcs12-no-password", p12, [], "protected by a password: give it with --password"),
        ("pkcs12-wrong-password", p12, ["--password", "wrong"], "the password does not open"),
        ("jks-wrong-password", jks, ["--password", "wrong"], "the password does not open"),
        ("pkcs12-with-key", keyed_p12, ["--password", ts.STOREPASS], "this is a key store, not a trust store"),
        ("jks-with-key", keyed_jks, ["--password", ts.STOREPASS], "this is a key store, not a trust store"),
        ("missing", tmp_path / "nope.pem", [], "no such file"),
    ]


def test_bad_input_gets_one_line_and_the_file_is_never_changed(
    tmp_path: Path, pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, path, extra, says in _bad_inputs(tmp_path, pki):
        before = (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None
        code = main(["trust-store", str(path), *extra])
        out, err = capsys.readouterr()
        assert code == 2, name
        assert says in err, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, name
        assert out == ""
        assert (before is None) or before == (path.read_bytes(), path.stat().st_mtime_ns), name


def test_a_good_store_is_not_changed_either(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("pkcs12", "jks"):
        store = BUILDERS[fmt](tmp_path / fmt, [ts.today_root()])
        before = (store.read_bytes(), store.stat().st_mtime_ns)
        assert main(["trust-store", str(store), "--password", ts.STOREPASS]) == 1
        assert before == (store.read_bytes(), store.stat().st_mtime_ns)
    capsys.readouterr()


def test_jks_without_a_jdk_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ts.keytool_store(tmp_path / "t.jks", [ts.today_root()], "JKS")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert main(["trust-store", str(store), "--password", ts.STOREPASS]) == 2
    err = capsys.readouterr().err
    assert "needs the JDK's keytool" in err and "apt-get install default-jdk-headless" in err
    assert read_store(ts.pem_bundle(tmp_path / "b.pem", [ts.today_root()])).format is StoreFormat.PEM  # PEM needs none


def test_trust_syncs_bundle_is_checked_by_the_same_command(
    tmp_path: Path, pki: LabPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    """trust-sync writes its bundle with ``render_bundle``: the lab's holds stand-ins, refused and flagged;
    the same writer with the real CAs gives a store whose today's chain is accepted."""
    from mtls_lab.lifecycle.files import render_bundle

    lab = [x509.load_pem_x509_certificate(pki.ca(ca).read_bytes()) for ca in (CA.ADOBE_ROOT, CA.ADOBE_INTERMEDIATE)]
    bundle = tmp_path / "adobe-trust.pem"
    bundle.write_bytes(render_bundle(lab))
    code, checks, _ = run(capsys, str(bundle))
    assert code == 1 and not checks["store/lab-ca"] and not checks["today/root"]
    real = [ts.today_root(), ts.today_intermediate()]
    bundle.write_bytes(render_bundle(real))
    _, checks, _ = run(capsys, str(bundle))
    assert checks["today/accepted"] and checks["store/lab-ca"]
