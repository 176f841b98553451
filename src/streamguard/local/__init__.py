"""Local development tooling: a Kafka broker on localhost, the demo and its scenario, test support.

Shipped on purpose (tests and benchmarks use it), but never imported by `core`, `stream` or
`worker`.
"""
