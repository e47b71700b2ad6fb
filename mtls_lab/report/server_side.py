"""What the lab server recorded for one attempt of the caller, to set beside what the caller saw.

An attempt is found in the server's record by the caller's local port (the server's peer port), among
entries written since the attempt started. The record (``mtls_lab.server.record``, ``/_lab/calls``) has
two kinds of entries:

- request entries (record version 1, and ``kind: "request"`` from version 2): a request that reached
  the app, with the TLS facts of its connection;
- connection entries (``kind: "connection"``, record version 2): one per TLS connection, accepted or
  not, with the alert the server sent. ``connection_facts`` is the seam that reads them; a record
  without them cannot show a handshake the server's TLS layer rejected, and the report says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtls_lab.errors import LabError
from mtls_lab.server.record import read_newest

RECORD_TAIL = 5000  # the newest entries of a record file: a report looks at the latest attempts
BODY_SHOWN = 2000  # characters of a recorded body shown in the report (the record keeps up to 64 KiB)
CLOCK_SLACK = dt.timedelta(seconds=2)  # the server's clock stamps an entry a little after the caller started


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    tone: str = ""  # "bad", "good" or "" (a colour in the report)


@dataclass(frozen=True)
class ServerEntry:
    kind: str  # "connection" or "request"
    time: str
    facts: list[Fact]
    raw: str  # the entry as recorded, pretty-printed JSON


@dataclass
class ServerSide:
    """The server's entries for one attempt, or why there are none."""

    source: str
    port: int | None
    entries: list[ServerEntry] = field(default_factory=list)
    note: str = ""

    @property
    def has_connection_entries(self) -> bool:
        return any(e.kind == "connection" for e in self.entries)


def read_record_file(path: Path) -> list[dict[str, Any]]:
    """The newest entries of a record file (``mtls-lab serve --record PATH``)."""
    try:
        return read_newest(path, RECORD_TAIL)
    except OSError as exc:
        raise LabError(
            f"--server-record {path}: cannot read it ({exc.strerror}): give the file of `mtls-lab serve --record`"
        ) from exc


def for_attempt(
    entries: Iterable[dict[str, Any]], port: int | None, since: dt.datetime | None, source: str
) -> ServerSide:
    """The entries of the connection the caller made from ``port``, oldest first."""
    side = ServerSide(source, port)
    if port is None:
        side.note = "The caller made no TCP connection, so the server cannot have recorded this attempt."
        return side
    entries = list(entries)
    mine = [e for e in entries if peer_port(e) == port and _recent(e, since)]
    side.entries = [_entry(e) for e in sorted(mine, key=lambda e: str(e.get("time", "")))]
    if not side.entries and versioned(entries):
        side.note = (
            f"The server recorded nothing from the caller's port {port}: no connection of the caller's reached it."
        )
    elif not side.entries:
        side.note = (
            f"The server recorded nothing from the caller's port {port}. Its record holds requests that "
            "reached the app; a handshake its TLS layer rejected leaves no request entry, and this record "
            "has no connection entries (record version 1)."
        )
    elif not side.has_connection_entries:
        side.note = "This record holds requests only (record version 1): the TLS facts come with each request."
    return side


def versioned(entries: Iterable[dict[str, Any]]) -> bool:
    """Whether the record has connection entries: ``record_version`` 2 or later."""
    return any(isinstance(e.get("record_version"), int) and e["record_version"] >= 2 for e in entries)


def peer_port(entry: dict[str, Any]) -> int | None:
    """The client's port of a record entry: ``"127.0.0.1:54321"``, ``"[::1]:54321"`` or ``{"port": 54321}``."""
    peer: Any = entry.get("peer", entry.get("client"))
    if isinstance(peer, dict):
        peer = peer.get("port")
    elif isinstance(peer, list | tuple):
        peer = peer[1] if len(peer) >= 2 else None
    elif isinstance(peer, str):
        peer = peer.rsplit(":", 1)[-1]
    try:
        return int(peer) if isinstance(peer, int | str) else None
    except ValueError:
        return None


def _recent(entry: dict[str, Any], since: dt.datetime | None) -> bool:
    if since is None:
        return True
    try:
        stamp = dt.datetime.fromisoformat(str(entry.get("time")))
    except ValueError:
        return True  # no readable time: the port alone decides
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp >= since - CLOCK_SLACK


def _entry(entry: dict[str, Any]) -> ServerEntry:
    kind = "connection" if entry.get("kind") == "connection" else "request"
    facts = connection_facts(entry) if kind == "connection" else request_facts(entry)
    raw = json.dumps(entry, indent=2, sort_keys=True, default=str)
    return ServerEntry(kind, str(entry.get("time", "")), facts, raw)


def request_facts(entry: dict[str, Any]) -> list[Fact]:
    """A request that reached the app, as the report shows it."""
    status = entry.get("status")
    reason = f" {entry['reason']}" if entry.get("reason") else ""
    query = f"?{entry['query']}" if entry.get("query") else ""
    facts = [
        Fact("request", f"{entry.get('method', '?')} {entry.get('path', '?')}{query}"),
        Fact("answered", f"HTTP {status}{reason}", "good" if str(status).startswith("2") else "bad"),
        Fact("TLS", f"{entry.get('tls_version') or '?'}, {entry.get('cipher') or '?'}"),
        *_certificate_facts(entry),
    ]
    if isinstance(entry.get("asked_after_handshake"), dict):
        facts.append(_asked(entry["asked_after_handshake"]))
    if entry.get("body"):
        body = str(entry["body"])
        cut = f" (first {BODY_SHOWN} of {len(body)} characters)" if len(body) > BODY_SHOWN else ""
        facts.append(Fact("body" + cut, body[:BODY_SHOWN]))
    return facts


