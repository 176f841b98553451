"""Corrections to faust-streaming and aiokafka internals, each guarded by source hashes."""
