"""The library stands alone: it imports as top-level ``han`` and never pulls in Home Assistant."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_PARENT = ROOT / "custom_components" / "hanport"
LIBRARY = PACKAGE_PARENT / "han"

_PROBE = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import han
names = ["han"]
for info in pkgutil.walk_packages(han.__path__, "han."):
    if info.name.rsplit(".", 1)[-1] == "__main__":
        continue  # running it would start the command line tool
    importlib.import_module(info.name)
    names.append(info.name)
from han.stream import MeterStream
readings = MeterStream().feed(bytes(range(256)) * 4)
print(json.dumps({"imported": names, "modules": sorted(sys.modules), "readings": len(readings)}))
"""


def test_imports_as_top_level_han_without_home_assistant() -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(PACKAGE_PARENT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"han.stream", "han.framing", "han.framing.hdlc"} <= set(report["imported"])
    loaded = report["modules"]
    assert [m for m in loaded if m == "homeassistant" or m.startswith("homeassistant.")] == []
    assert [m for m in loaded if m.startswith("custom_components")] == []
    assert report["readings"] == 0


def _offending_imports(source: str) -> list[str]:
    """Absolute imports of the library itself (or of Home Assistant) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{node.lineno}: {name}"
            for name in names
            if name.split(".")[0] in {"han", "custom_components", "hanport", "homeassistant"}
        ]
    return found


def test_no_absolute_import_of_itself_or_home_assistant() -> None:
    files = sorted(LIBRARY.rglob("*.py"))
    assert len(files) > 10
    offending = {
        str(path.relative_to(LIBRARY)): hits
        for path in files
        if (hits := _offending_imports(path.read_text()))
    }
    assert offending == {}


def test_the_import_check_would_notice() -> None:
    source = (
        "from __future__ import annotations\n"
        "from .crc import crc16_x25\n"
        "from custom_components.hanport.han import crc\n"
        "import han.stream\n"
        "import homeassistant.core\n"
    )
    assert _offending_imports(source) == [
        "3: custom_components.hanport.han",
        "4: han.stream",
        "5: homeassistant.core",
    ]
