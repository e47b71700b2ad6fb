"""Self-contained HTML reports of a call, a probe or the matrix, to hand to a server team or Adobe support.

One file, no network: styles and the small filter script are inline, the page's Content-Security-Policy
forbids every fetch, and everything that came from the network is escaped by Jinja2's autoescape.

- ``collect``: runs what a report shows and keeps the server's record of the same attempts;
- ``ladder``: the handshake ladder's geometry, from the messages the caller observed;
- ``server_side``: the server's record entries of one attempt (matched by the caller's local port);
- ``certificates``: the certificates involved, lab stand-ins marked as not real;
- ``views``: what each report says in its first screenful (verdict, cause, fix) and how to reproduce it;
- ``render``: Jinja2 templates to HTML, written without overwriting anything.
"""

from __future__ import annotations
