"""A tiny package whose wheel rebuilds bit for bit."""

__version__ = "1.0"


def greet(name: str = "world") -> str:
    return f"hello, {name}"
