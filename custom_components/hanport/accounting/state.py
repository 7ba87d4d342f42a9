"""The versioned, JSON-safe form of a meter's accounting, for Home Assistant's Store.

Bump ``STATE_VERSION`` when the shape changes and teach ``migrate`` the step; a state that
cannot be read is dropped with a warning rather than crashing the integration (the next
hourly register starts the accounting again; statistics continue from the recorder).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from .account import MeterAccount
from .config import AccountingConfig

_LOGGER = logging.getLogger(__name__)

STATE_VERSION: Final = 1


def dump(account: MeterAccount) -> dict[str, Any]:
    """Return the account as a JSON-safe dict with its version."""
    return {"version": STATE_VERSION, "account": account.to_dict()}


def migrate(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Bring an older state up to ``STATE_VERSION`` (only version 1 exists so far)."""
    version = data.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"unknown accounting state version {version!r}")
    return data


def load(config: AccountingConfig, data: Mapping[str, Any] | None) -> MeterAccount:
    """Return the account restored from ``data``, or a fresh one if none or unusable."""
    account = MeterAccount(config)
    if not data:
        return account
    try:
        account.restore(migrate(data)["account"])
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as err:
        _LOGGER.warning("stored energy accounting could not be read (%s); starting afresh", err)
        return MeterAccount(config)
    return account
