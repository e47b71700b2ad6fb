"""Every TLS connection attempt on the record, and one true log line for each that failed.

A ``Connection`` follows one TCP connection from accept to close (``ConnectionEvents`` of
``_asyncio_alerts``) and writes ONE record entry of kind ``connection`` (docs/reference/record.md):

- a failed handshake, or a fatal TLS error after it, is recorded when it happens, before the alert
  leaves, so a client that has its alert finds its connection recorded;
- a completed handshake is recorded when the connection closes, with the number of requests it
  carried (each request is an entry of its own, with this ``connection_id``).

Connections that sent no byte, and connections that carried only the lab's own read-only routes
(``/_lab/health``, ``/_lab/calls``), are not recorded: health checks and port scans would fill the record.

The alert named is the one OpenSSL wrote (``_tls_watch``). When OpenSSL wrote none, none is named:
for bytes that are not TLS, OpenSSL sends no alert on purpose, where the table of reasons
(``mtls_lab.alerts.sent_alert``) would have said ``protocol_version``. The table is used only for a
connection that could not be watched (another message callback replaced the lab's), and the entry
then says the alert was not observed. "The client aborted" is said only when the client's own alert,
or its EOF, came first.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import re
import secrets
import ssl
import time
from typing import TYPE_CHECKING, Any

from mtls_lab._openssl import verify_error_text
from mtls_lab.alerts import Alert, sent_alert
from mtls_lab.server import _tls_watch
from mtls_lab.server.entries import SentAlert, connection_entry
from mtls_lab.server.guard import answer_plain_http

if TYPE_CHECKING:
    import asyncio

    from mtls_lab.server.record import CallRecord
    from mtls_lab.server.settings import ServerConfig
    from mtls_lab.server.state import ConnectionState

logger = logging.getLogger("mtls_lab.server")

_PROCESS = secrets.token_hex(4)  # ids stay unique across restarts and processes that share a record file
_COUNTER = itertools.count(1)


def _new_process() -> None:
    """A forked worker (``serve --workers``) numbers its connections under a prefix of its own."""
    global _PROCESS, _COUNTER
    _PROCESS, _COUNTER = secrets.token_hex(4), itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


class ConnectionOutcome(enum.Enum):
    """How a connection ended, from the server's side."""

    ACCEPTED = "accepted"  # the handshake completed
    REJECTED = "rejected"  # the server failed the handshake (with an alert, or with none it could send)
    CLIENT_ABORTED = "client_aborted"  # the client's alert or EOF ended the handshake (or its fatal alert, after)
    TIMED_OUT = "timed_out"  # no complete handshake within --handshake-timeout
    PROTOCOL_ERROR = "protocol_error"  # the handshake completed, then a fatal TLS error (the server's alert)


# OpenSSL reasons said in the user's words; any other reason is OpenSSL's own text
_WHY = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no client certificate",
    "HTTP_REQUEST": "plain HTTP sent to the TLS port, answered HTTP 400",
}
_SSL_TEXT = re.compile(r"^\[[^\]]*\] (.*?)(?: \(_ssl\.c:\d+\))?$")


class ConnectionLog:
    """The server's side of the record for connections: hands out a ``Connection`` per accepted socket."""

    def __init__(self, record: CallRecord, config: ServerConfig, context: ssl.SSLContext) -> None:
        self.record, self.config = record, config
        self.ciphers = {int(c["id"]) & 0xFFFF: str(c["name"]) for c in context.get_ciphers()}
        _tls_watch.install(context)

    def connection(self, state: ConnectionState) -> Connection:
        """The record's follower of a new connection, reading ``state`` (made by the protocol factory)."""
        return Connection(self, state)


def next_connection_id() -> str:
    """The record's id of a new connection: unique across restarts and processes sharing a record file."""
    return f"{_PROCESS}-{next(_COUNTER)}"


