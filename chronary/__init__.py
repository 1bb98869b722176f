"""Chronary: a self-hosted calendar server for AI agents and the people they work with."""

__version__ = "0.1.0"
