"""Decoder options a user or Home Assistant supplies (keys, market)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What the frame itself cannot tell the decoder.

    ``country`` is an ISO 3166 alpha-2 code (``"NO"``, ``"SE"``, ...). It decides
    implicit scaling that differs by market (Kamstrup energy resolution); ``None``
    means infer from the meter where possible.
    ``key`` is the GUEK (16 bytes), ``auth_key`` the optional GAK (16 bytes).
    """

    country: str | None = None
    key: bytes | None = None
    auth_key: bytes | None = None
