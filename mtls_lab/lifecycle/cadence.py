"""Adobe's certificate cadence as documented, and what trust-sync derives from it.

Documented (Experience Platform, MTLS Service API, "Public certificate endpoint", section "Certificate
lifecycle automation"): certificates are reissued 60 days before expiration and revoked 30 days before
expiration, and "these timelines will shorten over time in alignment with CA/B Forum guidelines, which
aim to reduce certificate lifetimes to a maximum of 47 days". The lifetime today is 13 months (396
days, docs/adobe-facts.md).

Model, where Adobe is silent: the timelines shorten in proportion to the lifetime. The expiry warning
therefore starts at Adobe's reissue point scaled to the certificate's own lifetime (the last 60/396 of
it: 60 days for today's 13-month certificate, 7 days for a 47-day one), and never earlier than 60 days
before expiry (a CA lives for years: a warning years ahead helps nobody).
"""

from __future__ import annotations

import datetime as dt

LIFETIME_TODAY_DAYS = 396  # 13 months
REISSUE_DAYS = 60  # a successor is issued this long before expiry
DAY = dt.timedelta(days=1)


def warning_days(not_before: dt.datetime, not_after: dt.datetime) -> int:
    """Days before expiry from which a certificate deserves a warning: Adobe's reissue point, scaled."""
    lifetime = (not_after - not_before) / DAY
    return max(1, min(REISSUE_DAYS, round(lifetime * REISSUE_DAYS / LIFETIME_TODAY_DAYS)))
