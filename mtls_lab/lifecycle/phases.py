"""The points of the lifecycle of Adobe's client certificate that the lab's API stand-in can serve.

Kept apart from the stand-in itself (``api``), which loads a web server: the CLI reads these names to
build its options, and the matrix to name its trust stores.

Adobe reissues its certificate 60 days before expiry and the old one stays valid until 30 days before
its own expiry, so two certificates overlap; then Adobe migrates to the DigiCert Assured ID hierarchy.
"""

from __future__ import annotations

import enum

from mtls_lab.certs.layout import Identity

API_PATH = "/data/core/mtls/v1/certificate/public-certificate"
PHASE_PATH = "/_lab/phase"
PHASE_HEADER = "x-mtls-lab-phase"
DEFAULT_PORT = 8447
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Phase(enum.Enum):
    """A point in the lifecycle of Adobe's client certificate."""

    CURRENT = "current"
    OVERLAP = "overlap"
    ROTATED = "rotated"
    MIGRATION = "migration"

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The lab certificates the API lists in this phase, oldest first."""
        return _SERVED[self]

    @property
    def summary(self) -> str:
        return _SUMMARIES[self]


_SERVED = {
    Phase.CURRENT: (Identity.ADOBE,),
    Phase.OVERLAP: (Identity.ADOBE, Identity.ADOBE_ROTATED),
    Phase.ROTATED: (Identity.ADOBE_ROTATED,),
    Phase.MIGRATION: (Identity.ADOBE_NEXT,),
}
_SUMMARIES = {
    Phase.CURRENT: "today's certificate",
    Phase.OVERLAP: "today's and next year's certificates, both valid",
    Phase.ROTATED: "next year's certificate; the old one is revoked",
    Phase.MIGRATION: "the certificate from the new DigiCert Assured ID hierarchy",
}


class ChainMode(enum.Enum):
    """What ``publicCertificate`` holds."""

    LEAF = "leaf"  # the certificate alone, as in Adobe's documented sample
    FULL = "full"  # lab extension: the certificate, its intermediate and its root

    @property
    def summary(self) -> str:
        if self is ChainMode.LEAF:
            return "the certificate alone, as Adobe documents"
        return "certificate + intermediate + root (a lab extension)"
