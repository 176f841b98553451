"""Camera edges: vendor ALPR events (OpenALPR / Rekor Scout, Axis, Genetec via ParkPow) mapped to
contract `plate_read` events, from an HTTP endpoint (`streamguard ingest serve`) or from files
(`streamguard ingest FILE`). See docs/ingest.md.
"""
