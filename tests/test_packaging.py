"""Packaging checks hassfest and HACS would make, plus the ones they cannot.

manifest.json and hacs.json keys; every translation file has exactly the English keys
and placeholders; every entity translation key, exception key and icon the code uses
exists; brand images have the sizes Home Assistant expects.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import struct
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import Platform
from homeassistant.helpers.entity import EntityDescription

import custom_components.hanport as integration
from custom_components.hanport.accounting import sensor as accounting_sensor
from custom_components.hanport.accounting.account import Snapshot
from custom_components.hanport.accounting.capacity import CapacityState, Peak, Step
from custom_components.hanport.accounting.config import MAX_CAPACITY_PEAKS
from custom_components.hanport.accounting.registers import Channel, Period
from custom_components.hanport.const import DOMAIN, ISSUE_KEY

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(integration.__file__).parent
LANGUAGES = ("en", "nb", "nn", "sv", "da")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _translations(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = _json(PACKAGE / "translations" / f"{lang}.json")
    return data


def _leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            yield from _leaves(value, path)
        else:
            yield path, value


# --- manifest and HACS -------------------------------------------------------------


def test_manifest() -> None:
    manifest = _json(PACKAGE / "manifest.json")
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"], "hassfest wants domain, name first"
    assert keys[2:] == sorted(keys[2:]), "then the rest alphabetically"
    assert manifest["domain"] == DOMAIN
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    for url_key in ("documentation", "issue_tracker"):  # HACS requires both
        assert manifest[url_key].startswith("https://")
    assert "home-assistant.io/integrations" not in manifest["documentation"]
    assert manifest["codeowners"]
    # The serial-port selector lists ports through the usb integration's websocket API.
    assert "usb" in manifest.get("dependencies", []) + manifest.get("after_dependencies", [])
    for requirement in manifest["requirements"]:
        assert "pyserial-asyncio" not in requirement  # blocked from HA 2026.7
    generic = {
        ("10C4", "EA60"),
        ("1A86", "7523"),
        ("0403", "6001"),
        ("0403", "6015"),
        ("067B", "2303"),
    }
    for matcher in manifest.get("usb", []):
        assert re.fullmatch(r"[0-9A-F]{4}", matcher["vid"])
        assert re.fullmatch(r"[0-9A-F]{4}", matcher["pid"])
        for text_key in ("description", "manufacturer", "serial_number"):
            if text_key in matcher:
                assert matcher[text_key] == matcher[text_key].lower()
        if (matcher["vid"], matcher["pid"]) in generic:
            # A bare USB-serial chip is in thousands of devices: never claim it alone.
            assert "description" in matcher or "manufacturer" in matcher, matcher


def _imported_components() -> dict[str, set[str]]:
    """Home Assistant integrations the package imports, with the files importing them."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "han" in path.relative_to(PACKAGE).parts[:1]:
            continue  # the decoding library imports nothing from Home Assistant
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for name in names:
                parts = name.split(".")
                if parts[:2] == ["homeassistant", "components"] and len(parts) > 2:
                    found.setdefault(parts[2], set()).add(path.name)
    return found


def test_imported_integrations_are_dependencies() -> None:
    """hassfest's rule: import another integration only as a (after_)dependency.

    Exempt are entity platforms and names the package has a platform file for
    (sensor.py, diagnostics.py, repairs.py). The accounting imports the recorder.
    """
    manifest = _json(PACKAGE / "manifest.json")
    listed = set(manifest.get("dependencies", [])) | set(manifest.get("after_dependencies", []))
    platforms = {str(platform) for platform in Platform}
    imported = _imported_components()
    assert "recorder" in imported
    for domain, files in imported.items():
        if domain in platforms or (PACKAGE / f"{domain}.py").is_file():
            continue
        assert domain in listed, f"{sorted(files)} import {domain}: add it to after_dependencies"
    assert not set(manifest.get("dependencies", [])) & set(manifest.get("after_dependencies", []))


