"""OpenSSL functions that Python's ``ssl`` module does not expose, reached through ctypes.

Why this exists:
- A server's CertificateRequest carries the names of the CAs it accepts. nginx sets them with
  ``SSL_CTX_set_client_CA_list`` (``ssl_client_certificate``); Python's ``SSLContext`` has no API for
  it (pyOpenSSL has ``set_client_ca_list``; CPython has none), so a Python server advertises no names.
  Java clients, AJO among them, use those names to decide whether to send their certificate.
- A client that decides *during* the handshake whether to send its certificate (what a Java client
  does) needs ``SSL_CTX_set_cert_cb``; Python offers no hook there either.
- A server that asks for the client certificate after the handshake, for one path only (Apache's
  ``SSLVerifyClient`` inside ``<Location>``), changes one connection's verify mode and renegotiates (TLS 1.2,
  ``SSL_renegotiate``) or requests post-handshake authentication (TLS 1.3,
  ``SSL_verify_client_post_handshake``); Python has ``SSLSocket.verify_client_post_handshake`` but no per-
  connection verify mode and no renegotiation at all.
- A server that imitates another stack's alerts (``--alert-style``) needs a verify callback that
  changes the verification error OpenSSL turns into an alert (``SSL_CTX_set_verify``); Python's ``ssl``
  has no verify callback (CPython gh-75425, "Add SSLContext.set_verify_callback()", open).

How: the ``SSL_CTX*`` is the first field after ``PyObject_HEAD`` in CPython's ``PySSLContext`` (see
``Modules/_ssl.c``). The functions are looked up through the ``_ssl`` extension's own handle, so they
come from the very libssl that Python uses, never another copy. Before the pointer is trusted, it is
checked against three settings read through the public API (verify mode, options, security level);
any mismatch raises ``OpenSSLUnavailable`` instead of touching memory further.
"""

from __future__ import annotations

import _ssl
import ctypes
import functools
import ssl
from collections.abc import Callable, Sequence

_VERIFY_MODES = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}
_CERT_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
SSL_VERIFY_PEER = 0x01


class OpenSSLUnavailable(RuntimeError):
    """This Python's OpenSSL cannot be reached safely; the feature that needs it is unavailable."""


@functools.cache
def _lib() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(_ssl.__file__)
        sigs: dict[str, tuple[type | None, list[type]]] = {
            "SSL_CTX_get_verify_mode": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_CTX_get_options": (ctypes.c_uint64, [ctypes.c_void_p]),
            "SSL_CTX_get_security_level": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_CTX_add_client_CA": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "SSL_CTX_set_client_CA_list": (None, [ctypes.c_void_p, ctypes.c_void_p]),
            "SSL_CTX_get_client_CA_list": (ctypes.c_void_p, [ctypes.c_void_p]),
            "SSL_CTX_set_cert_cb": (None, [ctypes.c_void_p, _CERT_CB, ctypes.c_void_p]),
            "SSL_get_client_CA_list": (ctypes.c_void_p, [ctypes.c_void_p]),
            "SSL_certs_clear": (None, [ctypes.c_void_p]),
            "OPENSSL_sk_num": (ctypes.c_int, [ctypes.c_void_p]),
            "OPENSSL_sk_value": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
            "d2i_X509": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]),
            "X509_free": (None, [ctypes.c_void_p]),
            "i2d_X509_NAME": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "CRYPTO_free": (None, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
            "d2i_X509_NAME": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]),
            "X509_NAME_free": (None, [ctypes.c_void_p]),
            "X509_NAME_print_ex": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_ulong]),
            "BIO_s_mem": (ctypes.c_void_p, []),
            "BIO_new": (ctypes.c_void_p, [ctypes.c_void_p]),
            "BIO_read": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]),
            "BIO_free": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_CTX_set_verify": (None, [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]),
            "SSL_get_SSL_CTX": (ctypes.c_void_p, [ctypes.c_void_p]),
            "SSL_get_peer_cert_chain": (ctypes.c_void_p, [ctypes.c_void_p]),
            "i2d_X509": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "X509_STORE_CTX_get_error": (ctypes.c_int, [ctypes.c_void_p]),
            "X509_STORE_CTX_set_error": (None, [ctypes.c_void_p, ctypes.c_int]),
            "X509_STORE_CTX_get0_cert": (ctypes.c_void_p, [ctypes.c_void_p]),
            "X509_STORE_CTX_get_ex_data": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
            "SSL_get_ex_data_X509_STORE_CTX_idx": (ctypes.c_int, []),
            "X509_verify_cert_error_string": (ctypes.c_char_p, [ctypes.c_long]),
            "SSL_get_verify_mode": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_set_verify": (None, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]),
            "SSL_verify_client_post_handshake": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_renegotiate": (ctypes.c_int, [ctypes.c_void_p]),
            "SSL_set_options": (ctypes.c_uint64, [ctypes.c_void_p, ctypes.c_uint64]),
            "SSL_version": (ctypes.c_int, [ctypes.c_void_p]),
            "ERR_get_error": (ctypes.c_ulong, []),
            "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
        }
        for name, (restype, argtypes) in sigs.items():
            func = getattr(lib, name)
            func.restype = restype
            func.argtypes = argtypes
    except (OSError, AttributeError) as exc:
        raise OpenSSLUnavailable(f"cannot reach Python's libssl through {_ssl.__file__}: {exc}") from exc
    return lib


def ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The ``SSL_CTX*`` behind ``ctx``, verified against settings read through the public API."""
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer:
        raise OpenSSLUnavailable("unexpected SSLContext layout: no SSL_CTX pointer where CPython keeps it")
    lib = _lib()
    seen = (
        lib.SSL_CTX_get_verify_mode(pointer),
        lib.SSL_CTX_get_options(pointer),
        lib.SSL_CTX_get_security_level(pointer),
    )
    expected = (_VERIFY_MODES[ctx.verify_mode], int(ctx.options), ctx.security_level)
    if seen != expected:
        raise OpenSSLUnavailable(f"SSL_CTX pointer check failed (saw {seen}, expected {expected})")
    return pointer


def set_client_ca_names(ctx: ssl.SSLContext, ca_ders: Sequence[bytes]) -> None:
    """Advertise the subjects of ``ca_ders`` in the CertificateRequest (empty: advertise none)."""
    lib = _lib()
    pointer = ctx_pointer(ctx)
    lib.SSL_CTX_set_client_CA_list(pointer, None)  # frees any previous list
    for der in ca_ders:
        buf = ctypes.create_string_buffer(der, len(der))
        cursor = ctypes.c_void_p(ctypes.addressof(buf))
        x509 = lib.d2i_X509(None, ctypes.byref(cursor), len(der))
        if not x509:
            raise ValueError("OpenSSL could not parse a CA certificate for the advertised names")
        try:
            if lib.SSL_CTX_add_client_CA(pointer, x509) != 1:
                raise OpenSSLUnavailable("SSL_CTX_add_client_CA failed")
        finally:
            lib.X509_free(x509)


def client_ca_names(ctx: ssl.SSLContext) -> list[bytes]:
    """The DER-encoded names ``ctx`` advertises, read back from OpenSSL (for self-checks)."""
    lib = _lib()
    return _names_of_stack(lib.SSL_CTX_get_client_CA_list(ctx_pointer(ctx)))


def _names_of_stack(stack: int | None) -> list[bytes]:
    lib = _lib()
    names = []
    for index in range(lib.OPENSSL_sk_num(stack) if stack else 0):
        name = lib.OPENSSL_sk_value(stack, index)
        out = ctypes.c_void_p()
        size = lib.i2d_X509_NAME(name, ctypes.byref(out))
        if size <= 0 or not out.value:
            continue
        names.append(ctypes.string_at(out.value, size))
        lib.CRYPTO_free(out, None, 0)
    return names


XN_FLAG_RFC2253 = (
    0x1110317  # ASN1_STRFLGS_RFC2253 | XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_DN_REV | XN_FLAG_DUMP_UNKNOWN_FIELDS
)


def name_text(der: bytes) -> str:
    """An RFC 4514 string for a DER-encoded X.509 name (cryptography has no public Name-from-DER)."""
    lib = _lib()
    buf = ctypes.create_string_buffer(der, len(der))
    cursor = ctypes.c_void_p(ctypes.addressof(buf))
    name = lib.d2i_X509_NAME(None, ctypes.byref(cursor), len(der))
    if not name:
        return "(unparsable name)"
    bio = lib.BIO_new(lib.BIO_s_mem())
    try:
        lib.X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253)
        out = ctypes.create_string_buffer(4096)
        size = lib.BIO_read(bio, out, len(out))
        return out.raw[: max(size, 0)].decode("utf-8", errors="replace")
    finally:
        lib.BIO_free(bio)
        lib.X509_NAME_free(name)


CertDecision = Callable[[list[bytes]], bool]


def install_certificate_choice(ctx: ssl.SSLContext, decide: CertDecision) -> None:
    """Let ``decide`` choose, while the handshake runs, whether this client sends its certificate.

    OpenSSL calls the cert callback on a client only when the server requests a certificate. The
    callback receives the DER names from the CertificateRequest; when it returns False the configured
    certificate is removed from this connection, so an empty Certificate message goes out.
    ``decide`` must not raise: an exception is treated as "do not send".
    """
    lib = _lib()

    def callback(ssl_pointer: int | None, _arg: int | None) -> int:
        try:
            send = decide(_names_of_stack(lib.SSL_get_client_CA_list(ssl_pointer)))
        except Exception:
            send = False
        if not send:
            lib.SSL_certs_clear(ssl_pointer)
        return 1

    c_callback = _CERT_CB(callback)
    lib.SSL_CTX_set_cert_cb(ctx_pointer(ctx), c_callback, None)
    # OpenSSL keeps a raw pointer to the callback: keep the ctypes object alive as long as the context.
    ctx._mtls_lab_cert_cb = c_callback  # type: ignore[attr-defined]


# --- completing the handshake whatever the client's certificate (nginx's way) -------------------


def accept_any_client_certificate(ctx: ssl.SSLContext) -> None:
    """Request a client certificate and complete the handshake whether or not it verifies.

    nginx does this (its verify callback returns 1) and checks the result per request. Python's
    ``ssl`` offers no verify callback, so this one is installed with ``SSL_CTX_set_verify``. The app
    must then verify the chain itself (``server/verify.py``). Call it after the last change to
    ``ctx.verify_mode``: Python resets the callback when the mode is set.
    """
    callback = _VERIFY_CB(lambda _preverify_ok, _store_ctx: 1)
    lib = _lib()
    lib.SSL_CTX_set_verify(ctx_pointer(ctx), SSL_VERIFY_PEER, callback)
    ctx._mtls_lab_verify_cb = callback  # type: ignore[attr-defined]  # OpenSSL holds a raw pointer


# --- imitating another stack's alerts ------------------------------------------------------------

Restyle = Callable[[int, bytes, int | None], int]


def restyle_verification(ctx: ssl.SSLContext, restyle: Restyle) -> None:
    """When verifying a client's chain fails, replace OpenSSL's error with ``restyle(error, leaf_der, ssl)``.

    ``ssl`` is the ``SSL*`` of the connection being verified (as ``ssl_pointer`` gives it), so that the
    caller can note the original error for that connection.

    OpenSSL sends the alert its ``ssl_x509err2alert`` table gives for the final verification error, so
    the replacement chooses the alert. The mode (required or optional) is kept. Call it after the last
    change to ``ctx.verify_mode``. ``restyle`` must not raise: an exception keeps OpenSSL's error.
    """
    lib = _lib()

    def callback(preverify_ok: int, store: int | None) -> int:
        if preverify_ok:
            return 1
        error = lib.X509_STORE_CTX_get_error(store)
        try:
            connection = lib.X509_STORE_CTX_get_ex_data(store, lib.SSL_get_ex_data_X509_STORE_CTX_idx())
            leaf = _der(lib.X509_STORE_CTX_get0_cert(store))
            lib.X509_STORE_CTX_set_error(store, restyle(error, leaf, connection))
        except Exception:
            lib.X509_STORE_CTX_set_error(store, error)
        return 0

    c_callback = _VERIFY_CB(callback)
    pointer = ctx_pointer(ctx)
    lib.SSL_CTX_set_verify(pointer, lib.SSL_CTX_get_verify_mode(pointer), c_callback)
    ctx._mtls_lab_verify_cb = c_callback  # type: ignore[attr-defined]  # OpenSSL holds a raw pointer


def _der(x509: int | None) -> bytes:
    out = ctypes.c_void_p()
    size = _lib().i2d_X509(x509, ctypes.byref(out)) if x509 else 0
    if size <= 0 or not out.value:
        return b""
    try:
        return ctypes.string_at(out.value, size)
    finally:
        _lib().CRYPTO_free(out, None, 0)


def verify_error_text(code: int) -> str:
    """OpenSSL's words for an X509_V_ERR_* code ("certificate has expired")."""
    text: bytes | None = _lib().X509_verify_cert_error_string(code)
    return text.decode() if text else f"verification error {code}"


