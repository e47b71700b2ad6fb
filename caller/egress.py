"""The path a call leaves Adobe by: directly, or through AJO's static-IP egress proxy.

Journey Optimizer, "Troubleshoot your custom actions" (AdobeDocs/journey-optimizer.en
``help/using/action/troubleshoot-custom-action.md``; docs/adobe-facts.md marks it unverified): "Send test
request" bypasses the egress proxy, while a live journey configured with the proxy leaves from the proxy's
static IP addresses. So a test can pass where a live journey fails an IP allow-list that lacks the proxy's
addresses, or the reverse (an allow-list that holds only the proxy's addresses refuses the test). An older
version of that page said the test went through the proxy.

The lab models the two paths on loopback: ``direct`` leaves from 127.0.0.1 (the test request, and a
journey without the proxy), ``proxy`` from 127.0.0.2, standing in for the proxy's static IPs (a model:
Linux routes all of 127.0.0.0/8 to loopback). The step event's ``actionIsProxy`` follows the path.
"""

from __future__ import annotations

import enum

PROXY_ADDRESS = "127.0.0.2"  # model: the egress proxy's static IP, on loopback


class Egress(enum.Enum):
    """How the call leaves: the value is the ``--egress`` name."""

    DIRECT = "direct"  # "Send test request", or a journey without the egress proxy
    PROXY = "proxy"  # a live journey through the static-IP egress proxy

    @property
    def source_address(self) -> str | None:
        """The local address the caller binds (None: the system's choice, 127.0.0.1 for a loopback URL)."""
        return PROXY_ADDRESS if self is Egress.PROXY else None

    def note(self) -> str:
        """What this path means for an endpoint's IP allow-list."""
        if self is Egress.PROXY:
            return (
                f"egress: through the static-IP egress proxy (modelled by the source address {PROXY_ADDRESS}), as a "
                'live journey with the proxy; "Send test request" bypasses the proxy, so an IP allow-list must '
                "hold the proxy's addresses for the journey and Adobe's other addresses for the test"
            )
        return (
            'egress: direct, as "Send test request" (which bypasses the egress proxy); a live journey through '
            f"the proxy leaves from its static IPs instead: try --egress proxy ({PROXY_ADDRESS})"
        )
