"""``trust-sync`` against the lab's API over real HTTPS: every phase, idempotence, expiry warnings, removal rules,
paging as Adobe shapes it, several applications' certificates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtls_lab import cli
from mtls_lab.certs.inspect import fingerprint, is_ca, load_pem_chain
from mtls_lab.certs.layout import ADOBE_CN, CA, AdobeApp, Identity, LabPaths
from mtls_lab.errors import ExitCode, LabError
from mtls_lab.lifecycle.api import AdobeApiConfig, RunningAdobeApi
from mtls_lab.lifecycle.client import Credentials
from mtls_lab.lifecycle.phases import ChainMode, Phase
from mtls_lab.lifecycle.trust_sync import Change, SyncOptions, SyncReport, render, sync
from tests.support.ports import free_port
from tests.support.scripted_endpoint import Script, json_body, scripted_endpoint
from tests.support.tls_clients import OPENSSL, needs_openssl

CREDENTIALS = Credentials(token="lab-token", api_key="lab-key", org_id="LAB@AdobeOrg")
OLD_CHAIN = {CA.ADOBE_ROOT, CA.ADOBE_INTERMEDIATE}
NEW_CHAIN = {CA.NEXT_ROOT, CA.NEXT_INTERMEDIATE}
# Written by hand from the issue: the CAs a fresh bundle holds after one run in each phase.
EXPECTED_CAS = {
    "current": OLD_CHAIN,
    "overlap": OLD_CHAIN,
    "rotated": OLD_CHAIN,
    "transition": OLD_CHAIN | NEW_CHAIN,
    "migration": NEW_CHAIN,
}
SMS_CN, PLATFORM_CN = "ajo-sms.aep-mtls.adobe.com", "Adobe Experience Platform"


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
    assert report.count(Change.ADDED) == len(EXPECTED_CAS[phase]) and report.changed
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
    for phase in ("overlap", "rotated", "transition", "migration"):
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


def test_a_ca_that_only_a_skipped_application_needs_is_not_kept(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    """ajo-sms stays on today's hierarchy after AJO's custom actions move: it keeps the old CAs only if synced."""
    sms_expiry = load_pem_chain(pki.app_leaf(AdobeApp.SMS))[0].not_valid_after_utc
    rotated_expiry = load_pem_chain(pki.client_leaf(Identity.ADOBE_ROTATED))[0].not_valid_after_utc
    later = rotated_expiry + dt.timedelta(days=1)
    assert later < sms_expiry, "the lab's ajo-sms certificate outlives the custom actions' old ones"
    journeys, both = tmp_path / "journeys.pem", tmp_path / "both.pem"
    for bundle, names in ((journeys, (ADOBE_CN,)), (both, (ADOBE_CN, SMS_CN))):
        run(api, pki, bundle, "overlap", common_names=names)
        run(api, pki, bundle, "migration", now=later, prune=True, common_names=names)
    assert bundle_cas(pki, journeys) == NEW_CHAIN
    assert bundle_cas(pki, both) == OLD_CHAIN | NEW_CHAIN


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


def test_expiry_warning_follows_the_lifetime_or_warn_days(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    days = _days_left(pki, Identity.ADOBE)
    assert 30 < days < 60, "the lab's adobe certificate is in its last weeks (about 46 days)"
    adobe = sha(pki.client_leaf(Identity.ADOBE))[:16]
    warned = run(api, pki, tmp_path / "a.pem", "current")  # default: Adobe's reissue point, 60 of 396 days
    [line] = [w for w in warned.warnings if adobe in w]
    assert f"in {days} days (warned 60 days ahead for a 396-day certificate); no successor is listed yet" in line
    quiet = run(api, pki, tmp_path / "b.pem", "current", warn_days=30)
    assert not [w for w in quiet.warnings if adobe in w]
    explicit = run(api, pki, tmp_path / "c.pem", "overlap", warn_days=50)
    assert any(adobe in w and "(--warn-days 50); a successor is listed" in w for w in explicit.warnings)
    rotated = sha(pki.client_leaf(Identity.ADOBE_ROTATED))[:16]
    assert not [w for w in explicit.warnings if rotated in w], "the successor has most of its 13 months ahead"


def test_three_pages_with_templated_links_and_a_mixed_listing(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    """Adobe's shape: templated next links, pages from 1, several applications: only AJO's certificate is kept."""
    report = run(api, pki, tmp_path / "b.pem", "current", limit=1)
    assert (report.fetched.pages, report.fetched.total) == (3, 3)
    assert [fingerprint(s.leaf) for s in report.served] == [sha(pki.client_leaf(Identity.ADOBE))]
    assert [(e.common_name, fingerprint(e.certificates[0])) for e in report.skipped] == [
        (PLATFORM_CN, sha(pki.app_leaf(AdobeApp.PLATFORM))),
        (SMS_CN, sha(pki.app_leaf(AdobeApp.SMS))),
    ]
    state = json.loads((tmp_path / "b.state.json").read_text())
    assert [c["common_name"] for c in state["certificates"]] == [ADOBE_CN], "skipped ones are not remembered"
    both = run(api, pki, tmp_path / "c.pem", "current", limit=2, common_names=(ADOBE_CN, SMS_CN.upper()))
    assert {s.listed.common_name for s in both.served} == {ADOBE_CN, SMS_CN} and both.fetched.pages == 2
    assert [e.common_name for e in both.skipped] == [PLATFORM_CN]


def test_no_certificate_for_the_common_name_is_a_warning(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    report = run(api, pki, tmp_path / "b.pem", "current", common_names=("ajo-email.example",))
    assert report.served == () and len(report.skipped) == 3
    assert report.warnings[0] == (
        f"the API lists no certificate for ajo-email.example (only {PLATFORM_CN}, {ADOBE_CN}, {SMS_CN}): "
        "nothing to add; check --cn"
    )


def test_full_chain_answers_need_no_ca_dir(pki: LabPaths, tmp_path: Path) -> None:
    config = AdobeApiConfig(
        phase=Phase.MIGRATION, certs=pki.root, chain=ChainMode.FULL, applications=(AdobeApp.JOURNEYS,), quiet=True
    )
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
    assert "(lab phase: overlap)" in text and text.count("  listed ") == 2 and text.count("  skipped ") == 2
    assert "4 certificate(s) on 1 page(s)" in text
    assert f"  skipped     {PLATFORM_CN}  sha256 " in text and "(another application: not a --cn of this run)" in text
    assert "  added     root         MTLS LAB stand-in for DigiCert Global Root G2" in text
    assert "WARNING: ajo-journeys.aep-mtls.adobe.com" in text and "result: wrote" in text
    assert text.rstrip().endswith(
        "(2 certificates in the bundle: 2 added, 0 removed): reload the endpoint's trust store"
    )
    assert "lab-token" not in text and "BEGIN CERTIFICATE" not in text
    assert cli.main(_cli(api.url, pki, out, *CREDS, "--json")) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] is data["bundle_changed"] is False and data["lab_phase"] == "overlap"
    assert len(data["served"]) == 2
    assert {e["change"] for e in data["bundle"]} == {"kept"}
    assert [e["common_name"] for e in data["skipped"]] == [PLATFORM_CN, SMS_CN]


def test_cn_and_stage_from_the_command_line_and_the_environment(
    api: RunningAdobeApi,
    pki: LabPaths,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.set_phase(Phase.CURRENT)
    out = tmp_path / "b.pem"
    args = [*_cli(api.url, pki, out, *CREDS), "--cn", ADOBE_CN, "--cn", SMS_CN, "--stage", "next-hierarchy", "--json"]
    assert cli.main(args) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert [s["common_name"] for s in data["served"]] == [ADOBE_CN, SMS_CN]
    assert sum(e["staged"] for e in data["bundle"]) == 2 and bundle_cas(pki, out) == OLD_CHAIN | NEW_CHAIN
    monkeypatch.setenv("MTLS_LAB_CN", f"{PLATFORM_CN},{SMS_CN}")
    assert cli.main([*_cli(api.url, pki, tmp_path / "c.pem", *CREDS), "--json"]) == ExitCode.OK
    assert [s["common_name"] for s in json.loads(capsys.readouterr().out)["served"]] == [PLATFORM_CN, SMS_CN]


def test_the_state_must_not_be_the_bundle(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    with pytest.raises(LabError, match="is the bundle itself"):
        run(api, pki, bundle, "current", state=bundle)
    assert not bundle.exists()


def test_bad_numbers_are_usage_errors(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option, value in (("--warn-days", "-1"), ("--limit", "0"), ("--api", "http://127.0.0.1:8447")):
        assert cli.main(_cli(api.url, pki, tmp_path / "b.pem", *CREDS, option, value)) == ExitCode.USAGE
        assert option in _error(capsys)


# --- trust-sync writes over no file it did not write ------------------------------------------------


def _public_key_pem(pki: LabPaths) -> bytes:
    key = load_pem_chain(pki.client_leaf(Identity.ADOBE))[0].public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _root_der(pki: LabPaths) -> bytes:
    return load_pem_chain(pki.ca(CA.ADOBE_ROOT))[0].public_bytes(serialization.Encoding.DER)


# Each: what the file holds, and the words of the refusal.
NOT_BUNDLES: dict[str, tuple[Callable[[LabPaths], bytes], str]] = {
    "nginx-config": (lambda _: b"server { listen 443 ssl; }\n", "line 1 is text, not part of a PEM certificate"),
    "public-key": (_public_key_pem, "line 1 starts a PUBLIC KEY block, not a certificate"),
    "private-key": (lambda pki: pki.client_key(Identity.ADOBE).read_bytes(), "line 1 starts a PRIVATE KEY block"),
    "der": (_root_der, "binary data, not PEM text (DER?)"),
    "certificate-then-text": (
        lambda pki: pki.ca(CA.ADOBE_ROOT).read_bytes() + b"include other.conf;\n",
        "line 24 is text, not part of a PEM certificate",
    ),
    "unterminated": (lambda pki: pki.ca(CA.ADOBE_ROOT).read_bytes()[:200], "block of line 1 never ends"),
    "garbage-block": (
        lambda _: b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        "a CERTIFICATE block does not hold a valid certificate",
    ),
}


@pytest.mark.parametrize("kind", list(NOT_BUNDLES))
def test_an_out_file_that_is_not_a_trust_bundle_is_refused_untouched(
    kind: str, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, words = NOT_BUNDLES[kind]
    out = tmp_path / "target.pem"
    out.write_bytes(make(pki))
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    assert cli.main(_cli(api.url, pki, out, *CREDS)) == ExitCode.USAGE
    err = _error(capsys)
    assert f"--out {out} is not a trust bundle (" in err and words in err and "give a new --out path" in err
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.pem"], "no state file, no temporary file"


def test_the_issue_command_leaves_site_conf_alone(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mtls-lab trust-sync ... --out site.conf` over an nginx snippet: exit 2, site.conf unchanged, no state."""
    monkeypatch.chdir(tmp_path)
    Path("site.conf").write_text("server { listen 443 ssl; }\n")
    args = ["trust-sync", "--certs", str(pki.root), "--api", api.url, "--ca-dir", str(pki.root / "ca")]
    args += ["--token", "t", "--api-key", "k", "--org-id", "o", "--out", "site.conf"]
    done = subprocess.run([sys.executable, "-m", "mtls_lab.cli", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.USAGE and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "site.conf is not a trust bundle" in done.stderr
    assert Path("site.conf").read_text() == "server { listen 443 ssl; }\n"
    assert not Path("site.state.json").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"# my notes\n", "crlf"],
    ids=["empty", "blank-lines", "comments-only", "crlf-bundle"],
)
def test_files_that_hold_nothing_but_certificates_are_bundles(
    content: bytes | str, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    out = tmp_path / "b.pem"
    root = pki.ca(CA.ADOBE_ROOT).read_bytes()
    out.write_bytes(root.replace(b"\n", b"\r\n") if content == "crlf" else content)  # type: ignore[arg-type]
    report = run(api, pki, out, "current")
    assert report.changed and bundle_cas(pki, out) == OLD_CHAIN


def test_a_bundle_emptied_by_prune_is_still_a_bundle(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    out = tmp_path / "b.pem"
    run(api, pki, out, "current")
    ten_years = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)  # every listed certificate expired, CAs not yet
    emptied = run(api, pki, out, "current", now=ten_years, prune=True)
    assert emptied.count(Change.REMOVED) == 2 and load_pem_chain_or_none(out) == []
    assert out.read_text().startswith("# Trust bundle for Adobe's mTLS client certificates")
    again = run(api, pki, out, "current")
    assert again.count(Change.ADDED) == 2 and bundle_cas(pki, out) == OLD_CHAIN


def load_pem_chain_or_none(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    return x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("server { listen 443 ssl; }\n", "not trust-sync's state (Expecting value"),
        ('{"format": "something else", "certificates": []}', "not trust-sync's state (format is not"),
        ("[1, 2]", "not trust-sync's state"),
        ("{}", "not trust-sync's state"),
    ],
    ids=["config", "other-json", "json-list", "empty-object"],
)
def test_a_state_file_that_is_not_trust_syncs_is_refused_untouched(
    content: str, words: str, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, state = tmp_path / "b.pem", tmp_path / "b.state.json"
    state.write_text(content)
    assert cli.main(_cli(api.url, pki, out, *CREDS)) == ExitCode.USAGE
    err = _error(capsys)
    assert words in err and "trust-sync writes only over its own state" in err
    assert state.read_text() == content and not out.exists()


def test_a_state_of_the_first_format_is_read_and_upgraded(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    out, state = tmp_path / "b.pem", tmp_path / "b.state.json"
    run(api, pki, out, "overlap")
    data = json.loads(state.read_text())
    state.write_text(json.dumps({"format": "mtls-lab trust-sync state 1", "certificates": data["certificates"]}))
    report = run(api, pki, out, "migration", prune=True)
    assert len(report.remembered) == 2 and report.count(Change.REMOVED) == 0
    assert json.loads(state.read_text())["format"] == "mtls-lab trust-sync state 2"


def _files(*paths: Path) -> list[tuple[bytes, int, int]]:
    return [(p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in paths]


@pytest.mark.parametrize("phase", list(EXPECTED_CAS))
@pytest.mark.parametrize("stage", [(), ("next-hierarchy",)], ids=["unstaged", "staged"])
def test_a_second_run_in_every_phase_writes_nothing(
    phase: str, stage: tuple[str, ...], api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    """A scheduled job's second run with the same input: "no change", and neither file touched (bytes, mtime,
    inode); ``staged`` holds what --stage asked for, never a CA trust-sync added because a certificate needs it."""
    bundle, state = tmp_path / "b.pem", tmp_path / "b.state.json"
    first = run(api, pki, bundle, phase, stage=stage)
    assert first.wrote == (bundle, state)
    before = _files(bundle, state)
    again = run(api, pki, bundle, phase, stage=stage)
    assert (again.wrote, again.changed) == ((), False)
    assert {e.change for e in again.bundle} == {Change.KEPT}
    assert "result: no change:" in render(again) and "(nothing written)" in render(again)
    assert _files(bundle, state) == before
    recorded = {s["sha256"] for s in json.loads(state.read_text())["staged"]}
    assert recorded == ({sha(pki.ca(ca)) for ca in NEW_CHAIN} if stage else set())


# --- staging the next hierarchy ahead of the switch ---------------------------------------------


def staged_cas(pki: LabPaths, report: SyncReport) -> set[CA]:
    by_sha = {sha(pki.ca(ca)): ca for ca in CA}
    return {by_sha[fingerprint(e.cert)] for e in report.bundle if e.staged and e.change is not Change.REMOVED}


def test_staging_adds_the_next_hierarchy_ahead_and_prune_keeps_it(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    out = tmp_path / "b.pem"
    first = run(api, pki, out, "current", stage=("next-hierarchy",))
    assert bundle_cas(pki, out) == OLD_CHAIN | NEW_CHAIN and staged_cas(pki, first) == NEW_CHAIN
    assert {e.change for e in first.bundle if e.staged} == {Change.ADDED}
    assert {e.source for e in first.bundle if e.staged} == {"--stage next-hierarchy (--ca-dir)"}
    state = json.loads((tmp_path / "b.state.json").read_text())
    assert {s["sha256"] for s in state["staged"]} == {sha(pki.ca(ca)) for ca in NEW_CHAIN}
    for phase in ("overlap", "rotated"):  # a scheduled --prune, without --stage: the state remembers
        later = run(api, pki, out, phase, prune=True)
        assert later.count(Change.REMOVED) == 0 and staged_cas(pki, later) == NEW_CHAIN
    assert "(staged ahead of the switch, --prune keeps it; from bundle)" in render(later)
    listed = run(api, pki, out, "migration", prune=True)  # now a listed certificate needs them too
    assert {e.needed_by != () for e in listed.bundle if e.staged} == {True}


def test_an_unstaged_next_hierarchy_ca_of_another_name_is_still_pruned(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    """The sibling: a hand-added CA that is neither needed nor staged nor Adobe's next hierarchy goes with --prune."""
    out = tmp_path / "b.pem"
    out.write_bytes(pki.ca(CA.IMPOSTOR_ROOT).read_bytes() + pki.ca(CA.NEXT_ROOT).read_bytes())
    run(api, pki, out, "current")
    pruned = run(api, pki, out, "overlap", prune=True)
    assert bundle_cas(pki, out) == OLD_CHAIN | {CA.NEXT_ROOT}, "Adobe's next root, added by hand, counts as staged"
    assert [fingerprint(e.cert) for e in pruned.bundle if e.change is Change.REMOVED] == [sha(pki.ca(CA.IMPOSTOR_ROOT))]


def test_staging_from_files(api: RunningAdobeApi, pki: LabPaths, tmp_path: Path) -> None:
    out, both = tmp_path / "b.pem", tmp_path / "digicert-next.pem"
    both.write_bytes(pki.ca(CA.NEXT_ROOT).read_bytes() + pki.ca(CA.NEXT_INTERMEDIATE).read_bytes())
    der = tmp_path / "root.crt"
    der.write_bytes(load_pem_chain(pki.ca(CA.NEXT_ROOT))[0].public_bytes(serialization.Encoding.DER))
    out.write_bytes(pki.ca(CA.ADOBE_ROOT).read_bytes() + pki.ca(CA.ADOBE_INTERMEDIATE).read_bytes())
    report = run(api, pki, out, "current", ca_dir=None, stage=(str(both), str(der)))
    assert staged_cas(pki, report) == NEW_CHAIN and bundle_cas(pki, out) == OLD_CHAIN | NEW_CHAIN
    assert {e.source for e in report.bundle if e.staged} <= {f"--stage {both}", f"--stage {der}"}


@pytest.mark.parametrize(
    ("stage", "ca_dir", "words"),
    [
        ("leaf", "lab", "is not a CA certificate (a leaf?)"),
        ("intermediate-alone", None, "which is in neither --stage, --ca-dir nor the bundle: stage its root too"),
        ("next-hierarchy", None, "--stage next-hierarchy takes Adobe's next CAs from --ca-dir"),
        (
            "next-hierarchy",
            "root-only",
            "holds no DigiCert Assured ID Client CA G2: download "
            "http://cacerts.digicert.com/DigiCertAssuredIDClientCAG2.crt into it",
        ),
        ("missing-file", "lab", "no such file"),
    ],
    ids=["leaf", "intermediate-alone", "no-ca-dir", "ca-dir-without-intermediate", "missing-file"],
)
def test_bad_stage_sources_are_refused_before_anything_is_written(
    stage: str, ca_dir: str | None, words: str, api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    out = tmp_path / "b.pem"
    out.write_bytes(pki.ca(CA.ADOBE_ROOT).read_bytes() + pki.ca(CA.ADOBE_INTERMEDIATE).read_bytes())
    before = out.read_bytes()
    root_only = tmp_path / "root-only"
    root_only.mkdir()
    shutil.copy(pki.ca(CA.NEXT_ROOT), root_only)
    dirs = {"lab": pki.root / "ca", "root-only": root_only, None: None}
    sources = {
        "leaf": str(pki.client_leaf(Identity.ADOBE_NEXT)),
        "intermediate-alone": str(pki.ca(CA.NEXT_INTERMEDIATE)),
        "next-hierarchy": "next-hierarchy",
        "missing-file": str(tmp_path / "nope.pem"),
    }
    with pytest.raises(LabError, match=re.escape(words)):
        run(api, pki, out, "current", ca_dir=dirs[ca_dir], stage=(sources[stage],))
    assert out.read_bytes() == before and not (tmp_path / "b.state.json").exists()


def test_a_staged_ca_removed_by_hand_comes_back_from_ca_dir_or_is_reported(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    out = tmp_path / "b.pem"
    run(api, pki, out, "current", stage=("next-hierarchy",))
    keep = [c for c in load_pem_chain(out) if fingerprint(c) != sha(pki.ca(CA.NEXT_INTERMEDIATE))]
    out.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in keep))
    reported = run(api, pki, out, "current", ca_dir=None)
    assert any("the staged CA" in w and "no longer in the bundle" in w for w in reported.warnings)
    restored = run(api, pki, out, "current", prune=True)
    assert bundle_cas(pki, out) == OLD_CHAIN | NEW_CHAIN and restored.count(Change.ADDED) == 1


# --- next links as other APIs may shape them ---------------------------------------------------------


def _page(pki: LabPaths, identity: Identity, next_link: dict[str, object]) -> tuple[int, str, dict[str, str]]:
    leaf = load_pem_chain(pki.client_leaf(identity))[0]
    entry = {
        "certCommonName": ADOBE_CN,
        "publicCertificate": leaf.public_bytes(serialization.Encoding.PEM).decode(),
        "expiryDate": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    links = {"next": next_link, "prev": {}, "page": {}}
    return 200, json_body({"results": [entry], "total": 3, "count": 1, "_links": links}), {}


@pytest.mark.parametrize(
    ("link", "limit", "requested"),
    [
        ({"href": "/t{?page,limit}", "templated": True}, None, ["/t", "/t?page=2", "/t?page=3"]),
        ({"href": "/t{?page,limit}", "templated": True}, 1, ["/t?limit=1", "/t?page=2&limit=1", "/t?page=3&limit=1"]),
        ({"href": "{?page}", "templated": True}, None, ["/t", "/t?page=2", "/t?page=3"]),
    ],
    ids=["page-and-limit-template", "with-limit", "relative-template"],
)
def test_templated_next_links_are_expanded_page_by_page(
    link: dict[str, object], limit: int | None, requested: list[str], pki: LabPaths, tmp_path: Path
) -> None:
    """Adobe's sample marks next links templated: the page after this one, counted from 1, and the size in use."""
    pages = [_page(pki, i, link) for i in (Identity.ADOBE, Identity.ADOBE_ROTATED)]
    script = Script(answers={"/t": [*pages, _page(pki, Identity.ADOBE_NEXT, {})]})
    with scripted_endpoint(pki, script) as base:
        report = sync(options(base + "/t", pki, tmp_path / "b.pem", limit=limit))
    assert [r["path"] for r in script.requests] == requested
    assert report.fetched.pages == 3 and len(report.served) == 3
    sent = [r["headers"] for r in script.requests]
    assert all(h["Content-Type"] == "application/json" and h["x-api-key"] == "lab-key" for h in sent)  # type: ignore[index]


def test_a_plain_next_link_is_used_as_given(pki: LabPaths, tmp_path: Path) -> None:
    script = Script(
        answers={
            "/p": [
                _page(pki, Identity.ADOBE, {"href": "/p?page=7&limit=1", "templated": False}),
                _page(pki, Identity.ADOBE_ROTATED, {}),
            ]
        }
    )
    with scripted_endpoint(pki, script) as base:
        report = sync(options(base + "/p", pki, tmp_path / "b.pem"))
    assert [r["path"] for r in script.requests] == ["/p", "/p?page=7&limit=1"] and report.fetched.pages == 2


def test_a_run_that_only_learns_something_writes_the_state_and_says_no_reload(
    api: RunningAdobeApi, pki: LabPaths, tmp_path: Path
) -> None:
    out = tmp_path / "b.pem"
    run(api, pki, out, "current")
    bundle_before = out.stat().st_mtime_ns
    report = run(api, pki, out, "overlap")  # a successor on the same CAs: the state learns it, the bundle stays
    assert report.changed and not report.bundle_changed and report.wrote == (tmp_path / "b.state.json",)
    assert out.stat().st_mtime_ns == bundle_before
    assert render(report).endswith(f"result: {out} unchanged (no reload needed); wrote {tmp_path / 'b.state.json'}")
