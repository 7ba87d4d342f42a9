"""Home Assistant glue of the energy accounting: readings in, statistics, store, updates.

One ``EnergyAccounting`` per config entry keeps a pure ``MeterAccount`` per meter ID (a
new meter on the port is a new device with its own accounting and statistics, never a
reset of the old one). It subscribes to the coordinator's readings, imports every hourly
register into the recorder's long-term statistics, persists the accounts in a ``Store``
and tells the accounting sensors when to refresh (on every booked hour, and every 30 s
aligned to the clock, so "this hour" restarts exactly at the top of the hour).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import (
    CONF_CAPACITY_PEAKS,
    CONF_CAPACITY_STEPS,
    CONF_CT_MULTIPLIER,
    CONF_MAX_POWER,
    DEFAULT_CAPACITY_PEAKS,
    DEFAULT_CAPACITY_STEPS,
    DEFAULT_CT_MULTIPLIER,
    DEFAULT_MAX_POWER,
    DOMAIN,
    MAX_MAX_POWER,
)
from . import state
from .account import MeterAccount, Snapshot
from .config import AccountingConfig
from .registers import CHANNELS
from .statistics import StatisticsWriter

if TYPE_CHECKING:
    from ..coordinator import HanportConfigEntry, HanportCoordinator
    from ..han.reading import Reading

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 60.0
"""Seconds: the live values are saved at most once a minute (and at shutdown)."""
HOUR_SAVE_DELAY: Final = 5.0
"""Seconds: a booked hour is saved promptly."""
PUBLISH_SECONDS: Final = (0, 30)
"""Sensors refresh at these seconds of every minute (also at each booked hour)."""


def accounting_config(options: Mapping[str, Any], time_zone: Any) -> AccountingConfig:
    """Build the pure settings from the entry's options (invalid values -> defaults)."""
    peaks = options.get(CONF_CAPACITY_PEAKS, DEFAULT_CAPACITY_PEAKS)
    steps = options.get(CONF_CAPACITY_STEPS, DEFAULT_CAPACITY_STEPS)
    ct = float(options.get(CONF_CT_MULTIPLIER, DEFAULT_CT_MULTIPLIER) or DEFAULT_CT_MULTIPLIER)
    max_power = options.get(CONF_MAX_POWER)
    if max_power is None:
        max_power = min(DEFAULT_MAX_POWER * ct, MAX_MAX_POWER)
    try:
        return AccountingConfig(
            time_zone=time_zone,
            capacity_peaks=int(peaks),
            step_limits_kw=tuple(float(step) for step in steps),
            max_power_kw=float(max_power),
        )
    except (TypeError, ValueError) as err:
        _LOGGER.warning("Energy accounting options are invalid (%s); using the defaults", err)
        return AccountingConfig(time_zone=time_zone)


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.accounting")


async def async_remove_store(hass: HomeAssistant, entry_id: str) -> None:
    """Delete an entry's accounting store (call from ``async_remove_entry``).

    The recorder's statistics stay: they are the user's history.
    """
    await _store(hass, entry_id).async_remove()


