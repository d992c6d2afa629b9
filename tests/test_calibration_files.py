"""Bad files and bad lines: a clear error naming the file and the problem, or a counted skip."""
import json
import shutil
from pathlib import Path

import pytest

from calibration import cli
from calibration.fit import fit_runs, load_run
from calibration.plan import build_plan, parse_steps
from calibration.protocol import (HX711_RAILS, LineError, LineStats, StandClock, StandSample, checksum,
                                  format_data_line, parse_line)
from calibration.rundata import CalibrationDataError
from calibration.standcal import StandCal, StandCalError
from calibration.synth import RCB_HEADER, synth_rcbenchmark, synth_stand_run

EXAMPLES = Path(__file__).resolve().parents[1] / "calibration" / "examples"
PLAN = build_plan(max_throttle=0.7, levels=5, hold=0.8, steps=[(0.3, 0.6)], step_hold=0.5, step_repeats=1, rest=0.6)
GOOD = format_data_line(StandSample(20_000_000, 17, 84213, -11870, 12000.0, 16400, 850, 15))


# ----------------------------------------------------------------------------------------- lines
def test_a_good_line_round_trips():
    s = parse_line(GOOD + "\r\n")
    assert isinstance(s, StandSample) and s.thrust_raw == 84213 and s.rpm == 12000.0 and s.flags == 15
    missing = parse_line(format_data_line(StandSample(1, 2, 5, None, None, None, None, 1)))
    assert missing.torque_raw is None and missing.rpm is None        # empty field = channel not fitted


@pytest.mark.parametrize("line, reason", [
    ("", "empty line"),
    ("HX711 not ready", "no '$' start"),
    (GOOD[:-2] + ("00" if GOOD[-2:] != "00" else "11"), "bad checksum"),
    (GOOD[:30], "no checksum"),
    ("$D,1,2*" + checksum("D,1,2"), "wrong field count"),
    ("$X,1*" + checksum("X,1"), "unknown line type"),
    ("$D\x00\xff,1*00", "not printable ASCII"),
    ("$" + "D," * 100 + "*00", "line too long"),
])
def test_garbage_lines_raise_a_countable_reason(line, reason):
    with pytest.raises(LineError) as exc:
        parse_line(line)
    assert exc.value.reason == reason


def test_numbers_are_checked_behind_a_valid_checksum():
    def line(payload):
        return f"${payload}*{checksum(payload)}"
    for payload, reason in [(f"D,1,2,{HX711_RAILS[1]},,,,,1", "load cell at rail"),
                            ("D,1,2,abc,,,,,1", "bad number"), ("D,1,2,3,,-5,,,1", "bad number"),
                            ("D,1,2,3,,nan,,,1", "bad number"), ("D,,2,3,,,,,1", "bad number")]:
        with pytest.raises(LineError) as exc:
            parse_line(line(payload))
        assert exc.value.reason == reason, payload


def test_clock_unwraps_micros_and_counts_lost_lines():
    c = StandClock()
    assert c.seconds(4_294_000_000) == pytest.approx(4294.0)
    assert c.seconds(1_000_000) == pytest.approx(4294.967296 + 1.0, rel=1e-9)   # 2^32 us later
    assert c.gap(65534) == 0 and c.gap(65535) == 0 and c.gap(2) == 2
    st = LineStats()
    st.skip("bad checksum", 3, "x")
    assert "1 skipped (1 bad checksum)" in st.summary()


# ----------------------------------------------------------------------------------------- our files
def _run(tmp_path, **kw) -> Path:
    return synth_stand_run(tmp_path / "run.csv", PLAN, seed=1, **kw)


