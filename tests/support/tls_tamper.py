"""A TLS client that sends what OpenSSL's client sends, except what a test changes: malformed TLS on demand.

Python's ``ssl`` runs a real client handshake on memory BIOs, and this module stands between it and the
socket. It can rewrite the client's handshake messages before they leave (TLS 1.2: plaintext records;
TLS 1.3: records decrypted and re-encrypted with the client's handshake traffic keys), and once the
handshake is done it can send records of its own, encrypted with the client's application keys. The
keys come from the key log Python writes (``SSLContext.keylog_filename``); the record protection is
RFC 8446 5.2 and 7.3 (TLS 1.3) and RFC 5246 5 and 6.3 with RFC 5288 AES-GCM (TLS 1.2). The server's
answers are read by Python's ``ssl``, so the alert a test gets is the one OpenSSL decoded.

Like tlsfuzzer's scripts (github.com/tlsfuzzer/tlsfuzzer), but only the handful of cases the lab tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from mtls_lab.alerts import received_alert

HANDSHAKE, ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC = 22, 21, 23, 20
CLIENT_HELLO, SERVER_HELLO, CERTIFICATE, CERTIFICATE_VERIFY, FINISHED = 1, 2, 11, 15, 20
TLS12_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"  # one record protection to write
# TLS 1.3 suites: (AEAD, key size, hash)
_SUITES13: dict[int, tuple[type[AESGCM] | type[ChaCha20Poly1305], int, hashes.HashAlgorithm]] = {
    0x1301: (AESGCM, 16, hashes.SHA256()),
    0x1302: (AESGCM, 32, hashes.SHA384()),
    0x1303: (ChaCha20Poly1305, 32, hashes.SHA256()),
}

Message = tuple[int, bytes]  # (handshake type, body)
Rewrite = Callable[[list[Message]], list[Message]]


@dataclass(frozen=True)
class Tamper:
    """What to change: the client's handshake messages, and records to send after the handshake."""

    rewrite: Rewrite | None = None
    after: tuple[tuple[int, bytes], ...] = ()  # (content type, plaintext) records, encrypted
    after_raw: bytes = b""  # bytes sent as they are after the handshake (a record nobody encrypted)


def corrupt(kind: int, change: Callable[[bytes], bytes]) -> Rewrite:
    """A rewrite that applies ``change`` to the body of every handshake message of type ``kind``."""
    return lambda messages: [(t, change(body) if t == kind else body) for t, body in messages]


def flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0x01])


def raw_records(data: bytes) -> list[bytes]:
    """The whole TLS records in ``data``, header included, as they go on the wire."""
    found, at = [], 0
    while at + 5 <= len(data):
        end = at + 5 + int.from_bytes(data[at + 3 : at + 5], "big")
        found.append(data[at:end])
        at = end
    return found


def records(data: bytes) -> list[tuple[int, bytes]]:
    """(content type, fragment) of each TLS record in ``data``."""
    return [(raw[0], raw[5:]) for raw in raw_records(data)]


def record(content_type: int, fragment: bytes) -> bytes:
    return bytes([content_type]) + b"\x03\x03" + len(fragment).to_bytes(2, "big") + fragment


def messages(data: bytes) -> list[Message]:
    found, at = [], 0
    while at + 4 <= len(data):
        end = at + 4 + int.from_bytes(data[at + 1 : at + 4], "big")
        found.append((data[at], data[at + 4 : end]))
        at = end
    return found


def encode(found: list[Message]) -> bytes:
    return b"".join(bytes([t]) + len(body).to_bytes(3, "big") + body for t, body in found)


def _expand_label(secret: bytes, label: bytes, length: int, algorithm: hashes.HashAlgorithm) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm, length, info).derive(secret)


class _Protection:
    """One direction's record protection: keys, and the sequence number of the next record."""

    def __init__(self, aead: AESGCM | ChaCha20Poly1305, iv: bytes, tls13: bool, seq: int = 0) -> None:
        self.aead, self.iv, self.tls13, self.seq = aead, iv, tls13, seq

    @classmethod
    def tls13_from(cls, secret: bytes, suite: int) -> _Protection:
        kind, size, algorithm = _SUITES13[suite]
        key, iv = _expand_label(secret, b"key", size, algorithm), _expand_label(secret, b"iv", 12, algorithm)
        return cls(kind(key), iv, True)

    def _nonce13(self) -> bytes:
        return bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big"), strict=True))

    def seal(self, content_type: int, payload: bytes) -> bytes:
        if self.tls13:
            inner = payload + bytes([content_type])
            header = record(APPLICATION_DATA, b"")[:3] + (len(inner) + 16).to_bytes(2, "big")
            sealed = header + self.aead.encrypt(self._nonce13(), inner, header)
        else:
            explicit = self.seq.to_bytes(8, "big")
            aad = explicit + bytes([content_type]) + b"\x03\x03" + len(payload).to_bytes(2, "big")
            sealed = record(content_type, explicit + self.aead.encrypt(self.iv + explicit, payload, aad))
        self.seq += 1
        return sealed

    def open13(self, fragment: bytes) -> tuple[int, bytes]:
        header = record(APPLICATION_DATA, b"")[:3] + len(fragment).to_bytes(2, "big")
        inner = self.aead.decrypt(self._nonce13(), fragment, header).rstrip(b"\x00")
        self.seq += 1
        return inner[-1], inner[:-1]


