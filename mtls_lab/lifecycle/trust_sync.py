"""``mtls-lab trust-sync``: the automation Adobe asks customers to build, as a worked example.

It reads Adobe's public-certificate API (every page, see ``client``), keeps the certificates whose
``certCommonName`` it was asked for (``--cn``, by default AJO's ``ajo-journeys.aep-mtls.adobe.com``;
the API lists every Adobe application of the organization) and reports the others as skipped, finds
the CAs that issued each kept certificate (``issuers``), and keeps a PEM trust bundle of those roots
and intermediates (never leaves) up to date, plus a state file next to it (``files``):

- a CA that a listed certificate needs is **added** if new, **kept** otherwise;
- a CA is needed as long as a certificate that chains to it is still valid, whether the API lists it
  today or listed it in an earlier run (the state remembers it). Adobe stops listing a certificate
  before it expires, and asks customers to keep the old hierarchy trusted through the CA migration,
  so "no longer listed" never means "no longer needed";
- a **staged** CA (``--stage``: the next hierarchy's root and intermediate, added ahead of the switch
  as Adobe asks) is kept whether or not a certificate needs it yet; the state remembers it, and a CA
  of Adobe's announced next hierarchy already in the bundle that no valid certificate needs (added by
  hand, as Adobe's page shows) counts as staged;
- a CA that nothing valid needs and nobody staged is **retained** and reported; only ``--prune``
  **removes** it. Nothing is ever removed silently;
- trust-sync writes over no file it did not write: an existing bundle must be a trust bundle, an
  existing state trust-sync's (``files``); otherwise nothing is written;
- nothing is written when nothing changed (a second run with the same input changes nothing and says
  so); files are replaced atomically (a reader sees the old bundle or the new one, never half).

Expiry warnings start, unless ``--warn-days`` says otherwise, where Adobe reissues a certificate,
scaled to the certificate's own lifetime (``cadence``).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from mtls_lab.certs.inspect import common_name, fingerprint, is_ca
from mtls_lab.certs.layout import ADOBE_CN
from mtls_lab.errors import LabError
from mtls_lab.lifecycle import cadence
from mtls_lab.lifecycle.client import SYSTEM, Credentials, Fetched, Listed, api_context, fetch_all
from mtls_lab.lifecycle.files import (
    Known,
    Staged,
    State,
    iso,
    read_bundle,
    read_state,
    render_bundle,
    render_state,
    unique,
    write_if_changed,
)
from mtls_lab.lifecycle.issuers import NEXT_CAS, read_ca_dir, real_name, resolve_chain, self_signed, to_stage

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
    common_names: tuple[str, ...] = (ADOBE_CN,)
    stage: tuple[str, ...] = ()  # "next-hierarchy" or CA files
    warn_days: int | None = None  # None: from each certificate's lifetime (cadence.warning_days)
    prune: bool = False
    limit: int | None = None
    timeout: float = 10.0
    now: dt.datetime | None = None

    @property
    def state_path(self) -> Path:
        return self.state or self.out.with_suffix(".state.json")

    def wants(self, listed: Listed) -> bool:
        return listed.common_name.casefold() in {n.casefold() for n in self.common_names}


class Change(enum.Enum):
    """What a run did to one certificate of the bundle."""

    ADDED = "added"
    KEPT = "kept"
    RETAINED = "retained"  # needed by no valid certificate, not staged; --prune removes it
    REMOVED = "removed"


@dataclass(frozen=True)
class Served:
    """A certificate the API lists now, selected by common name, with its resolved chain."""

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
    source: str  # "bundle", "--ca-dir", "the API's answer" or the --stage source
    needed_by: tuple[str, ...]  # SHA-256 of the valid certificates that need it
    staged: bool = False

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
    skipped: tuple[Listed, ...]  # listed, but not a common name this run keeps
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

    @property
    def bundle_changed(self) -> bool:
        """The bundle was rewritten: the endpoint must reload its trust store."""
        return self.bundle_path in self.wrote

    def count(self, change: Change) -> int:
        return sum(entry.change is change for entry in self.bundle)

    def to_json(self) -> dict[str, Any]:
        return {
            "api": self.fetched.url,
            "pages": self.fetched.pages,
            "lab_phase": self.fetched.phase,
            "served": [_served_json(s, self.now) for s in self.served],
            "skipped": [_skipped_json(listed) for listed in self.skipped],
            "remembered": [k.to_json() for k in self.remembered],
            "forgotten": [k.to_json() for k in self.forgotten],
            "bundle": [_change_json(entry) for entry in self.bundle],
            "warnings": list(self.warnings),
            "bundle_path": str(self.bundle_path),
            "state_path": str(self.state_path),
            "wrote": [str(p) for p in self.wrote],
            "changed": self.changed,
            "bundle_changed": self.bundle_changed,
        }


def sync(options: SyncOptions) -> SyncReport:
    """Check the files, fetch, merge and (only if something changed) write the bundle and its state."""
    now = options.now or dt.datetime.now(dt.UTC)
    if options.state_path.resolve() == options.out.resolve():
        raise LabError(f"--state {options.state_path} is the bundle itself: give another --state path")
    existing = read_bundle(options.out)
    state = read_state(options.state_path)
    if options.prune and state is None:
        raise LabError(
            f"--prune on a first run (no state in {options.state_path}): trust-sync cannot yet know which CAs "
            "still-valid certificates need: run it once without --prune"
        )
    pool = read_ca_dir(options.ca_dir) if options.ca_dir else []
    staging = to_stage(options.stage, options.ca_dir, pool, existing, now)
    fetched = fetch_all(
        options.api, options.credentials, api_context(options.server_ca), options.limit, options.timeout
    )
    selected = [e for e in fetched.entries if options.wants(e)]
    skipped = tuple(e for e in fetched.entries if not options.wants(e))
    sources = {fingerprint(c): "the API's answer" for e in selected for c in e.certificates[1:]}
    sources |= {fingerprint(c): "--ca-dir" for c in pool} | {fingerprint(s.cert): s.source for s in staging}
    sources |= {fingerprint(c): "bundle" for c in existing}
    served = tuple(_resolve(entry, [*existing, *pool]) for entry in selected)
    known, forgotten = _merge_known(state.known if state else {}, served, now)
    staged = _merge_staged(
        state.staged if state else {}, [*(s.cert for s in staging), *_announced(existing, known)], now
    )
    restorable = [c for c in pool if fingerprint(c) in staged]
    candidates = unique([*existing, *(ca for s in served for ca in s.chain), *(s.cert for s in staging), *restorable])
    bundle = _decide(candidates, {fingerprint(c) for c in existing}, known, staged, sources, options.prune)
    warnings = _warnings(fetched, served, skipped, bundle, known, staged, options, now)
    kept = [e.cert for e in bundle if e.change is not Change.REMOVED]
    wrote = write_if_changed(options.out, render_bundle(kept))
    wrote += write_if_changed(options.state_path, render_state(State(known, staged)))
    listed = {fingerprint(s.leaf) for s in served}
    remembered = tuple(k for k in known.values() if k.sha256 not in listed)
    return SyncReport(
        fetched, served, skipped, remembered, forgotten, bundle, warnings, options.out, options.state_path, wrote, now
    )


# --- resolving chains -----------------------------------------------------------------------------


def _resolve(entry: Listed, pool: list[x509.Certificate]) -> Served:
    leaf, extras = entry.certificates[0], list(entry.certificates[1:])
    name = f"{entry.common_name} (sha256 {fingerprint(leaf)[:16]})"
    if is_ca(leaf) or self_signed(leaf):
        raise LabError(
            f"the API lists {name}, a CA or self-signed certificate: expected one issued by a CA; check --api"
        )
    chain = resolve_chain(leaf, [*extras, *pool])
    top = chain[-1] if chain else leaf
    if not self_signed(top):
        raise LabError(
            f"{name}: its issuer {top.issuer.rfc4514_string()} is not in the API's answer, --ca-dir or the bundle: "
            "put the issuing CA's file (for Adobe: from DigiCert) in a directory and pass --ca-dir DIR"
        )
    return Served(entry, leaf, tuple(chain))


# --- deciding -------------------------------------------------------------------------------------


def _merge_known(
    state: dict[str, Known], served: tuple[Served, ...], now: dt.datetime
) -> tuple[dict[str, Known], tuple[Known, ...]]:
    """The valid certificates listed now or earlier, and the expired ones dropped."""
    known = dict(state) | {fingerprint(s.leaf): s.known() for s in served}
    valid = {fp: k for fp, k in known.items() if k.not_after > now}
    return valid, tuple(k for fp, k in known.items() if fp not in valid)


def _merge_staged(state: dict[str, Staged], new: list[x509.Certificate], now: dt.datetime) -> dict[str, Staged]:
    """Every staged CA still valid: the state's (staged since an earlier run) and this run's."""
    staged = {fingerprint(c): Staged.of(c, now) for c in new} | state
    return {fp: s for fp, s in staged.items() if s.not_after > now}


def _announced(bundle: list[x509.Certificate], known: dict[str, Known]) -> list[x509.Certificate]:
    """CAs of Adobe's announced next hierarchy already in the bundle that no valid certificate needs: added by
    hand ahead of the switch, as Adobe's page shows. One a listed certificate needs is needed, not staged (trust-sync
    added it itself, from --ca-dir or the API's answer): counting it as staged would change the state on the run
    after the one that added it."""
    needed = {ca for k in known.values() for ca in k.chain}
    return [c for c in bundle if is_ca(c) and real_name(c) in NEXT_CAS and fingerprint(c) not in needed]


def _decide(
    candidates: list[x509.Certificate],
    before: set[str],
    known: dict[str, Known],
    staged: dict[str, Staged],
    sources: dict[str, str],
    prune: bool,
) -> tuple[BundleChange, ...]:
    needed: dict[str, list[str]] = {}
    for k in known.values():
        for ca in k.chain:
            needed.setdefault(ca, []).append(k.sha256)
    changes = []
    for cert in candidates:
        fp = fingerprint(cert)
        keep = fp in needed or fp in staged
        if not keep and fp not in before:
            continue  # the CA of a listed certificate that has expired: nothing to add
        if keep:
            change = Change.KEPT if fp in before else Change.ADDED
        else:
            change = Change.REMOVED if prune else Change.RETAINED
        entry = BundleChange(cert, change, sources.get(fp, "bundle"), tuple(needed.get(fp, ())), fp in staged)
        changes.append(entry)
    return tuple(sorted(changes, key=_bundle_order))


def _bundle_order(entry: BundleChange) -> tuple[int, str, str]:
    """Roots, then intermediates, then any leaf; by name: the same certificates always in the same order."""
    rank = {"root": 0, "intermediate": 1, "LEAF": 2}[entry.kind]
    return rank, entry.cert.subject.rfc4514_string(), fingerprint(entry.cert)


# --- warnings -------------------------------------------------------------------------------------


def _warnings(
    fetched: Fetched,
    served: tuple[Served, ...],
    skipped: tuple[Listed, ...],
    bundle: tuple[BundleChange, ...],
    known: dict[str, Known],
    staged: dict[str, Staged],
    options: SyncOptions,
    now: dt.datetime,
) -> tuple[str, ...]:
    lines = []
    if not fetched.entries:
        lines.append("the API lists no certificate: nothing to add (right organization and API key?)")
    elif not served:
        others = ", ".join(sorted({e.common_name for e in skipped}))
        wanted = ", ".join(options.common_names)
        lines.append(f"the API lists no certificate for {wanted} (only {others}): nothing to add; check --cn")
    for s in served:
        lines += _listing_warnings(s, served, options.warn_days, now)
    in_bundle = {fingerprint(e.cert) for e in bundle if e.change is not Change.REMOVED}
    for entry in bundle:
        if entry.change is not Change.REMOVED:
            lines += _bundle_warnings(entry, options.warn_days, now)
    for k in known.values():
        for ca in k.chain:
            if ca not in in_bundle:
                lines.append(
                    f"CA sha256 {ca[:16]}, needed by the still-valid {k.common_name} (sha256 {k.sha256[:16]}), is no "
                    "longer in the bundle (removed by hand?): put its file in --ca-dir to restore it"
                )
    for pending in staged.values():
        if pending.sha256 not in in_bundle:
            lines.append(
                f"the staged CA {pending.subject} (sha256 {pending.sha256[:16]}) is no longer in the bundle "
                "(removed by hand?): put its file in --ca-dir or --stage it again"
            )
    return tuple(dict.fromkeys(lines))


def _window(cert: x509.Certificate, warn_days: int | None) -> tuple[int, str]:
    """Days before expiry from which to warn, and how that was chosen."""
    if warn_days is not None:
        return warn_days, f"--warn-days {warn_days}"
    days = cadence.warning_days(cert.not_valid_before_utc, cert.not_valid_after_utc)
    lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc) // DAY
    return days, f"warned {days} days ahead for a {lifetime}-day certificate"


def _listing_warnings(s: Served, served: tuple[Served, ...], warn_days: int | None, now: dt.datetime) -> list[str]:
    lines = []
    name = f"{s.listed.common_name} (sha256 {fingerprint(s.leaf)[:16]})"
    not_after = s.leaf.not_valid_after_utc
    days, why = _window(s.leaf, warn_days)
    if _days_left(not_after, now) <= days:
        later = [o.leaf.not_valid_after_utc for o in served if o.listed.common_name == s.listed.common_name]
        successor = max(later)
        follow = (
            f"a successor is listed (expires {successor:%Y-%m-%d})"
            if successor > not_after
            else "no successor is listed yet: run trust-sync again soon"
        )
        lines.append(f"{name} {_expiry(not_after, now)} ({why}); {follow}")
    if abs((s.listed.expiry - not_after).total_seconds()) > 1:
        lines.append(f"{name}: expiryDate {iso(s.listed.expiry)} differs from the certificate's {iso(not_after)}")
    if s.listed.common_name != common_name(s.leaf.subject):
        lines.append(f"{name}: certCommonName differs from the certificate's CN {common_name(s.leaf.subject)!r}")
    return lines


def _bundle_warnings(entry: BundleChange, warn_days: int | None, now: dt.datetime) -> list[str]:
    if entry.kind == "LEAF":
        return [
            f"the bundle holds a leaf certificate ({_name(entry.cert)}, sha256 {fingerprint(entry.cert)[:16]}): "
            "trusting a leaf pins it, which breaks at Adobe's next reissue; --prune removes it"
        ]
    days, _ = _window(entry.cert, warn_days)
    if _days_left(entry.cert.not_valid_after_utc, now) <= days:
        return [f"CA {_name(entry.cert)} in the bundle {_expiry(entry.cert.not_valid_after_utc, now)}"]
    return []


# --- words ----------------------------------------------------------------------------------------


def _name(cert: x509.Certificate) -> str:
    return common_name(cert.subject) or cert.subject.rfc4514_string()


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
        "expiry": iso(s.leaf.not_valid_after_utc),
        "days_left": _days_left(s.leaf.not_valid_after_utc, now),
        "chain": [c.subject.rfc4514_string() for c in s.chain],
    }


def _skipped_json(listed: Listed) -> dict[str, Any]:
    return {
        "common_name": listed.common_name,
        "sha256": fingerprint(listed.certificates[0]),
        "expiry": iso(listed.expiry),
    }


def _change_json(entry: BundleChange) -> dict[str, Any]:
    return {
        "change": entry.change.value,
        "kind": entry.kind.lower(),
        "subject": entry.cert.subject.rfc4514_string(),
        "sha256": fingerprint(entry.cert),
        "source": entry.source,
        "needed_by": list(entry.needed_by),
        "staged": entry.staged,
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
    for listed in report.skipped:
        lines.append(
            f"  skipped     {listed.common_name}  sha256 {fingerprint(listed.certificates[0])[:16]}  "
            "(another application: not a --cn of this run)"
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
    if entry.staged and not entry.needed_by:
        return f"(staged ahead of the switch, --prune keeps it; from {entry.source})"
    staged = "; staged" if entry.staged else ""
    return f"(needed by {len(entry.needed_by)} valid certificate(s){staged}; from {entry.source})"


def _result(report: SyncReport) -> str:
    if not report.changed:
        return f"result: no change: {report.bundle_path} and its state are up to date (nothing written)"
    if not report.bundle_changed:
        return f"result: {report.bundle_path} unchanged (no reload needed); wrote {report.state_path}"
    size = len([e for e in report.bundle if e.change is not Change.REMOVED])
    counts = f"{report.count(Change.ADDED)} added, {report.count(Change.REMOVED)} removed"
    wrote = " and ".join(str(p) for p in report.wrote)
    return f"result: wrote {wrote} ({size} certificates in the bundle: {counts}): reload the endpoint's trust store"
