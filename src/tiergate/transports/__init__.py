"""Transports: the one way to talk to a model API (see ``base.py``), and what wraps it."""

from tiergate.transports.base import ApiCall, ApiReply, OpenStream, Transport, Unreachable

__all__ = ["ApiCall", "ApiReply", "OpenStream", "Transport", "Unreachable"]
