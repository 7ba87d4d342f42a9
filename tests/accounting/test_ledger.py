"""Statistics rows: exact sums, idempotency, gaps, continuing from the recorder."""

from __future__ import annotations

import re
from datetime import timedelta

from custom_components.hanport.accounting.ledger import (
    StatisticRow,
    StatisticsLedger,
    statistic_object_id,
)
from custom_components.hanport.accounting.registers import Channel

from .meter import utc

H = timedelta(hours=1)
B0 = utc(2026, 1, 5, 12)


def test_statistic_id_hides_the_meter_id() -> None:
    object_id = statistic_object_id(Channel.IMPORT, "7359992890000000", "instance-uuid")
    assert re.fullmatch(r"energy_import_[0-9a-f]{16}", object_id)
    assert "7359992890000000" not in object_id
    assert object_id == statistic_object_id(Channel.IMPORT, "7359992890000000", "instance-uuid")
    assert object_id != statistic_object_id(Channel.IMPORT, "7359992890000000", "other")
    assert object_id != statistic_object_id(Channel.IMPORT, "7359992890000001", "instance-uuid")
    export = statistic_object_id(Channel.EXPORT, "7359992890000000", "instance-uuid")
    assert export.startswith("energy_export_")
    assert export[-16:] == object_id[-16:]


def test_first_register_is_the_baseline_then_rows_per_hour() -> None:
    ledger = StatisticsLedger()
    assert ledger.book(B0, 1_000_000) is None
    assert ledger.book(B0 + H, 1_001_500) == StatisticRow(B0, 1_001_500, 1500)
    assert ledger.book(B0 + 2 * H, 1_002_000) == StatisticRow(B0 + H, 1_002_000, 2000)


def test_rows_are_labelled_by_the_hour_they_close() -> None:
    ledger = StatisticsLedger()
    ledger.book(utc(2026, 1, 5, 13), 0)  # 14:00 local
    row = ledger.book(utc(2026, 1, 5, 14), 10)  # 15:00 local closes 14:00-15:00
    assert row is not None
    assert row.start == utc(2026, 1, 5, 13)  # 14:00 local


def test_no_row_twice_for_the_same_hour() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ledger.book(B0 + H, 1_001_000)
    assert ledger.book(B0 + H, 1_001_000) is None
    assert ledger.book(B0, 1_000_000) is None


def test_baseline_moves_to_a_newer_register() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    assert ledger.book(B0, 1_000_050) is None  # same hour: the newer value is the baseline
    assert ledger.book(B0 + H, 999_000) is None  # lower: a new baseline
    row = ledger.book(B0 + 2 * H, 999_500)
    assert row == StatisticRow(B0 + H, 999_500, 500)


def test_gap_puts_its_energy_in_the_next_row_without_inventing_rows() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ledger.book(B0 + H, 1_001_000)
    row = ledger.book(B0 + 4 * H, 1_007_000)
    assert row == StatisticRow(B0 + 3 * H, 1_007_000, 7000)


def test_lower_register_rebases_instead_of_subtracting() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ledger.book(B0 + H, 1_001_000)
    assert ledger.book(B0 + 2 * H, 10) is None
    assert ledger.book(B0 + 3 * H, 510) == StatisticRow(B0 + 2 * H, 510, 1500)


def test_rebase_before_any_row() -> None:
    ledger = StatisticsLedger()
    ledger.rebase(B0, 100)
    assert ledger.book(B0 + H, 300) == StatisticRow(B0, 300, 200)


def test_reconcile_continues_from_the_recorder() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ledger.book(B0 + H, 1_001_000)
    # the recorder holds a later row (our store was older)
    stored = StatisticRow(B0 + 2 * H, 1_003_000, 55_000)
    assert ledger.reconcile(stored) is None
    assert ledger.book(B0 + 4 * H, 1_004_000) == StatisticRow(B0 + 3 * H, 1_004_000, 56_000)


def test_reconcile_rewrites_our_newer_row() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ours = ledger.book(B0 + H, 1_001_000)
    older = StatisticRow(B0 - 5 * H, 900_000, 10)
    assert ledger.reconcile(older) == ours


def test_reconcile_with_an_empty_recorder_starts_a_fresh_sum() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    ledger.book(B0 + H, 1_001_000)
    assert ledger.reconcile(None) is None
    assert ledger.book(B0 + 2 * H, 1_001_400) == StatisticRow(B0 + H, 1_001_400, 400)
    fresh = StatisticsLedger()
    assert fresh.reconcile(None) is None
    assert fresh.last is None


def test_reconcile_before_any_register_adopts_the_recorder() -> None:
    ledger = StatisticsLedger()
    assert ledger.reconcile(StatisticRow(B0, 1_000_000, 777)) is None
    assert ledger.book(B0 + 2 * H, 1_000_100) == StatisticRow(B0 + H, 1_000_100, 877)


def test_round_trip() -> None:
    ledger = StatisticsLedger()
    ledger.book(B0, 1_000_000)
    pending = StatisticsLedger()
    pending.restore(ledger.to_dict())
    assert pending.book(B0 + H, 1_000_010) == StatisticRow(B0, 1_000_010, 10)
    again = StatisticsLedger()
    again.restore(pending.to_dict())
    assert again.last == StatisticRow(B0, 1_000_010, 10)
    assert again.book(B0 + 2 * H, 1_000_020) == StatisticRow(B0 + H, 1_000_020, 20)
