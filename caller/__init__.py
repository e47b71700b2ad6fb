"""The AJO-like caller."""
