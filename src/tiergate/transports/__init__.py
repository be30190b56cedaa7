"""Transports: the one way to talk to a model API (see ``base.py``), and what wraps it."""

from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Transport, Unreachable
from tiergate.transports.retry import anthropic_transport

__all__ = [
    "ApiCall",
    "ApiReply",
    "OpenStream",
    "Transport",
    "Unreachable",
    "anthropic_transport",
]
