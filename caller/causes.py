"""Why a client certificate was refused: the facts first, then the server's answer as evidence of its stack.

The caller knows more than the alert: whether it sent a certificate, which chain, the leaf's dates
and extended key usage, which CA names the server advertised. ``diagnose`` lists the causes those
facts allow, in order of likelihood (``FACT_ORDER``), keeps the ones that some measured stack reports
with the answer the endpoint gave (``caller/stacks.py``), and says which stacks answer that way. An
alert never overrules a fact: with no certificate sent, the cause is the missing certificate whatever
the alert says, and a clock is named only when a sent certificate's dates can explain the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mtls_lab.caller.stacks import Failure, Stack, describe, failures_behind, senders
from mtls_lab.vocabulary import AdobeChain

NEAR = dt.timedelta(days=2)  # a clock this far off is plausible; further, the dates are not the likely cause


@dataclass(frozen=True)
class CallFacts:
    """What the caller knows beyond the exception or response: used to explain a failure."""

    tls: str | None
    handshake_done: bool
    tls_version: str | None
    identity: str | None
    chain_leaf_only: bool
    behavior: str
    cert_requested: bool
    cert_sent: bool
    advertised: list[str]
    leaf_expired: bool = False
    leaf_not_yet_valid: bool = False
    leaf_lacks_client_auth: bool = False
    leaf_issuer: str = ""
    # the issuers of every certificate of the chain the caller holds, the leaf's first: what a JDK matches the
    # advertised CA names on (empty: the leaf's issuer alone counts)
    chain_issuers: tuple[str, ...] = ()
    leaf_self_signed: bool = False
    leaf_not_before: dt.datetime | None = None  # aware, UTC
    leaf_not_after: dt.datetime | None = None
    leaf_usages: tuple[str, ...] = ()
    cert_file: str = ""
    url: str = ""
    asked_after_handshake: bool = False  # a renegotiation or a TLS 1.3 post-handshake CertificateRequest
    offered_post_handshake_auth: bool = False  # our ClientHello offered it (RFC 8446 4.2.6)

    @property
    def version(self) -> str | None:
        """'1.2' or '1.3' when known."""
        if self.tls_version:
            return self.tls_version.removeprefix("TLSv")
        return self.tls


@dataclass(frozen=True)
class Cause:
    """One possible cause: the failure, whether a wrong clock makes it, and the words for it."""

    failure: Failure
    why: str
    fix: str
    check: str = ""  # a command that confirms or rules out this cause
    clock: bool = False


@dataclass(frozen=True)
class Diagnosis:
    causes: list[Cause]
    evidence: str  # what the answer says about the server's stack
    stacks: list[Stack] = field(default_factory=list)  # the stacks that give this answer for the first cause

    @property
    def explanation(self) -> str:
        text = f"{self.causes[0].why} {self.evidence}".strip()
        if len(self.causes) > 1:
            others = "; ".join(f"{n}. {c.why}" for n, c in enumerate(self.causes[1:], 2))
            text += f" Less likely: {others}"
        return text

    @property
    def fix(self) -> str:
        return self.causes[0].fix

    @property
    def tell_apart(self) -> str:
        checks = [c.check for c in self.causes if c.check]
        if len(self.causes) < 2 or not checks:
            return ""
        return "To tell them apart: " + "; ".join(dict.fromkeys(checks)) + "; the endpoint's TLS log names the check."


# --- the causes the facts allow, most likely first --------------------------------------------------------------


def _candidates(f: CallFacts) -> list[Cause]:
    if not f.cert_sent:
        return [_not_sent(f)]
    causes = [cause(f) for applies, cause in FACT_ORDER if applies(f)]
    return causes + _clock_causes(f)


def _near(moment: dt.datetime | None, now: dt.datetime) -> bool:
    return moment is not None and abs(moment - now) <= NEAR


def _when(moment: dt.datetime | None, unknown: str = "") -> str:
    """A certificate date as the verdict prints it: ISO 8601 in UTC, to the second (2026-01-31T12:00:00Z)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else unknown