def test_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(CalibrationDataError, match="no such file"):
        load_run(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CalibrationDataError, match="not a stand-run/1 recording"):
        load_run(tmp_path / "empty.csv")
    (tmp_path / "other.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CalibrationDataError, match="RCbenchmark log use --format rcbenchmark"):
        load_run(tmp_path / "other.csv")
    with pytest.raises(CalibrationDataError, match="unknown format"):
        load_run(EXAMPLES / "stand_run_5inch.csv", fmt="xml")


def test_header_problems_name_the_line(tmp_path):
    p = _run(tmp_path)
    lines = p.read_text().splitlines()
    bad = [lines[0], "# stand-cal: {not json"] + lines[3:]
    (tmp_path / "b.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(CalibrationDataError, match=r"line 2: the '# stand-cal:' header is not valid JSON"):
        load_run(tmp_path / "b.csv")
    no_header = [ln for ln in lines if not ln.startswith("host_time,")]
    (tmp_path / "c.csv").write_text("\n".join(no_header) + "\n")
    with pytest.raises(CalibrationDataError, match="expected the column header"):
        load_run(tmp_path / "c.csv")


def test_recording_without_calibration_asks_for_one(tmp_path):
    p = _run(tmp_path)
    text = "\n".join(ln for ln in p.read_text().splitlines() if not ln.startswith("# stand-cal:")) + "\n"
    (tmp_path / "raw.csv").write_text(text)
    with pytest.raises(CalibrationDataError, match="pass --stand-cal"):
        load_run(tmp_path / "raw.csv")
    cal = StandCal.load(EXAMPLES / "stand_cal.json")
    assert load_run(tmp_path / "raw.csv", cal=cal).stats.good > 1000
    assert cli.main(["fit", str(tmp_path / "raw.csv"), "--stand-cal", str(EXAMPLES / "stand_cal.json"),
                     "-o", str(tmp_path / "p.json")]) == 0


def test_crash_truncated_recording_is_still_fitted(tmp_path):
    """A run cut off mid-line (laptop crash, no '# end:' line) loses only the cut line."""
    p = _run(tmp_path)
    data = p.read_bytes()
    cut = data[: int(len(data) * 0.93)]
    assert not cut.endswith(b"\n")
    (tmp_path / "cut.csv").write_bytes(cut)
    run = load_run(tmp_path / "cut.csv")
    assert "end" not in run.meta
    fit_runs([run])


def test_garbage_only_and_mostly_garbage_files(tmp_path):
    p = _run(tmp_path, stand=None)
    head = [ln for ln in p.read_text().splitlines() if ln.startswith("#") or ln.startswith("host_time")][:4]
    junk = [f"{0.01 * i:.6f},0.1000,stair,1,\\x00\\xffnoise{i}" for i in range(200)]
    (tmp_path / "junk.csv").write_text("\n".join(head + junk) + "\n")
    with pytest.raises(CalibrationDataError, match="no valid stand line"):
        load_run(tmp_path / "junk.csv")
    rows = [ln for ln in p.read_text().splitlines() if ln.startswith("0") or ln[:1].isdigit()]
    (tmp_path / "most.csv").write_text("\n".join(head + rows[:100] + junk * 2) + "\n")
    with pytest.raises(CalibrationDataError, match="more garbage than data"):
        load_run(tmp_path / "most.csv")


def test_bad_host_columns_and_time_going_back_are_counted(tmp_path):
    p = _run(tmp_path)
    lines = p.read_text().splitlines()
    body = [i for i, ln in enumerate(lines) if ln[:1].isdigit()]
    lines[body[100]] = "x,y,z"                                    # host columns not numbers
    lines[body[101]] = lines[body[101]].replace(",", ",9.5,", 1).split(",9.5,")[0] + ",9.5," + \
        lines[body[101]].split(",", 2)[2]                          # throttle 9.5 is out of range
    lines.insert(body[200], lines[body[196]])                    # a line 20 ms old again: stand time goes back
    (tmp_path / "edited.csv").write_text("\n".join(lines) + "\n")
    run = load_run(tmp_path / "edited.csv")
    assert run.stats.skipped["bad host columns"] == 2
    assert run.stats.skipped["time went backwards"] == 1


def test_stand_cal_files(tmp_path):
    with pytest.raises(StandCalError, match="cannot read"):
        StandCal.load(tmp_path / "none.json")
    (tmp_path / "a.json").write_text("{")
    with pytest.raises(StandCalError, match="not valid JSON"):
        StandCal.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"schema": "thrust-stand-cal/1", "thrust": {"offset": 1}}))
    with pytest.raises(StandCalError, match="thrust/counts_per_unit is missing"):
        StandCal.load(tmp_path / "b.json")
    (tmp_path / "c.json").write_text(json.dumps({"schema": "thrust-stand-cal/1",
                                                 "thrust": {"offset": 1, "counts_per_unit": 0}}))
    with pytest.raises(StandCalError, match="finite and non-zero"):
        StandCal.load(tmp_path / "c.json")


