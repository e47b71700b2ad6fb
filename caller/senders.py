"""Adobe's senders that present a client certificate, as Adobe documents them: one profile each.

The trust-chain migration page ("Who is affected", AdobeDocs/experience-platform.en
``help/landing/governance-privacy-security/mtls-trust-chain-migration.md``) names "HTTP API destinations,
Adobe Journey Optimizer custom actions, and Event Forwarding integrations" as senders of Adobe's mTLS
client certificates; Journey Optimizer's custom SMS providers and Adobe I/O Events webhooks present one
too. Each profile says what Adobe documents for its sender, each fact with its page and whether the lab
could verify it in the pages available to it (docs/adobe-facts.md); what is not documented is ``None``
(unknown), and the lab's caller then keeps its AJO custom-action behaviour, labelled a model.

A profile changes the call in two ways only: the answer deadline (``timeout``) and the retries. After the
call, ``notes`` reads the verdict against the sender's documented requirements, and ``probe_notes`` reads
a probe's report against them (``probe --sender``). Sources: ``JO``/``EP`` are the AdobeDocs
``journey-optimizer.en`` and ``experience-platform.en`` repositories, ``IOE`` is ``adobe-io-events``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mtls_lab.vocabulary import AJOLimits

if TYPE_CHECKING:
    from mtls_lab.caller.call import CallOptions
    from mtls_lab.caller.probe import ProbeReport
    from mtls_lab.caller.verdict import Verdict

MIGRATION = "EP help/landing/governance-privacy-security/mtls-trust-chain-migration.md"
CUSTOM_ACTION = "JO help/using/action/about-custom-action-configuration.md"
EXTERNAL_SYSTEMS = "JO help/using/configuration/external-systems.md"
SMS = "JO help/using/configuration/sms-configuration-custom.md"
HTTP_DESTINATION = "EP help/destinations/catalog/streaming/http-destination.md"
IO_EVENTS = "IOE src/pages/guides/index.md"  # AdobeDocs/adobe-io-events, "Adobe I/O Events mTLS support"
IO_RETRIES = "IOE src/pages/common/retry-doc.md"


class Sender(enum.Enum):
    """Adobe's senders of a client certificate; the value is the ``--sender`` name."""

    AJO_CUSTOM_ACTION = "ajo-custom-action"
    AJO_SMS = "ajo-sms"
    HTTP_DESTINATION = "http-destination"
    EVENT_FORWARDING = "event-forwarding"
    IO_EVENTS = "io-events"


@dataclass(frozen=True)
class Fact:
    """One thing Adobe says about a sender, where, and whether the lab found it in that page's stored text."""

    text: str
    source: str
    verified: bool

    def line(self) -> str:
        return f"{self.text} ({self.source}{'' if self.verified else '; unverified'})"


@dataclass(frozen=True)
class SenderProfile:
    """What a sender does, as far as Adobe documents it; None means Adobe does not say."""

    sender: Sender
    label: str
    common_name: str | None  # the certificate's CN, as the public-certificate API lists it
    mtls: str  # how mTLS is turned on for this sender
    answer_deadline: float | None  # seconds the endpoint has to answer; None: the journey's timeout (AJO)
    retries: int | None  # retries after the first attempt; None: not documented
    mtls_only: bool  # Adobe requires the endpoint to require the certificate
    facts: tuple[Fact, ...]

    def lines(self) -> list[str]:
        """The profile for the printout: what is documented, and what the lab does where nothing is."""
        cn = self.common_name or "unknown (Adobe's pages do not name it; look for it in the public-certificate API)"
        deadline = f"{self.answer_deadline:g} s" if self.answer_deadline is not None else "the journey's timeout"
        retries = "unknown (model: the lab makes one attempt)" if self.retries is None else str(self.retries)
        out = [f"  sender: {self.label} (certificate CN {cn}; mTLS: {self.mtls}; answer within {deadline}; "]
        out[0] += f"retries: {retries})"
        return out + [f"    Adobe: {fact.line()}" for fact in self.facts]


