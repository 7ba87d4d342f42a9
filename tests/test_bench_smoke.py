"""scripts/bench's Home Assistant sections run end to end in a tiny quick mode.

The bench is the only thing that measures hanport inside a real core; if it breaks it
breaks silently (nobody reads a figure that is never printed). This runs its three
Home Assistant sections as a user would (a subprocess, the same Python), tiny, and checks
that every figure is printed and plausible. No timing threshold: the CI machine is shared.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AIDON_LISTS_PER_DAY = 86400 / 2.5  # list 1 every 2.5 s, replaced by list 2/3 on their slots


def _positive(value: Any, upper: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and 0 < value < upper


def test_home_assistant_sections_print_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--no-amshan",
        "--section", "ha", "--section", "ha-policies", "--section", "ha-scale",
        "--ha-frames", "8", "--ha-hours", "0.25", "--ha-meters", "1,3", "--ha-seconds", "3",
        "--json", str(out),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=170, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    text = run.stdout

    for heading in ("CPU per frame end to end", "recorder rows per day", "CPU share and memory"):
        assert heading in text
    for line in ("list 1 ", "list 2 ", "list 3 ", "every frame", "average over 60 s"):
        assert line in text
    assert "goal < 1 ms CPU per list-2 frame end to end:" in text
    assert "goal < 5 ms latency at the 99th percentile:" in text
    assert "goal 100 meters < 10 % of a core: not run" in text

    figures = json.loads(out.read_text())
    for name, row in figures["ha"]["lists"].items():
        assert row["frames"] == 8, name
        assert _positive(row["cpu_ms_per_frame"], 1000), row
        assert _positive(row["latency_ms_median"], 1000), row
        assert row["latency_ms_median"] <= row["latency_ms_p99"] <= row["latency_ms_max"]
        assert row["latency_samples"] == 8  # one power write per frame, each matched
        assert 1 <= row["state_writes_per_frame"] < 100
        assert 0 < row["recorder_rows_per_frame"] <= row["state_writes_per_frame"]
    assert figures["ha"]["entities"] > 5

    policies = figures["ha_policies"]
    assert policies["scaled_to_day"]
    every, average, interval, quiet = (
        policies["policies"][name]
        for name in (
            "every frame",
            "average over 60 s",
            "minimum interval 60 s",
            "interval 60 s, power too",
        )
    )
    for policy in (every, average, interval, quiet):
        assert policy["readings_per_day"] == AIDON_LISTS_PER_DAY
        assert 0 < policy["recorder_rows_per_day"] <= policy["recorder_rows_per_day_all_entities"]
        assert policy["recorder_rows_per_day"] <= policy["state_writes_per_day"]
    # publishing less often writes fewer rows; throttling power too writes the fewest
    assert (
        every["recorder_rows_per_day_all_entities"] > interval["recorder_rows_per_day_all_entities"]
    )
    assert (
        interval["recorder_rows_per_day_all_entities"] > quiet["recorder_rows_per_day_all_entities"]
    )

    sizes = figures["ha_scale"]["sizes"]
    assert [size["meters"] for size in sizes] == [1, 3]
    for size in sizes:
        assert _positive(size["core_share"], 2.0), size
        assert size["rss_mb"] > 50
        assert size["frames"] > 0
