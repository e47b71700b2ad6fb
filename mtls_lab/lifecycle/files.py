"""The two files ``mtls-lab trust-sync`` keeps, the trust bundle and its state: read strictly, written atomically.

trust-sync never writes over a file it did not write. An existing bundle must be a trust bundle: PEM
``CERTIFICATE`` blocks, blank lines and ``#`` comment lines, nothing else (a bundle that ``--prune``
emptied holds only trust-sync's header, and an empty file holds nothing to lose). A configuration
file, a key, a public key or a DER file is refused before anything is fetched or written; so is a state
file that is not trust-sync's. Comment lines are not kept: trust-sync writes its own, one block per
certificate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from mtls_lab.certs.inspect import fingerprint, pem_of
from mtls_lab.errors import LabError

STATE_FORMAT = "mtls-lab trust-sync state 2"
OLDER_FORMATS = ("mtls-lab trust-sync state 1",)  # read, then written back as the current format
BUNDLE_HEADER = (
    "# Trust bundle for Adobe's mTLS client certificates, kept by `mtls-lab trust-sync`.\n"
    "# Roots and intermediates only, never leaves. Edit with care: trust-sync keeps the certificates\n"
    "# you add (not your comments) and removes nothing without --prune.\n"
)
_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]+)-----\s*$")
_END = re.compile(r"^-----END ([A-Z0-9 ]+)-----\s*$")


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
            "not_after": iso(self.not_after),
            "chain": list(self.chain),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Known:
        return cls(
            data["sha256"], data["common_name"], dt.datetime.fromisoformat(data["not_after"]), tuple(data["chain"])
        )


@dataclass(frozen=True)
class Staged:
    """A CA added ahead of the certificates that will need it (``--stage``): ``--prune`` never removes it."""

    sha256: str
    subject: str
    not_after: dt.datetime
    since: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "subject": self.subject,
            "not_after": iso(self.not_after),
            "since": iso(self.since),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Staged:
        moments = (dt.datetime.fromisoformat(data["not_after"]), dt.datetime.fromisoformat(data["since"]))
        return cls(data["sha256"], data["subject"], *moments)

    @classmethod
    def of(cls, cert: x509.Certificate, now: dt.datetime) -> Staged:
        return cls(fingerprint(cert), cert.subject.rfc4514_string(), cert.not_valid_after_utc, now)


@dataclass(frozen=True)
class State:
    """What earlier runs left: the certificates they saw and the CAs staged, each by SHA-256."""

    known: dict[str, Known] = field(default_factory=dict)
    staged: dict[str, Staged] = field(default_factory=dict)


# --- reading --------------------------------------------------------------------------------------


def read_bundle(path: Path) -> list[x509.Certificate]:
    """The certificates of an existing trust bundle, without duplicates; none if the file does not exist.

    LabError if the file is anything but a trust bundle: trust-sync would otherwise replace it.
    """
    if not path.exists():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabError(f"--out {path}: cannot read it ({exc.strerror or exc}): give a readable bundle path") from exc
    reason = not_a_bundle(data)
    if reason is None and b"-----BEGIN" in data:
        try:
            return unique(x509.load_pem_x509_certificates(data))
        except ValueError:
            reason = "a CERTIFICATE block does not hold a valid certificate"
    if reason is not None:
        raise LabError(
            f"--out {path} is not a trust bundle ({reason}): trust-sync writes only over a file of certificates: "
            f"give a new --out path, or move {path.name} away"
        )
    return []


def not_a_bundle(data: bytes) -> str | None:
    """Why ``data`` is not a trust bundle (PEM certificates, blank lines, ``#`` comments), or None if it is one."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return "binary data, not PEM text" + (" (DER?)" if data[:1] == b"\x30" else "")
    inside: tuple[int, str] | None = None  # (line, label) of the open block
    for number, line in enumerate(text.splitlines(), 1):
        begin, end = _BEGIN.match(line.strip()), _END.match(line.strip())
        if inside is None and begin:
            if begin.group(1) != "CERTIFICATE":
                return f"line {number} starts a {begin.group(1)} block, not a certificate"
            inside = (number, begin.group(1))
        elif inside is None and line.strip() and not line.lstrip().startswith("#"):
            return f"line {number} is text, not part of a PEM certificate"
        elif inside is not None and end:
            inside = None
    if inside is not None:
        return f"the CERTIFICATE block of line {inside[0]} never ends"
    return None


def read_state(path: Path) -> State | None:
    """The state earlier runs left; None on the first run (no file). LabError if the file is not trust-sync's."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("format") not in (STATE_FORMAT, *OLDER_FORMATS):
            raise ValueError(f"format is not {STATE_FORMAT!r}")
        known = [Known.from_json(item) for item in data["certificates"]]
        staged = [Staged.from_json(item) for item in data.get("staged", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LabError(
            f"--state {path} is not trust-sync's state ({_one_line(exc)}): trust-sync writes only over its own state: "
            "move it away (the next run rebuilds it) or pass another --state"
        ) from exc
    return State({k.sha256: k for k in known}, {s.sha256: s for s in staged})


def unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[str, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(fingerprint(cert), cert)
    return list(seen.values())


# --- writing --------------------------------------------------------------------------------------


def render_bundle(certs: list[x509.Certificate]) -> bytes:
    """The bundle's bytes, certificates in the order given, each under a comment naming it."""
    blocks = [
        f"\n# Subject: {c.subject.rfc4514_string()}\n# Issuer: {c.issuer.rfc4514_string()}\n"
        f"# SHA-256: {fingerprint(c)}\n# Valid until: {iso(c.not_valid_after_utc)}\n{pem_of(c)}"
        for c in certs
    ]
    return (BUNDLE_HEADER + "".join(blocks)).encode()


def render_state(state: State) -> bytes:
    data = {
        "format": STATE_FORMAT,
        "certificates": [state.known[fp].to_json() for fp in sorted(state.known)],
        "staged": [state.staged[fp].to_json() for fp in sorted(state.staged)],
    }
    return (json.dumps(data, indent=2) + "\n").encode()


def write_if_changed(path: Path, data: bytes) -> tuple[Path, ...]:
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


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
