"""The scenario table and what runs it: the matrix, the demo, runs against running servers, health checks.

- ``scenarios``: every server/caller combination the lab shows, with its expected verdict (the specification);
- ``runner``: starts the servers the scenarios need, calls, compares, renders the results;
- ``against``: the same scenarios against servers already running (the compose profile);
- ``demo``: the community question's story, told with live calls;
- ``health``: is a lab server up and ready (the compose healthcheck).
"""
