"""The lab PKI: layout contract, names, validity, EKUs, key modes, and refusal to overwrite."""

from __future__ import annotations

import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from mtls_lab.certs.inspect import CertFacts, fingerprint, load_pem_chain
from mtls_lab.certs.layout import ADOBE_CN, CA, LISTED_ONLY, AdobeApp, Identity, LabPaths
from mtls_lab.certs.pki import generate, require
from mtls_lab.errors import LabError

NOW = dt.datetime.now(dt.UTC)


def _leaf(pki: LabPaths, identity: Identity) -> x509.Certificate:
    return load_pem_chain(pki.client_leaf(identity))[0]


def _valid_now(cert: x509.Certificate) -> bool:
    return cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc


def test_every_file_of_the_contract_exists(pki: LabPaths) -> None:
    expected = {
        "manifest.json",
        *(
            f"ca/{name}.pem"
            for name in (
                "adobe-like-root",
                "adobe-like-intermediate",
                "adobe-like-next-root",
                "adobe-like-next-intermediate",
                "server-root",
                "impostor-root",
            )
        ),
        "server/cert.pem",
        "server/key.pem",
        *(f"clients/{i.value}/{f}" for i in Identity for f in ("cert.pem", "leaf.pem", "key.pem")),
        "apps/ajo-sms.pem",
        "apps/aep.pem",
    }
    found = {p.relative_to(pki.root).as_posix() for p in pki.root.rglob("*") if p.is_file()}
    assert found == expected


def test_keys_are_0600_in_0700_directories(pki: LabPaths) -> None:
    for key in pki.key_files():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700, key.parent
    assert stat.S_IMODE(pki.client_cert(Identity.ADOBE).stat().st_mode) == 0o644


def test_every_lab_ca_says_lab(pki: LabPaths) -> None:
    for ca in CA:
        cert = load_pem_chain(pki.ca(ca))[0]
        assert "LAB" in cert.subject.rfc4514_string(), ca
        assert CertFacts.of(cert).is_ca
    for identity in Identity:
        for issuer in load_pem_chain(pki.client_cert(identity))[1:]:
            assert "LAB" in issuer.subject.rfc4514_string()


def test_stand_in_names_name_the_real_cas(pki: LabPaths) -> None:
    for ca in (CA.ADOBE_ROOT, CA.ADOBE_INTERMEDIATE, CA.NEXT_ROOT, CA.NEXT_INTERMEDIATE):
        subject = load_pem_chain(pki.ca(ca))[0].subject.rfc4514_string()
        assert f"MTLS LAB stand-in for {ca.stands_in_for}" in subject


def test_adobe_identity_matches_the_production_certificate(pki: LabPaths) -> None:
    leaf = _leaf(pki, Identity.ADOBE)
    facts = CertFacts.of(leaf)
    assert facts.subject == f"CN={ADOBE_CN},O=Adobe Inc.,L=San Jose,ST=California,C=US"
    assert facts.dns_names == (ADOBE_CN,)
    assert facts.extended_key_usage == ("serverAuth", "clientAuth")
    assert leaf.public_key().key_size == 2048  # type: ignore[union-attr]
    assert leaf.signature_hash_algorithm is not None and leaf.signature_hash_algorithm.name == "sha256"
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 396  # 13 months
    assert _valid_now(leaf)
    assert leaf.issuer == load_pem_chain(pki.ca(CA.ADOBE_INTERMEDIATE))[0].subject


def test_cert_pem_is_leaf_plus_intermediate_and_leaf_pem_the_leaf_alone(pki: LabPaths) -> None:
    chain = load_pem_chain(pki.client_cert(Identity.ADOBE))
    assert [fingerprint(c) for c in chain] == [
        fingerprint(_leaf(pki, Identity.ADOBE)),
        fingerprint(load_pem_chain(pki.ca(CA.ADOBE_INTERMEDIATE))[0]),
    ]
    assert len(load_pem_chain(pki.client_leaf(Identity.ADOBE))) == 1


def test_rotated_certificate_overlaps_the_current_one_with_a_new_key(pki: LabPaths) -> None:
    current, rotated = _leaf(pki, Identity.ADOBE), _leaf(pki, Identity.ADOBE_ROTATED)
    assert current.subject == rotated.subject
    assert current.public_key() != rotated.public_key()
    assert rotated.not_valid_before_utc > current.not_valid_before_utc
    assert rotated.not_valid_after_utc > current.not_valid_after_utc
    assert _valid_now(current) and _valid_now(rotated)  # the overlap: both are valid today


