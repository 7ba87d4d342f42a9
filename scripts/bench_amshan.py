"""Time amshan's decoder on the benchmark's frames; runs inside the side venv (.venv-bench).

scripts/bench.py writes the frames to a JSON file and runs this script with the
side venv's Python, so amshan (and its ``han`` package, which shares a name with
our library) never loads into the project's environment. It uses amshan's public
API as its README documents it: ``hdlc.HdlcFrameReader`` / ``dlde.ModeDReader``
turn bytes into messages, ``autodecoder.AutoDecoder.decode_message`` decodes them.

Input (argv[1]): {"repeats": N, "groups": [{"name", "kind": "hdlc"|"p1", "frames": [hex],
"loops": K}]}. Output (stdout): {"version": str, "groups": {name: {"best_s", "fed",
"decoded"}}}. Timing matches ours: one frame per read() call, best of N, GC off.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any


def _modules() -> tuple[Any, Any, Any]:
    """amshan >= 2.0 ships the package ``han``; older releases ``amshan``."""
    for package in ("han", "amshan"):
        try:
            return tuple(  # type: ignore[return-value]
                importlib.import_module(f"{package}.{name}")
                for name in ("autodecoder", "dlde", "hdlc")
            )
        except ImportError:
            continue
    raise SystemExit("amshan is not installed in this environment")


def _run(kind: str, frames: list[bytes], loops: int) -> tuple[float, int]:
    """One long-lived reader and decoder per meter (as ours), fresh for each repeat."""
    autodecoder, dlde, hdlc = _modules()
    decoder = autodecoder.AutoDecoder()
    reader = dlde.ModeDReader() if kind == "p1" else hdlc.HdlcFrameReader()
    decoded = 0
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    for _ in range(loops):
        for frame in frames:
            for message in reader.read(frame):
                if message.is_valid and decoder.decode_message(message):
                    decoded += 1
    elapsed = time.perf_counter() - start
    gc.enable()
    return elapsed, decoded


def main() -> None:
    """Time every group; print the JSON result."""
    logging.disable(logging.WARNING)  # amshan logs every frame it cannot decode
    job = json.loads(Path(sys.argv[1]).read_text())
    out: dict[str, Any] = {"version": version("amshan"), "groups": {}}
    for group in job["groups"]:
        frames = [bytes.fromhex(text) for text in group["frames"]]
        best, decoded = float("inf"), 0
        for _ in range(job["repeats"]):
            elapsed, decoded = _run(group["kind"], frames, group["loops"])
            best = min(best, elapsed)
        out["groups"][group["name"]] = {
            "best_s": best,
            "fed": len(frames) * group["loops"],
            "decoded": decoded,
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