def _clock_causes(f: CallFacts) -> list[Cause]:
    """A wrong clock at the endpoint: only when the certificate's own dates are near enough to matter."""
    now = dt.datetime.now(dt.UTC)
    causes = []
    if not f.leaf_expired and _near(f.leaf_not_after, now):
        causes.append(_clock_ahead(f))
    if not f.leaf_not_yet_valid and _near(f.leaf_not_before, now):
        causes.append(_clock_behind(f))
    return causes


def _not_sent(f: CallFacts) -> Cause:
    if f.identity is None:
        why, fix = "the caller had no certificate to send.", "Caller side: present a certificate; AJO presents Adobe's."
    elif not f.cert_requested:
        why = "the endpoint never asked for one, and AJO sends its certificate only when asked."
        fix = "Server side: request (require) a client certificate at the TLS layer, trusting Adobe's chain."
    elif f.behavior == "java" and "Assured ID" in f.leaf_issuer:
        why = (
            "it is Adobe's next-generation certificate (the 2026-2027 CA migration), and the endpoint advertised "
            f"only {_names(f)}, so a Java client such as AJO omitted it."
        )
        fix = (
            f"Server side: add {AdobeChain.MIGRATION} to the trust store (and so to the advertised names) before "
            "Adobe switches."
        )
    elif f.behavior == "java":
        why = (
            "a Java client such as AJO sends its certificate only if the endpoint names no CAs or names an issuer "
            f"of its chain; this endpoint advertised: {_names(f)}. So AJO omitted it."
        )
        fix = f"Server side: trust and advertise Adobe's CA chain ({AdobeChain.TODAY}), or advertise no CA names."
    else:
        why, fix = "", "Server side: check which CA names the endpoint advertises and that it trusts Adobe's chain."
    lead = "No client certificate was sent" + (": " + why if why else ".")
    return Cause(Failure.NOT_SENT, lead, fix)


def _names(f: CallFacts) -> str:
    return "; ".join(f.advertised) or "no names"


def _expired(f: CallFacts) -> Cause:
    return Cause(
        Failure.EXPIRED,
        f"The client certificate expired on {_when(f.leaf_not_after, 'a past date')}.",
        "Caller side: present a current certificate. AJO rotates its certificate before expiry, so a real call "
        "carries a current one.",
        _dates_check(f),
    )


def _not_yet_valid(f: CallFacts) -> Cause:
    return Cause(
        Failure.NOT_YET_VALID,
        f"The client certificate is not valid before {_when(f.leaf_not_before, 'a future date')}.",
        "Caller side: present a certificate that is valid now.",
        _dates_check(f),
    )


def _clock_ahead(f: CallFacts) -> Cause:
    return Cause(
        Failure.EXPIRED,
        f"The certificate is valid until {_when(f.leaf_not_after)}: an endpoint whose clock is ahead sees it expired.",
        "Server side: fix the endpoint's clock (NTP).",
        "`date -u` on the endpoint against the certificate's dates",
        clock=True,
    )


def _clock_behind(f: CallFacts) -> Cause:
    return Cause(
        Failure.NOT_YET_VALID,
        f"The certificate became valid only at {_when(f.leaf_not_before)}: an endpoint whose clock is behind sees it "
        "as not yet valid.",
        "Server side: fix the endpoint's clock (NTP).",
        "`date -u` on the endpoint against the certificate's dates",
        clock=True,
    )


def _dates_check(f: CallFacts) -> str:
    return f"`openssl x509 -in {f.cert_file or 'CERT.pem'} -noout -dates`"


def _no_client_auth(f: CallFacts) -> Cause:
    usages = ", ".join(f.leaf_usages) or "no usage"
    return Cause(
        Failure.NO_CLIENT_AUTH,
        f"The client certificate's extended key usage lacks clientAuth (it has {usages}): the endpoint refuses "
        "it for client authentication.",
        "Caller side: use a certificate with clientAuth. Adobe's carries it (the migration's is clientAuth only).",
        f"`openssl x509 -in {f.cert_file or 'CERT.pem'} -noout -ext extendedKeyUsage`",
    )


