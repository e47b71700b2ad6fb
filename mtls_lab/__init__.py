"""ajo-mtls-lab: reproduce and explain mutual-TLS failures of AJO custom actions."""

__version__ = "0.1.0"

import logging

# A library stays quiet unless the application configures logging (the CLI does).
logging.getLogger("mtls_lab").addHandler(logging.NullHandler())
