"""ajo-mtls-lab: reproduce and explain mutual-TLS failures of AJO custom actions.

PYTEST_DONT_REWRITE: the package ships a pytest plugin (caller/pytest_plugin.py), so pytest marks the whole
package for assertion rewriting; it holds no test code, and in a run that imported it already (pytester) the
marking would warn.
"""

__version__ = "0.1.0"

import logging

# A library stays quiet unless the application configures logging (the CLI does).
logging.getLogger("mtls_lab").addHandler(logging.NullHandler())
