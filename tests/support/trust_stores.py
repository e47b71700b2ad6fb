"""Trust stores built the way server teams build them: ``keytool`` (JKS, PKCS12) and ``openssl`` (PKCS12, folders).

The CAs in them:

- Adobe's real roots, from certifi (Mozilla's root store): matched by the check like any user's copy;
- today's real intermediate, DigiCert Global G2 TLS RSA SHA256 2020 CA1 (``REAL_TODAY_INTERMEDIATE``, DigiCert's
  public certificate, as served at http://cacerts.digicert.com/DigiCertGlobalG2TLSRSASHA2562020CA1-1.crt):
  its signature under certifi's DigiCert Global Root G2 is checked (``tests/test_trust_store.py``), so it is
  the real one;
- the migration's intermediate, DigiCert Assured ID Client CA G2, is not at hand: ``migration_stand_ins``
  makes a root with the real DigiCert Assured ID Root G2's *subject* and a lab key, and an intermediate with
  the real intermediate's subject signed by it. The check matches them only when told that this stand-in root
  is "the real root" (``--roots``); without that, they carry the names and not the key, and are refused. They
  carry no "LAB" in their names because their point is the real subject; they live in a test's temporary
  folder only.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mtls_lab.caller.probe_certs import Hierarchy, real_root
from mtls_lab.caller.store_files import KEYTOOL_JVM

REAL_TODAY_INTERMEDIATE = b"""-----BEGIN CERTIFICATE-----
MIIEyDCCA7CgAwIBAgIQDPW9BitWAvR6uFAsI8zwZjANBgkqhkiG9w0BAQsFADBh
MQswCQYDVQQGEwJVUzEVMBMGA1UEChMMRGlnaUNlcnQgSW5jMRkwFwYDVQQLExB3
d3cuZGlnaWNlcnQuY29tMSAwHgYDVQQDExdEaWdpQ2VydCBHbG9iYWwgUm9vdCBH
MjAeFw0yMTAzMzAwMDAwMDBaFw0zMTAzMjkyMzU5NTlaMFkxCzAJBgNVBAYTAlVT
MRUwEwYDVQQKEwxEaWdpQ2VydCBJbmMxMzAxBgNVBAMTKkRpZ2lDZXJ0IEdsb2Jh
bCBHMiBUTFMgUlNBIFNIQTI1NiAyMDIwIENBMTCCASIwDQYJKoZIhvcNAQEBBQAD
ggEPADCCAQoCggEBAMz3EGJPprtjb+2QUlbFbSd7ehJWivH0+dbn4Y+9lavyYEEV
cNsSAPonCrVXOFt9slGTcZUOakGUWzUb+nv6u8W+JDD+Vu/E832X4xT1FE3LpxDy
FuqrIvAxIhFhaZAmunjZlx/jfWardUSVc8is/+9dCopZQ+GssjoP80j812s3wWPc
3kbW20X+fSP9kOhRBx5Ro1/tSUZUfyyIxfQTnJcVPAPooTncaQwywa8WV0yUR0J8
osicfebUTVSvQpmowQTCd5zWSOTOEeAqgJnwQ3DPP3Zr0UxJqyRewg2C/Uaoq2yT
zGJSQnWS+Jr6Xl6ysGHlHx+5fwmY6D36g39HaaECAwEAAaOCAYIwggF+MBIGA1Ud
EwEB/wQIMAYBAf8CAQAwHQYDVR0OBBYEFHSFgMBmx9833s+9KTeqAx2+7c0XMB8G
A1UdIwQYMBaAFE4iVCAYlebjbuYP+vq5Eu0GF485MA4GA1UdDwEB/wQEAwIBhjAd
BgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwdgYIKwYBBQUHAQEEajBoMCQG
CCsGAQUFBzABhhhodHRwOi8vb2NzcC5kaWdpY2VydC5jb20wQAYIKwYBBQUHMAKG
NGh0dHA6Ly9jYWNlcnRzLmRpZ2ljZXJ0LmNvbS9EaWdpQ2VydEdsb2JhbFJvb3RH
Mi5jcnQwQgYDVR0fBDswOTA3oDWgM4YxaHR0cDovL2NybDMuZGlnaWNlcnQuY29t
L0RpZ2lDZXJ0R2xvYmFsUm9vdEcyLmNybDA9BgNVHSAENjA0MAsGCWCGSAGG/WwC
ATAHBgVngQwBATAIBgZngQwBAgEwCAYGZ4EMAQICMAgGBmeBDAECAzANBgkqhkiG
9w0BAQsFAAOCAQEAkPFwyyiXaZd8dP3A+iZ7U6utzWX9upwGnIrXWkOH7U1MVl+t
wcW1BSAuWdH/SvWgKtiwla3JLko716f2b4gp/DA/JIS7w7d7kwcsr4drdjPtAFVS
slme5LnQ89/nD/7d+MS5EHKBCQRfz5eeLjJ1js+aWNJXMX43AYGyZm0pGrFmCW3R
bpD0ufovARTFXFZkAdl9h6g4U5+LXUZtXMYnhIHUfoyMo5tS58aI7Dd8KvvwVVo4
chDYABPPTHPbqjc1qCmBaZx2vN4Ye5DUys/vZwP9BFohFrH/6j/f3IL16/RZkiMN
JCqVJUzKoZHm1Lesh3Sz8W2jmdv51b2EQJ8HmA==
-----END CERTIFICATE-----
"""
STOREPASS = "changeit"
NOW = dt.datetime.now(dt.UTC)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def today_root() -> x509.Certificate:
    return real_root(Hierarchy.TODAY.root)


def today_intermediate() -> x509.Certificate:
    return x509.load_pem_x509_certificate(REAL_TODAY_INTERMEDIATE)


@dataclass(frozen=True)
class StandIns:
    """The migration's root and intermediate: real subjects, a lab key (see the module docstring)."""

    root: x509.Certificate
    intermediate: x509.Certificate
    root_key: rsa.RSAPrivateKey


