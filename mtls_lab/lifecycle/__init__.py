"""Adobe's client-certificate lifecycle: rotation, the CA migration, and keeping a trust store up to date.

- ``phases``: the points of the lifecycle the lab can serve (no web server imported: the CLI reads it);
- ``api``: a local stand-in for Adobe's public-certificate API, serving the lab's Adobe-like certificates;
- ``client``: the API's client (every page, Adobe's documented format);
- ``trust_sync``: ``mtls-lab trust-sync``, which keeps a bundle of Adobe's CAs from the API;
- ``synced``: the trust stores trust-sync leaves in each phase, for the matrix.
"""
