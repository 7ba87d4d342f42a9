"""The soak run's figures, as one leg measured them, and the table ``scripts/soak`` prints.

Pure (no Home Assistant import), so the script can read the legs' JSON files and print
them without loading a core. ``LegResult.failures()`` is the one definition of a failed
leg: wrong or stale values published, an energy sensor that went down, an hourly
reading lost or booked wrong, a break in the statistics' running sum, a fault the
integration never recovered from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass(slots=True)
class Example:
    """One offending state write, for the report (the first few of each kind are kept)."""

    at: str
    entity: str
    state: str
    expected: str

    def line(self) -> str:
        """Return a one-line description."""
        return f"{self.at} {self.entity} = {self.state} (expected {self.expected})"


@dataclass(slots=True)
class LegResult:
    """Everything one leg (one transport, one Home Assistant) measured."""

    transport: str
    profile: str
    seed: int
    start: str
    simulated_hours: float = 0.0
    wall_seconds: float = 0.0
    # the line
    pushes: int = 0
    pushes_intact: int = 0
    pushes_corrupted: int = 0
    pushes_repairable: int = 0
    pushes_not_sent: int = 0
    garbage_bursts: int = 0
    delivered_intact: int = 0
    delivered_repairable: int = 0
    # the integration
    frames_accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    # the checks
    writes_checked: int = 0
    writes_by_key: dict[str, int] = field(default_factory=dict)
    wrong_values: int = 0
    stale_values: int = 0
    late_values: int = 0
    late_max_seconds: float = 0.0
    energy_decreases: int = 0
    hourly_delivered: int = 0
    hourly_booked: int = 0
    hourly_lost: int = 0
    hourly_wrong: int = 0
    hourly_not_delivered: int = 0
    sum_breaks: int = 0
    last_hour_checked: int = 0
    examples: list[Example] = field(default_factory=list)
    # faults
    faults: dict[str, int] = field(default_factory=dict)
    recovery_max: dict[str, float] = field(default_factory=dict)
    recovery_median: dict[str, float] = field(default_factory=dict)
    recovery_worst_at: dict[str, str] = field(default_factory=dict)
    """When the fault with the longest recovery of each kind started (to trace it)."""
    not_recovered: int = 0
    # memory
    max_rss_bytes: int = 0
    rss_first_hour_bytes: int = 0
    rss_last_hour_bytes: int = 0
    traced_peak_bytes: int | None = None

    def failures(self) -> list[str]:
        """Return why this leg failed (empty: it passed)."""
        checks = {
            "wrong values published": self.wrong_values,
            "stale values published": self.stale_values,
            "energy sensor decreases": self.energy_decreases,
            "hourly readings lost": self.hourly_lost,
            "hourly readings booked wrong": self.hourly_wrong,
            "statistics sum breaks": self.sum_breaks,
            "faults never recovered from": self.not_recovered,
        }
        return [f"{name}: {count}" for name, count in checks.items() if count]

    def to_json(self) -> str:
        """Serialise (the script reads it back with ``from_json``)."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LegResult:
        """Inverse of ``to_json``."""
        data: dict[str, Any] = json.loads(text)
        data["examples"] = [Example(**e) for e in data.get("examples", [])]
        return cls(**data)


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_report(legs: list[LegResult]) -> str:
    """Return the table of every leg's figures (one column per leg)."""
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, values: list[str]) -> None:
        rows.append((label, values))

    def section(label: str) -> None:
        rows.append((label, [""] * len(legs)))

    row("profile", [leg.profile for leg in legs])
    row("start (UTC)", [leg.start for leg in legs])
    row("simulated hours", [f"{leg.simulated_hours:.1f}" for leg in legs])
    row("wall time (s)", [f"{leg.wall_seconds:.1f}" for leg in legs])
    row(
        "speed (x real time)",
        [f"{leg.simulated_hours * 3600 / max(leg.wall_seconds, 1e-9):.0f}" for leg in legs],
    )
    section("frames")
    row("  frames sent (pushes)", [str(leg.pushes) for leg in legs])
    row("    intact on the line", [str(leg.pushes_intact) for leg in legs])
    row("    corrupted on the line", [str(leg.pushes_corrupted) for leg in legs])
    row("      of which repairable (CRLF)", [str(leg.pushes_repairable) for leg in legs])
    row("    not on the line (silent/unplugged)", [str(leg.pushes_not_sent) for leg in legs])
    row("  garbage bursts sent", [str(leg.garbage_bursts) for leg in legs])
    row("  delivered to HA intact", [str(leg.delivered_intact) for leg in legs])
    row("  delivered to HA repairable", [str(leg.delivered_repairable) for leg in legs])
    row("  frames accepted", [str(leg.frames_accepted) for leg in legs])
    reasons = sorted({reason for leg in legs for reason in leg.rejected})
    row("  frames rejected", [str(sum(leg.rejected.values())) for leg in legs])
    for reason in reasons:
        row(f"    {reason}", [str(leg.rejected.get(reason, 0)) for leg in legs])
    section("checks")
    row("  state writes checked", [str(leg.writes_checked) for leg in legs])
    row("  wrong values published (must be 0)", [str(leg.wrong_values) for leg in legs])
    row("  stale values published (must be 0)", [str(leg.stale_values) for leg in legs])
    row(
        "  values published late / longest delay s",
        [f"{leg.late_values} / {leg.late_max_seconds:.1f}" for leg in legs],
    )
    row("  energy sensor decreases (must be 0)", [str(leg.energy_decreases) for leg in legs])
    row("  last-hour sensor values checked", [str(leg.last_hour_checked) for leg in legs])
    row("  hourly lists delivered to HA", [str(leg.hourly_delivered) for leg in legs])
    row("  hourly rows booked (statistics)", [str(leg.hourly_booked) for leg in legs])
    row("  hourly readings lost (must be 0)", [str(leg.hourly_lost) for leg in legs])
    row("  hourly rows wrong (must be 0)", [str(leg.hourly_wrong) for leg in legs])
    row("  statistics sum breaks (must be 0)", [str(leg.sum_breaks) for leg in legs])
    row("  hourly lists lost on the line", [str(leg.hourly_not_delivered) for leg in legs])
    section("faults: count / longest recovery s (median)")
    kinds = sorted({kind for leg in legs for kind in leg.faults})
    for kind in kinds:
        row(
            f"  {kind}",
            [
                f"{leg.faults.get(kind, 0)} / {_seconds(leg.recovery_max.get(kind))}"
                f" ({_seconds(leg.recovery_median.get(kind))})"
                if kind in leg.faults
                else "-"
                for leg in legs
            ],
        )
    row("  HA restarts (entry unload + setup)", [str(leg.restarts) for leg in legs])
    row("  faults never recovered (must be 0)", [str(leg.not_recovered) for leg in legs])
    section("memory (MiB)")
    row("  peak RSS (ru_maxrss)", [_mib(leg.max_rss_bytes) for leg in legs])
    row("  RSS after first hour", [_mib(leg.rss_first_hour_bytes) for leg in legs])
    row("  RSS at the end", [_mib(leg.rss_last_hour_bytes) for leg in legs])
    row("  tracemalloc peak", [_mib(leg.traced_peak_bytes) for leg in legs])

    header = ["", *(f"{leg.transport} leg" for leg in legs)]
    width = max(len(label) for label, _ in rows)
    cols = [
        max(len(header[i + 1]), *(len(values[i]) for _, values in rows)) for i in range(len(legs))
    ]
    lines = [
        "  ".join(
            [header[0].ljust(width), *(h.rjust(c) for h, c in zip(header[1:], cols, strict=True))]
        ),
    ]
    for label, values in rows:
        cells = [v.rjust(c) for v, c in zip(values, cols, strict=True)]
        lines.append("  ".join([label.ljust(width), *cells]).rstrip())
    for leg in legs:
        failed = leg.failures()
        verdict = "PASS" if not failed else "FAIL (" + "; ".join(failed) + ")"
        lines.append(f"{leg.transport} leg: {verdict}")
        if leg.recovery_worst_at:
            worst = ", ".join(f"{k} {v}" for k, v in sorted(leg.recovery_worst_at.items()))
            lines.append(f"  longest recoveries began at: {worst}")
        lines.extend(f"  {example.line()}" for example in leg.examples)
    return "\n".join(lines)


def read_results(folder: Path) -> list[LegResult]:
    """Read every ``*.json`` leg result in ``folder`` (sorted by name)."""
    return [LegResult.from_json(p.read_text()) for p in sorted(folder.glob("*.json"))]
