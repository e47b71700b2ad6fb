"""``mtls-lab trust-store``: does an endpoint that uses this trust store accept Adobe's chains? Offline, from the file.

For each of Adobe's hierarchies (today's and the 2026-2027 migration's, ``Hierarchy``) it answers:

- **the root**: the real one, from certifi (Mozilla's root store), matched by SHA-256 fingerprint, or by
  subject *and* public key, so that a re-issued or cross-signed copy of the root counts (it verifies
  Adobe's chain the same). A certificate that only carries the root's name (a lab stand-in, a forgery)
  does not count;
- **the intermediate**: a CA certificate with the intermediate's name whose signature the real root's key
  verifies (real intermediates are not in certifi: the signature is the proof, and a re-issued
  intermediate counts too). Without it in the store, the chain builds only if AJO sends the intermediate in
  its handshake, which Adobe does not document; Adobe recommends adding both ("add both the root and
  intermediate certificates": the trust-chain migration page);
- so: does an endpoint using this store accept Adobe's chain;
- for a Java store (JKS, PKCS12), the CA names the endpoint advertises (Java names every certificate of its
  trust store) and so whether AJO's Java client sends its certificate (a model: docs/how-ajo-calls.md).

Store-wide it flags expired entries, a pinned Adobe leaf (Adobe reissues without notice), a lab CA
("MTLS LAB", which must never be in a real store), a PKCS12 whose certificates Java does not see, and a
folder without OpenSSL's hash links. Each problem comes with the exact command for the store's format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from mtls_lab.caller.probe_certs import Hierarchy, real_root
from mtls_lab.caller.store_files import Entry, StoreFormat, TrustStore
from mtls_lab.certs.inspect import common_name, fingerprint, is_ca
from mtls_lab.certs.layout import ADOBE_CN
from mtls_lab.errors import ExitCode

MIGRATION_PAGE = (
    "https://experienceleague.adobe.com/en/docs/experience-platform/landing/governance-privacy-security/"
    "mtls-trust-chain-migration"
)
LAB_MARK = "MTLS LAB"
DIGICERT = "http://cacerts.digicert.com/"
# DigiCert's DER files: the migration's as Adobe's migration page links them, today's as DigiCert's
# certificates name them (Authority Information Access)
DOWNLOADS = {
    Hierarchy.TODAY: ("DigiCertGlobalRootG2", "DigiCertGlobalG2TLSRSASHA2562020CA1-1"),
    Hierarchy.MIGRATION: ("DigiCertAssuredIDRootG2", "DigiCertAssuredIDClientCAG2"),
}
NOT_DOCUMENTED = "Adobe does not document whether AJO sends the intermediate in its handshake"


@dataclass(frozen=True)
class Finding:
    """One check: its id (``today/root``), whether it passed, what the store shows, and the fix."""

    check: str
    ok: bool
    says: str
    fix: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "says": self.says, "fix": list(self.fix)}


@dataclass(frozen=True)
class StoreReport:
    """Every check of one store; ``ready`` when all pass."""

    store: TrustStore
    findings: tuple[Finding, ...]

    @property
    def ready(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ready else ExitCode.PROBLEMS_FOUND

    def finding(self, check: str) -> Finding:
        return next(f for f in self.findings if f.check == check)

    def to_json(self) -> dict[str, Any]:
        return {
            "store": str(self.store.path),
            "format": self.store.format.value,
            "entries": len(self.store.entries),
            "ready": self.ready,
            "findings": [f.to_json() for f in self.findings],
            "source": MIGRATION_PAGE,
        }


def check_store(
    store: TrustStore, roots: Mapping[Hierarchy, x509.Certificate] | None = None, now: dt.datetime | None = None
) -> StoreReport:
    """Every check of ``store``; ``roots``: the real roots (default: certifi's, see ``real_roots``)."""
    moment = now or dt.datetime.now(dt.UTC)
    anchors = roots or real_roots()
    fix = Fixes(store)
    findings: list[Finding] = []
    for hierarchy in Hierarchy:
        findings += _hierarchy(store, hierarchy, anchors[hierarchy], moment, fix)
    findings += [_expired(store, moment, fix), _pinned_leaf(store, fix), _lab_ca(store, fix)]
    if store.format is StoreFormat.PKCS12:
        findings.append(_java_sees(store))
    if store.format is StoreFormat.DIR:
        findings.append(_hash_links(store))
    return StoreReport(store, tuple(findings))


def real_roots(bundle: Path | None = None) -> dict[Hierarchy, x509.Certificate]:
    """Adobe's real roots, from ``bundle`` (default: certifi's, Mozilla's root store)."""
    return {h: real_root(h.root, bundle) for h in Hierarchy}


# --- one hierarchy --------------------------------------------------------------------------------


def _hierarchy(
    store: TrustStore, hierarchy: Hierarchy, root: x509.Certificate, now: dt.datetime, fix: Fixes
) -> list[Finding]:
    h = hierarchy.value
    root_entry, root_says = _find_root(store.entries, root, now)
    inter_entry, inter_says = _find_intermediate(store.entries, hierarchy, root, now)
    findings = [
        Finding(f"{h}/root", root_entry is not None, root_says, () if root_entry else fix.add(hierarchy, 0)),
        Finding(f"{h}/intermediate", inter_entry is not None, inter_says, () if inter_entry else fix.add(hierarchy, 1)),
        _accepts(hierarchy, root_entry, inter_entry, fix),
    ]
    if store.format.java:
        findings.append(_names(store, hierarchy, root, fix))
    return findings


def _find_root(entries: tuple[Entry, ...], root: x509.Certificate, now: dt.datetime) -> tuple[Entry | None, str]:
    name = common_name(root.subject)
    same = [e for e in entries if fingerprint(e.cert) == fingerprint(root)]
    same_key = [e for e in entries if e.cert.subject == root.subject and _spki(e.cert) == _spki(root)]
    for entries_found, how in (
        (same, "the real certificate (same SHA-256 fingerprint as certifi's)"),
        (
            same_key,
            "the real root's name and key in another certificate (re-issued or cross-signed): it verifies "
            "Adobe's chain the same",
        ),
    ):
        current = [e for e in entries_found if e.cert.not_valid_after_utc > now]
        if current:
            return current[0], f"{name}: {current[0].where}, {how}"
        if entries_found:
            return None, f"{name} is there ({entries_found[0].where}) but expired on {_day(entries_found[0].cert)}"
    named = [e for e in entries if name and name in (common_name(e.cert.subject) or "")]
    if named:
        return None, (
            f"{named[0].where} carries the name {name} but not the real root's key (a lab stand-in or a forgery): "
            f"it verifies nothing Adobe sends; the real {name} is missing"
        )
    return None, f"{name} is missing"


def _find_intermediate(
    entries: tuple[Entry, ...], hierarchy: Hierarchy, root: x509.Certificate, now: dt.datetime
) -> tuple[Entry | None, str]:
    name = hierarchy.intermediate
    named = [e for e in entries if common_name(e.cert.subject) == name and is_ca(e.cert)]
    signed = [e for e in named if _signed_by(e.cert, root)]
    current = [e for e in signed if e.cert.not_valid_after_utc > now]
    if current:
        return current[0], f"{name}: {current[0].where}, signed by the real {hierarchy.root} (signature checked)"
    if signed:
        return None, f"{name} is there ({signed[0].where}) but expired on {_day(signed[0].cert)}"
    if named:
        return None, (
            f"{named[0].where} carries the name {name} but the real {hierarchy.root} did not sign it (a lab stand-in "
            "or a forgery): the real intermediate is missing"
        )
    return None, f"{name} is missing: the chain builds only if the client sends it ({NOT_DOCUMENTED})"


def _accepts(hierarchy: Hierarchy, root: Entry | None, intermediate: Entry | None, fix: Fixes) -> Finding:
    check = f"{hierarchy.value}/accepted"
    label = hierarchy.label
    if root and intermediate:
        return Finding(check, True, f"an endpoint using this store accepts {label}: the root and the intermediate")
    if root:
        return Finding(
            check,
            False,
            f"{label} is accepted only if AJO sends the intermediate in its handshake, which Adobe does not "
            "document; Adobe recommends adding both the root and the intermediate",
            fix.add(hierarchy, 1),
        )
    why = f"an endpoint using this store rejects {label}: {hierarchy.root} is not in it"
    if intermediate:
        why += " (the intermediate alone is an anchor for Java and Go, not for nginx, Apache or HAProxy)"
    when = (
        ": add it before Adobe's connections move (mid-2026 to spring 2027)" if hierarchy is Hierarchy.MIGRATION else ""
    )
    return Finding(check, False, why + when, fix.add(hierarchy, 0) + (() if intermediate else fix.add(hierarchy, 1)))


def _names(store: TrustStore, hierarchy: Hierarchy, root: x509.Certificate, fix: Fixes) -> Finding:
    """A Java server names every certificate of its trust store; AJO's Java client matches its chain's issuers."""
    check = f"{hierarchy.value}/names-adobe-ca"
    names = [e.cert.subject for e in store.entries]
    named = [n.rfc4514_string() for n in names if n == root.subject or common_name(n) == hierarchy.intermediate]
    if named:
        return Finding(
            check,
            True,
            f"the endpoint will advertise {len(names)} CA name(s), {named[0]} among them: AJO's Java client sends "
            f"its certificate of {hierarchy.label} (model)",
        )
    return Finding(
        check,
        False,
        f"the endpoint will advertise {len(names)} CA name(s), none of {hierarchy.label}: AJO's Java client omits "
        "its certificate (model): a required certificate fails the handshake, an optional one gives the app none",
        fix.add(hierarchy, 0) + fix.add(hierarchy, 1),
    )


# --- the store as a whole -------------------------------------------------------------------------


def _expired(store: TrustStore, now: dt.datetime, fix: Fixes) -> Finding:
    old = [e for e in store.entries if e.cert.not_valid_after_utc <= now]
    if not old:
        return Finding("store/expired", True, "no expired entry")
    listed = "; ".join(f"{_name(e.cert)} ({e.where}, expired {_day(e.cert)})" for e in old)
    return Finding(
        "store/expired",
        False,
        f"{len(old)} expired entr{'y' if len(old) == 1 else 'ies'}: {listed}",
        tuple(c for e in old for c in fix.remove(e)),
    )


def _pinned_leaf(store: TrustStore, fix: Fixes) -> Finding:
    leaves = [e for e in store.entries if not is_ca(e.cert) and _adobe_leaf(e.cert)]
    if not leaves:
        return Finding("store/pinned-leaf", True, "no Adobe leaf pinned")
    return Finding(
        "store/pinned-leaf",
        False,
        f"{_name(leaves[0].cert)} ({leaves[0].where}) is Adobe's leaf certificate, pinned: Adobe reissues it without "
        "notice and the pin then fails: trust the chain (root and intermediate) instead",
        tuple(c for e in leaves for c in fix.remove(e)),
    )


def _adobe_leaf(cert: x509.Certificate) -> bool:
    name = common_name(cert.subject) or ""
    return name == ADOBE_CN or name.endswith(".aep-mtls.adobe.com")


def _lab_ca(store: TrustStore, fix: Fixes) -> Finding:
    lab = [e for e in store.entries if LAB_MARK in e.cert.subject.rfc4514_string()]
    if not lab:
        return Finding("store/lab-ca", True, "no lab CA")
    listed = "; ".join(f"{_name(e.cert)} ({e.where})" for e in lab)
    return Finding(
        "store/lab-ca",
        False,
        f"lab certificate(s) of mtls-lab ({LAB_MARK}), which must never be in a real store: {listed}",
        tuple(c for e in lab for c in fix.remove(e)),
    )


def _java_sees(store: TrustStore) -> Finding:
    held = len(store.entries)
    if store.java_sees is None:
        return Finding(
            "store/java-sees-all",
            True,
            "not measured (no keytool on the PATH): Java ignores certificates "
            "without its trust attribute, as openssl pkcs12 -export -nokeys makes them",
        )
    if store.java_sees >= held:
        return Finding("store/java-sees-all", True, f"keytool lists all {held} certificate(s): Java sees them")
    return Finding(
        "store/java-sees-all",
        False,
        f"the file holds {held} certificate(s) but keytool lists {store.java_sees}: Java ignores certificates without "
        "its trust attribute (made by openssl pkcs12 -export -nokeys): a Java endpoint trusts none of them",
        (
            f"keytool -importcert -trustcacerts -noprompt -alias NAME -file CA.pem -keystore {store.path}.new "
            "-storetype PKCS12 -storepass:env STOREPASS  # once per CA, then use the new store",
        ),
    )


def _hash_links(store: TrustStore) -> Finding:
    if store.hash_links:
        return Finding("store/hash-links", True, "OpenSSL's hash links are there")
    return Finding(
        "store/hash-links",
        False,
        "no hash link (such as 1a2b3c4d.0): OpenSSL (Apache SSLCACertificatePath, CApath) finds no certificate in "
        "this folder",
        (f"openssl rehash {store.path}",),
    )


# --- the commands ---------------------------------------------------------------------------------


class Fixes:
    """The exact commands for this store's format: add a CA of Adobe's, remove an entry."""

    def __init__(self, store: TrustStore) -> None:
        self.store = store

    def add(self, hierarchy: Hierarchy, which: int) -> tuple[str, ...]:
        stem = DOWNLOADS[hierarchy][which]
        pem = f"{stem}.pem"
        get = f"curl -O {DIGICERT}{stem}.crt && openssl x509 -inform DER -in {stem}.crt -out {pem}"
        name = (hierarchy.root, hierarchy.intermediate)[which]
        alias = name.lower().replace(" ", "-")
        path = self.store.path
        fmt = self.store.format
        if fmt is StoreFormat.PEM:
            return get, f"cat {pem} >> {path}"
        if fmt is StoreFormat.DIR:
            return get, f"cp {pem} {path}/ && openssl rehash {path}"
        keytool = (
            f"keytool -importcert -trustcacerts -noprompt -alias {alias} -file {pem} -keystore {path}"
            + (" -storetype PKCS12" if fmt is StoreFormat.PKCS12 else "")
            + " -storepass:env STOREPASS"
        )
        if fmt is StoreFormat.JKS:
            return get, keytool
        rebuild = (
            f"openssl pkcs12 -in {path} -nokeys -passin env:STOREPASS -out store-certs.pem && cat {pem} >> "
            f"store-certs.pem && openssl pkcs12 -export -nokeys -in store-certs.pem -passout env:STOREPASS -out "
            f"{path}.new  # not for Java: OpenSSL 3.2+ needs -jdktrust anyExtendedKeyUsage for that"
        )
        return get, keytool, rebuild

    def remove(self, entry: Entry) -> tuple[str, ...]:
        path, fmt = self.store.path, self.store.format
        if fmt is StoreFormat.PEM:
            return (f"remove the certificate at {entry.where} (from -----BEGIN to -----END CERTIFICATE-----)",)
        if fmt is StoreFormat.DIR:
            file = entry.where.removeprefix("line ").split(" of ", 1)[-1].split("/", 1)[-1]
            return (f"rm {path}/{file} && openssl rehash {path}",)
        storetype = " -storetype PKCS12" if fmt is StoreFormat.PKCS12 else ""
        return (f"keytool -delete -alias '{entry.alias}' -keystore {path}{storetype} -storepass:env STOREPASS",)


# --- helpers and rendering ------------------------------------------------------------------------


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    return common_name(cert.subject) or cert.subject.rfc4514_string()


def _day(cert: x509.Certificate) -> str:
    return f"{cert.not_valid_after_utc:%Y-%m-%d}"


_LABELS = {"root": "root", "intermediate": "intermediate", "accepted": "accepted", "names-adobe-ca": "CA names"}


def render(report: StoreReport) -> str:
    """The report for people: per hierarchy, then the store, then the verdict and where the facts come from."""
    store = report.store
    lines = [f"trust store: {store.path} ({store.format.value}, {len(store.entries)} certificate(s))"]
    for hierarchy in Hierarchy:
        mine = [f for f in report.findings if f.check.startswith(f"{hierarchy.value}/")]
        state = "ACCEPTED" if all(f.ok for f in mine) else "NOT ACCEPTED"
        lines += ["", f"{hierarchy.label} ({hierarchy.root} / {hierarchy.intermediate}): {state}"]
        lines += _render_findings(mine, lambda f: _LABELS[f.check.split("/", 1)[1]])
    lines += ["", "the store:"]
    lines += _render_findings([f for f in report.findings if f.check.startswith("store/")], lambda f: f.check[6:])
    problems = sum(not f.ok for f in report.findings)
    verdict = (
        "READY: an endpoint using this store accepts both of Adobe's chains"
        if report.ready
        else (f"NOT READY: {problems} check(s) failed")
    )
    lines += ["", verdict, f"Adobe's migration page: {MIGRATION_PAGE}"]
    return "\n".join(lines)


def _render_findings(findings: list[Finding], label: Any) -> list[str]:
    lines: list[str] = []
    shown: set[str] = set()
    for f in findings:
        lines.append(f"  {label(f):<14}{'ok ' if f.ok else 'NO '} {f.says}")
        lines += [f"  {'':<14}    fix: {c}" for c in f.fix if c not in shown]
        shown.update(f.fix)
    return lines
