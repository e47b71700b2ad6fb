"""The handshake ladder as SVG geometry: one arrow per message the caller really observed.

Drawn from ``Verdict.handshake`` (``caller/_handshake_trace.py``), never reconstructed from the verdict,
like the terminal ladder (``caller/ladder.py``). Caller on the left, server on the right; each arrow
carries its message's facts (versions, SNI, CA names, the chain or "empty Certificate", the alert and
when it came). The template ``_ladder.svg.j2`` draws it; texts are escaped there like all others.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from mtls_lab.caller.ladder import response_line
from mtls_lab.caller.verdict import Verdict

WIDTH = 900
CALLER_X, SERVER_X = 130, 770
TOP = 40  # below the parties' names
LINE = 15  # px per label line (12 px monospace)
GAP = 20  # px between a label's last line and its arrow, and below the arrow
CHARS = 84  # label characters per line between the lifelines
TO_SERVER, TO_CALLER = "caller->server", "server->caller"


@dataclass(frozen=True)
class Arrow:
    direction: str
    kind: str
    lines: list[str]
    style: str  # handshake, alert, empty, app
    y: int  # the arrow
    label_y: int  # the label's first baseline

    @property
    def x1(self) -> int:
        return CALLER_X if self.direction == TO_SERVER else SERVER_X

    @property
    def x2(self) -> int:
        return SERVER_X if self.direction == TO_SERVER else CALLER_X


@dataclass(frozen=True)
class Marker:
    y: int
    text: str


@dataclass
class Ladder:
    caller_label: str
    server_label: str
    arrows: list[Arrow] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    height: int = TOP
    empty_note: str = ""  # why no message is drawn
    width: int = WIDTH
    caller_x: int = CALLER_X
    server_x: int = SERVER_X

    @property
    def empty(self) -> bool:
        return not self.arrows


def build(verdict: Verdict, server_label: str = "") -> Ladder:
    """The ladder of the last connection the caller made for ``verdict``."""
    model = "Java model" if verdict.client_behavior == "java" else "OpenSSL client"
    ladder = Ladder(
        f"caller: AJO-like, {model}, identity {verdict.identity or 'none'}", f"server: {server_label or verdict.url}"
    )
    y = TOP
    finished_sent = False
    for message in _messages(verdict):
        lines = _label(message, verdict, finished_sent)
        label_y = y + LINE
        arrow_y = label_y + LINE * (len(lines) - 1) + GAP - 8
        ladder.arrows.append(Arrow(message["direction"], message["type"], lines, _style(message), arrow_y, label_y))
        y = arrow_y + GAP - 4
        if message["direction"] == TO_SERVER and message["type"] == "Finished" and not finished_sent:
            finished_sent = True
            ladder.markers.append(Marker(y + 2, "the caller's Finished is sent: its side of the handshake is done"))
            y += LINE + 4
    ladder.height = y + 16
    if ladder.empty:
        ladder.empty_note = (
            "no call to the action's endpoint: the custom authorization's token call failed first"
            if verdict.failed_call == "token"
            else "no TLS message was exchanged (no connection)"
        )
        ladder.height = TOP + 44
    return ladder


def _messages(verdict: Verdict) -> list[dict[str, Any]]:
    """The observed messages, plus the HTTP exchange when the trace holds no application data for it."""
    messages = list(verdict.handshake)
    if verdict.status is not None and not any(m["type"] == "ApplicationData" for m in messages):
        messages += [
            {"direction": TO_SERVER, "type": "ApplicationData", "details": {}},
            {"direction": TO_CALLER, "type": "ApplicationData", "details": {}},
        ]
    return messages


def _style(message: dict[str, Any]) -> str:
    kind = message["type"]
    if kind == "Alert":
        return "alert"
    if kind == "ApplicationData":
        return "app"
    if kind == "Certificate" and not message["details"].get("chain"):
        return "empty"
    return "handshake"


def _label(message: dict[str, Any], verdict: Verdict, finished_sent: bool) -> list[str]:
    kind, details = message["type"], message["details"]
    sent = message["direction"] == TO_SERVER
    if kind == "ApplicationData":
        head, facts = ("HTTP request", [verdict.request_line]) if sent else ("HTTP response", [response_line(verdict)])
    elif kind == "Alert":
        head, facts = f"Alert {details.get('alert')} ({details.get('level')})", [_when(message, finished_sent)]
    elif kind == "Certificate":
        head, facts = _certificate(details.get("chain", []), sent, verdict)
    else:
        head, facts = kind, _facts(kind, details)
    return [head] + [piece for fact in facts for piece in _wrap(fact)]


def _facts(kind: str, details: dict[str, Any]) -> list[str]:
    if kind == "ClientHello":
        offered = ", ".join(details.get("versions_offered", [])) or "?"
        return [f"offers {offered}; " + (f"SNI {details['sni']}" if details.get("sni") else "no SNI")]
    if kind == "ServerHello":
        return [f"{details.get('version', '?')}, cipher {details.get('cipher_suite', '?')}"]
    if kind == "CertificateRequest":
        names = details.get("ca_names") or []
        return [f"CA name: {name}" for name in names] or ["CA names: none (any issuer will do)"]
    if kind == "unparsed":
        return [str(details.get("error", ""))]
    return []


def _certificate(chain: list[dict[str, Any]], sent: bool, verdict: Verdict) -> tuple[str, list[str]]:
    if sent and not chain:
        return "Certificate: EMPTY", [f"no client certificate: {verdict.certificate_choice or 'none to send'}"]
    if not chain:
        return "Certificate: EMPTY", []
    whose = "the caller's" if sent else "the server's"
    facts = [f"{'leaf' if i == 0 else 'then'}: {c.get('subject', '?')}" for i, c in enumerate(chain)]
    facts.append(f"issued by {chain[-1].get('issuer', '?')}")
    if sent and verdict.certificate_choice:
        facts.append(f"why sent: {verdict.certificate_choice}")
    if not sent:
        untrusted = verdict.outcome.value == "server_untrusted"
        facts.append("the caller does NOT trust this chain" if untrusted else "the caller trusts this chain")
    return f"Certificate ({whose} chain, {len(chain)})", facts


def _when(message: dict[str, Any], finished_sent: bool) -> str:
    if message.get("after_client_finished"):
        return (
            "after the caller's Finished: the handshake was complete for the caller (TLS 1.3); the server "
            "judged the certificate then, so the caller met the alert on its first read"
        )
    if finished_sent:
        return (
            "the caller had sent its whole flight, Finished included (TLS 1.2); the server rejected it before "
            "finishing its own side: the handshake failed"
        )
    return "before the caller's Finished: the handshake failed"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, CHARS, break_long_words=True, break_on_hyphens=False) or [""]