def test_plan_arguments():
    with pytest.raises(ValueError, match="LOW:HIGH"):
        parse_steps("0.3-0.6")
    with pytest.raises(ValueError, match="0 < LOW < HIGH <= 1"):
        parse_steps("0.6:0.3")
    plan = build_plan(max_throttle=0.5, steps=[(0.3, 0.9)])
    assert max(s.throttle for s in plan) <= 0.5
    with pytest.raises(ValueError, match="cap"):
        build_plan(max_throttle=1.2)


# ----------------------------------------------------------------------------------------- Tyto / RCbenchmark
def test_rcbenchmark_bad_rows_are_counted(tmp_path):
    p = synth_rcbenchmark(tmp_path / "log.csv", PLAN, seed=2, bad_rows=4)
    run = load_run(p)
    assert run.format == "rcbenchmark"
    assert run.stats.skipped["bad number"] == 2 and run.stats.skipped["no time or ESC signal"] == 3


def test_rcbenchmark_units_encoding_and_columns(tmp_path):
    p = synth_rcbenchmark(tmp_path / "log.csv", PLAN, seed=2, bad_rows=0)
    kgf = fit_runs([load_run(p)]).k_thrust.value
    text = p.read_text(encoding="utf-8")
    # thrust in newtons instead of kgf, saved in Windows' code page: same k_T
    lines = text.splitlines()
    col = RCB_HEADER.index("Thrust (kgf)")
    out = [lines[0].replace("Thrust (kgf)", "Thrust (N)")]
    for ln in lines[1:]:
        cells = ln.split(",")
        cells[col] = f"{float(cells[col]) * 9.80665:.6f}"
        out.append(",".join(cells))
    (tmp_path / "n.csv").write_bytes("\r\n".join(out).encode("cp1252"))
    assert fit_runs([load_run(tmp_path / "n.csv")]).k_thrust.value == pytest.approx(kgf, rel=1e-3)
    (tmp_path / "u.csv").write_text(text.replace("Thrust (kgf)", "Thrust (stone)"), encoding="utf-8")
    with pytest.raises(CalibrationDataError, match="unknown thrust unit 'stone'"):
        load_run(tmp_path / "u.csv")
    (tmp_path / "m.csv").write_text(text.replace("Thrust (kgf)", "Lift (kgf)"), encoding="utf-8")
    with pytest.raises(CalibrationDataError, match="Thrust"):
        load_run(tmp_path / "m.csv", fmt="rcbenchmark")
    (tmp_path / "h.csv").write_text(lines[0] + "\n", encoding="utf-8")
    with pytest.raises(CalibrationDataError, match="no usable rows"):
        load_run(tmp_path / "h.csv")


def test_cli_reports_bad_files_with_status_2(tmp_path, capsys):
    assert cli.main(["fit", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert "drone-calibrate fit: error:" in err and "no such file" in err
    shutil.copy(EXAMPLES / "rcbenchmark_log.csv", tmp_path / "log.csv")
    assert cli.main(["fit", str(tmp_path / "log.csv"), "--pwm-range", "2000:1000"]) == 2
    assert "must increase" in capsys.readouterr().err