def test_hacs() -> None:
    hacs = _json(ROOT / "hacs.json")
    assert hacs["name"] == "hanport"
    allowed = {
        "name",
        "homeassistant",
        "hacs",
        "zip_release",
        "filename",
        "content_in_root",
        "hide_default_branch",
        "country",
        "persistent_directory",
    }
    assert set(hacs) <= allowed
    assert hacs.get("content_in_root", False) is False
    # The floor we declare is the one the minimum test environment runs.
    pinned = (ROOT / "requirements_test_min.txt").read_text()
    match = re.search(r"HA (\d{4}\.\d+\.\d+)", pinned)
    assert match is not None
    assert hacs["homeassistant"] == match.group(1)
    # SerialPortSelector, serialx and the brand folder need 2026.5 or newer.
    year, month, _ = (int(part) for part in hacs["homeassistant"].split("."))
    assert (year, month) >= (2026, 5)
    assert (ROOT / "info.md").read_text().strip()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("icon.png", (256, 256)),
        ("icon@2x.png", (512, 512)),
        ("dark_icon.png", (256, 256)),
        ("dark_icon@2x.png", (512, 512)),
    ],
)
def test_brand_icons(name: str, size: tuple[int, int]) -> None:
    assert _png_size(PACKAGE / "brand" / name) == size


@pytest.mark.parametrize("name", ["logo.png", "logo@2x.png", "dark_logo.png", "dark_logo@2x.png"])
def test_brand_logos(name: str) -> None:
    width, height = _png_size(PACKAGE / "brand" / name)
    assert height in (128, 256)
    assert width > height  # landscape, as logos are


# --- translations -------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_translation_keys_match_english(lang: str) -> None:
    english = dict(_leaves(_translations("en")))
    other = dict(_leaves(_translations(lang)))
    assert sorted(set(english) - set(other)) == [], f"missing in {lang}"
    assert sorted(set(other) - set(english)) == [], f"only in {lang}"
    for path, text in english.items():
        assert set(_PLACEHOLDER.findall(other[path])) == set(_PLACEHOLDER.findall(text)), (
            f"{lang}:{path} placeholders differ from English"
        )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translation_text(lang: str) -> None:
    for path, text in _leaves(_translations(lang)):
        assert isinstance(text, str), path
        assert text, f"{lang}:{path} empty"
        assert text.strip() == text, f"{lang}:{path} padded"
        # Custom integrations get no build step: references would show up verbatim.
        assert "[%key:" not in text, f"{lang}:{path}"
        assert text.count("{") == text.count("}"), f"{lang}:{path}"


def test_translation_sections() -> None:
    english = _translations("en")
    for section in ("config", "options", "selector", "issues", "entity", "exceptions"):
        assert section in english
    assert ISSUE_KEY in english["issues"]
    for step in english["config"]["step"].values():
        for field in step.get("data", {}):
            assert field in step.get("data_description", {}), field
    for step in english["options"]["step"].values():
        for name, part in step.get("sections", {}).items():
            assert set(part["data"]) == set(part["data_description"]), name


def _descriptions() -> Iterator[tuple[str, EntityDescription]]:
    """Every entity description the integration's modules define, with its platform."""
    found: dict[int, tuple[str, EntityDescription]] = {}
    for module_info in pkgutil.walk_packages([str(PACKAGE)], f"{integration.__name__}."):
        if ".han" in module_info.name.removeprefix(integration.__name__):
            continue  # the decoding library has no entities
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            candidates: list[Any] = [value]
            if isinstance(value, Mapping):
                candidates = list(value.values())
            elif isinstance(value, list | tuple):
                candidates = list(value)
            for candidate in candidates:
                if isinstance(candidate, EntityDescription):
                    found[id(candidate)] = (_platform(type(candidate)), candidate)
    yield from found.values()


def _platform(cls: type) -> str:
    for base in cls.__mro__:
        parts = base.__module__.split(".")
        if parts[:2] == ["homeassistant", "components"]:
            return parts[2]
    raise AssertionError(f"{cls} is not a platform's entity description")


def _source_translation_keys() -> tuple[set[str], list[re.Pattern[str]]]:
    """translation_key= literals and f-string patterns in the integration's source.

    Catches descriptions built inside functions (which an import scan cannot see),
    e.g. one per capacity peak rank.
    """
    literals: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for path in PACKAGE.rglob("*.py"):
        if "han" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if not name.endswith("Description"):
                continue  # selectors and exceptions have translation keys too
            for keyword in node.keywords:
                if keyword.arg != "translation_key":
                    continue
                value = keyword.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    literals.add(value.value)
                elif isinstance(value, ast.JoinedStr):
                    parts = [
                        re.escape(str(part.value)) if isinstance(part, ast.Constant) else r"\w+"
                        for part in value.values
                    ]
                    patterns.append(re.compile("".join(parts)))
    return literals, patterns