def migration_stand_ins() -> StandIns:
    real = real_root(Hierarchy.MIGRATION.root)
    key = rsa.generate_private_key(65537, 2048)
    root = ca_cert(real.subject, real.subject, key.public_key(), key)
    inter_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
            x509.NameAttribute(NameOID.COMMON_NAME, Hierarchy.MIGRATION.intermediate),
        ]
    )
    inter_key = ec.generate_private_key(ec.SECP256R1())
    return StandIns(root, ca_cert(inter_name, real.subject, inter_key.public_key(), key), key)


def named(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca_cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    ca: bool = True,
    expired: bool = False,
) -> x509.Certificate:
    start, end = (
        (NOW - dt.timedelta(days=400), NOW - dt.timedelta(days=30))
        if expired
        else (
            NOW - dt.timedelta(days=1),
            NOW + dt.timedelta(days=3650),
        )
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def self_signed(cn: str, *, expired: bool = False) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return ca_cert(named(cn), named(cn), key.public_key(), key, expired=expired)


def roots_bundle(folder: Path, stand_ins: StandIns) -> Path:
    """A --roots bundle in which the migration's "real" root is the stand-in (today's is certifi's)."""
    path = folder / "roots.pem"
    path.write_bytes(pem(today_root(), stand_ins.root))
    return path


# --- the stores, built by the tools server teams use ----------------------------------------------


def write_certs(folder: Path, certs: list[x509.Certificate]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, cert in enumerate(certs):
        path = folder / f"ca-{index}.pem"
        path.write_bytes(pem(cert))
        files.append(path)
    return files


def pem_bundle(path: Path, certs: list[x509.Certificate]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem(*certs))
    return path


def pem_folder(path: Path, certs: list[x509.Certificate], rehash: bool = True) -> Path:
    write_certs(path, certs)
    if rehash:
        subprocess.run(["openssl", "rehash", str(path)], check=True, capture_output=True)
    return path


def keytool_store(path: Path, certs: list[x509.Certificate], storetype: str) -> Path:
    """``keytool -importcert`` once per CA, as Adobe's page shows (``storetype`` JKS or PKCS12)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for index, file in enumerate(write_certs(path.parent / f"{path.name}-certs", certs)):
        command = [
            "keytool",
            *KEYTOOL_JVM,
            "-importcert",
            "-trustcacerts",
            "-noprompt",
            "-alias",
            f"ca-{index}",
            "-file",
            str(file),
        ]
        command += ["-keystore", str(path), "-storetype", storetype, "-storepass", STOREPASS]
        subprocess.run(command, check=True, capture_output=True)
    return path


def openssl_pkcs12(path: Path, certs: list[x509.Certificate], key: Path | None = None) -> Path:
    """``openssl pkcs12 -export`` of certificates only (or with a key): what a non-Java tool makes."""
    bundle = pem_bundle(path.with_suffix(".in.pem"), certs)
    command = ["openssl", "pkcs12", "-export", "-in", str(bundle), "-out", str(path), "-passout", f"pass:{STOREPASS}"]
    command += ["-inkey", str(key)] if key else ["-nokeys"]
    subprocess.run(command, check=True, capture_output=True)
    return path


def real_root_of_migration() -> x509.Certificate:
    return real_root(Hierarchy.MIGRATION.root)
