"""``trust-sync`` against the lab's API over real HTTPS: every phase, idempotence, expiry warnings, removal rules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from mtls_lab import cli
from mtls_lab.certs.inspect import fingerprint, is_ca, load_pem_chain
from mtls_lab.certs.layout import CA, Identity, LabPaths
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.client import Credentials
from mtls_lab.lifecycle.phases import ChainMode, Phase
from mtls_lab.lifecycle.trust_sync import Change, SyncOptions, SyncReport, sync
from tests.support.ports import free_port
from tests.support.scripted_endpoint import Script, json_body, scripted_endpoint
from tests.support.tls_clients import OPENSSL, needs_openssl

CREDENTIALS = Credentials(token="lab-token", api_key="lab-key", org_id="LAB@AdobeOrg")
OLD_CHAIN = {CA.ADOBE_ROOT, CA.ADOBE_INTERMEDIATE}
NEW_CHAIN = {CA.NEXT_ROOT, CA.NEXT_INTERMEDIATE}
# Written by hand from the issue: the CAs a fresh bundle holds after one run in each phase.
EXPECTED_CAS = {"current": OLD_CHAIN, "overlap": OLD_CHAIN, "rotated": OLD_CHAIN, "migration": NEW_CHAIN}


@pytest.fixture(scope="module")
def api(pki: LabPaths) -> Iterator[RunningAdobeApi]:
    with RunningAdobeApi(AdobeApiConfig(certs=pki.root, quiet=True)) as running:
        yield running


def options(api_url: str, pki: LabPaths, out: Path, **changes: object) -> SyncOptions:
    base = SyncOptions(
        api=api_url, out=out, credentials=CREDENTIALS, server_ca=pki.ca(CA.SERVER_ROOT), ca_dir=pki.root / "ca"
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run(api: RunningAdobeApi, pki: LabPaths, out: Path, phase: str, **changes: object) -> SyncReport:
    api.set_phase(Phase(phase))
    return sync(options(api.url, pki, out, **changes))


def sha(path: Path) -> str:
    return fingerprint(load_pem_chain(path)[0])


def bundle_cas(pki: LabPaths, bundle: Path) -> set[CA]:
    by_sha = {sha(pki.ca(ca)): ca for ca in CA}
    return {by_sha[fingerprint(c)] for c in load_pem_chain(bundle)}


@pytest.mark.parametrize("phase", list(EXPECTED_CAS))
def test_each_phase_gives_the_roots_and_intermediates_of_what_it_lists(
    phase: str, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    bundle = tmp_path / "adobe-trust.pem"
    report = run(api, pki, bundle, phase)
    assert bundle_cas(pki, bundle) == EXPECTED_CAS[phase]
    assert all(is_ca(c) for c in load_pem_chain(bundle)), "roots and intermediates only, never leaves"
    assert report.count(Change.ADDED) == 2 and report.changed
    assert report.fetched.phase == phase and report.wrote == (bundle, tmp_path / "adobe-trust.state.json")


@needs_openssl
@pytest.mark.parametrize(
    ("phase", "identity", "ok"),
    [
        ("overlap", Identity.ADOBE, True),
        ("overlap", Identity.ADOBE_ROTATED, True),
        ("overlap", Identity.ADOBE_NEXT, False),
        ("migration", Identity.ADOBE_NEXT, True),
        ("migration", Identity.IMPOSTOR, False),
    ],
    ids=lambda v: v.value if isinstance(v, Identity) else str(v),
)
def test_openssl_verifies_client_certificates_with_the_bundle(
    phase: str, identity: Identity, ok: bool, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    run(api, pki, bundle, phase)
    assert OPENSSL is not None
    args = [OPENSSL, "verify", "-purpose", "sslclient", "-CAfile", str(bundle), str(pki.client_leaf(identity))]
    done = subprocess.run(args, capture_output=True, text=True)
    assert (done.returncode == 0) is ok, done.stdout + done.stderr


def test_second_run_changes_nothing_and_says_so(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, state = tmp_path / "b.pem", tmp_path / "b.state.json"
    run(api, pki, bundle, "overlap")
    before = [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in (bundle, state)]
    again = run(api, pki, bundle, "overlap")
    assert not again.changed and again.wrote == ()
    assert {e.change for e in again.bundle} == {Change.KEPT}
    assert [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in (bundle, state)] == before
    args = ["trust-sync", "--api", api.url, "--out", str(bundle), "--ca-dir", str(pki.root / "ca")]
    args += ["--server-ca", str(pki.ca(CA.SERVER_ROOT)), "--token", "t", "--api-key", "k", "--org-id", "o"]
    assert cli.main(args) == ExitCode.OK
    assert "result: no change" in capsys.readouterr().out
    assert bundle.stat().st_mtime_ns == before[0][1]


def test_the_rotation_and_the_migration_never_drop_a_ca_a_valid_certificate_needs(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.pem"
    run(api, pki, bundle, "current")
    for phase in ("overlap", "rotated", "migration"):
        report = run(api, pki, bundle, phase, prune=True)
        assert report.count(Change.REMOVED) == 0
    assert bundle_cas(pki, bundle) == OLD_CHAIN | NEW_CHAIN
    remembered = {k.sha256 for k in report.remembered}
    assert remembered == {sha(pki.client_leaf(Identity.ADOBE)), sha(pki.client_leaf(Identity.ADOBE_ROTATED))}


def test_prune_removes_a_ca_once_the_certificates_that_needed_it_expire(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.pem"
    run(api, pki, bundle, "overlap")
    rotated_expiry = load_pem_chain(pki.client_leaf(Identity.ADOBE_ROTATED))[0].not_valid_after_utc
    later = rotated_expiry + dt.timedelta(days=1)  # both old certificates expired; adobe-next still valid
    kept = run(api, pki, bundle, "migration", now=later)
    assert [e.change for e in kept.bundle].count(Change.RETAINED) == 2
    assert bundle_cas(pki, bundle) == OLD_CHAIN | NEW_CHAIN, "without --prune nothing is removed"
    assert len(kept.forgotten) == 2
    pruned = run(api, pki, bundle, "migration", now=later, prune=True)
    assert pruned.count(Change.REMOVED) == 2
    assert bundle_cas(pki, bundle) == NEW_CHAIN


def test_a_hand_added_ca_is_retained_until_prune(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    bundle.write_bytes(pki.ca(CA.IMPOSTOR_ROOT).read_bytes())
    report = run(api, pki, bundle, "current")
    retained = [e for e in report.bundle if e.change is Change.RETAINED]
    assert [fingerprint(e.cert) for e in retained] == [sha(pki.ca(CA.IMPOSTOR_ROOT))]
    assert bundle_cas(pki, bundle) == OLD_CHAIN | {CA.IMPOSTOR_ROOT}
    run(api, pki, bundle, "current", prune=True)
    assert bundle_cas(pki, bundle) == OLD_CHAIN


def test_prune_on_a_first_run_is_refused(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    bundle.write_bytes(pki.ca(CA.ADOBE_ROOT).read_bytes())
    with pytest.raises(LabError, match="run it once without --prune"):
        run(api, pki, bundle, "migration", prune=True)
    assert bundle.read_bytes() == pki.ca(CA.ADOBE_ROOT).read_bytes()


def test_a_leaf_in_the_bundle_is_flagged_as_a_pin(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    bundle.write_bytes(pki.client_leaf(Identity.ADOBE).read_bytes())
    report = run(api, pki, bundle, "current")
    assert any("trusting a leaf pins it" in w for w in report.warnings)
    run(api, pki, bundle, "current", prune=True)
    assert all(is_ca(c) for c in load_pem_chain(bundle))


def _days_left(pki: LabPaths, identity: Identity) -> int:
    leaf = load_pem_chain(pki.client_leaf(identity))[0]
    return (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)) // dt.timedelta(days=1)


def test_expiry_warning_follows_warn_days(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    days = _days_left(pki, Identity.ADOBE)
    assert 30 < days < 60, "the lab's adobe certificate is in its last weeks (about 46 days)"
    adobe = sha(pki.client_leaf(Identity.ADOBE))[:16]
    warned = run(api, pki, tmp_path / "a.pem", "current", warn_days=60)
    [line] = [w for w in warned.warnings if adobe in w]
    assert f"in {days} days (--warn-days 60); no successor is listed yet" in line
    quiet = run(api, pki, tmp_path / "b.pem", "current", warn_days=30)
    assert not [w for w in quiet.warnings if adobe in w]
    overlap = run(api, pki, tmp_path / "c.pem", "overlap", warn_days=60)
    assert any(adobe in w and "a successor is listed" in w for w in overlap.warnings)


def test_paging_is_followed(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    report = run(api, pki, tmp_path / "b.pem", "overlap", limit=1)
    assert report.fetched.pages == 2
    listed = [fingerprint(s.leaf) for s in report.served]
    assert listed == [sha(pki.client_leaf(Identity.ADOBE)), sha(pki.client_leaf(Identity.ADOBE_ROTATED))]


def test_full_chain_answers_need_no_ca_dir(pki: LabPaths, tmp_path: Path) -> None:
    config = AdobeApiConfig(phase=Phase.MIGRATION, certs=pki.root, chain=ChainMode.FULL, quiet=True)
    with RunningAdobeApi(config) as full:
        report = sync(options(full.url, pki, tmp_path / "b.pem", ca_dir=None))
    assert bundle_cas(pki, tmp_path / "b.pem") == NEW_CHAIN
    assert {e.source for e in report.bundle} == {"the API's answer"}


def test_replacement_is_atomic(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    run(api, pki, bundle, "current")
    with open(bundle, "rb") as reader:  # a reader holding the old file keeps a complete old file
        run(api, pki, bundle, "migration")
        old = reader.read()
    assert len(x509.load_pem_x509_certificates(old)) == 2 and bundle_cas(pki, bundle) == OLD_CHAIN | NEW_CHAIN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pem", "b.state.json"], "no temporary file left"
    assert oct(bundle.stat().st_mode & 0o777) == "0o644"


# --- errors: one line, a named exit code, nothing written -------------------------------------------


def _cli(api_url: str, pki: LabPaths, out: Path, *extra: str) -> list[str]:
    args = ["trust-sync", "--api", api_url, "--out", str(out), "--ca-dir", str(pki.root / "ca")]
    return [*args, "--server-ca", str(pki.ca(CA.SERVER_ROOT)), *extra]


CREDS = ("--token", "t", "--api-key", "k", "--org-id", "o")


@pytest.mark.parametrize(
    ("drop", "header"),
    [("--token", "Authorization: Bearer"), ("--api-key", "x-api-key"), ("--org-id", "x-gw-ims-org-id")],
)
def test_a_missing_header_is_named(
    drop: str,
    header: str,
    api: RunningAdobeApi,
    pki: LabPaths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TOKEN", "API_KEY", "ORG_ID"):
        monkeypatch.delenv(f"MTLS_LAB_{name}", raising=False)
    at = CREDS.index(drop)
    given = CREDS[:at] + CREDS[at + 2 :]
    out = tmp_path / "b.pem"
    assert cli.main(_cli(api.url, pki, out, *given)) == ExitCode.HTTP_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mtls-lab: error: ") and "Traceback" not in err
    assert f"the {header} header is missing: pass {drop}" in err
    assert not out.exists()
    assert cli.main(_cli(api.url, pki, out, *CREDS)) == ExitCode.OK  # the sibling with every header


def test_credentials_come_from_the_environment(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("TOKEN", "t"), ("API_KEY", "k"), ("ORG_ID", "o")):
        monkeypatch.setenv(f"MTLS_LAB_{name}", value)
    assert cli.main(_cli(api.url, pki, tmp_path / "b.pem")) == ExitCode.OK


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mtls-lab: error: ") and "Traceback" not in err
    return err


def test_unreachable_and_untrusted_apis(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.pem"
    assert cli.main(_cli(f"https://127.0.0.1:{free_port()}", pki, out, *CREDS)) == ExitCode.CONNECTION
    assert "cannot reach the API" in _error(capsys)
    wrong_ca = _cli(api.url, pki, out, *CREDS, "--server-ca", str(pki.ca(CA.IMPOSTOR_ROOT)))
    assert cli.main(wrong_ca) == ExitCode.SERVER_UNTRUSTED
    assert "the API's certificate is not trusted" in _error(capsys)
    assert not out.exists()


def test_an_answer_not_in_adobes_format(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.pem"
    assert cli.main(_cli(api.url + "/_lab/phase", pki, out, *CREDS)) == ExitCode.BAD_RESPONSE
    assert "no results[] list" in _error(capsys)
    script = Script(
        answers={
            "/html": [(200, "<html>login</html>", {})],
            "/pem": [
                (
                    200,
                    json_body(
                        {
                            "results": [
                                {
                                    "certCommonName": "x",
                                    "publicCertificate": "nope",
                                    "expiryDate": "2030-01-01T00:00:00Z",
                                }
                            ]
                        }
                    ),
                    {},
                )
            ],
            "/empty": [(200, json_body({"results": [], "total": 0, "count": 0, "_links": {"next": {}}}), {})],
            "/away": [
                (200, json_body({"results": [], "_links": {"next": {"href": "https://elsewhere.example/p"}}}), {})
            ],
        }
    )
    with scripted_endpoint(pki, script) as base:
        for path, words in (("/html", "not JSON"), ("/pem", "not PEM"), ("/away", "another origin")):
            assert cli.main(_cli(base + path, pki, out, *CREDS)) == ExitCode.BAD_RESPONSE
            assert words in _error(capsys)
    assert not out.exists()
    with scripted_endpoint(pki, script) as base:
        empty = sync(options(base + "/empty", pki, out))
    assert empty.warnings == ("the API lists no certificate: nothing to add (right organization and API key?)",)


def test_a_missing_issuer_names_the_fix(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.set_phase(Phase.MIGRATION)
    args = _cli(api.url, pki, tmp_path / "b.pem", *CREDS)
    at = args.index("--ca-dir")
    assert cli.main(args[:at] + args[at + 2 :]) == ExitCode.USAGE
    err = _error(capsys)
    assert "MTLS LAB stand-in for DigiCert Assured ID Client CA G2" in err and "--ca-dir" in err


def test_the_report_in_words_and_json(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.set_phase(Phase.OVERLAP)
    out = tmp_path / "b.pem"
    assert cli.main(_cli(api.url, pki, out, *CREDS, "--warn-days", "60")) == ExitCode.OK
    text = capsys.readouterr().out
    assert "(lab phase: overlap)" in text and text.count("  listed ") == 2
    assert "  added     root         MTLS LAB stand-in for DigiCert Global Root G2" in text
    assert "WARNING: ajo-journeys.aep-mtls.adobe.com" in text and "result: wrote" in text
    assert "lab-token" not in text and "BEGIN CERTIFICATE" not in text
    assert cli.main(_cli(api.url, pki, out, *CREDS, "--json")) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] is False and data["lab_phase"] == "overlap" and len(data["served"]) == 2
    assert {e["change"] for e in data["bundle"]} == {"kept"}


def test_state_and_bundle_problems_are_user_errors(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    (tmp_path / "b.state.json").write_text("{}")
    with pytest.raises(LabError, match="not trust-sync's state"):
        run(api, pki, bundle, "current")
    bundle.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with pytest.raises(LabError, match="not a PEM bundle"):
        run(api, pki, bundle, "current", state=tmp_path / "other.json")
    with pytest.raises(LabError, match="is the bundle itself"):
        run(api, pki, bundle, "current", state=bundle)
    assert os.path.getsize(tmp_path / "b.state.json") == 2


def test_bad_numbers_are_usage_errors(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option, value in (("--warn-days", "-1"), ("--limit", "0"), ("--api", "http://127.0.0.1:8447")):
        assert cli.main(_cli(api.url, pki, tmp_path / "b.pem", *CREDS, option, value)) == ExitCode.USAGE
        assert option in _error(capsys)
