"""The long soak's pytest entry: run by ``scripts/soak``, not collected by the test suite.

Each leg named in HANPORT_SOAK_LEGS (default ``tcp,pty``) runs in a fresh Home Assistant
core with the parameters of the other HANPORT_SOAK_* variables (see
``SoakConfig.from_env``; the defaults here are the month the README quotes). The leg's
figures go to HANPORT_SOAK_OUT/<leg>.json, from which the script prints its table.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant

from custom_components.hanport.han.reading import ListKind

from .harness import SoakConfig, run_leg
from .report import format_report

LEGS = tuple(leg for leg in os.environ.get("HANPORT_SOAK_LEGS", "tcp,pty").split(",") if leg)
MONTH: dict[str, Any] = {
    "hours": 31 * 24.0,
    "start": datetime(2026, 9, 30, 22, 0, tzinfo=UTC),  # 1 October, 00:00 in Oslo
    "fault_gap": 900.0,
    "lists": frozenset({ListKind.STATUS, ListKind.ENERGY}),
}


@pytest.mark.parametrize("transport", LEGS)
async def test_soak(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, socket_enabled: None, transport: str
) -> None:
    """One leg of the long run; fails on any check the table marks 'must be 0'."""
    result = await run_leg(hass, freezer, SoakConfig.from_env(transport, None, **MONTH))
    if out := os.environ.get("HANPORT_SOAK_OUT"):
        await hass.async_add_executor_job(
            Path(out, f"{transport}.json").write_text, result.to_json()
        )
    assert not result.failures(), format_report([result])
