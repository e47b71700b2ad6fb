"""Reading a trust store, read-only: a PEM bundle, a folder of PEM files, PKCS12, or a Java key store (JKS).

Every reader opens the file for reading only (the JDK's ``keytool -list`` too): the store is never changed.
A file that is not a trust store (empty, text, a private key inside, a wrong password) is a ``LabError``:
one line, what is wrong and how to fix it.

- PEM: every ``CERTIFICATE`` block (nginx ``ssl_client_certificate``, Apache ``SSLCACertificateFile``, an
  API gateway's bundle); a ``PRIVATE KEY`` block is refused.
- a folder: the PEM, ``.crt`` and ``.cer`` files and OpenSSL's hash links (``SSLCACertificatePath``,
  ``CApath``); OpenSSL finds a certificate in a folder only by its hash link (``openssl rehash``).
- PKCS12: cryptography's loader; a key inside is refused. With the JDK's ``keytool`` on the PATH, the
  entries Java sees are counted too: Java ignores a certificate without its trust attribute (measured,
  JDK 17: a store made by ``openssl pkcs12 -export -nokeys`` lists as "0 entries").
- JKS (and JCEKS): the JDK's ``keytool -list -rfc`` (no maintained Python reader of JKS is on PyPI);
  without a JDK, one line names what to install.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_lab.errors import LabError

JKS_MAGIC = b"\xfe\xed\xfe\xed"
JCEKS_MAGIC = b"\xce\xce\xce\xce"
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_HASH_LINK = re.compile(r"^[0-9a-f]{8}\.\d+$")
FOLDER_SUFFIXES = (".pem", ".crt", ".cer")
# keytool's JVM for one short read: no optimising compiler, the serial collector (starts in about half the CPU)
KEYTOOL_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
PASSWORD_VARIABLE = "MTLS_LAB_STOREPASS"  # keytool reads the password from it (-storepass:env): never argv


class StoreFormat(enum.Enum):
    PEM = "pem"
    DIR = "dir"
    PKCS12 = "pkcs12"
    JKS = "jks"

    @property
    def java(self) -> bool:
        """Read by a Java endpoint (Tomcat, Spring Boot, a Java gateway), which advertises its CA names."""
        return self in (StoreFormat.PKCS12, StoreFormat.JKS)


@dataclass(frozen=True)
class Entry:
    """One certificate of the store and where it is: ``line 3 of bundle.pem``, ``alias 'digicert'``."""

    cert: x509.Certificate
    where: str
    alias: str = ""


@dataclass(frozen=True)
class TrustStore:
    """What a store holds, as read; ``java_sees`` is how many entries Java lists (None: not measured)."""

    path: Path
    format: StoreFormat
    entries: tuple[Entry, ...]
    java_sees: int | None = None
    hash_links: bool = True  # a folder: OpenSSL's hash links are there


def read_store(path: Path, password: str | None = None, fmt: StoreFormat | None = None) -> TrustStore:
    """Read ``path`` (format detected unless ``fmt``); LabError (one line) if it is not a usable trust store."""
    if not path.exists():
        raise LabError(f"{path}: no such file or folder: give the trust store the endpoint uses")
    kind = fmt or detect(path)
    if kind is StoreFormat.DIR:
        store = _read_folder(path)
    elif path.is_dir():
        raise LabError(f"{path} is a folder, not a {kind.value} file: drop --format, or give the file")
    elif kind is StoreFormat.PEM:
        store = TrustStore(path, kind, _read_pem(path.read_bytes(), path.name))
    elif kind is StoreFormat.PKCS12:
        store = _read_pkcs12(path, password)
    else:
        store = _read_jks(path, password)
    if not store.entries:
        raise LabError(f"{path}: holds no certificate: give the trust store the endpoint uses (CA certificates)")
    return store


def detect(path: Path) -> StoreFormat:
    """The format, from the content (never from the name alone)."""
    if path.is_dir():
        return StoreFormat.DIR
    data = path.read_bytes()
    if not data.strip():
        raise LabError(f"{path}: the file is empty: give the trust store the endpoint uses")
    if data[:4] in (JKS_MAGIC, JCEKS_MAGIC):
        return StoreFormat.JKS
    if b"-----BEGIN" in data:
        return StoreFormat.PEM
    if _looks_pkcs12(data):
        return StoreFormat.PKCS12
    if data[:1] == b"\x30":
        raise LabError(
            f"{path}: a DER file, not a trust store: convert it to PEM (openssl x509 -inform DER -in {path} "
            f"-out {path.stem}.pem) and give the bundle the endpoint reads"
        )
    raise LabError(
        f"{path}: not a trust store (neither PEM certificates, PKCS12 nor a Java key store): give the file behind "
        "ssl_client_certificate, SSLCACertificateFile or javax.net.ssl.trustStore"
    )


def _looks_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), ... } (RFC 7292): a DER SEQUENCE whose first item is 3."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    first = data[1]
    start = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[start : start + 3] == b"\x02\x01\x03"


def _read_pem(data: bytes, name: str) -> tuple[Entry, ...]:
    if b"PRIVATE KEY-----" in data:
        raise LabError(
            f"{name}: holds a private key: a trust store holds CA certificates only: give the CA bundle, not the "
            "server's key file (and keep that key out of shared bundles)"
        )
    entries = []
    for block in _PEM_CERT.finditer(data):
        line = data.count(b"\n", 0, block.start()) + 1
        try:
            cert = x509.load_pem_x509_certificate(block.group())
        except ValueError as exc:
            raise LabError(f"{name}: the certificate at line {line} is damaged ({exc}): replace it") from exc
        entries.append(Entry(cert, f"line {line} of {name}"))
    if not entries and data.strip():
        raise LabError(f"{name}: PEM, but no CERTIFICATE block: give the CA certificates the endpoint trusts")
    return tuple(entries)


def _read_folder(path: Path) -> TrustStore:
    entries: list[Entry] = []
    links = False
    for file in sorted(path.iterdir()):
        if not file.is_file():
            continue
        hashed = bool(_HASH_LINK.match(file.name))
        links |= hashed
        if file.suffix.lower() in FOLDER_SUFFIXES or hashed:
            data = file.read_bytes()
            if b"-----BEGIN" not in data:
                raise LabError(f"{file}: not PEM: convert it (openssl x509 -inform DER -in {file} -out {file}.pem)")
            entries += _read_pem(data, f"{path.name}/{file.name}")
    return TrustStore(path, StoreFormat.DIR, tuple(entries), hash_links=links)


def _read_pkcs12(path: Path, password: str | None) -> TrustStore:
    try:
        loaded = pkcs12.load_pkcs12(path.read_bytes(), password.encode() if password else None)
    except ValueError as exc:
        if password is None:
            raise LabError(f"{path}: a PKCS12 store protected by a password: give it with --password") from exc
        raise LabError(f"{path}: the password does not open this PKCS12 store: give the right --password") from exc
    if loaded.key is not None:
        raise LabError(
            f"{path}: holds a private key: this is a key store, not a trust store: give the trust store "
            "(server.ssl.trust-store, truststoreFile), which holds CA certificates only"
        )
    certs = ([loaded.cert] if loaded.cert else []) + list(loaded.additional_certs)
    entries = tuple(Entry(c.certificate, f"alias '{_alias(c.friendly_name)}'", _alias(c.friendly_name)) for c in certs)
    keytool = find_keytool()
    java_sees = _keytool_entries(keytool, path, password, "PKCS12")[1] if keytool else None
    return TrustStore(path, StoreFormat.PKCS12, entries, java_sees)


def _alias(name: bytes | None) -> str:
    return name.decode(errors="replace") if name else "(no alias)"


def find_keytool() -> str | None:
    """The JDK's keytool: on the PATH, else under $JAVA_HOME/bin."""
    found = shutil.which("keytool")
    home = os.environ.get("JAVA_HOME")
    if found is None and home and (Path(home) / "bin" / "keytool").is_file():
        found = str(Path(home) / "bin" / "keytool")
    return found