PROFILES: dict[Sender, SenderProfile] = {
    Sender.AJO_CUSTOM_ACTION: SenderProfile(
        Sender.AJO_CUSTOM_ACTION,
        "AJO custom action",
        "ajo-journeys.aep-mtls.adobe.com",
        "automatic, when an mTLS-enabled endpoint is detected",
        None,
        AJOLimits.MAX_RETRIES,
        True,
        (
            Fact(
                "no configuration: mTLS occurs automatically when an mTLS-enabled endpoint is detected",
                CUSTOM_ACTION,
                True,
            ),
            Fact("up to three retries inside the journey's timeout, none on 401, 403, 404", EXTERNAL_SYSTEMS, True),
        ),
    ),
    Sender.AJO_SMS: SenderProfile(
        Sender.AJO_SMS,
        "AJO custom SMS provider",
        "ajo-sms.aep-mtls.adobe.com",
        'an explicit toggle of the SMS provider\'s configuration ("mTLS support")',
        None,
        None,
        False,
        (
            Fact('mTLS is the provider configuration\'s "mTLS support" option', SMS, True),
            Fact(
                "mTLS applies to the sending endpoint only; OAuth token endpoints must not use mTLS (the page's "
                "localized versions; the English ones the lab read predate the sentence)",
                SMS,
                True,
            ),
            Fact(
                "the sending endpoint must trust Adobe's CA chain (expected client CN ajo-sms.aep-mtls.adobe.com), "
                "otherwise Journey Optimizer omits the client certificate and the SMS delivery fails",
                SMS,
                True,
            ),
        ),
    ),
    Sender.HTTP_DESTINATION: SenderProfile(
        Sender.HTTP_DESTINATION,
        "Experience Platform HTTP API destination",
        None,
        "the destination's mTLS setting; the endpoint must be mTLS-only",
        2.0,
        2,
        True,
        (
            Fact("named among the senders of the migration", MIGRATION, True),
            Fact(
                "with mTLS, the data receiving endpoint must have TLS disabled and only mTLS enabled",
                HTTP_DESTINATION,
                True,
            ),
            Fact(
                "the endpoint must respond within 2 seconds; longer answers are timeout errors", HTTP_DESTINATION, True
            ),
            Fact(
                "failed requests are stored and retried twice (when is not said: the lab retries at once, a model)",
                HTTP_DESTINATION,
                True,
            ),
            Fact(
                "profiles are streamed as JSON, one profile per request in the page's example; batching is not "
                "documented for this destination (the lab sends the action's one payload, a model)",
                HTTP_DESTINATION,
                True,
            ),
        ),
    ),
    Sender.EVENT_FORWARDING: SenderProfile(
        Sender.EVENT_FORWARDING,
        "Event Forwarding integration",
        None,
        "unknown",
        None,
        None,
        False,
        (Fact("named among the senders of the migration", MIGRATION, True),),
    ),
    Sender.IO_EVENTS: SenderProfile(
        Sender.IO_EVENTS,
        "Adobe I/O Events webhook",
        None,
        "automatic: no project configuration; the certificate is sent when the server asks for one",
        10.0,
        None,
        False,
        (
            Fact(
                "no additional project configuration: if the server is mTLS enabled, the client certificate is sent "
                "during the handshake",
                IO_EVENTS,
                True,
            ),
            Fact(
                'its certificate is "generated with a 13-month expiration date", reissued 60 days before expiration '
                "(the new one promoted at once), the old one revoked 30 days before expiration; its CN and SAN stay "
                "the same across renewals",
                IO_EVENTS,
                True,
            ),
            Fact(
                "no successful answer within 10 seconds is retried; 429 and 5xx (but 505) are retried for 24 hours, "
                "after 1, 2, 4, 8 then every 15 minutes; other statuses are not retried (the lab makes one attempt)",
                IO_RETRIES,
                True,
            ),
        ),
    ),
}


def profile(name: str) -> SenderProfile:
    """The profile of a ``--sender`` name (argparse's choices keep the name valid)."""
    return PROFILES[Sender(name)]


