"""The offline audit of vendor exports (search logs) against the owner's state law."""