class EnergyAccounting:
    """The accounting of every meter seen by one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HanportConfigEntry,
        coordinator: HanportCoordinator,
        *,
        secret: str,
    ) -> None:
        """Prepare; ``async_setup`` loads the store and starts listening."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.config = accounting_config(entry.options, dt_util.get_default_time_zone())
        self.accounts: dict[str, MeterAccount] = {}
        self.statistics = StatisticsWriter(hass, secret)
        self._store = _store(hass, entry.entry_id)
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._meter_listeners: list[Callable[[str], None]] = []
        self._snapshots: dict[str, Snapshot] = {}
        self._unsubs: list[CALLBACK_TYPE] = []

    # ---- lifecycle -------------------------------------------------------------------
    async def async_setup(self) -> None:
        """Load the store, continue the statistics, start listening to readings."""
        stored = await self._store.async_load() or {}
        meters = stored.get("meters")
        if isinstance(meters, dict):
            for meter_id, data in meters.items():
                self.accounts[meter_id] = state.load(self.config, data)
        current = self.coordinator.current_meter
        if current not in self.accounts:
            self.accounts[current] = MeterAccount(self.config)
        for meter_id in list(self.accounts):
            await self._async_reconcile(meter_id)
        self._unsubs.append(self.coordinator.async_add_reading_listener(self._handle_reading))
        self._unsubs.append(
            async_track_time_change(self.hass, self._async_tick, second=PUBLISH_SECONDS)
        )

    async def async_unload(self) -> None:
        """Stop listening and save now."""
        while self._unsubs:
            self._unsubs.pop()()
        await self._store.async_save(self._data_to_save())

    def _data_to_save(self) -> dict[str, Any]:
        return {"meters": {m: state.dump(a) for m, a in self.accounts.items()}}

    async def _async_reconcile(self, meter_id: str) -> None:
        """Continue each statistic from the recorder's last row (idempotent restarts)."""
        account = self.accounts[meter_id]
        for channel in CHANNELS:
            stored = await self.statistics.async_last_row(meter_id, channel)
            if stored is False:
                continue  # no recorder: nothing to align with
            if (row := account.reconcile(channel, stored)) is not None:
                self._import(meter_id, channel, [row])

    # ---- input -----------------------------------------------------------------------
    @callback
    def _handle_reading(self, reading: Reading) -> None:
        meter_id = reading.meter_id or self.coordinator.current_meter
        account = self.accounts.get(meter_id)
        if account is None:
            account = self.accounts[meter_id] = MeterAccount(self.config)
            self.hass.async_create_task(
                self._async_reconcile(meter_id), f"{DOMAIN} accounting {meter_id}"
            )
            for listener in list(self._meter_listeners):
                listener(meter_id)
        processed = account.process(reading, dt_util.utcnow())
        for channel, row in processed.rows.items():
            self._import(meter_id, channel, [row])
        outcome = processed.outcome
        if outcome is not None and outcome.boundary is not None:
            self._store.async_delay_save(self._data_to_save, HOUR_SAVE_DELAY)
            self._publish(meter_id)
        else:
            self._store.async_delay_save(self._data_to_save, SAVE_DELAY)

    def _import(self, meter_id: str, channel: Any, rows: list[Any]) -> None:
        info = self.coordinator.device_info_for(meter_id)
        self.statistics.import_rows(meter_id, info.name, channel, rows)

    @callback
    def _async_tick(self, _now: datetime) -> None:
        for meter_id in list(self.accounts):
            self._publish(meter_id)

    # ---- output ----------------------------------------------------------------------
    def _publish(self, meter_id: str) -> None:
        self._snapshots[meter_id] = self.accounts[meter_id].snapshot(dt_util.utcnow())
        for listener in list(self._listeners.get(meter_id, ())):
            listener()

    def snapshot(self, meter_id: str) -> Snapshot | None:
        """Return the latest published snapshot of a meter (computed on first ask)."""
        if meter_id not in self._snapshots and meter_id in self.accounts:
            self._snapshots[meter_id] = self.accounts[meter_id].snapshot(dt_util.utcnow())
        return self._snapshots.get(meter_id)

    @callback
    def async_add_listener(self, meter_id: str, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update()`` whenever the meter's snapshot is republished."""
        listeners = self._listeners.setdefault(meter_id, [])
        listeners.append(update)
        return lambda: listeners.remove(update)

    @callback
    def async_add_meter_listener(self, new_meter: Callable[[str], None]) -> CALLBACK_TYPE:
        """Call ``new_meter(meter_id)`` when a meter not seen before starts sending."""
        self._meter_listeners.append(new_meter)
        return lambda: self._meter_listeners.remove(new_meter)

    def diagnostics(self) -> dict[str, Any]:
        """Return what the accounting knows, for diagnostics (no meter IDs)."""
        out: dict[str, Any] = {"config": repr(self.config), "meters": []}
        for meter_id, account in self.accounts.items():
            out["meters"].append(
                {
                    "statistic_ids": [self.statistics.statistic_id(meter_id, c) for c in CHANNELS],
                    "state": state.dump(account),
                }
            )
        return out
