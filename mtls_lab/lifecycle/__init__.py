"""Adobe's client-certificate lifecycle: reissues, the CA migration, and keeping a trust store up to date.

- ``phases``: the points of the lifecycle the lab can serve, in Adobe's order (no web server imported: the
  CLI reads it);
- ``cadence``: Adobe's documented timings (13 months, reissue 60 days before expiry, revocation 30 days
  before, shortening toward 47 days) and the expiry warning derived from them;
- ``api``: a local stand-in for Adobe's public-certificate API, serving the lab's Adobe-like certificates;
- ``client``: the API's client (every page, templated links, Adobe's documented format);
- ``files``: the trust bundle and state trust-sync keeps (it writes over no other file);
- ``issuers``: where trust-sync finds CAs, checks them, and stages the next hierarchy;
- ``trust_sync``: ``mtls-lab trust-sync``, which keeps a bundle of Adobe's CAs from the API;
- ``synced``: the trust stores a scheduled trust-sync leaves in each phase, for the matrix.
"""
