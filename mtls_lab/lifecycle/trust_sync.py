"""``mtls-lab trust-sync``: the automation Adobe asks customers to build, as a worked example.

It reads Adobe's public-certificate API (every page, see ``mtls_lab.lifecycle.client``), finds the CAs that
issued each listed certificate, and keeps a PEM trust bundle of those roots and intermediates (never
leaves) up to date, plus a state file next to it:

- a CA that a listed certificate needs is **added** if new, **kept** otherwise;
- a CA is needed as long as a certificate that chains to it is still valid, whether the API lists it
  today or listed it in an earlier run (the state file remembers it). Adobe stops listing a
  certificate before it expires, and asks customers to keep the old hierarchy trusted through the
  CA migration, so "no longer listed" never means "no longer needed";
- a CA that no valid certificate needs is **retained** and reported; only ``--prune`` **removes** it.
  Nothing is ever removed silently;
- nothing is written when nothing changed (a second run with the same input changes nothing and says
  so); files are replaced atomically (a reader sees the old bundle or the new one, never half).

Where the issuers come from: Adobe's API returns the certificate itself. trust-sync looks for each
issuer, checking its signature, among (1) the certificates after the first in ``publicCertificate``
(the lab API's ``--chain full``, a lab extension), (2) ``--ca-dir`` (e.g. DigiCert's published root
and intermediate files, PEM or DER; the lab's ``certs/ca``), and (3) the bundle itself. A chain must
end in a self-signed root; otherwise nothing is written and the error names the missing issuer.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from mtls_lab.certs.inspect import common_name, fingerprint, is_ca, pem_of
from mtls_lab.errors import LabError
from mtls_lab.lifecycle.client import SYSTEM, Credentials, Fetched, Listed, api_context, fetch_all

STATE_FORMAT = "mtls-lab trust-sync state 1"
BUNDLE_HEADER = (
    "# Trust bundle for Adobe's mTLS client certificates, kept by `mtls-lab trust-sync`.\n"
    "# Roots and intermediates only, never leaves. Edit with care: trust-sync keeps what you add\n"
    "# and removes nothing without --prune.\n"
)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class SyncOptions:
    """Everything ``mtls-lab trust-sync`` can be told."""

    api: str
    out: Path
    credentials: Credentials = field(default_factory=Credentials)
    server_ca: Path | str = SYSTEM
    ca_dir: Path | None = None
    state: Path | None = None  # default: the bundle's name with .state.json
    warn_days: int = 30
    prune: bool = False
    limit: int | None = None
    timeout: float = 10.0
    now: dt.datetime | None = None

    @property
    def state_path(self) -> Path:
        return self.state or self.out.with_suffix(".state.json")


class Change(enum.Enum):
    """What a run did to one certificate of the bundle."""

    ADDED = "added"
    KEPT = "kept"
    RETAINED = "retained"  # needed by no valid certificate; --prune removes it
    REMOVED = "removed"


@dataclass(frozen=True)
class Known:
    """A certificate the API listed, now or in an earlier run, and the CAs it needs."""

    sha256: str
    common_name: str
    not_after: dt.datetime
    chain: tuple[str, ...]  # SHA-256 of each CA from the issuer up to the root

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "common_name": self.common_name,
            "not_after": _iso(self.not_after),
            "chain": list(self.chain),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Known:
        return cls(
            data["sha256"], data["common_name"], dt.datetime.fromisoformat(data["not_after"]), tuple(data["chain"])
        )


@dataclass(frozen=True)
class Served:
    """A certificate the API lists now, with its resolved chain."""

    listed: Listed
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def known(self) -> Known:
        return Known(
            fingerprint(self.leaf),
            self.listed.common_name,
            self.leaf.not_valid_after_utc,
            tuple(fingerprint(c) for c in self.chain),
        )


@dataclass(frozen=True)
class BundleChange:
    """One certificate of the bundle and what this run did with it."""

    cert: x509.Certificate
    change: Change
    source: str  # "bundle", "--ca-dir" or "the API's answer"
    needed_by: tuple[str, ...]  # SHA-256 of the valid certificates that need it

    @property
    def kind(self) -> str:
        if not is_ca(self.cert):
            return "LEAF"
        return "root" if self.cert.subject == self.cert.issuer else "intermediate"


@dataclass(frozen=True)
class SyncReport:
    """What one run read, decided and wrote."""

    fetched: Fetched
    served: tuple[Served, ...]
    remembered: tuple[Known, ...]  # no longer listed, still valid: their CAs stay
    forgotten: tuple[Known, ...]  # expired: dropped from the state
    bundle: tuple[BundleChange, ...]
    warnings: tuple[str, ...]
    bundle_path: Path
    state_path: Path
    wrote: tuple[Path, ...]
    now: dt.datetime

    @property
    def changed(self) -> bool:
        return bool(self.wrote)

    def count(self, change: Change) -> int:
        return sum(entry.change is change for entry in self.bundle)

    def to_json(self) -> dict[str, Any]:
        return {
            "api": self.fetched.url,
            "pages": self.fetched.pages,
            "lab_phase": self.fetched.phase,
            "served": [_served_json(s, self.now) for s in self.served],
            "remembered": [k.to_json() for k in self.remembered],
            "forgotten": [k.to_json() for k in self.forgotten],
            "bundle": [_change_json(entry) for entry in self.bundle],
            "warnings": list(self.warnings),
            "bundle_path": str(self.bundle_path),
            "state_path": str(self.state_path),
            "wrote": [str(p) for p in self.wrote],
            "changed": self.changed,
        }


def sync(options: SyncOptions) -> SyncReport:
    """Fetch, merge and (only if something changed) write the bundle and its state."""
    now = options.now or dt.datetime.now(dt.UTC)
    if options.state_path.resolve() == options.out.resolve():
        raise LabError(f"--state {options.state_path} is the bundle itself: give another --state path")
    if options.prune and not options.state_path.exists():
        raise LabError(
            f"--prune on a first run (no state in {options.state_path}): trust-sync cannot yet know which CAs "
            "still-valid certificates need: run it once without --prune"
        )
    existing = read_bundle(options.out)
    state = read_state(options.state_path)
    pool_files = read_ca_dir(options.ca_dir) if options.ca_dir else []
    fetched = fetch_all(
        options.api, options.credentials, api_context(options.server_ca), options.limit, options.timeout
    )
    sources = {fingerprint(c): "the API's answer" for e in fetched.entries for c in e.certificates[1:]}
    sources |= {fingerprint(c): "--ca-dir" for c in pool_files} | {fingerprint(c): "bundle" for c in existing}
    served = tuple(_resolve(entry, [*existing, *pool_files]) for entry in fetched.entries)
    known, forgotten = _merge_known(state, served, now)
    bundle = _decide(existing, served, known, sources, options.prune)
    warnings = _warnings(served, bundle, known, options.warn_days, now)
    wrote = _write_if_changed(options.out, render_bundle(bundle))
    wrote += _write_if_changed(options.state_path, render_state(known))
    listed = {fingerprint(s.leaf) for s in served}
    remembered = tuple(k for k in known.values() if k.sha256 not in listed)
    return SyncReport(
        fetched, served, remembered, forgotten, bundle, warnings, options.out, options.state_path, wrote, now
    )


# --- reading --------------------------------------------------------------------------------------


def read_bundle(path: Path) -> list[x509.Certificate]:
    """The certificates of an existing bundle, without duplicates; none if the file does not exist."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
        certs = x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else []
    except (OSError, ValueError) as exc:
        raise LabError(f"--out {path}: not a PEM bundle ({exc}): fix or move it, or choose another --out") from exc
    return _unique(certs)