def _certificate_facts(entry: dict[str, Any]) -> list[Fact]:
    cert = entry.get("client_certificate")
    verify = entry.get("ssl_client_verify")
    checked = [Fact("verification", str(verify), "good" if verify == "SUCCESS" else "bad")] if verify else []
    if not isinstance(cert, dict):
        return [Fact("client certificate", "none presented", "bad"), *checked]
    return [
        Fact("client certificate", str(cert.get("subject", "?"))),
        Fact("issued by", str(cert.get("issuer", "?"))),
        Fact("SHA-256", str(cert.get("sha256", "?"))),
        *checked,
    ]


# --- the seam for connection entries (record version 2, docs/reference/record.md) ---------------------

# the fields shown as they are, in this order; the alerts, the certificate and the chain are put in words
_CONNECTION_FIELDS = {
    "outcome": "outcome",
    "sni": "SNI",
    "versions_offered": "versions offered",
    "tls_version": "version chosen",
    "cipher": "cipher",
    "certificate_requested": "certificate requested",
    "ca_names_advertised": "CA names advertised",
}
_AFTER = {"ssl_client_verify": "verification", "error": "error", "http_refused": "HTTP refused", "requests": "requests"}
_WORDED = {"client_certificate", "client_chain", "alert_sent", "alert_received", "asked_after_handshake"}
_NOT_SHOWN = {"time", "ended", "kind", "record_version", "client", "peer", "connection_id", "mode", "reason"}


def connection_facts(entry: dict[str, Any]) -> list[Fact]:
    """One TLS connection as the server saw it: the fields this report knows, then any added later."""
    facts = [Fact(label, _text(entry[key])) for key, label in _CONNECTION_FIELDS.items() if key in entry]
    facts += [_presented(entry), _alert("alert sent", entry.get("alert_sent"))]
    if entry.get("alert_received"):
        facts.append(_alert("alert received from the client", entry["alert_received"]))
    facts += [Fact(label, _text(entry[key])) for key, label in _AFTER.items() if entry.get(key) is not None]
    facts += [_asked(asked) for asked in entry.get("asked_after_handshake") or [] if isinstance(asked, dict)]
    known = {*_CONNECTION_FIELDS, *_AFTER, *_WORDED, *_NOT_SHOWN}
    facts += [Fact(key.replace("_", " "), _text(value)) for key, value in entry.items() if key not in known]
    return [_toned(f) for f in facts]


_HOW = {"post_handshake_auth": "TLS 1.3 post-handshake authentication", "renegotiation": "TLS 1.2 renegotiation"}
_ANSWERS = {
    "certificate": ("the client sent its certificate, verified", "good"),
    "no_certificate": ("the client sent none", "bad"),
    "post_handshake_auth_not_offered": (
        "the client offered no post-handshake authentication: nothing could be asked, Apache's 403",
        "bad",
    ),
    "rejected": ("the server's alert ended the connection", "bad"),
    "closed": ("the client closed the connection instead", "bad"),
    "timed_out": ("no answer in time: the connection was closed", "bad"),
}


def _asked(asked: dict[str, Any]) -> Fact:
    """A request for the client certificate after the handshake (``--client-cert-paths``), in words."""
    where = f" for {asked['path']}" if asked.get("path") else ""
    how = _HOW.get(str(asked.get("method")), str(asked.get("method")))
    said, tone = _ANSWERS.get(str(asked.get("answer")), (str(asked.get("answer")), "bad"))
    error = f" (OpenSSL: {asked['error']})" if asked.get("error") else ""
    rule = f" (rule {asked['path_rule']})" if asked.get("path_rule") else ""
    return Fact("asked after the handshake", f"{how}{where}{rule}: {said}{error}", tone)


def _presented(entry: dict[str, Any]) -> Fact:
    chain = entry.get("client_chain") or []
    state = entry.get("client_certificate")
    if state == "empty":
        return Fact("client certificate", "empty Certificate: asked, and the client sent none", "bad")
    if state == "not_sent" or not chain:
        return Fact("client certificate", "none (no Certificate message)")
    names = [f"{c.get('subject', '?')} (issued by {c.get('issuer', '?')})" for c in chain if isinstance(c, dict)]
    return Fact("client certificate", "presented: " + "; then ".join(names))


def _alert(label: str, alert: Any) -> Fact:
    if not isinstance(alert, dict):
        return Fact(label, "none")
    when = ""
    if "after_client_finished" in alert:
        when = ", after the client's Finished" if alert["after_client_finished"] else ", before the client's Finished"
    return Fact(label, f"{alert.get('name', '?')} ({alert.get('level', '?')}){when}", "bad")


def _toned(fact: Fact) -> Fact:
    if fact.tone:
        return fact
    if fact.label == "outcome":
        return Fact(fact.label, fact.value, "good" if fact.value == "accepted" else "bad")
    if fact.label == "verification" and fact.value != "NONE":
        return Fact(fact.label, fact.value, "good" if fact.value == "SUCCESS" else "bad")
    return fact


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)