def _leaf_only(f: CallFacts) -> Cause:
    return Cause(
        Failure.LEAF_ONLY,
        "The endpoint could not build a chain to a CA it trusts: the caller sent its leaf without the "
        "intermediate, and the endpoint does not have the intermediate.",
        "Server side: trust the intermediate as well as the root (Adobe advises adding both), so the chain "
        "builds whether or not the client sends it.",
        _trust_check(f),
    )


def _self_signed(f: CallFacts) -> Cause:
    return Cause(
        Failure.SELF_SIGNED,
        "The endpoint refused a self-signed certificate: it chains to no CA the endpoint trusts. That is correct: "
        "AJO's real certificate is issued by DigiCert.",
        "Nothing to fix on the endpoint: AJO presents Adobe's DigiCert-issued certificate, not this one.",
    )


def _untrusted(f: CallFacts) -> Cause:
    if "Assured ID" in f.leaf_issuer:
        why = (
            "The endpoint does not trust the CA that issued this certificate: it is Adobe's next-generation chain "
            "(the 2026-2027 CA migration), and the trust store lacks it."
        )
        fix = (
            f"Server side: add {AdobeChain.MIGRATION} to the trust store next to the current chain, before Adobe "
            "switches."
        )
    elif "impostor" in f.leaf_issuer.lower():
        why = (
            "The endpoint refused a certificate from a CA it does not trust. That is correct: only certificates "
            "chaining to Adobe's CA should pass."
        )
        fix = "Nothing to fix on the endpoint: AJO's real certificate chains to DigiCert."
    else:
        why = (
            "The endpoint does not trust the CA that issued the client certificate: its trust store lacks Adobe's "
            f"chain ({f.leaf_issuer or 'the issuer'})."
        )
        fix = f"Server side: trust Adobe's CA chain, {AdobeChain.TODAY}; do not pin the leaf."
    return Cause(Failure.UNTRUSTED, why, fix, _trust_check(f))


def _held_issuers(f: CallFacts) -> tuple[str, ...]:
    return f.chain_issuers or ((f.leaf_issuer,) if f.leaf_issuer else ())


def names_miss_chain(f: CallFacts) -> bool:
    """The endpoint advertised CA names and none of them issued any certificate of the chain the caller holds
    (no names advertised: nothing to say about them)."""
    held = _held_issuers(f)
    return bool(f.advertised and held) and not set(f.advertised) & set(held)


def _untrusted_by_names(f: CallFacts) -> Cause:
    """Untrusted, read from the endpoint's own words: the CA names it advertised are, as a rule, its trust store."""
    untrusted = _untrusted(f)
    evidence = (
        f"None of the CA names the endpoint advertised issued the chain the caller holds (advertised: {_names(f)}; "
        f"the chain's issuers: {'; '.join(_held_issuers(f))}), and a server advertises the CAs it trusts."
    )
    return replace(untrusted, why=f"{evidence} {untrusted.why}")


def _signature(f: CallFacts) -> Cause:
    return Cause(
        Failure.SIGNATURE,
        "A signature in the client's chain does not verify: the endpoint trusts the root the chain names, but the "
        "chain was not issued by it (a forged or damaged chain, such as the lab's trust probe).",
        "Caller side: present the chain exactly as the CA issued it.",
    )


def _trust_check(f: CallFacts) -> str:
    return f"`mtls-lab probe {f.url or 'URL'} --check-trust` (does it trust Adobe's DigiCert roots?)"


# The causes the facts allow, most likely first: what the certificate plainly is, then trust, then signatures.
FACT_ORDER: list[tuple[Callable[[CallFacts], bool], Callable[[CallFacts], Cause]]] = [
    (lambda f: f.leaf_expired, _expired),
    (lambda f: f.leaf_not_yet_valid, _not_yet_valid),
    (lambda f: f.leaf_lacks_client_auth, _no_client_auth),
    (lambda f: f.chain_leaf_only, _leaf_only),
    (lambda f: f.leaf_self_signed, _self_signed),
    (lambda f: not f.leaf_self_signed, _untrusted),
]


