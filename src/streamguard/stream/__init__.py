"""Pure batch logic around the engine: intake, decisions per batch, event-time windows, outputs.

No Kafka and no faust here: the worker feeds batches in and delivers what comes out.
"""