def ssl_pointer(ssl_object: ssl.SSLObject) -> int:
    """The ``SSL*`` behind an SSLObject, checked: its ``SSL_CTX`` must be the context's own."""
    inner = ssl_object._sslobj  # type: ignore[attr-defined]  # the _ssl._SSLSocket
    # PySSLSocket: PyObject_HEAD, PyObject *Socket, SSL *ssl (Modules/_ssl.c)
    pointer = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)).value
    if not pointer or _lib().SSL_get_SSL_CTX(pointer) != ctx_pointer(ssl_object.context):
        raise OpenSSLUnavailable("unexpected SSLObject layout: its SSL does not belong to its SSLContext")
    return pointer


def der_of(cert: object) -> bytes:
    """DER of an entry of ``get_(un)verified_chain()``: bytes on CPython 3.13, ``_ssl.Certificate`` on others."""
    if isinstance(cert, bytes):
        return cert
    return bytes(cert.public_bytes(_ssl.ENCODING_DER))  # type: ignore[attr-defined]


def peer_chain_der(ssl_object: ssl.SSLObject) -> list[bytes]:
    """Every certificate the peer sent, leaf first, as DER (verified or not)."""
    leaf = ssl_object.getpeercert(binary_form=True)
    if not leaf:
        return []
    chain: list[bytes] = []
    if hasattr(ssl_object, "get_unverified_chain"):  # Python 3.13+
        try:
            chain = [der_of(cert) for cert in ssl_object.get_unverified_chain() or []]
        except AttributeError:  # CPython 3.13.0 fails on some chains (a None entry): use OpenSSL directly
            chain = []
    if not chain:
        lib = _lib()
        stack = lib.SSL_get_peer_cert_chain(ssl_pointer(ssl_object))  # server side: without the leaf
        for index in range(lib.OPENSSL_sk_num(stack) if stack else 0):
            out = ctypes.c_void_p()
            size = lib.i2d_X509(lib.OPENSSL_sk_value(stack, index), ctypes.byref(out))
            if size > 0 and out.value:
                chain.append(ctypes.string_at(out.value, size))
                lib.CRYPTO_free(out, None, 0)
    return [leaf, *(der for der in chain if der != leaf)]


