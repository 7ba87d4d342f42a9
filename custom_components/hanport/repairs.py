"""The key repair: the meter's frames stopped decrypting, so the grid company changed the key.

The coordinator raises the issue (``async_create_key_issue``) when frames keep failing
decryption or authentication after setup, and clears it (``async_delete_key_issue``) once
frames decode again. The fix flow asks for the new keys, checks them against the live
frames (the entry is unloaded meanwhile so the port is free), stores them and reloads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .config_flow import async_run_probe, check_keys, keys_schema, probe_error_key
from .connection import ProbeResult, redact_url
from .const import CONF_URL, DOMAIN, ISSUE_KEY, PROBE_TIMEOUT

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult

ENTRY_ID = "entry_id"


def key_issue_id(entry: ConfigEntry) -> str:
    """Return the issue id of an entry's key repair (one per meter)."""
    return f"{ISSUE_KEY}_{entry.entry_id}"


@callback
def async_create_key_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Tell the user the keys stopped working; the fix flow asks for new ones."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        key_issue_id(entry),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_KEY,
        translation_placeholders={"title": entry.title},
        data={ENTRY_ID: entry.entry_id},
    )


@callback
def async_delete_key_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Withdraw the issue (frames decode again, or the entry is being removed)."""
    ir.async_delete_issue(hass, DOMAIN, key_issue_id(entry))


class KeyRepairFlow(RepairsFlow):
    """Ask for new keys, prove them on live frames, store them and reload the entry."""

    def __init__(self, entry: ConfigEntry) -> None:
        """Fix the keys of ``entry``."""
        self._entry = entry
        self._keys: dict[str, str] = {}
        self._input: dict[str, Any] = {}
        self._probe_task: asyncio.Task[ProbeResult | None] | None = None
        self._result: ProbeResult | None = None

    def _placeholders(self) -> dict[str, str]:
        return {
            "title": self._entry.title,
            "url": redact_url(str(self._entry.data.get(CONF_URL, ""))),
            "seconds": str(int(PROBE_TIMEOUT)),
        }

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Start at the key form (the manager passes the issue id as input here)."""
        return await self.async_step_keys()

    async def async_step_keys(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Show the key form; check the format, then listen with the new keys."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._input = user_input
            self._keys, errors = check_keys(user_input)
            if not errors:
                return await self.async_step_probe()
        return self._show_form(errors)

    def _show_form(self, errors: dict[str, str]) -> RepairsFlowResult:
        return self.async_show_form(
            step_id="keys",
            data_schema=self.add_suggested_values_to_schema(
                keys_schema(required=True), self._input
            ),
            errors=errors,
            description_placeholders=self._placeholders(),
        )

    async def async_step_probe(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Listen on the meter's port with the new keys (the entry is paused meanwhile)."""
        entry = self._entry
        if self._probe_task is None:
            data = {**entry.data, **self._keys}
            self._probe_task = self.hass.async_create_task(
                async_run_probe(self.hass, data, release=entry), "hanport key probe"
            )
        if not self._probe_task.done():
            return self.async_show_progress(
                step_id="probe",
                progress_action="probe",
                description_placeholders=self._placeholders(),
                progress_task=self._probe_task,
            )
        task, self._probe_task = self._probe_task, None
        self._result = task.result()
        return self.async_show_progress_done(next_step_id="probe_done")

    async def async_step_probe_done(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Store working keys and reload; otherwise show the key form with the reason."""
        entry = self._entry
        result, self._result = self._result, None
        if result is None:
            return self._show_form({"base": "unknown"})
        if result.error is not None:
            return self._show_form({"base": probe_error_key(result)})
        meter_id = result.reading.meter_id if result.reading else None
        if meter_id != entry.unique_id:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
            return self._show_form({"base": "wrong_meter"})
        self.hass.config_entries.async_update_entry(
            entry,
            data={**entry.data, **self._keys},
        )
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data={})


class EntryRemovedFlow(RepairsFlow):
    """The issue outlived its entry (removed meanwhile): nothing left to fix."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Abort with an explanation."""
        return self.async_abort(reason="entry_removed")


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the fix flow for a key issue."""
    entry = hass.config_entries.async_get_entry(str((data or {}).get(ENTRY_ID, "")))
    if entry is None:
        return EntryRemovedFlow()
    return KeyRepairFlow(entry)
