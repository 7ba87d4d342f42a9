"""The command line: ``decode`` (in-process and as a subprocess) and ``simulate``."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custom_components.hanport.han import cli
from custom_components.hanport.han.cli import main, parse_hex
from custom_components.hanport.han.reading import Reading
from custom_components.hanport.han.simulator import DEFAULT_AUTH_KEY, DEFAULT_KEY, SimulatedMeter
from custom_components.hanport.han.stream import MeterStream

ROOT = Path(__file__).resolve().parents[2]
WINTER = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MODULE = "custom_components.hanport.han"
# The library also runs as the top-level package "han" (no Home Assistant import: fast).
LIBRARY = ROOT / "custom_components" / "hanport"


def capture(key: str = "aidon-6534-no", seconds: float = 13.0) -> tuple[SimulatedMeter, bytes]:
    meter = SimulatedMeter(key, start=WINTER, seed=1)
    meter.flip_bits()  # the first frame is rejected
    meter.inject_garbage(data=b"\x01\x02\x03")
    frames = meter.advance(seconds)
    return meter, b"".join(frame.data for frame in frames)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_decode_raw_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meter, data = capture()
    path = tmp_path / "capture.bin"
    path.write_bytes(data)
    status, out, err = run(["decode", str(path)], capsys)
    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    sent = [f.reading for f in meter.sent if f.intact and f.reading is not None]
    assert len(lines) == len(sent) == 4
    first = lines[0]
    assert set(first) == {
        "protocol",
        "manufacturer",
        "meter_id",
        "meter_type",
        "list_version",
        "meter_time",
        "values",
    }
    assert first["protocol"] == "hdlc"
    assert first["values"] == {"active_power_import": int(sent[0].values["active_power_import"])}
    status_list = next(line for line in lines if line["list_version"])
    assert status_list["meter_id"] == meter.meter_id
    assert status_list["meter_type"] == "6534"
    assert "rejected hdlc_" in err
    summary = err.splitlines()[-1]
    assert summary.startswith(f"summary: {len(data)} bytes read, 4 readings, 1 rejected (hdlc_")
    assert "bytes discarded" in summary


def test_decode_prints_the_meter_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meter = SimulatedMeter("kaifa-ma304h4-se", start=WINTER)
    data = b"".join(f.data for f in meter.advance(10))
    path = tmp_path / "se.bin"
    path.write_bytes(data)
    _status, out, _err = run(["decode", "--country", "se", str(path)], capsys)
    line = json.loads(out)
    assert line["meter_time"] == "2026-01-05T13:00:10+01:00"
    assert line["manufacturer"] == "Kaifa"


def test_decode_hex_tolerates_formatting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _meter, data = capture()
    text = "\n".join(
        ", ".join(f"0x{byte:02X}" for byte in data[i : i + 16]) for i in range(0, len(data), 16)
    )
    path = tmp_path / "capture.txt"
    path.write_text(text + "\n")
    status, out, _err = run(["decode", "--hex", str(path)], capsys)
    assert status == 0
    assert len(out.splitlines()) == 4


def test_decode_a_single_bare_apdu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture of one LLC + APDU (what some readers log) decodes: the input is whole.

    A live stream withholds a lone bare APDU until the next one confirms it; the
    command line knows its input ends and reads it (``MeterStream.flush``).
    """
    meter = SimulatedMeter("aidon-6534-no", start=WINTER, seed=1)
    frame = next(f for f in meter.advance(3) if f.reading is not None)
    apdu = frame.clean[frame.clean.index(b"\xe6\xe7\x00") : -3]  # info field: no FCS, flag
    path = tmp_path / "apdu.txt"
    path.write_text(apdu.hex())
    status, out, err = run(["decode", "--hex", str(path)], capsys)
    assert status == 0, err
    (line,) = out.splitlines()
    decoded = json.loads(line)
    assert decoded["protocol"] == "apdu"
    assert frame.reading is not None
    assert decoded["values"]["active_power_import"] == frame.reading.values["active_power_import"]


