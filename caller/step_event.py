"""The action-execution fields AJO writes into each journey step event, so lab results compare line by line.

Journey Optimizer, "journeyStep events action execution fields" (docs/adobe-facts.md):
- ``actionExecError``: the type of error when the action is called: ``http``, ``capping``, ``timeout``,
  ``error``; ``actionExecErrorCode``: its code when it has one, e.g. ``404`` for ``http``;
- ``actionExecOrigError`` / ``actionExecOrigErrorCode``: when a retry runs past the timeout, the call is
  tagged a timeout and these keep "the error encountered on the attempt before the retry" (Adobe's
  example: ``"actionExecError": "timedout", "actionExecOrigError": "http", "actionExecOrigErrorCode":
  "500"``). A first attempt that times out has no underlying error.

The lab writes ``timedout`` as Adobe's example does (the field's list of values says ``timeout``), and
``error`` for TLS and connection failures (model: Adobe does not say which value those get).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the verdict holds a StepEvent: no import cycle at run time
    from mtls_lab.caller.verdict import Outcome

TIMED_OUT = "timedout"
_ERROR_OF = {  # by Outcome value
    "accepted": None,
    "http_error": "http",
    "timeout": TIMED_OUT,
    "tls_alert": "error",
    "server_untrusted": "error",
    "connection_error": "error",
}


@dataclass(frozen=True)
class StepEvent:
    """The four action-execution fields of a journey step event."""

    error: str | None = None
    error_code: str | None = None
    orig_error: str | None = None
    orig_error_code: str | None = None

    @classmethod
    def of(cls, outcome: Outcome, status: int | None) -> StepEvent:
        """The fields of an attempt's result, before any timeout during retries is applied."""
        error = _ERROR_OF[outcome.value]
        return cls(error, str(status) if status is not None and error == "http" else None)

    def timed_out(self) -> StepEvent:
        """The call counted as a timeout during the retries: the error before it becomes the original error."""
        return StepEvent(TIMED_OUT, None, self.error, self.error_code)

    def to_json(self) -> dict[str, Any]:
        return {
            "actionExecError": self.error,
            "actionExecErrorCode": self.error_code,
            "actionExecOrigError": self.orig_error,
            "actionExecOrigErrorCode": self.orig_error_code,
        }