class Connection:
    """One TCP connection followed for the record (``ConnectionEvents``): it reads what the layers noted on
    the connection's ``ConnectionState`` and writes the entry once."""

    def __init__(self, log: ConnectionLog, state: ConnectionState) -> None:
        self.log, self.state = log, state
        self.id = state.connection_id or next_connection_id()
        self.started = time.time()
        self.peer: str | None = None
        self.watch: _tls_watch.Watch | None = None
        self.recorded = False
        self._transport: asyncio.BaseTransport | None = None

    # --- ConnectionEvents ---------------------------------------------------------------------------

    def opened(self, transport: asyncio.BaseTransport, ssl_object: ssl.SSLObject) -> None:
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else None
        self.watch = _tls_watch.watch(ssl_object) if _tls_watch.installed(ssl_object.context) else None
        self.state.bind(ssl_object)

    def handshake_failed(self, exc: BaseException, received: int) -> None:
        if self.recorded or (received == 0 and not isinstance(exc, TimeoutError)):
            self.recorded = True  # opened and closed without a byte: not a TLS attempt
            return
        outcome, alert, observed, why = self._judge(exc, self.state.original_verify_error)
        self._write(outcome, alert, observed, why, exc)
        self._log(outcome, alert, observed, why)
        if getattr(exc, "reason", None) == "HTTP_REQUEST":
            answer_plain_http(self._transport)  # OpenSSL sends no alert to plain HTTP: nginx's kind of answer

    def failed_after_handshake(self, exc: ssl.SSLError) -> None:
        if self.recorded:
            return
        watch = self.watch
        if watch is not None and watch.sent is None and watch.received is not None:
            # the client's fatal alert (TLS 1.3 ignores the level: RFC 8446 6), answered with none
            outcome, why = ConnectionOutcome.CLIENT_ABORTED, f"the client sent alert {watch.received.name}"
        else:
            outcome, why = ConnectionOutcome.PROTOCOL_ERROR, _why(exc, self.state.original_verify_error)
        alert = watch.sent if watch else sent_alert(exc, None)
        observed = watch is not None
        self._write(outcome, alert, observed, why, exc)
        self._log(outcome, alert, observed, why)

    def alert_replaced(self, number: int) -> None:
        """The lab's --alert-style sends another alert than the one OpenSSL wrote: record the one that leaves."""
        sent = self.watch.sent if self.watch else None
        if self.watch is not None and sent is not None:
            self.watch.sent = _tls_watch.SeenAlert(sent.level, number, sent.after_client_finished)

    def closed(self) -> None:
        if self.recorded:
            return
        state = self.state
        if state.facts is None:  # closed by the server before the handshake ended (shutdown): nothing to say
            self.recorded = True
            return
        if state.requests == 0 and state.lab_requests > 0:
            self.recorded = True  # monitoring of the lab itself
            return
        self._write(ConnectionOutcome.ACCEPTED, None, True, None, None)

    # --- judging a failure --------------------------------------------------------------------------

    def _judge(self, exc: BaseException, original: int | None) -> tuple[ConnectionOutcome, SentAlert | None, bool, str]:
        """(outcome, alert sent, whether that alert was observed, why) for a failed handshake.

        ``original``: OpenSSL's own verification error, when --alert-style replaced it to choose the alert."""
        watch = self.watch
        if isinstance(exc, TimeoutError):
            return ConnectionOutcome.TIMED_OUT, None, True, str(exc)
        if watch is None:  # not watched: the alert the table of reasons expects, marked as not observed
            expected = sent_alert(exc, None) if isinstance(exc, ssl.SSLError) else None
            return ConnectionOutcome.REJECTED, expected, False, _why(exc, original)
        if watch.sent is not None:
            return ConnectionOutcome.REJECTED, watch.sent, True, _why(exc, original)
        if watch.received is not None:
            return ConnectionOutcome.CLIENT_ABORTED, None, True, f"the client sent alert {watch.received.name}"
        if isinstance(exc, ConnectionResetError | ssl.SSLEOFError) or getattr(exc, "reason", "") in _EOF_REASONS:
            return ConnectionOutcome.CLIENT_ABORTED, None, True, "the client closed the connection during the handshake"
        # OpenSSL failed without writing an alert: for bytes that are not TLS it sends none on purpose
        # ("Doesn't look like TLS - don't send an alert", ssl/record/ssl3_record.c)
        return ConnectionOutcome.REJECTED, None, True, _why(exc, original)

    # --- the log line -------------------------------------------------------------------------------

    def _log(self, outcome: ConnectionOutcome, alert: SentAlert | None, observed: bool, why: str) -> None:
        where = f"{self.peer or '?'} [{self.id}]"
        if outcome is ConnectionOutcome.TIMED_OUT:
            logger.warning("handshake timed out from %s: %s, closed", where, why)
            return
        if outcome is ConnectionOutcome.CLIENT_ABORTED:
            ended = "connection" if self.state.facts is not None else "handshake"
            logger.warning("%s ended by the client from %s: %s; sent no alert", ended, where, why)
            return
        said = "sent no alert"
        if alert is not None:
            said = f"sent alert {_name(alert)}" + ("" if observed else " (expected from the error, not seen sent)")
        what = (
            "handshake rejected" if outcome is ConnectionOutcome.REJECTED else "connection failed after the handshake"
        )
        logger.warning("%s from %s: %s, %s", what, where, why, said)

    # --- the record entry ---------------------------------------------------------------------------

    def _write(
        self,
        outcome: ConnectionOutcome,
        alert: SentAlert | None,
        observed: bool,
        why: str | None,
        exc: BaseException | None,
    ) -> None:
        self.recorded = True
        self.log.record.append(self.entry(outcome, alert, observed, why, exc))

    def entry(
        self,
        outcome: ConnectionOutcome,
        alert: SentAlert | None,
        observed: bool,
        why: str | None,
        exc: BaseException | None,
    ) -> dict[str, Any]:
        """The record entry (docs/reference/record.md): computed once, when the connection is recorded."""
        return connection_entry(
            self.state,
            self.watch or _tls_watch.Watch(),
            connection_id=self.id,
            started=self.started,
            peer=self.peer,
            mode=self.log.config.mode.value,
            ciphers=self.log.ciphers,
            outcome=outcome.value,
            alert=alert,
            observed=observed,
            why=why,
            exc=exc,
        )


_EOF_REASONS = {"UNEXPECTED_EOF_WHILE_READING"}


def _why(exc: BaseException, original: int | None) -> str:
    """What went wrong, in one phrase: OpenSSL's reason text (or the lab's words for a few).

    ``original``: when --alert-style replaced OpenSSL's verification error to choose the alert, the real one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {verify_error_text(original) if original else exc.verify_message}"
    reason = getattr(exc, "reason", None)
    if reason in _WHY:
        return _WHY[reason]
    match = _SSL_TEXT.match(str(exc))
    return match.group(1) if match else (str(exc) or type(exc).__name__)


def _name(alert: SentAlert) -> str:
    return alert.label if isinstance(alert, Alert) else alert.name
