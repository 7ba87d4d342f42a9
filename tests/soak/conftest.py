"""Fixtures of the soak runs: the recorder starts before the integration, sensors unrecorded.

The recorder is there for the accounting's hourly statistics (what the soak checks);
the sensors' own state history is excluded from it, as it is no part of the checks and
would only slow a simulated day down.
"""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.recorder.core import Recorder


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder must start before Home Assistant (and so before the integrations)."""


@pytest.fixture
def recorder_config() -> dict[str, Any]:
    """Record no sensor states: only the statistics the accounting imports matter here."""
    return {"exclude": {"domains": ["sensor"]}}