def test_failure_identities_differ_in_exactly_their_failure(pki: LabPaths) -> None:
    adobe_int = load_pem_chain(pki.ca(CA.ADOBE_INTERMEDIATE))[0].subject
    expired, future = _leaf(pki, Identity.EXPIRED), _leaf(pki, Identity.NOT_YET_VALID)
    assert expired.not_valid_after_utc < NOW and expired.issuer == adobe_int
    assert future.not_valid_before_utc > NOW and future.issuer == adobe_int
    no_client = CertFacts.of(_leaf(pki, Identity.NO_CLIENT_AUTH))
    assert no_client.extended_key_usage == ("serverAuth",)
    nxt = _leaf(pki, Identity.ADOBE_NEXT)
    assert CertFacts.of(nxt).extended_key_usage == ("clientAuth",)
    assert nxt.issuer == load_pem_chain(pki.ca(CA.NEXT_INTERMEDIATE))[0].subject
    self_signed = _leaf(pki, Identity.SELF_SIGNED)
    assert self_signed.issuer == self_signed.subject
    impostor_chain = load_pem_chain(pki.client_cert(Identity.IMPOSTOR))
    assert impostor_chain[1].issuer == load_pem_chain(pki.ca(CA.IMPOSTOR_ROOT))[0].subject
    for identity in Identity:
        assert _leaf(pki, identity).subject == _leaf(pki, Identity.ADOBE).subject


def test_server_certificate_names(pki: LabPaths) -> None:
    leaf = load_pem_chain(pki.server_cert)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName)) | {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    assert names == {"localhost", "127.0.0.1", "::1", "server", "server-tls", "server-mtls", "server-mixed"}
    assert leaf.issuer == load_pem_chain(pki.ca(CA.SERVER_ROOT))[0].subject


def test_manifest_describes_every_file(pki: LabPaths) -> None:
    manifest = json.loads(pki.manifest.read_text())
    entries = {e["path"]: e for e in manifest["files"]}
    assert set(entries) == {p.relative_to(pki.root).as_posix() for p in pki.all_files()[:-1]}
    adobe = entries["clients/adobe/cert.pem"]
    assert adobe["sha256"] == fingerprint(_leaf(pki, Identity.ADOBE))
    assert {"role", "subject", "issuer", "not_before", "not_after", "sha256"} <= set(adobe)
    assert entries["ca/adobe-like-root.pem"]["role"] == "lab CA, stand-in for DigiCert Global Root G2"
    assert entries["clients/adobe/key.pem"]["mode"] == "0600"


def test_second_run_refuses_and_touches_nothing(tmp_certs: Path) -> None:
    first = generate(tmp_certs)
    before = {p: p.read_bytes() for p in first.written}
    with pytest.raises(LabError, match=r"already exists.*--if-missing.*--force"):
        generate(tmp_certs)
    assert {p: p.read_bytes() for p in first.written} == before


def test_if_missing_reuses_a_complete_pki_and_refuses_a_partial_one(tmp_certs: Path) -> None:
    first = generate(tmp_certs)
    key = first.paths.client_key(Identity.ADOBE).read_bytes()
    assert generate(tmp_certs, if_missing=True).reused
    assert first.paths.client_key(Identity.ADOBE).read_bytes() == key
    first.paths.client_key(Identity.IMPOSTOR).unlink()
    with pytest.raises(LabError, match=r"incomplete.*--force"):
        generate(tmp_certs, if_missing=True)


def test_force_replaces_every_key(tmp_certs: Path) -> None:
    first = generate(tmp_certs)
    old = {p: p.read_bytes() for p in first.paths.key_files()}
    generate(tmp_certs, force=True)
    assert all(p.read_bytes() != data for p, data in old.items())
    assert not list(tmp_certs.rglob(".*.tmp"))


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # even root cannot create a directory inside a file
    with pytest.raises(LabError, match=r"cannot write .*--out"):
        generate(blocker / "certs")


def test_require_refuses_missing_and_stale_pkis(tmp_certs: Path) -> None:
    with pytest.raises(LabError, match="mtls-lab certs"):
        require(tmp_certs)
    generate(tmp_certs)
    require(tmp_certs)
    with pytest.raises(LabError, match=r"stale.*--force"):
        require(tmp_certs, now=NOW + dt.timedelta(days=400))


def test_other_applications_certificates_are_listed_only(pki: LabPaths) -> None:
    """Adobe's other applications (the API lists them too): their own CN, today's hierarchy, no key."""
    adobe_int = load_pem_chain(pki.ca(CA.ADOBE_INTERMEDIATE))[0]
    for app in LISTED_ONLY:
        [leaf] = load_pem_chain(pki.app_leaf(app))
        assert CertFacts.of(leaf).common_name == app.common_name and leaf.issuer == adobe_int.subject
        leaf.verify_directly_issued_by(adobe_int)
        assert _valid_now(leaf) and not (pki.root / "apps" / f"{app.value}.key").exists()
    assert CertFacts.of(load_pem_chain(pki.app_leaf(AdobeApp.SMS))[0]).dns_names == ("ajo-sms.aep-mtls.adobe.com",)
    assert CertFacts.of(load_pem_chain(pki.app_leaf(AdobeApp.PLATFORM))[0]).dns_names == ()
    with pytest.raises(ValueError, match="client identities"):
        pki.app_leaf(AdobeApp.JOURNEYS)
