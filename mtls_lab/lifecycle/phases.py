"""The points of the lifecycle of Adobe's client certificate that the lab's API stand-in can serve.

Kept apart from the stand-in itself (``api``), which loads a web server: the CLI reads these names to
build its options, and the matrix to name its trust stores.

In Adobe's order (docs/lifecycle.md): a certificate lives 13 months today (shortening toward 47 days);
Adobe reissues it 60 days before expiry and revokes the old one 30 days before its expiry, so two
certificates overlap; then Adobe moves to the DigiCert Assured ID hierarchy, connection by connection
("individual connections transition to the new hierarchy at different times"), so for a while
certificates of both hierarchies are in use; then only the new one. Adobe asks customers to add the
new hierarchy to their trust store ahead of all this, as a one-time change: it is listed by no phase
before ``transition``, which is why ``mtls-lab trust-sync --stage`` exists.

The lab assumes (a model) that AJO presents, in each phase, the certificates the API lists in it.
"""

from __future__ import annotations

import enum

from mtls_lab.certs.layout import Identity
from mtls_lab.vocabulary import ADOBE_API_PORT

API_PATH = "/data/core/mtls/v1/certificate/public-certificate"
PHASE_PATH = "/_lab/phase"
PHASE_HEADER = "x-mtls-lab-phase"
DEFAULT_PORT = ADOBE_API_PORT
# mtls.yaml (experience-platform-apis): page "default: 1"; limit "default: 25", "maximum: 100", positive.
FIRST_PAGE = 1
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


class Phase(enum.Enum):
    """A point in the lifecycle of Adobe's client certificate, in the order they come."""

    CURRENT = "current"
    OVERLAP = "overlap"
    ROTATED = "rotated"
    TRANSITION = "transition"
    MIGRATION = "migration"

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The AJO certificates the API lists in this phase, oldest first (and, as modelled, AJO presents)."""
        return _SERVED[self]

    @property
    def summary(self) -> str:
        return _SUMMARIES[self]


_SERVED = {
    Phase.CURRENT: (Identity.ADOBE,),
    Phase.OVERLAP: (Identity.ADOBE, Identity.ADOBE_ROTATED),
    Phase.ROTATED: (Identity.ADOBE_ROTATED,),
    Phase.TRANSITION: (Identity.ADOBE_ROTATED, Identity.ADOBE_NEXT),
    Phase.MIGRATION: (Identity.ADOBE_NEXT,),
}
_SUMMARIES = {
    Phase.CURRENT: "today's certificate, in its last weeks",
    Phase.OVERLAP: "today's certificate and its successor (reissued 60 days before expiry), both valid",
    Phase.ROTATED: "the successor only: the old certificate is revoked 30 days before its expiry",
    Phase.TRANSITION: "the CA migration under way: certificates of both hierarchies, connections moving one by one",
    Phase.MIGRATION: "the new DigiCert Assured ID hierarchy only (the old hierarchy's certificate is still valid)",
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
