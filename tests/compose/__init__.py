"""Test plumbing for docker-compose.yml: reading it, and running its documented commands for real.

- ``host-network.yml``: the override CI adds to the user's file (networking only: host network, no
  published ports, service names on 127.0.0.1, the builder on the host network).
- ``slow-server.yml``, ``no-wait.yml``: overlays of the start-order test only (a server that starts
  late; a caller that does not wait for it).
- ``python-stand-in.Dockerfile``: the local stand-in for ``python:3.11-slim-bookworm``.
- ``project.py``: the compose file as data, and a compose project run through the real ``docker compose``.
- ``commands.py``: the documented commands and what each must do (checked against docs/compose.md).

``scripts/compose-test.sh`` starts the engine these tests use (``make compose-test``).
"""
