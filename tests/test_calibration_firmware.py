"""The microcontroller sketch, compiled for the host against a simulated board (calibration/firmware/host):
its output must be the documented line protocol, every line valid, with correct HX711 decoding, RPM,
flags, sequence numbers, the micros() wrap and the answer to '?'."""
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from calibration.protocol import FLAG_POWER, FLAG_RPM, FLAG_THRUST, FLAG_TORQUE, Comment, StandClock, StandInfo, \
    StandSample, parse_line

FW = Path(__file__).resolve().parents[1] / "calibration" / "firmware"
THRUST_OFFSET, THRUST_K, TORQUE_OFFSET, TORQUE_K, RPM, START = 84213, 42810.0, -120000, 1.95e6, 9000.0, 0.3  # torque raw < 0


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("no C compiler: scripts/setup.sh installs gcc")
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("fw") / "board"
    subprocess.run([cc, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(FW / "host"), "-x", "c",
                    str(FW / "thrust_stand" / "thrust_stand.ino"), "-x", "c", str(FW / "host" / "board.c"),
                    "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
    return exe


def test_sketch_streams_the_protocol(board):
    out = subprocess.run([str(board), "3.0", str(THRUST_OFFSET), str(THRUST_K), str(TORQUE_OFFSET), str(TORQUE_K),
                          str(RPM), str(START)], capture_output=True, text=True, check=True, timeout=30).stdout
    parsed = [parse_line(line) for line in out.splitlines()]          # raises on any invalid line
    assert isinstance(parsed[0], Comment) and "booting" in parsed[0].text
    infos = [p for p in parsed if isinstance(p, StandInfo)]
    assert len(infos) == 2, "the boot identification plus the answer to '?'"
    assert infos[0].protocol == 1 and infos[0].line_rate_hz == 200 and infos[0].pulses_per_rev == 2
    data = [p for p in parsed if isinstance(p, StandSample)]
    assert len(data) == pytest.approx(600, abs=3)                    # 200 lines/s for 3 s

    clock = StandClock()
    t = np.array([clock.seconds(s.t_us) for s in data])
    assert data[0].t_us > data[-1].t_us, "the simulated micros() wraps during the run"
    assert np.all(np.diff(t) > 0) and np.median(np.diff(t)) == pytest.approx(0.005, abs=1e-4)
    assert [s.seq for s in data] == list(range(len(data)))

    fresh = [s for s in data if s.flags & FLAG_THRUST]
    assert len(fresh) == pytest.approx(80 * 3, abs=4)               # one flag per HX711 conversion
    assert sum(1 for s in data if s.flags & FLAG_TORQUE) == pytest.approx(80 * 3, abs=4)
    # decoding: counts -> newtons gives the board's 2 + sin(2 pi t) N (t on the board's clock)
    boot_us = (4294967295 - 1500000)
    for s in fresh[5:]:
        t_board = ((s.t_us - boot_us) % (1 << 32)) * 1e-6
        force = (s.thrust_raw - THRUST_OFFSET) / THRUST_K
        assert force == pytest.approx(2.0 + math.sin(2 * math.pi * t_board), abs=0.06)
        assert (s.torque_raw - TORQUE_OFFSET) / TORQUE_K == pytest.approx(0.03, abs=1e-5)
    rpm_fresh = [s for s in data if s.flags & FLAG_RPM]
    spinning = [s.rpm for s in rpm_fresh if s.rpm > 0]
    stopped = [s.rpm for s in rpm_fresh if ((s.t_us - boot_us) % (1 << 32)) * 1e-6 < START]
    assert spinning and np.allclose(spinning, RPM, rtol=0.01)
    assert stopped and all(r == 0 for r in stopped)
    power = [s for s in data if s.flags & FLAG_POWER]
    assert len(power) == pytest.approx(len(data) / 10, abs=2)
    assert all(abs(s.voltage_mv - 16400) < 60 for s in power)
