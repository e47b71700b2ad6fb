"""The ``mtls-lab`` command: ``main`` is its entry point (``python -m mtls_lab.cli`` runs it too)."""

from mtls_lab.cli.command import main

__all__ = ["main"]