def test_decode_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _meter, data = capture()

    class Stdin:
        buffer = io.BytesIO(data.hex(" ").encode())

    monkeypatch.setattr(sys, "stdin", Stdin)
    status, out, _err = run(["decode", "--hex", "-"], capsys)
    assert status == 0
    assert len(out.splitlines()) == 4


def test_decode_encrypted_needs_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meter = SimulatedMeter("kamstrup-dk", start=WINTER)
    path = tmp_path / "dk.bin"
    path.write_bytes(b"".join(f.data for f in meter.advance(20)))
    status, out, err = run(["decode", str(path)], capsys)
    assert (status, out) == (0, "")
    assert err.count("rejected encrypted_no_key") == 2
    keys = ["--key", DEFAULT_KEY.hex(), "--auth-key", "0x" + DEFAULT_AUTH_KEY.hex().upper()]
    status, out, err = run(["decode", *keys, "--country", "DK", str(path)], capsys)
    assert status == 0
    readings = [json.loads(line) for line in out.splitlines()]
    assert len(readings) == 2
    assert readings[0]["meter_id"] == meter.meter_id
    assert "0 rejected" in err


def test_decode_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = run(["decode", str(tmp_path / "missing.bin")], capsys)
    assert status == 2
    assert "cannot read" in err
    assert "missing.bin" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("7e a0 zz")
    status, _out, err = run(["decode", "--hex", str(bad)], capsys)
    assert status == 2
    assert "not hex text" in err
    assert "'z'" in err
    bad.write_text("7e a")
    assert run(["decode", "--hex", str(bad)], capsys)[0] == 2
    bad.write_bytes(b"\xff\xfe")
    assert run(["decode", "--hex", str(bad)], capsys)[0] == 2
    for argv, message in (
        (["decode", "--key", "0011", "x"], "this one has 2 bytes"),
        (["decode", "--key", "xyz", "x"], "a key is 32 hex digits"),
        (["decode", "--country", "NOR", "x"], "two-letter country code"),
        (["decode"], "FILE"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_parse_hex() -> None:
    assert parse_hex("0x7E 0xa0,\n2a:41;08") == bytes.fromhex("7ea02a4108")
    with pytest.raises(ValueError, match="odd number"):
        parse_hex("7e0")


def test_decode_as_a_subprocess(tmp_path: Path) -> None:
    _meter, data = capture("p1-se", seconds=20)
    result = subprocess.run(
        [sys.executable, "-m", "han", "decode", "--hex", "-"],
        input=data.hex().encode(),
        capture_output=True,
        cwd=LIBRARY,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    readings = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(readings) == 1  # the first telegram had a flipped bit
    assert readings[0]["protocol"] == "p1"
    assert b"rejected p1_" in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "han", "decode", "--key", "12", "-"],
        capture_output=True,
        cwd=LIBRARY,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2
    assert b"a key is 32 hex digits" in bad.stderr


def test_help_texts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "han", "simulate", "--help"],
        capture_output=True,
        text=True,
        cwd=LIBRARY,
        check=True,
        timeout=60,
    )
    assert "--faults LIST" in result.stdout
    assert "examples:" in result.stdout
    parser = cli.build_parser()
    assert "decode" in parser.format_help()
    assert "simulate" in parser.format_help()


# ---------------------------------------------------------------- simulate


