"""The reference mTLS server."""
