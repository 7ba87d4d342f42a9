"""The accounting sensors: live energy, hours, and the capacity charge.

The integration's sensor platform calls ``async_setup_accounting_sensors`` once; it starts
the accounting of the entry and adds these sensors for every meter it knows (and for a new
meter when one starts sending on the port).

Translation keys (entity.sensor.<key>.name):
  energy_import_live, energy_export_live,
  energy_import_last_hour, energy_export_last_hour,
  energy_import_this_hour, energy_export_this_hour,
  energy_import_hour_estimate, energy_export_hour_estimate,
  capacity_monthly, capacity_step, capacity_step_limit, capacity_headroom,
  capacity_peak ({rank}), capacity_peak_start ({rank}).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfEnergy, UnitOfPower
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import instance_id
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..entity import HanportEntity
from .account import Snapshot
from .config import MAX_CAPACITY_PEAKS
from .registers import Channel
from .runtime import EnergyAccounting

if TYPE_CHECKING:
    from ..coordinator import HanportConfigEntry

type Value = float | int | datetime | None

IMP: Final = Channel.IMPORT
EXP: Final = Channel.EXPORT


def _kwh(wh: float | None) -> float | None:
    """Watt-hours to kWh at Wh resolution (states change only when a Wh does)."""
    return None if wh is None else round(wh) / 1000


@dataclass(frozen=True, kw_only=True)
class AccountingSensorDescription(SensorEntityDescription):
    """A sensor reading one value from the meter's accounting snapshot."""

    value_fn: Callable[[Snapshot], Value]
    attributes_fn: Callable[[Snapshot], Mapping[str, Any] | None] = lambda _s: None
    follows_meter: bool = True
    """Unavailable while the meter is silent (values about "now"); history stays."""


def _live(channel: Channel) -> AccountingSensorDescription:
    return AccountingSensorDescription(
        key=f"energy_{channel}_live",
        translation_key=f"energy_{channel}_live",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        value_fn=lambda s: _kwh(s.live[channel]),
    )


def _last_hour_attributes(s: Snapshot) -> Mapping[str, Any] | None:
    if s.last_hour is None:
        return None
    return {"hour_start": s.last_hour.start, "hour_end": s.last_hour.end}


def _last_hour(channel: Channel) -> AccountingSensorDescription:
    return AccountingSensorDescription(
        key=f"energy_{channel}_last_hour",
        translation_key=f"energy_{channel}_last_hour",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        value_fn=lambda s: _kwh(s.last_hour.wh.get(channel)) if s.last_hour else None,
        attributes_fn=_last_hour_attributes,
        follows_meter=False,
    )


def _this_hour(channel: Channel, *, estimate: bool) -> AccountingSensorDescription:
    key = f"energy_{channel}_hour_estimate" if estimate else f"energy_{channel}_this_hour"
    return AccountingSensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        entity_registry_enabled_default=channel is IMP,
        value_fn=(
            (lambda s: _kwh(s.estimate[channel]))
            if estimate
            else (lambda s: _kwh(s.so_far[channel]))
        ),
    )


def _step_limit(s: Snapshot) -> float | None:
    step = s.capacity.step
    return step.limit_kw if step is not None else None


DESCRIPTIONS: Final[tuple[AccountingSensorDescription, ...]] = (
    _live(IMP),
    _live(EXP),
    _last_hour(IMP),
    _last_hour(EXP),
    _this_hour(IMP, estimate=False),
    _this_hour(EXP, estimate=False),
    _this_hour(IMP, estimate=True),
    _this_hour(EXP, estimate=True),
    AccountingSensorDescription(
        key="capacity_monthly",
        translation_key="capacity_monthly",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
        value_fn=lambda s: None if s.capacity.value_kw is None else round(s.capacity.value_kw, 3),
        follows_meter=False,
    ),
    AccountingSensorDescription(
        key="capacity_step",
        translation_key="capacity_step",
        value_fn=lambda s: s.capacity.step.index if s.capacity.step else None,
        follows_meter=False,
    ),
    AccountingSensorDescription(
        key="capacity_step_limit",
        translation_key="capacity_step_limit",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        value_fn=_step_limit,
        follows_meter=False,
    ),
    AccountingSensorDescription(
        key="capacity_headroom",
        translation_key="capacity_headroom",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda s: _kwh(s.capacity.headroom_wh),
    ),
)


