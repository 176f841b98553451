"""StreamGuard: enforce state ALPR data-sharing law on Kafka event streams."""

__version__ = "0.1.0"

__all__ = ("__version__",)
