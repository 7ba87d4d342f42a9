"""The catalogue of simulated meters: what each real meter family sends, when and how.

A ``MeterProfile`` holds everything that differs between real meters and that
the simulator must reproduce: the frame layout (``encode.Layout``), the wiring,
the push schedule of each list (protocol.md §1), the serial settings, how the
meter's clock is kept (Norwegian local time without offset, Swedish normal time
all year, Austrian local time with its offset) and the identity strings.

Which values each list carries, and at which resolution, is *not* repeated
here: ``encode.carried_names`` and ``encode.resolution`` are the one source.

Schedules run on the meter's clock. All supported zones have whole-hour UTC
offsets, so "xx:xx:x0" and "xx:00:10" local are the same instants as in UTC
and the scheduler works in UTC milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ..encode import Layout, Topology
from ..reading import ListKind, Protocol


class TimeStyle(StrEnum):
    """How a meter keeps and states its clock."""

    LOCAL = "local"  # wall clock of its zone with DST, no offset sent (NO, DK)
    STANDARD = "standard"  # UTC+1 all year, no offset sent (Swedish P1, Aidon SE)
    STANDARD_OFFSET = "standard_offset"  # UTC+1 all year, offset -60 sent (Kaifa SE)
    LOCAL_OFFSET = "local_offset"  # wall clock with DST and its offset (Austria)


@dataclass(frozen=True, slots=True)
class ListSchedule:
    """One push list: sent when the meter clock's UTC-epoch second ≡ ``offset`` mod ``period``.

    ``stamp_hour``: the list's clock states the hour the registers belong to
    (Aidon list 3: xx:00:00 although sent at xx:00:10) instead of the send time.
    ``hourly_registers``: energies are the values latched at the last full hour
    (Norwegian list 3 / hourly list); otherwise they are live at send time.
    """

    kind: ListKind
    period: float
    offset: float = 0.0
    stamp_hour: bool = False
    hourly_registers: bool = False


@dataclass(frozen=True, slots=True)
class MeterProfile:
    """A simulated meter model. See ``PROFILES`` for the catalogue."""

    key: str
    manufacturer: str | None
    model: str
    country: str
    layout: Layout
    topology: Topology
    schedule: tuple[ListSchedule, ...]
    baudrate: int
    parity: str  # "E" (8E1) or "N" (8N1)
    timezone: str
    time_style: TimeStyle
    meter_type: str | None
    id_prefix: str | None  # None: the frames carry no meter id
    id_length: int = 16
    encrypted: bool = False
    signed_current: bool = False
    description: str = ""

    @property
    def phases(self) -> int:
        """1 or 3."""
        return 1 if self.topology is Topology.ONE_PHASE else 3

    @property
    def protocol(self) -> Protocol:
        """How the frames travel."""
        if self.layout.name.startswith("P1"):
            return Protocol.P1
        if self.layout is Layout.OBIS_ARRAY_AT:
            return Protocol.MBUS
        return Protocol.HDLC

    @property
    def serial(self) -> str:
        """``2400 8E1`` style summary for humans."""
        return f"{self.baudrate} 8{self.parity}1"


_P, _S, _E = ListKind.POWER, ListKind.STATUS, ListKind.ENERGY

AIDON_SCHEDULE: Final = (
    ListSchedule(_P, 2.5),
    ListSchedule(_S, 10.0),
    ListSchedule(_E, 3600.0, 10.0, stamp_hour=True, hourly_registers=True),
)
"""Aidon NO (and the Aidon-like E350): L1 2.5 s, L2 10 s, L3 at xx:00:10 stamped xx:00:00."""

KAIFA_SCHEDULE: Final = (
    ListSchedule(_P, 2.0),
    ListSchedule(_S, 10.0),
    ListSchedule(_E, 3600.0, 10.0, hourly_registers=True),
)
"""Kaifa NO: L1 2 s, L2 10 s, L3 at xx:00:10 (its clock states the send time)."""

KAMSTRUP_SCHEDULE: Final = (
    ListSchedule(_S, 10.0),
    ListSchedule(_E, 3600.0, 5.0, hourly_registers=True),
)
"""Kamstrup NO/SE: a 10 s list at xx:xx:x0 and the hourly list at xx:00:05; no L1."""

TEN_SECOND_SCHEDULE: Final = (ListSchedule(_E, 10.0),)
"""One full list with live registers every 10 s (SE/DK lists, P1)."""

AUSTRIA_SCHEDULE: Final = (ListSchedule(_E, 5.0),)
"""Netz NÖ/EVN: a full list every 5 s."""


def _nordic(  # noqa: PLR0917 - the catalogue reads best as one row per meter
    key: str,
    maker: str,
    model: str,
    country: str,
    layout: Layout,
    topology: Topology,
    schedule: tuple[ListSchedule, ...],
    parity: str,
    meter_type: str,
    id_prefix: str,
    *,
    signed: bool = False,
    description: str,
) -> MeterProfile:
    zone = "Europe/Oslo" if country == "NO" else "Europe/Stockholm"
    if country == "NO":
        style = TimeStyle.LOCAL
    elif layout is Layout.KAIFA_SE:
        style = TimeStyle.STANDARD_OFFSET  # the only one that states its offset (-60)
    else:
        style = TimeStyle.STANDARD
    return MeterProfile(
        key=key,
        manufacturer=maker,
        model=model,
        country=country,
        layout=layout,
        topology=topology,
        schedule=schedule,
        baudrate=2400,
        parity=parity,
        timezone=zone,
        time_style=style,
        meter_type=meter_type,
        id_prefix=id_prefix,
        signed_current=signed,
        description=description,
    )


_ONE, _IT, _TN = Topology.ONE_PHASE, Topology.THREE_WIRE, Topology.FOUR_WIRE


def _catalogue() -> dict[str, MeterProfile]:
    profiles = [
        _nordic("aidon-6515-no", "Aidon", "6515", "NO", Layout.AIDON_NO, _ONE, AIDON_SCHEDULE,
                "E", "6515", "7359992", signed=True, description="Aidon 6515, 1-phase"),
        _nordic("aidon-6525-no", "Aidon", "6525", "NO", Layout.AIDON_NO, _IT, AIDON_SCHEDULE,
                "E", "6525", "7359992", signed=True, description="Aidon 6525, 3-phase IT (no IL2)"),
        _nordic("aidon-6534-no", "Aidon", "6534", "NO", Layout.AIDON_NO, _TN, AIDON_SCHEDULE,
                "E", "6534", "7359992", signed=True, description="Aidon 6534, 3-phase TN"),
        _nordic("kaifa-ma105h2e-no", "Kaifa", "MA105H2E", "NO", Layout.KAIFA_NO, _ONE,
                KAIFA_SCHEDULE, "E", "MA105H2E", "6970631", description="Kaifa MA105H2E, 1-phase"),
        _nordic("kaifa-ma304h3e-no", "Kaifa", "MA304H3E", "NO", Layout.KAIFA_NO, _IT,
                KAIFA_SCHEDULE, "E", "MA304H3E", "6970631",
                description="Kaifa MA304H3E, 3-phase IT (UL2 sent as 0)"),
        _nordic("kaifa-ma304h4-no", "Kaifa", "MA304H4", "NO", Layout.KAIFA_NO, _TN,
                KAIFA_SCHEDULE, "E", "MA304H4", "6970631", description="Kaifa MA304H4, 3-phase TN"),
        _nordic("kamstrup-1p-no", "Kamstrup", "6861111", "NO", Layout.KAMSTRUP_NO, _ONE,
                KAMSTRUP_SCHEDULE, "N", "6861111BN242101040", "5706567",
                description="Kamstrup Omnipower 1-phase (null-padded lists)"),
        _nordic("kamstrup-3w-no", "Kamstrup", "6841121", "NO", Layout.KAMSTRUP_NO, _IT,
                KAMSTRUP_SCHEDULE, "N", "6841121BN243101040", "5706567",
                description="Kamstrup Omnipower 3-phase 3-wire IT"),
        _nordic("kamstrup-4w-no", "Kamstrup", "6841131", "NO", Layout.KAMSTRUP_NO, _TN,
                KAMSTRUP_SCHEDULE, "N", "6841131BN243101040", "5706567",
                description="Kamstrup Omnipower 3-phase 4-wire TN"),
        _nordic("kamstrup-1p-se", "Kamstrup", "6861111", "SE", Layout.KAMSTRUP_SE, _ONE,
                KAMSTRUP_SCHEDULE, "N", "6861111BN245101040", "5706567",
                description="Kamstrup Omnipower 1-phase, Swedish firmware (Wh)"),
        _nordic("kamstrup-3w-se", "Kamstrup", "6841121", "SE", Layout.KAMSTRUP_SE, _IT,
                KAMSTRUP_SCHEDULE, "N", "6841121BN245101092", "5706567",
                description="Kamstrup Omnipower 3-wire, Swedish firmware (Wh)"),
        _nordic("kamstrup-4w-se", "Kamstrup", "6841131", "SE", Layout.KAMSTRUP_SE, _TN,
                KAMSTRUP_SCHEDULE, "N", "6841131BN245101092", "5706567",
                description="Kamstrup Omnipower 4-wire, Swedish firmware (Wh)"),
        _nordic("lg-e350-no", "Landis+Gyr", "E350", "NO", Layout.LG_E350_NO, _IT, AIDON_SCHEDULE,
                "E", "ZFF1", "6430000", signed=True,
                description="Landis+Gyr E350 EMBRIQ_V1_1 (Aidon-like lists)"),
        _nordic("kaifa-ma304h4-se", "Kaifa", "MA304H4", "SE", Layout.KAIFA_SE, _TN,
                TEN_SECOND_SCHEDULE, "E", "MA304H4", "7340157",
                description="Kaifa MA304H4, Swedish OBIS list every 10 s"),
        MeterProfile(
            key="aidon-6534-se", manufacturer="Aidon", model="6534", country="SE",
            layout=Layout.AIDON_SE, topology=_TN, schedule=TEN_SECOND_SCHEDULE,
            baudrate=115200, parity="N", timezone="Europe/Stockholm",
            time_style=TimeStyle.STANDARD, meter_type=None, id_prefix=None, signed_current=True,
            description="Aidon RJ12 27-item list every 10 s (no identity items)",
        ),
        MeterProfile(
            key="p1-se", manufacturer=None, model="ELL5", country="SE", layout=Layout.P1_SE,
            topology=_TN, schedule=TEN_SECOND_SCHEDULE, baudrate=115200, parity="N",
            timezone="Europe/Stockholm", time_style=TimeStyle.STANDARD, meter_type=None,
            id_prefix=None, signed_current=True,
            description="Swedish P1 telegram (/ELL5) every 10 s",
        ),
        MeterProfile(
            key="p1-dk", manufacturer="Landis+Gyr", model="E360", country="DK",
            layout=Layout.P1_DK, topology=_TN, schedule=TEN_SECOND_SCHEDULE, baudrate=115200,
            parity="N", timezone="Europe/Copenhagen", time_style=TimeStyle.LOCAL,
            meter_type="E360", id_prefix=None, signed_current=True,
            description="Danish P1 telegram (/LGF5E360) every 10 s",
        ),
        MeterProfile(
            key="kamstrup-dk", manufacturer="Kamstrup", model="6841138", country="DK",
            layout=Layout.KAMSTRUP_DK, topology=_TN, schedule=TEN_SECOND_SCHEDULE,
            baudrate=2400, parity="N", timezone="Europe/Copenhagen", time_style=TimeStyle.LOCAL,
            meter_type=None, id_prefix="5", id_length=8, encrypted=True,
            description="Kamstrup Omnipower DK push list, GCM (key + auth key)",
        ),
        MeterProfile(
            key="kaifa-ma309-at", manufacturer="Kaifa", model="MA309", country="AT",
            layout=Layout.OBIS_ARRAY_AT, topology=_TN, schedule=AUSTRIA_SCHEDULE,
            baudrate=2400, parity="E", timezone="Europe/Vienna",
            time_style=TimeStyle.LOCAL_OFFSET, meter_type=None, id_prefix="1812200",
            id_length=12, encrypted=True,
            description="Kaifa MA309 Netz NÖ/EVN over M-Bus, AES-CTR (key only)",
        ),
    ]  # fmt: skip
    return {profile.key: profile for profile in profiles}


PROFILES: Final[MappingProxyType[str, MeterProfile]] = MappingProxyType(_catalogue())
"""Every simulated meter by key (``aidon-6534-no``, ``kamstrup-dk``, ...)."""

DEFAULT_KEY: Final = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
"""The GUEK an encrypted simulated meter uses when none is given (a test key, not a secret)."""
DEFAULT_AUTH_KEY: Final = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
"""The GAK used when none is given (Kamstrup DK authenticates every frame)."""

_VENDOR_ALIASES: Final = {
    "l&g": "landis+gyr",
    "lg": "landis+gyr",
    "landis": "landis+gyr",
    "landisgyr": "landis+gyr",
}


def _vendor_of(profile: MeterProfile) -> str:
    return "p1" if profile.protocol is Protocol.P1 else (profile.manufacturer or "").lower()


def find_profile(
    *,
    vendor: str | None = None,
    model: str | None = None,
    country: str | None = None,
    phases: int | None = None,
    key: str | None = None,
) -> MeterProfile:
    """Pick the first catalogue entry that matches every criterion given.

    ``vendor`` is a maker (``aidon``, ``kaifa``, ``kamstrup``, ``lg``) or
    ``p1``; ``model`` matches the start of the model or meter type
    (``6525``, ``MA304H3E``, ``6841121``); ``country`` is NO/SE/DK/AT. Raises
    ``LookupError`` listing the keys when nothing matches.
    """
    if key is not None:
        try:
            return PROFILES[key]
        except KeyError:
            raise LookupError(f"no simulated meter {key!r}; known: {', '.join(PROFILES)}") from None
    wanted = vendor.lower() if vendor else None
    wanted = _VENDOR_ALIASES.get(wanted, wanted) if wanted else None
    for profile in PROFILES.values():
        if wanted is not None and _vendor_of(profile) != wanted:
            continue
        if model is not None and not any(
            (text or "").upper().startswith(model.upper())
            for text in (profile.model, profile.meter_type)
        ):
            continue
        if country is not None and profile.country != country.upper():
            continue
        if phases is not None and profile.phases != phases:
            continue
        return profile
    criteria = ", ".join(
        f"{name}={value}"
        for name, value in (("vendor", vendor), ("model", model), ("country", country),
                            ("phases", phases))
        if value is not None
    )  # fmt: skip
    raise LookupError(f"no simulated meter matches {criteria}; known: {', '.join(PROFILES)}")