def _peak(rank: int) -> AccountingSensorDescription:
    index = rank - 1
    return AccountingSensorDescription(
        key=f"capacity_peak_{rank}",
        translation_key="capacity_peak",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        value_fn=lambda s: (
            _kwh(s.capacity.peaks[index].wh) if index < len(s.capacity.peaks) else None
        ),
        follows_meter=False,
    )


def _peak_start(rank: int) -> AccountingSensorDescription:
    index = rank - 1
    return AccountingSensorDescription(
        key=f"capacity_peak_{rank}_start",
        translation_key="capacity_peak_start",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.capacity.peaks[index].start if index < len(s.capacity.peaks) else None,
        follows_meter=False,
    )


def descriptions(peaks: int) -> tuple[AccountingSensorDescription, ...]:
    """Every accounting sensor for ``peaks`` capacity peaks."""
    ranked = [d for rank in range(1, peaks + 1) for d in (_peak(rank), _peak_start(rank))]
    return (*DESCRIPTIONS, *ranked)


async def async_setup_accounting_sensors(
    hass: HomeAssistant,
    entry: HanportConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> EnergyAccounting:
    """Start the entry's accounting and add its sensors (call from the sensor platform)."""
    coordinator = entry.runtime_data.coordinator
    accounting = EnergyAccounting(
        hass, entry, coordinator, secret=await instance_id.async_get(hass)
    )
    await accounting.async_setup()
    entry.async_on_unload(accounting.async_unload)
    wanted = descriptions(accounting.config.capacity_peaks)
    _remove_surplus_peaks(hass, entry.entry_id, accounting.config.capacity_peaks)

    def build(meter_id: str) -> list[AccountingSensor]:
        return [AccountingSensor(accounting, meter_id, d) for d in wanted]

    async_add_entities([e for meter_id in accounting.accounts for e in build(meter_id)])

    @callback
    def _new_meter(meter_id: str) -> None:
        async_add_entities(build(meter_id))

    entry.async_on_unload(accounting.async_add_meter_listener(_new_meter))
    return accounting


def _remove_surplus_peaks(hass: HomeAssistant, entry_id: str, peaks: int) -> None:
    """Drop the peak sensors beyond N from the registry after N was lowered."""
    registry = er.async_get(hass)
    surplus = tuple(
        suffix
        for rank in range(peaks + 1, MAX_CAPACITY_PEAKS + 1)
        for suffix in (f"_capacity_peak_{rank}", f"_capacity_peak_{rank}_start")
    )
    for entity in er.async_entries_for_config_entry(registry, entry_id):
        if entity.domain == "sensor" and entity.unique_id.endswith(surplus):
            registry.async_remove(entity.entity_id)


class AccountingSensor(HanportEntity, SensorEntity):
    """One value of a meter's energy accounting."""

    entity_description: AccountingSensorDescription

    def __init__(
        self,
        accounting: EnergyAccounting,
        meter_id: str,
        description: AccountingSensorDescription,
    ) -> None:
        """Attach to one meter's accounting."""
        super().__init__(accounting.coordinator, meter_id, description)
        self.accounting = accounting
        if description.translation_key in {"capacity_peak", "capacity_peak_start"}:
            rank = description.key.split("_")[2]
            self._attr_translation_placeholders = {"rank": rank}
        self._shown: tuple[Value, Mapping[str, Any] | None, bool] | None = None

    def _snapshot(self) -> Snapshot | None:
        return self.accounting.snapshot(self.meter_id)

    @property
    @override
    def native_value(self) -> Value:
        snapshot = self._snapshot()
        return None if snapshot is None else self.entity_description.value_fn(snapshot)

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        snapshot = self._snapshot()
        return None if snapshot is None else self.entity_description.attributes_fn(snapshot)

    @property
    @override
    def available(self) -> bool:
        return not self.entity_description.follows_meter or super().available

    @override
    def _subscribe(self) -> CALLBACK_TYPE:
        return self.accounting.async_add_listener(self.meter_id, self._handle_update)

    @callback
    @override
    def _handle_update(self) -> None:
        """Write the state only when what it shows changed (no rows for nothing)."""
        shown = (self.native_value, self.extra_state_attributes, self.available)
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()
