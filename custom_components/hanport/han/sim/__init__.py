"""Simulated meters (see ``simulator`` for the public API)."""