def read_state(path: Path) -> dict[str, Known]:
    """The certificates earlier runs saw, by SHA-256; none on the first run."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format is not {STATE_FORMAT!r}")
        known = [Known.from_json(item) for item in data["certificates"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabError(
            f"--state {path}: not trust-sync's state ({exc}): move it away (the next run rebuilds it) or pass --state"
        ) from exc
    return {k.sha256: k for k in known}


def read_ca_dir(directory: Path) -> list[x509.Certificate]:
    """Every CA certificate in the directory's PEM or DER files (``.pem``, ``.crt``, ``.cer``, ``.der``)."""
    if not directory.is_dir():
        raise LabError(f"--ca-dir {directory}: not a directory: give the directory holding the CA files")
    certs: list[x509.Certificate] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in (".pem", ".crt", ".cer", ".der") and path.is_file():
            certs += _load_any(path)
    return _unique(c for c in certs if is_ca(c))


def _load_any(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise LabError(
            f"--ca-dir: {path} is neither PEM nor DER certificates ({exc}): remove it from the directory"
        ) from exc


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[str, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(fingerprint(cert), cert)
    return list(seen.values())


# --- resolving chains -----------------------------------------------------------------------------


def _resolve(entry: Listed, pool: list[x509.Certificate]) -> Served:
    leaf, extras = entry.certificates[0], list(entry.certificates[1:])
    name = f"{entry.common_name} (sha256 {fingerprint(leaf)[:16]})"
    if is_ca(leaf) or _self_signed(leaf):
        raise LabError(
            f"the API lists {name}, a CA or self-signed certificate: expected one issued by a CA; check --api"
        )
    chain = resolve_chain(leaf, [*extras, *pool])
    top = chain[-1] if chain else leaf
    if not _self_signed(top):
        raise LabError(
            f"{name}: its issuer {top.issuer.rfc4514_string()} is not in the API's answer, --ca-dir or the bundle: "
            "put the issuing CA's file (for Adobe: from DigiCert) in a directory and pass --ca-dir DIR"
        )
    return Served(entry, leaf, tuple(chain))


def resolve_chain(cert: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    """The CAs above ``cert``, issuer first, each checked by signature; stops where no issuer is found."""
    chain: list[x509.Certificate] = []
    current = cert
    while not _self_signed(current):
        issuer = next((c for c in pool if is_ca(c) and _issued_by(current, c) and c not in chain), None)
        if issuer is None:
            break
        chain.append(issuer)
        current = issuer
    return chain


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


# --- deciding -------------------------------------------------------------------------------------


def _merge_known(
    state: dict[str, Known], served: tuple[Served, ...], now: dt.datetime
) -> tuple[dict[str, Known], tuple[Known, ...]]:
    """The valid certificates listed now or earlier, and the expired ones dropped."""
    known = dict(state) | {fingerprint(s.leaf): s.known() for s in served}
    valid = {fp: k for fp, k in known.items() if k.not_after > now}
    return valid, tuple(k for fp, k in known.items() if fp not in valid)


def _decide(
    existing: list[x509.Certificate],
    served: tuple[Served, ...],
    known: dict[str, Known],
    sources: dict[str, str],
    prune: bool,
) -> tuple[BundleChange, ...]:
    needed: dict[str, list[str]] = {}
    for k in known.values():
        for ca in k.chain:
            needed.setdefault(ca, []).append(k.sha256)
    before = {fingerprint(c) for c in existing}
    candidates = _unique([*existing, *(ca for s in served for ca in s.chain)])
    changes = []
    for cert in candidates:
        fp = fingerprint(cert)
        if fp not in needed and fp not in before:
            continue  # the CA of a listed certificate that has expired: nothing to add
        if fp in needed:
            change = Change.KEPT if fp in before else Change.ADDED
        else:
            change = Change.REMOVED if prune else Change.RETAINED
        changes.append(BundleChange(cert, change, sources.get(fp, "bundle"), tuple(needed.get(fp, ()))))
    return tuple(sorted(changes, key=_bundle_order))


def _bundle_order(entry: BundleChange) -> tuple[int, str, str]:
    """Roots, then intermediates, then any leaf; by name: the same certificates always in the same order."""
    rank = {"root": 0, "intermediate": 1, "LEAF": 2}[entry.kind]
    return rank, entry.cert.subject.rfc4514_string(), fingerprint(entry.cert)


def _warnings(
    served: tuple[Served, ...],
    bundle: tuple[BundleChange, ...],
    known: dict[str, Known],
    warn_days: int,
    now: dt.datetime,
) -> tuple[str, ...]:
    lines = [] if served else ["the API lists no certificate: nothing to add (right organization and API key?)"]
    for s in served:
        lines += _listing_warnings(s, served, warn_days, now)
    for entry in bundle:
        if entry.change is Change.REMOVED:
            continue
        if entry.kind == "LEAF":
            lines.append(
                f"the bundle holds a leaf certificate ({_name(entry.cert)}, sha256 {fingerprint(entry.cert)[:16]}): "
                "trusting a leaf pins it, which breaks at Adobe's rotation; --prune removes it"
            )
        elif _days_left(entry.cert.not_valid_after_utc, now) <= warn_days:
            lines.append(f"CA {_name(entry.cert)} in the bundle {_expiry(entry.cert.not_valid_after_utc, now)}")
    in_bundle = {fingerprint(e.cert) for e in bundle if e.change is not Change.REMOVED}
    for k in known.values():
        for ca in k.chain:
            if ca not in in_bundle:
                lines.append(
                    f"CA sha256 {ca[:16]}, needed by the still-valid {k.common_name} (sha256 {k.sha256[:16]}), is no "
                    "longer in the bundle (removed by hand?): put its file in --ca-dir to restore it"
                )
    return tuple(dict.fromkeys(lines))


def _listing_warnings(s: Served, served: tuple[Served, ...], warn_days: int, now: dt.datetime) -> list[str]:
    lines = []
    name = f"{s.listed.common_name} (sha256 {fingerprint(s.leaf)[:16]})"
    not_after = s.leaf.not_valid_after_utc
    if _days_left(not_after, now) <= warn_days:
        later = [o.leaf.not_valid_after_utc for o in served if o.listed.common_name == s.listed.common_name]
        successor = max(later)
        follow = (
            f"a successor is listed (expires {successor:%Y-%m-%d})"
            if successor > not_after
            else "no successor is listed yet: run trust-sync again soon"
        )
        lines.append(f"{name} {_expiry(not_after, now)} (--warn-days {warn_days}); {follow}")
    if abs((s.listed.expiry - not_after).total_seconds()) > 1:
        lines.append(f"{name}: expiryDate {_iso(s.listed.expiry)} differs from the certificate's {_iso(not_after)}")
    if s.listed.common_name != common_name(s.leaf.subject):
        lines.append(f"{name}: certCommonName differs from the certificate's CN {common_name(s.leaf.subject)!r}")
    return lines


# --- writing --------------------------------------------------------------------------------------


def render_bundle(bundle: tuple[BundleChange, ...]) -> bytes:
    """The bundle's bytes: the same certificates always give the same bytes (roots first, then by name)."""
    kept = [e.cert for e in sorted(bundle, key=_bundle_order) if e.change is not Change.REMOVED]
    blocks = [
        f"\n# Subject: {c.subject.rfc4514_string()}\n# Issuer: {c.issuer.rfc4514_string()}\n"
        f"# SHA-256: {fingerprint(c)}\n# Valid until: {_iso(c.not_valid_after_utc)}\n{pem_of(c)}"
        for c in kept
    ]
    return (BUNDLE_HEADER + "".join(blocks)).encode()


def render_state(known: dict[str, Known]) -> bytes:
    items = [known[fp].to_json() for fp in sorted(known)]
    return (json.dumps({"format": STATE_FORMAT, "certificates": items}, indent=2) + "\n").encode()


def _write_if_changed(path: Path, data: bytes) -> tuple[Path, ...]:
    """Replace ``path`` atomically with ``data``, unless it already holds exactly that."""
    try:
        if path.exists() and path.read_bytes() == data:
            return ()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror or exc}: choose a writable --out/--state") from exc
    return (path,)


# --- words ----------------------------------------------------------------------------------------


def _name(cert: x509.Certificate) -> str:
    return common_name(cert.subject) or cert.subject.rfc4514_string()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    return (not_after - now) // DAY


def _expiry(not_after: dt.datetime, now: dt.datetime) -> str:
    if not_after <= now:
        return f"EXPIRED on {not_after:%Y-%m-%d %H:%M} UTC"
    return f"expires on {not_after:%Y-%m-%d %H:%M} UTC, in {_days_left(not_after, now)} days"


def _served_json(s: Served, now: dt.datetime) -> dict[str, Any]:
    return {
        "common_name": s.listed.common_name,
        "sha256": fingerprint(s.leaf),
        "expiry": _iso(s.leaf.not_valid_after_utc),
        "days_left": _days_left(s.leaf.not_valid_after_utc, now),
        "chain": [c.subject.rfc4514_string() for c in s.chain],
    }


def _change_json(entry: BundleChange) -> dict[str, Any]:
    return {
        "change": entry.change.value,
        "kind": entry.kind.lower(),
        "subject": entry.cert.subject.rfc4514_string(),
        "sha256": fingerprint(entry.cert),
        "source": entry.source,
        "needed_by": list(entry.needed_by),
    }


def render(report: SyncReport) -> str:
    """The human report: what the API lists, what happened to each CA, warnings, and what was written."""
    f = report.fetched
    phase = f" (lab phase: {f.phase})" if f.phase else ""
    lines = [f"trust-sync: {f.url}: {len(f.entries)} certificate(s) on {f.pages} page(s){phase}"]
    if f.total is not None and f.total != len(f.entries):
        lines.append(f"  note: the API says total {f.total}, and listed {len(f.entries)}")
    for s in report.served:
        lines.append(
            f"  listed      {s.listed.common_name}  sha256 {fingerprint(s.leaf)[:16]}  "
            f"{_expiry(s.leaf.not_valid_after_utc, report.now)}  via {_name(s.chain[0]) if s.chain else 'itself'}"
        )
    for k in report.remembered:
        lines.append(
            f"  remembered  {k.common_name}  sha256 {k.sha256[:16]}  no longer listed, valid until "
            f"{k.not_after:%Y-%m-%d}: its CAs stay trusted"
        )
    for k in report.forgotten:
        lines.append(f"  forgotten   {k.common_name}  sha256 {k.sha256[:16]}  expired {k.not_after:%Y-%m-%d}")
    lines.append(f"bundle {report.bundle_path} (roots and intermediates):")
    for entry in report.bundle:
        lines.append(f"  {entry.change.value:<9} {entry.kind:<12} {_name(entry.cert)}  {_why(entry)}")
    lines += [f"WARNING: {w}" for w in report.warnings]
    lines.append(_result(report))
    return "\n".join(lines)


def _why(entry: BundleChange) -> str:
    if entry.change is Change.RETAINED:
        return "(needed by no valid certificate; --prune removes it)"
    if entry.change is Change.REMOVED:
        return "(needed by no valid certificate; --prune)"
    return f"(needed by {len(entry.needed_by)} valid certificate(s); from {entry.source})"


def _result(report: SyncReport) -> str:
    if not report.changed:
        return f"result: no change: {report.bundle_path} and its state are up to date (nothing written)"
    size = len([e for e in report.bundle if e.change is not Change.REMOVED])
    counts = f"{report.count(Change.ADDED)} added, {report.count(Change.REMOVED)} removed"
    return f"result: wrote {' and '.join(str(p) for p in report.wrote)} ({size} certificates in the bundle: {counts})"