def known_bad(f: CallFacts) -> Cause | None:
    """The first thing the caller *knows* to be wrong with the certificate it sent (its dates, its usages,
    a leaf alone, self-signed), whatever the server's answer looks like, or else an untrusted CA when the CA
    names the endpoint advertised name none of the chain's issuers; None when its facts explain nothing (the
    last cause of ``FACT_ORDER``, an untrusted CA, is then a guess, not a fact)."""
    if not f.cert_sent:
        return None
    for applies, cause in FACT_ORDER[:-1]:
        if applies(f):
            return cause(f)
    return _untrusted_by_names(f) if names_miss_chain(f) else None


# Only when no cause above fits the answer: a clock far off (the answer names dates), a false signature.
LAST_RESORT: list[Callable[[CallFacts], Cause]] = [_clock_ahead, _clock_behind, _signature]

# how each failure reads in "<stacks> answer <phrase> that way"
PHRASES = {
    Failure.NOT_SENT: "a missing certificate",
    Failure.UNTRUSTED: "a certificate from a CA they do not trust",
    Failure.LEAF_ONLY: "a chain they cannot complete",
    Failure.SELF_SIGNED: "a self-signed certificate",
    Failure.EXPIRED: "an expired certificate",
    Failure.NOT_YET_VALID: "a certificate that is not yet valid",
    Failure.NO_CLIENT_AUTH: "a certificate without clientAuth",
    Failure.SIGNATURE: "a chain whose signature fails",
}


# --- the answer as evidence ---------------------------------------------------------------------------------------


def diagnose(seen: str, facts: CallFacts, same_for_all: str = "") -> Diagnosis | None:
    """The causes of a certificate rejection answered with ``seen`` ("alert unknown_ca", "400 nginx_...").

    ``same_for_all``: the answer is known to be the same for every failure (nginx's page, a gateway's
    403); it is then cited as is, and no cause is ruled out by it. None when no certificate cause fits.
    """
    candidates = _candidates(facts)
    if same_for_all:
        return Diagnosis(candidates, same_for_all)
    version = facts.version
    fitting = [c for c in candidates if senders(seen, c.failure, version)]
    if not fitting and facts.cert_sent:
        fitting = [c for c in (make(facts) for make in LAST_RESORT) if senders(seen, c.failure, version)][:1]
    if fitting:
        stacks = senders(seen, fitting[0].failure, version)
        return Diagnosis(fitting, _evidence(seen, fitting[0], version, stacks), stacks)
    if not facts.cert_sent:  # a fact: no alert overrules it
        evidence = (
            f"The endpoint answered {_seen(seen, version)}, which no measured stack sends for a missing "
            "certificate; its TLS log says more."
        )
        return Diagnosis(candidates, evidence)
    return None


def _seen(seen: str, version: str | None) -> str:
    return seen + (f" (TLS {version})" if version else "")


def _evidence(seen: str, cause: Cause, version: str | None, stacks: list[Stack]) -> str:
    what = PHRASES[cause.failure]
    text = f"The endpoint answered {_seen(seen, version)}, which {describe(stacks)} servers send for {what}"
    vague = [s for s in stacks if len({KIND[f] for f in failures_behind(seen, s, version)}) > 1]
    if vague:
        text += (
            f"; {describe(vague)} servers send it for several kinds of rejection, so it does not say which check failed"
        )
    return text + "."


# the kinds of rejection an answer may or may not tell apart
KIND = {
    Failure.NOT_SENT: "missing",
    Failure.UNTRUSTED: "trust",
    Failure.LEAF_ONLY: "trust",
    Failure.SELF_SIGNED: "trust",
    Failure.SIGNATURE: "trust",
    Failure.EXPIRED: "dates",
    Failure.NOT_YET_VALID: "dates",
    Failure.NO_CLIENT_AUTH: "usage",
    Failure.STACK_PROBE: "dates",
    Failure.VERSION: "version",
}
