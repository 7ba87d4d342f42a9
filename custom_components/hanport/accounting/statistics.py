"""Exact hourly statistics in Home Assistant's recorder (the Home Assistant side).

Each meter gets two external statistics, "hanport:energy_import_<id>" and
"hanport:energy_export_<id>", where <id> is keyed from the meter ID with the Home
Assistant instance id (the meter's serial number is not readable from it). Rows are whole
watt-hours (exact in the database) with the metadata Home Assistant 2026.11 requires:
``mean_type`` NONE and ``unit_class`` "energy". The Energy dashboard offers them as grid
consumption and return.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
)
from homeassistant.const import UnitOfEnergy
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util.unit_conversion import EnergyConverter

from ..const import DOMAIN
from .ledger import StatisticRow, statistic_object_id
from .registers import Channel

RECORDER: Final = "recorder"


class StatisticsWriter:
    """Imports rows and reads back the last one, per meter and channel."""

    def __init__(self, hass: HomeAssistant, secret: str) -> None:
        """``secret`` keys the statistic ids (the Home Assistant instance id)."""
        self.hass = hass
        self._secret = secret

    def statistic_id(self, meter_id: str, channel: Channel) -> str:
        """Return "hanport:energy_<channel>_<keyed id>"."""
        return f"{DOMAIN}:{statistic_object_id(channel, meter_id, self._secret)}"

    @property
    def available(self) -> bool:
        """True when the recorder runs (statistics are skipped without it)."""
        return RECORDER in self.hass.config.components

    def metadata(self, meter_id: str, meter_name: str, channel: Channel) -> StatisticMetaData:
        """Metadata for one statistic (2026.11 rules: mean_type and unit_class)."""
        return StatisticMetaData(
            mean_type=StatisticMeanType.NONE,
            has_sum=True,
            name=f"{meter_name} energy {channel} (hourly register)",
            source=DOMAIN,
            statistic_id=self.statistic_id(meter_id, channel),
            unit_class=EnergyConverter.UNIT_CLASS,
            unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        )

    def import_rows(
        self, meter_id: str, meter_name: str, channel: Channel, rows: list[StatisticRow]
    ) -> None:
        """Queue rows for the recorder (an upsert per hour: re-importing is harmless)."""
        if not rows or not self.available:
            return
        async_add_external_statistics(
            self.hass,
            self.metadata(meter_id, meter_name, channel),
            [
                StatisticData(start=row.start, state=float(row.state), sum=float(row.sum))
                for row in rows
            ],
        )

    async def async_last_row(
        self, meter_id: str, channel: Channel
    ) -> StatisticRow | Literal[False] | None:
        """Return the recorder's last row; None if it has none, False without a recorder."""
        if not self.available:
            return False
        statistic_id = self.statistic_id(meter_id, channel)
        result = await get_instance(self.hass).async_add_executor_job(
            get_last_statistics, self.hass, 1, statistic_id, False, {"state", "sum"}
        )
        rows = result.get(statistic_id)
        if not rows:
            return None
        row = rows[0]
        state, total = row.get("state"), row.get("sum")
        if state is None or total is None:
            return None
        return StatisticRow(
            start=datetime.fromtimestamp(row["start"], UTC),
            state=round(state),
            sum=round(total),
        )