def test_list_meters(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run(["simulate", "--list-meters"], capsys)
    assert status == 0
    assert "aidon-6525-no" in out
    assert "2400 8E1" in out
    assert "kamstrup-dk" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate"], "--tcp HOST:PORT and/or --pty"),
        (["simulate", "--pty", "--vendor", "acme"], "no simulated meter matches vendor=acme"),
        (["simulate", "--pty", "--faults", "fire"], "unknown fault 'fire'"),
        (["simulate", "--pty", "--faults", "garbage", "--fault-rate", "2"], "between 0 and 1"),
    ],
)
def test_simulate_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _out, err = run(argv, capsys)
    assert status == 2
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--tcp", "nowhere"], "expected HOST:PORT"),
        (["simulate", "--pty", "--speed", "0"], "greater than 0"),
        (["simulate", "--pty", "--speed", "fast"], "expected a number"),
        (["simulate", "--pty", "--start", "yesterday"], "ISO 8601"),
    ],
)
def test_simulate_bad_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def simulate_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["simulate", *argv])


async def test_simulate_in_process_over_a_pty(capsys: pytest.CaptureFixture[str]) -> None:
    args = simulate_args(
        "--pty",
        "--meter",
        "kamstrup-dk",
        "--speed",
        "2000",
        "--start",
        "2026-01-05T12:00:00",
        "--duration",
        "60",
        "--prosumer",
        "--faults",
        "bitflip",
    )
    assert await cli._simulate(args) == 0
    out = capsys.readouterr().out
    assert "Kamstrup Omnipower DK" in out
    assert f"key {DEFAULT_KEY.hex().upper()}" in out
    assert "fast clock x2000 from 2026-01-05T12:00:00" in out
    assert "pty /tmp/hanport-sim-" in out
    assert "prosumer" in out
    assert re.search(r"stopped after [5-7] frames", out)


@pytest.mark.usefixtures("socket_enabled")
async def test_simulate_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    try:
        args = simulate_args("--tcp", f"127.0.0.1:{port}")
        assert await cli._simulate(args) == 1
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert "cannot listen" in capsys.readouterr().err


@pytest.mark.usefixtures("socket_enabled")
async def test_simulate_stops_on_a_signal(capsys: pytest.CaptureFixture[str]) -> None:
    args = simulate_args("--tcp", "127.0.0.1:0", "--speed", "100", "--quiet")
    task = asyncio.create_task(cli._simulate(args))
    async with asyncio.timeout(5):
        while "listening on tcp" not in capsys.readouterr().out:  # noqa: ASYNC110 - stdout
            await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await task == 0


def test_cmd_simulate_configures_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(coro: object) -> int:
        seen["ran"] = True
        coro.close()  # type: ignore[attr-defined]
        return 0

    monkeypatch.setattr(asyncio, "run", fake_run)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(kw))
    assert main(["simulate", "--pty", "--quiet"]) == 0
    assert seen["ran"]
    assert seen["level"] == logging.WARNING


@pytest.mark.usefixtures("socket_enabled")
def test_simulate_as_a_subprocess_serves_tcp() -> None:
    """The real command: prints its port, serves frames a MeterStream decodes, stops on SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, "simulate", "--tcp", "127.0.0.1:0", "--speed", "50",
         "--vendor", "kaifa", "--model", "MA304H3E", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = None
        for _ in range(10):
            line = proc.stdout.readline()
            if "listening on tcp" in line:
                port = int(line.split("127.0.0.1:")[1].split()[0])
                break
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            stream = MeterStream()
            readings: list[Reading] = []
            # whichever list comes first (it depends on when we connect), read on to a list 2
            while not any(reading.meter_type for reading in readings):
                readings += stream.feed(sock.recv(4096))
        assert {reading.meter_type for reading in readings} - {None} == {"MA304H3E"}
        power_only = [reading for reading in readings if reading.meter_type is None]
        assert all(reading.values.keys() == {"active_power_import"} for reading in power_only)
        assert stream.counters.rejected == {}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped after" in out
        # every frame is logged at info level
        assert err.count("INFO kaifa-ma304h3e-no L") >= len(readings)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_module_entry_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import runpy

    monkeypatch.setattr(sys, "argv", ["han", "simulate", "--list-meters"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(MODULE, run_name="__main__", alter_sys=False)
    assert exit_info.value.code == 0
    assert "kamstrup-dk" in capsys.readouterr().out
