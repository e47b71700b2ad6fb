"""The certificates a report shows: subject, issuer, validity, SAN, EKU, fingerprint, and whether it is real.

The lab's certificates imitate Adobe's and DigiCert's names on purpose; a report that a server team or
Adobe support reads must never let one pass for the real thing. A certificate is marked as a lab
stand-in when its fingerprint is one of the lab PKI's, or when its subject or issuer carries the lab's
"MTLS LAB" name (every lab CA does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtls_lab.certs.inspect import CertFacts, fingerprint, load_pem_chain
from mtls_lab.certs.layout import CA, Identity, LabPaths

LAB_MARK = "MTLS LAB"


@dataclass(frozen=True)
class CertCard:
    role: str
    subject: str
    issuer: str
    not_before: str
    not_after: str
    san: list[str]
    eku: list[str]
    sha256: str
    stand_in: str  # why this is not a real certificate, or ""


class LabMarks:
    """Which fingerprints belong to the lab PKI, and what each one stands in for."""

    def __init__(self, pki: LabPaths | None) -> None:
        self.known: dict[str, str] = {}
        if pki is None:
            return
        for ca in CA:
            real = ca.stands_in_for
            self._add(pki.ca(ca), f"stands in for {real}" if real else "a lab CA, real in no trust store")
        self._add(pki.server_cert, "the lab server's certificate, from the lab's own server root")
        for identity in Identity:
            self._add(pki.client_cert(identity), f"lab identity '{identity.value}': {identity.description}")

    def _add(self, path: Any, what: str) -> None:
        try:
            chain = load_pem_chain(path)
        except (OSError, ValueError):
            return
        self.known.setdefault(fingerprint(chain[0]), what)
        for cert in chain[1:]:  # an identity's intermediate: marked by its own CA file too
            self.known.setdefault(fingerprint(cert), "a lab intermediate CA")

    def stand_in(self, sha256: str, subject: str, issuer: str) -> str:
        what = self.known.get(sha256)
        if what is None and (LAB_MARK in subject or LAB_MARK in issuer):
            what = f"issued by the lab ({issuer})"
        return f"LAB STAND-IN, not a real certificate: {what}" if what else ""


def from_facts(role: str, facts: CertFacts, marks: LabMarks) -> CertCard:
    return CertCard(
        role,
        facts.subject,
        facts.issuer,
        facts.not_before,
        facts.not_after,
        list(facts.dns_names),
        list(facts.extended_key_usage),
        facts.sha256,
        marks.stand_in(facts.sha256, facts.subject, facts.issuer),
    )


def from_handshake(role: str, entry: dict[str, Any], marks: LabMarks) -> CertCard:
    """A certificate as the handshake trace decoded it (``Certificate`` message details)."""
    subject, issuer, sha256 = str(entry.get("subject", "")), str(entry.get("issuer", "")), str(entry.get("sha256", ""))
    return CertCard(
        role,
        subject,
        issuer,
        str(entry.get("not_before", "?")),
        str(entry.get("not_after", "?")),
        [str(n) for n in entry.get("dns_names", [])],
        [str(u) for u in entry.get("extended_key_usage", [])],
        sha256,
        marks.stand_in(sha256, subject, issuer),
    )


def involved(handshake: list[dict[str, Any]], held: list[CertFacts], marks: LabMarks) -> list[CertCard]:
    """The server's chain and the caller's as observed, then what the caller held and did not send."""
    cards: list[CertCard] = []
    sent: set[str] = set()
    for message in handshake:
        if message["type"] != "Certificate":
            continue
        ours = message["direction"] == "caller->server"
        for index, entry in enumerate(message["details"].get("chain", [])):
            who = "the caller sent" if ours else "the server presented"
            role = f"{who}: {'leaf' if index == 0 else f'chain certificate {index}'}"
            cards.append(from_handshake(role, entry, marks))
            if ours:
                sent.add(str(entry.get("sha256")))
    for index, facts in enumerate(held):
        if facts.sha256 not in sent:
            role = f"the caller held, not sent: {'leaf' if index == 0 else f'chain certificate {index}'}"
            cards.append(from_facts(role, facts, marks))
    return cards
