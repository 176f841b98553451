"""The pure law core: events, settings, statutes, the policy engine, the purpose classifier.

No I/O and no clock: every function takes what it needs, `now` included.
"""
