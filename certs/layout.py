"""The lab PKI's file layout: a contract that docs/reference/pki.md documents and every tool relies on.

```
manifest.json
ca/adobe-like-root.pem  ca/adobe-like-intermediate.pem
ca/adobe-like-next-root.pem  ca/adobe-like-next-intermediate.pem
ca/server-root.pem  ca/impostor-root.pem
server/cert.pem  server/key.pem
clients/<identity>/cert.pem  clients/<identity>/leaf.pem  clients/<identity>/key.pem
apps/ajo-sms.pem  apps/aep.pem
```

``apps/`` holds the certificates of Adobe's other applications, which the public-certificate API lists
next to AJO's custom-action certificate: the lab lists them and never presents them (no key is written).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

ADOBE_CN = "ajo-journeys.aep-mtls.adobe.com"
DEFAULT_CERTS_DIR = Path("certs")
LAB_STAND_IN = "MTLS LAB stand-in for "  # how a lab CA standing in for a real one starts its CN


class CA(enum.Enum):
    """The lab's certificate authorities; the value is the file stem under ``ca/``."""

    ADOBE_ROOT = "adobe-like-root"
    ADOBE_INTERMEDIATE = "adobe-like-intermediate"
    NEXT_ROOT = "adobe-like-next-root"
    NEXT_INTERMEDIATE = "adobe-like-next-intermediate"
    SERVER_ROOT = "server-root"
    IMPOSTOR_ROOT = "impostor-root"

    @property
    def stands_in_for(self) -> str | None:
        """The real CA this one imitates, or None for the lab's own CAs."""
        return _REAL_NAMES.get(self)


_REAL_NAMES = {
    CA.ADOBE_ROOT: "DigiCert Global Root G2",
    CA.ADOBE_INTERMEDIATE: "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
    CA.NEXT_ROOT: "DigiCert Assured ID Root G2",
    CA.NEXT_INTERMEDIATE: "DigiCert Assured ID Client CA G2",
}


class Identity(enum.Enum):
    """A client identity of the lab PKI: what the caller can present."""

    ADOBE = "adobe"
    ADOBE_ROTATED = "adobe-rotated"
    ADOBE_NEXT = "adobe-next"
    IMPOSTOR = "impostor"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NO_CLIENT_AUTH = "no-client-auth"
    SELF_SIGNED = "self-signed"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Identity.ADOBE: "Adobe-like production certificate, current, via the Adobe-like intermediate",
    Identity.ADOBE_ROTATED: "its successor, reissued 60 days before it expires: same subject, new key, both valid",
    Identity.ADOBE_NEXT: "after the CA migration: DigiCert Assured ID stand-in chain, clientAuth only",
    Identity.IMPOSTOR: "same subject, issued by an unrelated CA",
    Identity.EXPIRED: "Adobe-like chain, validity in the past",
    Identity.NOT_YET_VALID: "Adobe-like chain, validity in the future",
    Identity.NO_CLIENT_AUTH: "Adobe-like chain, EKU serverAuth only",
    Identity.SELF_SIGNED: "same subject, self-signed",
}


class AdobeApp(enum.Enum):
    """An Adobe application whose client certificate the public-certificate API lists, by ``certCommonName``.

    The API lists "the public certificates for any of your organization's Adobe applications".
    """

    JOURNEYS = "ajo-journeys"  # AJO custom actions: the identities adobe, adobe-rotated and adobe-next
    SMS = "ajo-sms"  # AJO custom SMS providers (Journey Optimizer's SMS configuration page names the CN)
    PLATFORM = "aep"  # "Adobe Experience Platform": the certCommonName of Adobe's sample response

    @property
    def common_name(self) -> str:
        return _APP_NAMES[self]


_APP_NAMES = {
    AdobeApp.JOURNEYS: ADOBE_CN,
    AdobeApp.SMS: "ajo-sms.aep-mtls.adobe.com",
    AdobeApp.PLATFORM: "Adobe Experience Platform",
}
LISTED_ONLY = (AdobeApp.PLATFORM, AdobeApp.SMS)  # the lab lists their certificates and never presents them


@dataclass(frozen=True)
class LabPaths:
    """Where each file of a lab PKI lives, relative to its root directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def ca(self, ca: CA) -> Path:
        return self.root / "ca" / f"{ca.value}.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server" / "cert.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server" / "key.pem"

    def client_dir(self, identity: Identity) -> Path:
        return self.root / "clients" / identity.value

    def client_cert(self, identity: Identity) -> Path:
        """Leaf plus intermediate: the chain a client sends."""
        return self.client_dir(identity) / "cert.pem"

    def client_leaf(self, identity: Identity) -> Path:
        return self.client_dir(identity) / "leaf.pem"

    def client_key(self, identity: Identity) -> Path:
        return self.client_dir(identity) / "key.pem"

    def app_leaf(self, app: AdobeApp) -> Path:
        """The certificate of one of Adobe's other applications (``LISTED_ONLY``), the leaf alone."""
        if app not in LISTED_ONLY:
            raise ValueError(f"{app.value}: its certificates are client identities: use client_leaf()")
        return self.root / "apps" / f"{app.value}.pem"

    def all_files(self) -> list[Path]:
        """Every file the generator writes, manifest last."""
        files = [self.ca(ca) for ca in CA] + [self.server_cert, self.server_key]
        for identity in Identity:
            files += [self.client_cert(identity), self.client_leaf(identity), self.client_key(identity)]
        files += [self.app_leaf(app) for app in LISTED_ONLY]
        return [*files, self.manifest]

    def key_files(self) -> list[Path]:
        return [self.server_key] + [self.client_key(identity) for identity in Identity]
