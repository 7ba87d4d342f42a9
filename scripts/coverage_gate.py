"""Fail when coverage of a layer falls below its bar (library 95%, integration 95%, flow 100%)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATES = {
    "custom_components/hanport/han/": 95.0,
    "custom_components/hanport/": 95.0,
    "custom_components/hanport/config_flow.py": 100.0,
}


def main() -> int:
    """Read .coverage, print per-gate percentages, exit 1 if a gate fails."""
    out = ROOT / ".coverage.json"
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", "-q", "-o", str(out)], check=True, cwd=ROOT
    )
    files = json.loads(out.read_text())["files"]
    out.unlink()
    failed = False
    for prefix, bar in GATES.items():
        covered = total = 0
        for name, data in files.items():
            if name.startswith(prefix):
                summary = data["summary"]
                covered += summary["covered_lines"] + summary.get("covered_branches", 0)
                total += summary["num_statements"] + summary.get("num_branches", 0)
        if total == 0:
            continue
        pct = 100.0 * covered / total
        ok = pct >= bar
        failed |= not ok
        print(f"coverage {prefix:45s} {pct:6.2f}% (bar {bar:.0f}%) {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