def _prf(secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """TLS 1.2's PRF with SHA-256 (RFC 5246 5)."""
    out, a = b"", label + seed
    while len(out) < size:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + label + seed, hashlib.sha256).digest()
    return out[:size]


@dataclass
class _Connection:
    tls: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    sock: socket.socket
    keylog: Path
    tamper: Tamper
    server_hello: bytes = b""
    handshake13: _Protection | None = None
    sent: bytes = field(default=b"")

    def secrets(self) -> dict[str, bytes]:
        lines = [line.split() for line in self.keylog.read_text().splitlines() if line and not line.startswith("#")]
        return {label: bytes.fromhex(value) for label, _random, value in lines}

    @property
    def tls13(self) -> bool:
        return b"\x00\x2b\x00\x02\x03\x04" in self.server_hello  # supported_versions: TLS 1.3

    def suite(self) -> int:
        session_id = self.server_hello[34]
        return int.from_bytes(self.server_hello[35 + session_id : 37 + session_id], "big")

    def receive(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        if not self.server_hello and data[:1] == bytes([HANDSHAKE]):
            self.server_hello = next(body for kind, body in messages(records(data)[0][1]) if kind == SERVER_HELLO)
        self.incoming.write(data)
        return True

    def send_flight(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(self._rewritten(data) if self.tamper.rewrite else data)

    def _rewritten(self, data: bytes) -> bytes:
        out = b""
        for content_type, fragment in records(data):
            if content_type == HANDSHAKE:
                out += record(HANDSHAKE, encode(self.tamper.rewrite(messages(fragment))))  # type: ignore[misc]
            elif content_type == APPLICATION_DATA and self.tls13 and self.handshake13 is not None:
                inner_type, inner = self.handshake13.open13(fragment)  # the client's encrypted handshake
                self.handshake13.seq -= 1
                if inner_type == HANDSHAKE:
                    inner = encode(self.tamper.rewrite(messages(inner)))  # type: ignore[misc]
                out += self.handshake13.seal(inner_type, inner)
            else:
                out += record(content_type, fragment)
        return out

    def application_keys(self) -> _Protection:
        found = self.secrets()
        if self.tls13:
            return _Protection.tls13_from(found["CLIENT_TRAFFIC_SECRET_0"], self.suite())
        client_random = self.client_random()
        block = _prf(found["CLIENT_RANDOM"], b"key expansion", self.server_hello[2:34] + client_random, 40)
        return _Protection(AESGCM(block[:16]), block[32:36], False, seq=1)  # the Finished was record 0

    def client_random(self) -> bytes:
        line = next(x for x in self.keylog.read_text().splitlines() if x.startswith("CLIENT_RANDOM"))
        return bytes.fromhex(line.split()[1])


@dataclass(frozen=True)
class Received:
    """What the client got (``alert:<name>``, ``data``, ``eof``, ``close_notify``, ``reset``, ``timeout`` or
    ``ssl:<reason>`` for the client's own error), and its local port (the server's record names it)."""

    outcome: str
    port: int


def tampered_call(port: int, context: ssl.SSLContext, tamper: Tamper, timeout: float = 3.0) -> Received:
    """Handshake (rewritten), extra records, then read what the server answers."""
    context.set_ciphers(TLS12_CIPHERS)
    with tempfile.TemporaryDirectory() as folder, socket.create_connection(("127.0.0.1", port), timeout) as sock:
        return Received(_outcome(sock, context, tamper, Path(folder) / "keys.log"), sock.getsockname()[1])


def _outcome(sock: socket.socket, context: ssl.SSLContext, tamper: Tamper, keylog: Path) -> str:
    context.keylog_filename = str(keylog)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        return _run(_Connection(tls, incoming, outgoing, sock, keylog, tamper))
    except ssl.SSLError as exc:
        with contextlib.suppress(OSError):
            sock.sendall(outgoing.read())  # the client's own alert, if it has one to send, as a real client does
        alert = received_alert(exc)
        return f"alert:{alert.label}" if alert else f"ssl:{exc.reason}"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except TimeoutError:
        return "timeout"


def _handshake(conn: _Connection) -> bool:
    """The client's handshake over the socket, flight by flight (each flight through the tamper); False: the
    server closed first."""
    while True:
        try:
            conn.tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        if conn.tls13 and conn.handshake13 is None and conn.server_hello:
            secret = conn.secrets().get("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
            conn.handshake13 = _Protection.tls13_from(secret, conn.suite()) if secret else None
        conn.send_flight()
        if done:
            return True
        if not conn.receive():
            return False


def _run(conn: _Connection) -> str:
    if not _handshake(conn):
        return "eof"
    if conn.tamper.after or conn.tamper.after_raw:
        keys = conn.application_keys()
        conn.sock.sendall(b"".join(keys.seal(t, payload) for t, payload in conn.tamper.after) + conn.tamper.after_raw)
    else:
        conn.tls.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        conn.sock.sendall(conn.outgoing.read())  # application data: never rewritten
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            if conn.tls.read(65536):
                return "data"
        except ssl.SSLWantReadError:
            if not conn.receive():
                return "eof"
        except ssl.SSLZeroReturnError:
            return "close_notify"
    return "timeout"


# --- how a connection ends: what the server sends after the handshake, decrypted -------------------------

# ending steps besides records: wait a moment; wait for the server's first record (as tlsfuzzer's
# ExpectApplicationData: the next step goes as soon as the answer starts); half-close TCP (shutdown(SHUT_WR))
PAUSE, ANSWER, FIN = "pause", "answer", "fin"
Step = tuple[int, bytes] | str


@dataclass(frozen=True)
class Ending:
    """What the server sent after the handshake, decrypted: (content type, plaintext) per record, and
    whether it closed the TCP connection."""

    records: tuple[tuple[int, bytes], ...]
    closed: bool

    @property
    def alerts(self) -> list[str]:
        """The alerts the server sent, as ``level name`` (``warning close_notify``, ``fatal decode_error``)."""
        from mtls_lab.alerts import Alert

        found = []
        for content_type, body in self.records:
            if content_type == ALERT and len(body) == 2:
                level = {1: "warning", 2: "fatal"}.get(body[0], f"level-{body[0]}")
                try:
                    name = Alert(body[1]).label
                except ValueError:
                    name = f"alert-{body[1]}"
                found.append(f"{level} {name}")
        return found

    @property
    def answered(self) -> bool:
        return any(t == APPLICATION_DATA and body for t, body in self.records)


class _ServerReader:
    """Decrypts the server's records with its application keys (from the client's key log)."""

    def __init__(self, conn: _Connection) -> None:
        found = conn.secrets()
        if conn.tls13:
            self.tls13 = True
            self.keys = _Protection.tls13_from(found["SERVER_TRAFFIC_SECRET_0"], conn.suite())
        else:
            self.tls13 = False
            block = _prf(found["CLIENT_RANDOM"], b"key expansion", conn.server_hello[2:34] + conn.client_random(), 40)
            self.keys = _Protection(AESGCM(block[16:32]), block[36:40], False, seq=1)  # its Finished was record 0

    def open(self, raw: bytes) -> tuple[int, bytes]:
        content_type, fragment = raw[0], raw[5:]
        if self.tls13:
            if content_type != APPLICATION_DATA:
                return content_type, fragment  # a plaintext record (an alert before the keys changed)
            return self.keys.open13(fragment)
        explicit = fragment[:8]
        aad = self.keys.seq.to_bytes(8, "big") + bytes([content_type]) + b"\x03\x03"
        aad += (len(fragment) - 24).to_bytes(2, "big")
        self.keys.seq += 1
        return content_type, self.keys.aead.decrypt(self.keys.iv + explicit, fragment[8:], aad)


def ended_call(port: int, context: ssl.SSLContext, steps: tuple[Step, ...], timeout: float = 3.0) -> Ending:
    """Handshake, then ``steps`` (records sent encrypted, ``PAUSE``, ``FIN``), then everything the server sends
    until it closes (or ``timeout``), decrypted. TLS 1.3 tickets are left out of ``records``."""
    context.set_ciphers(TLS12_CIPHERS)
    with tempfile.TemporaryDirectory() as folder, socket.create_connection(("127.0.0.1", port), timeout) as sock:
        context.keylog_filename = str(Path(folder) / "keys.log")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        conn = _Connection(tls, incoming, outgoing, sock, Path(context.keylog_filename), Tamper())
        if not _handshake(conn):
            raise AssertionError("the server closed during the handshake")
        keys = conn.application_keys()
        early = b""
        for step in steps:
            if step == PAUSE:
                time.sleep(0.3)
                continue
            if step == ANSWER:
                early += _first_record(sock, timeout)
                continue
            with contextlib.suppress(OSError):  # the server may have closed already (after a close_notify)
                if step == FIN:
                    sock.shutdown(socket.SHUT_WR)
                else:
                    assert not isinstance(step, str)  # PAUSE and ANSWER are handled above
                    content_type, payload = step
                    sock.sendall(keys.seal(content_type, payload))
        data, closed = _read_all(sock, timeout)
        data = early + data
        reader = _ServerReader(conn)
    opened = [reader.open(raw) for raw in raw_records(data)]
    kept = tuple((t, body) for t, body in opened if not (t == HANDSHAKE and body[:1] == b"\x04"))  # tickets
    return Ending(kept, closed)


def _first_record(sock: socket.socket, timeout: float) -> bytes:
    """Bytes from the server up to the end of its first whole record (what came with it is kept too)."""
    data = b""
    sock.settimeout(timeout)
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What arrives until the server closes (True) or the timeout (False); a reset is a close too (a server
    that closes with client data unread resets: what it sent before may then be lost)."""
    data, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except ConnectionResetError:
        return data, True
    except TimeoutError:
        pass
    return data, False