def test_entity_translation_keys_exist() -> None:
    entity = _translations("en")["entity"]
    used: dict[str, set[str]] = {}
    for platform, description in _descriptions():
        key = description.translation_key
        assert key, f"{platform} {description.key} has no translation_key"
        used.setdefault(platform, set()).add(key)
        assert key in entity.get(platform, {}), f"entity.{platform}.{key} missing"
        assert entity[platform][key].get("name"), f"entity.{platform}.{key}.name"
    assert used, "no entity descriptions found"
    literals, patterns = _source_translation_keys()
    known = {key for keys in entity.values() for key in keys}
    for literal in literals:
        assert literal in known, f"translation_key {literal!r} has no entity name"
    for pattern in patterns:
        assert any(pattern.fullmatch(key) for key in known), f"nothing matches {pattern.pattern}"
    for platform, keys in entity.items():
        stale = {
            key
            for key in keys
            if key not in used.get(platform, set())
            and key not in literals
            and not any(pattern.fullmatch(key) for pattern in patterns)
        }
        assert not stale, f"stale entity.{platform} keys: {sorted(stale)}"


def test_icons_match_entities() -> None:
    icons = _json(PACKAGE / "icons.json")
    entity = _translations("en")["entity"]
    for platform, keys in icons.get("entity", {}).items():
        for key, icon in keys.items():
            assert key in entity.get(platform, {}), f"icon for unknown entity.{platform}.{key}"
            assert icon["default"].startswith("mdi:")
            for state_icon in icon.get("state", {}).values():
                assert state_icon.startswith("mdi:")
            for range_icon in icon.get("range", {}).values():
                assert range_icon.startswith("mdi:")


def _accounting_snapshot() -> Snapshot:
    """A snapshot with every value set, so each attribute function shows its attributes."""
    start = datetime(2026, 1, 12, 10, tzinfo=UTC)
    end = start + timedelta(hours=1)
    both = {Channel.IMPORT: 1500.0, Channel.EXPORT: 0.0}
    return Snapshot(
        hour_start=end,
        live=both,
        last_hour=Period(start, end, {Channel.IMPORT: 1500, Channel.EXPORT: 0}),
        so_far=both,
        estimate=both,
        capacity=CapacityState(1.5, Step(1, 2.0), 500.0, [Peak(start, 1500)]),
    )


def test_accounting_sensor_icons_and_attribute_names() -> None:
    """Each accounting sensor has an icon, and names for exactly the attributes it sets."""
    icons = _json(PACKAGE / "icons.json")["entity"]["sensor"]
    names = _translations("en")["entity"]["sensor"]
    snapshot = _accounting_snapshot()
    seen: set[str] = set()
    for description in accounting_sensor.descriptions(MAX_CAPACITY_PEAKS):
        key = str(description.translation_key)
        assert key in icons, f"icons.json has no entity.sensor.{key}"
        attributes = set(description.attributes_fn(snapshot) or {})
        translated = set(names[key].get("state_attributes", {}))
        assert attributes == translated, f"entity.sensor.{key}.state_attributes"
        for attribute in attributes:
            assert names[key]["state_attributes"][attribute]["name"]
        seen |= attributes
    assert seen == {"hour_start", "hour_end"}


def test_sensors_without_device_class_have_icons() -> None:
    """Without a device class the frontend has no icon to fall back on."""
    icons = _json(PACKAGE / "icons.json")["entity"]["sensor"]
    descriptions = [d for platform, d in _descriptions() if platform == "sensor"]
    descriptions += accounting_sensor.descriptions(MAX_CAPACITY_PEAKS)
    for description in descriptions:
        if getattr(description, "device_class", None) is None:
            assert description.translation_key in icons, description.key


def _translated_calls() -> Iterator[tuple[Path, str, set[str] | None]]:
    """(file, key, placeholder names or None) of every exception raised with a translation."""
    for path in PACKAGE.rglob("*.py"):
        if "han" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            kwargs = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            if "translation_domain" not in kwargs or "translation_key" not in kwargs:
                continue
            key = kwargs["translation_key"]
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                continue
            placeholders: set[str] | None = None
            given = kwargs.get("translation_placeholders")
            if isinstance(given, ast.Dict):
                placeholders = {str(k.value) for k in given.keys if isinstance(k, ast.Constant)}
            yield path, key.value, placeholders


def test_exception_translations_exist() -> None:
    exceptions = _translations("en")["exceptions"]
    seen = set()
    for path, key, placeholders in _translated_calls():
        seen.add(key)
        assert key in exceptions, f"{path.name}: exceptions.{key} missing"
        if placeholders is not None:
            needed = set(_PLACEHOLDER.findall(exceptions[key]["message"]))
            assert needed <= placeholders, f"{path.name}: {key} needs {needed}"
    assert set(exceptions) <= seen, f"unused exceptions: {sorted(set(exceptions) - seen)}"
