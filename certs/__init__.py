"""The lab PKI: generator, layout and certificate inspection."""