def _read_jks(path: Path, password: str | None) -> TrustStore:
    keytool = find_keytool()
    if keytool is None:
        raise LabError(
            f"{path} is a Java key store (JKS): reading it needs the JDK's keytool, which is not on the PATH: "
            "install a JDK (Debian: apt-get install default-jdk-headless) or set JAVA_HOME"
        )
    entries, count = _keytool_entries(keytool, path, password, None)
    return TrustStore(path, StoreFormat.JKS, entries, count)


_ALIAS = re.compile(r"^Alias name: (.*)$", re.M)


def _keytool_entries(keytool: str, path: Path, password: str | None, kind: str | None) -> tuple[tuple[Entry, ...], int]:
    """``keytool -list -rfc``, read-only; the password goes through the environment, never the command line."""
    command = [keytool, *KEYTOOL_JVM, "-list", "-rfc", "-keystore", str(path)]
    command += ["-storetype", kind] if kind else []
    env = dict(os.environ)
    if password is not None:
        command += ["-storepass:env", PASSWORD_VARIABLE]
        env[PASSWORD_VARIABLE] = password
    done = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60, check=False
    )
    out = done.stdout + done.stderr
    if "password was incorrect" in out or "keystore password was incorrect" in out:
        if password is None:
            raise LabError(f"{path}: protected by a password keytool needs: give it with --password")
        raise LabError(f"{path}: the password does not open this key store: give the right --password")
    if done.returncode != 0 or "keytool error" in out:
        error = next((line for line in out.splitlines() if "keytool error" in line), out.strip()[-200:])
        raise LabError(f"{path}: keytool cannot read it ({error.strip()}): give a JKS or PKCS12 trust store")
    return _parse_listing(out, path), len(_ALIAS.findall(out))


def _parse_listing(out: str, path: Path) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for section in re.split(r"(?=^Alias name: )", out, flags=re.M)[1:]:
        alias = _ALIAS.search(section)
        name = alias.group(1).strip() if alias else "?"
        if "Entry type: PrivateKeyEntry" in section or "Entry type: SecretKeyEntry" in section:
            raise LabError(
                f"{path}: entry '{name}' holds a key: this is a key store, not a trust store: give the trust store "
                "(server.ssl.trust-store, truststoreFile), which holds CA certificates only"
            )
        blocks = _PEM_CERT.findall(section.encode())
        entries += [Entry(x509.load_pem_x509_certificate(b), f"alias '{name}'", name) for b in blocks[:1]]
    return tuple(entries)