# --- asking for the client certificate after the handshake (Apache's per-location SSLVerifyClient) ---------

SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
SSL_VERIFY_CLIENT_ONCE = 0x04
TLS1_3_VERSION = 0x0304
SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION = 0x00010000
POST_HANDSHAKE_AUTH = "post_handshake_auth"
RENEGOTIATION = "renegotiation"


class LateRequestRefused(Exception):
    """OpenSSL could not ask: on TLS 1.3, the client offered no post-handshake authentication. The message is
    OpenSSL's error as Apache logs it (``error:0A000117:SSL routines::extension not received``)."""


def ask_after_handshake(ssl_object: ssl.SSLObject, *, required: bool) -> str:
    """Queue a request for the client's certificate on an established server connection, as mod_ssl does
    for a ``<Location>``: the connection's verify mode becomes mod_ssl's (``SSL_VERIFY_PEER``, and
    ``SSL_VERIFY_FAIL_IF_NO_PEER_CERT`` when ``required``, ``SSL_VERIFY_CLIENT_ONCE``; the context's verify
    callback is kept), then TLS 1.3 requests post-handshake authentication and TLS 1.2 renegotiates. The
    message itself leaves on the connection's next ``do_handshake()``; the client's answer is processed by
    its next reads. Returns the method (``POST_HANDSHAKE_AUTH`` or ``RENEGOTIATION``); raises
    ``LateRequestRefused`` (the verify mode restored) when OpenSSL cannot ask."""
    lib = _lib()
    pointer = ssl_pointer(ssl_object)
    before = lib.SSL_get_verify_mode(pointer)
    mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE | (SSL_VERIFY_FAIL_IF_NO_PEER_CERT if required else 0)
    lib.SSL_set_verify(pointer, mode, None)  # NULL: OpenSSL keeps the connection's verify callback
    tls13 = lib.SSL_version(pointer) >= TLS1_3_VERSION
    if not tls13:  # a full handshake: a resumed session would carry no CertificateRequest (mod_ssl sees to it too)
        lib.SSL_set_options(pointer, SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION)
    asked = lib.SSL_verify_client_post_handshake(pointer) if tls13 else lib.SSL_renegotiate(pointer)
    if asked != 1:
        lib.SSL_set_verify(pointer, before, None)
        raise LateRequestRefused(openssl_errors() or "OpenSSL refused the request")
    return POST_HANDSHAKE_AUTH if tls13 else RENEGOTIATION


def openssl_errors() -> str:
    """OpenSSL's error queue of this thread, emptied, as ``ERR_error_string_n`` writes each error; "" if empty."""
    lib = _lib()
    said = []
    while code := lib.ERR_get_error():
        text = ctypes.create_string_buffer(256)
        lib.ERR_error_string_n(code, text, len(text))
        said.append(text.value.decode(errors="replace"))
    return "; ".join(said)
