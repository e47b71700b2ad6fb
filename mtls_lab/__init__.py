"""ajo-mtls-lab: reproduce and explain mutual-TLS failures of AJO custom actions."""

__version__ = "0.1.0"
