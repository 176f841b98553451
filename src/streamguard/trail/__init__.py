"""The hash-chained audit trail: building records, reading chain heads back, verifying chains."""