def apply(chosen: SenderProfile, options: CallOptions) -> CallOptions:
    """The call as this sender makes it: its answer deadline and its retries (one attempt when unknown)."""
    timeout = chosen.answer_deadline if chosen.answer_deadline is not None else options.timeout
    retries = options.retries if chosen.sender is Sender.AJO_CUSTOM_ACTION else (chosen.retries or 0)
    words = None
    if chosen.answer_deadline is not None:
        words = (
            f"The endpoint did not answer within {chosen.answer_deadline:g} s, the answer deadline Adobe documents "
            f"for {chosen.label}: the call counts as a timeout.",
            f"Server side: answer within {chosen.answer_deadline:g} s: acknowledge the call first, do the work after.",
        )
    return replace(options, timeout=timeout, retries=retries, deadline_words=words)


def notes(chosen: SenderProfile, verdict: Verdict) -> list[str]:
    """The verdict read against the sender's documented requirements."""
    found = []
    if chosen.mtls_only and verdict.server_requested_cert is False:
        found.append(
            f"{chosen.label}: the endpoint did not ask for a client certificate, and Adobe requires an mTLS "
            "endpoint: require the certificate (mtls-lab probe URL tells optional from required)"
        )
    if chosen.answer_deadline is not None and verdict.outcome.value == "timeout":
        found.append(
            f"{chosen.label}: no answer within {chosen.answer_deadline:g} s, the deadline Adobe documents: "
            "answer first, work later"
        )
    if chosen.common_name and chosen.common_name != "ajo-journeys.aep-mtls.adobe.com":
        found.append(
            f"model: the lab presents its ajo-journeys.aep-mtls.adobe.com stand-in; this sender's certificate is "
            f"{chosen.common_name}: an endpoint that authorizes names must allow it"
        )
    return found


# what the probe names an endpoint that requires the certificate (caller/probe.py's Enforcement values)
_REQUIRED = ("required in the handshake", "required over HTTP")


@dataclass(frozen=True)
class SenderNote:
    """One reading of a probe against a sender's requirements; ``problem``: a requirement the endpoint breaks."""

    text: str
    problem: bool


def probe_notes(chosen: SenderProfile, report: ProbeReport) -> list[SenderNote]:
    """A probe's report read against the sender's documented requirements (``probe --sender``)."""
    found: list[SenderNote] = []
    sources = {f.source for f in chosen.facts}
    if chosen.mtls_only and report.enforcement not in _REQUIRED:
        page = HTTP_DESTINATION if HTTP_DESTINATION in sources else CUSTOM_ACTION
        found.append(
            SenderNote(
                f"{chosen.label}: Adobe requires an mTLS-only endpoint ({page}), and this endpoint's client "
                f"certificate is {report.enforcement or 'unknown'}: require it in the handshake, for every path",
                True,
            )
        )
    seconds = report.first.attempts[-1].seconds if report.first.attempts else None
    if chosen.answer_deadline is not None and seconds is not None:
        said = f"the probe's first request was answered in {seconds:.2f} s"
        if seconds > chosen.answer_deadline:
            found.append(
                SenderNote(
                    f"{chosen.label}: {said}, past the {chosen.answer_deadline:g} s Adobe documents: answer first, "
                    "work later",
                    True,
                )
            )
        else:
            found.append(
                SenderNote(
                    f"{chosen.label}: {said}, within the {chosen.answer_deadline:g} s Adobe documents (a probe is "
                    f"not an accepted call: time one with `mtls-lab call --sender {chosen.sender.value}`)",
                    False,
                )
            )
    if chosen.common_name and chosen.common_name != "ajo-journeys.aep-mtls.adobe.com":
        found.append(
            SenderNote(
                f"{chosen.label}: its certificate is {chosen.common_name}: an endpoint that authorizes names must "
                "allow it",
                False,
            )
        )
    if chosen.sender is Sender.AJO_SMS and report.enforcement in _REQUIRED:
        found.append(
            SenderNote(
                f'{chosen.label}: the certificate goes out only with the provider configuration\'s "mTLS support" '
                "on; with it off, this endpoint refuses every message",
                False,
            )
        )
    return found
