"""The journey's view of a call: what its error branch receives, and the step event's other action fields.

What the journey's timeout/error branch receives (Journey Optimizer, "Use API call responses in custom
actions", AdobeDocs/journey-optimizer.en ``help/using/action/action-response.md``):
- ``jo_status_code``: ``http_<code>``, ``timedout``, ``capped`` or ``internalError``; it exists only on
  actions created or re-saved since AJO 26.1 (January 2026): an older action, not re-saved, has none;
- since 26.1, the body of a non-2xx answer, next to ``jo_status_code``. How AJO hands the body over
  (as text or parsed, up to what size) is not documented: the lab gives the whole body as text, a model.

The journeyStep event's other action execution fields (its field reference, docs/adobe-facts.md):
- ``actionOriginIsMTLS`` "describes whether MTLS is enabled for the endpoint": the endpoint's
  configuration, not proof that this call presented a certificate. AJO detects an mTLS-enabled endpoint by
  itself; the lab's value is a model: true when the server asked for a client certificate in the
  handshake, unknown when no handshake was made;
- ``actionIsProxy``: the call went through the static-IP egress proxy (the lab: ``call --egress proxy``,
  caller/egress.py);
- ``actionOriginEndpoint``: the endpoint called;
- ``actionExecutionOriginStartTime`` and ``actionExecutionOriginTime``: when the call to the endpoint
  started and how long it took (the lab: ISO 8601 UTC, and milliseconds; the units are a model);
- ``actionIsThrottled`` and ``actionWaitTime``: whether a throttling configuration delayed the call, and
  how long (the lab never throttles: false, 0).
docs/adobe-facts.md marks these unverified: they are issue 30's reading of Adobe's current pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

JO_STATUS_CAVEAT = "jo_status_code exists only on actions created or re-saved since AJO 26.1"
MTLS_MEANING = "mTLS enabled for the endpoint, not proof that this call sent a certificate"
BODY_SHOWN = 200  # characters of the body the printout shows; the JSON output keeps all of it


@dataclass(frozen=True)
class JourneyView:
    """What the journey sees of one call: its error branch (on failure) and the step event's action fields."""

    failed: bool
    status: int | None
    jo_status_code: str
    body: str | None  # the non-2xx answer's body, as AJO 26.1 exposes it to the error branch (as text: a model)
    origin_is_mtls: bool | None
    endpoint: str
    started_at: float | None  # epoch seconds of the last attempt's start
    milliseconds: float | None
    is_proxy: bool = False
    is_throttled: bool = False
    wait_milliseconds: float = 0.0

    def error_branch(self) -> dict[str, Any] | None:
        """The fields the journey's timeout/error branch receives, or None when the call succeeded."""
        if not self.failed:
            return None
        return {"jo_status_code": self.jo_status_code, "status": self.status, "body": self.body}

    def step_event(self) -> dict[str, Any]:
        """The step event's action fields, under Adobe's names."""
        started = (
            dt.datetime.fromtimestamp(self.started_at, dt.UTC).isoformat(timespec="milliseconds")
            if self.started_at is not None
            else None
        )
        return {
            "actionOriginIsMTLS": self.origin_is_mtls,
            "actionIsProxy": self.is_proxy,
            "actionOriginEndpoint": self.endpoint,
            "actionExecutionOriginStartTime": started,
            "actionExecutionOriginTime": round(self.milliseconds) if self.milliseconds is not None else None,
            "actionIsThrottled": self.is_throttled,
            "actionWaitTime": round(self.wait_milliseconds),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "error_branch": self.error_branch(),
            "jo_status_code_caveat": JO_STATUS_CAVEAT,
            "step_event": self.step_event(),
            "actionOriginIsMTLS_means": MTLS_MEANING,
        }

    def lines(self) -> list[str]:
        """The printout's lines: the error branch (on failure), then the step event's fields."""
        out = []
        branch = self.error_branch()
        if branch is not None:
            body = "none" if self.body is None else _short(self.body)
            status = self.status if self.status is not None else "none"
            out.append(
                f"  journey's error branch: jo_status_code={self.jo_status_code} ({JO_STATUS_CAVEAT}), "
                f"status {status}, body (AJO 26.1): {body}"
            )
        event = self.step_event()
        mtls = _json_word(event["actionOriginIsMTLS"])
        took = event["actionExecutionOriginTime"]
        out.append(
            f"  step event: actionOriginIsMTLS={mtls} ({MTLS_MEANING}), actionIsProxy={_json_word(self.is_proxy)}, "
            f"actionExecutionOriginTime={'unknown' if took is None else f'{took} ms'}, "
            f"actionIsThrottled={_json_word(self.is_throttled)}, actionWaitTime={event['actionWaitTime']} ms"
        )
        return out


def exposed_body(status: int, text: str) -> str | None:
    """The body AJO 26.1 gives the error branch: a non-2xx answer's, whole, as text (a model); None for 2xx."""
    return None if status // 100 == 2 else text


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= BODY_SHOWN else flat[:BODY_SHOWN] + "...")


def _json_word(value: bool | None) -> str:
    return "unknown" if value is None else "true" if value else "false"
