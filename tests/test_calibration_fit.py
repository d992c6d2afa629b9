"""The fit: recovery of known constants from emulated runs, robustness, the committed examples, the params
file and its round trip into the simulator (hover motor speed against the measured thrust curve)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from calibration import cli
from calibration.dynamics import robust_step_fit, step_model
from calibration.emulator import MotorTruth, StandTruth
from calibration.fit import fit_runs, load_run
from calibration.params_out import build_params, write_params
from calibration.plan import build_plan
from calibration.roundtrip import sim_hover_speed
from calibration.steady_fit import FitError
from calibration.synth import synth_rcbenchmark, synth_stand_run
from calibration.vehicle import Bifilar, G, load_body
from drone_sim.params import load_drone_params

EXAMPLES = Path(__file__).resolve().parents[1] / "calibration" / "examples"
# the constants the examples were generated with (calibration/examples/README.md)
STAND_EXAMPLE_TRUTH = MotorTruth()
TYTO_EXAMPLE_TRUTH = MotorTruth(k_thrust=1.05e-6, k_torque=1.6e-8, tau_up=0.045, tau_down=0.060,
                                kv_rpm_per_volt=1900.0, spin_start=0.06)
PLAN = build_plan(max_throttle=0.8, levels=6, hold=1.0, steps=[(0.3, 0.6)], step_hold=0.5, step_repeats=2, rest=0.7)


def _close(res, truth, kt=0.03, tau=0.10):
    assert res.k_thrust.value == pytest.approx(truth.k_thrust, rel=kt)
    assert res.k_torque.value == pytest.approx(truth.k_torque, rel=kt)
    assert res.tau_up.value == pytest.approx(truth.tau_up, rel=tau)
    assert res.tau_down.value == pytest.approx(truth.tau_down, rel=tau)


def test_noisy_run_with_garbage_and_glitches(tmp_path):
    truth = MotorTruth(k_thrust=9.3e-7, k_torque=1.5e-8, tau_up=0.022, tau_down=0.038)
    stand = StandTruth(garbage_prob=0.08, glitch_prob=0.02, thrust_vibration_rel=0.03, rpm_noise_rel=0.01)
    run = load_run(synth_stand_run(tmp_path / "r.csv", PLAN, truth, stand, seed=4))
    assert run.stats.total_skipped > 50 and {"bad checksum", "no '$' start"} <= set(run.stats.skipped)
    res = fit_runs([run])
    _close(res, truth)
    assert res.rejected_readings > 0, "HX711 spikes must be rejected as outliers, not averaged in"


def test_a_disturbed_segment_is_rejected_not_averaged(tmp_path):
    truth = MotorTruth()
    run = load_run(synth_stand_run(tmp_path / "r.csv", PLAN, truth, seed=2))
    # somebody leans on the stand during one level: that whole steady point is off by 0.8 N
    t0 = run.t[0]
    disturbed = (run.t > t0 + 5.2) & (run.t < t0 + 5.9)
    run.thrust[disturbed] += 0.8
    res = fit_runs([run])
    assert res.k_thrust.rejected >= 1
    assert res.k_thrust.value == pytest.approx(truth.k_thrust, rel=0.01)


def test_step_fit_on_a_known_exponential_with_spikes():
    rng = np.random.default_rng(0)
    t = np.arange(-0.1, 0.4, 0.005)
    y = step_model(t, 1000.0, 1800.0, 0.013, 0.031) + rng.normal(0, 5.0, len(t))
    y[[20, 45, 70]] += [400.0, -350.0, 500.0]
    y0, y1, t0, tau, cov, _ = robust_step_fit(t, y, -0.1, 0.3, 0.05, 15.0)
    assert tau == pytest.approx(0.031, rel=0.03) and t0 == pytest.approx(0.013, abs=0.002)
    assert y0 == pytest.approx(1000, abs=5) and y1 == pytest.approx(1800, abs=5)
    assert 0 < math.sqrt(cov[3, 3]) < 0.003


def test_a_run_without_speed_readings_is_refused_with_the_reason(tmp_path):
    run = load_run(synth_stand_run(tmp_path / "r.csv", PLAN, stand=StandTruth(has_rpm=False), seed=1))
    with pytest.raises(FitError, match="no motor speed readings"):
        fit_runs([run])


def test_committed_examples_fit_with_reports(tmp_path, capsys):
    for csv, truth in (("stand_run_5inch.csv", STAND_EXAMPLE_TRUTH), ("rcbenchmark_log.csv", TYTO_EXAMPLE_TRUTH)):
        out, report = tmp_path / f"{csv}.params.json", tmp_path / f"{csv}.png"
        rc = cli.main(["fit", str(EXAMPLES / csv), "--vehicle", str(EXAMPLES / "vehicle_5inch.json"), "-o", str(out),
                       "--report", str(report)])
        assert rc == 0
        d = json.loads(out.read_text())
        assert d["motor"]["k_thrust"] == pytest.approx(truth.k_thrust, rel=0.03)
        assert d["motor"]["k_torque"] == pytest.approx(truth.k_torque, rel=0.03)
        assert d["motor"]["tau_up"] == pytest.approx(truth.tau_up, rel=0.10)
        assert d["motor"]["tau_down"] == pytest.approx(truth.tau_down, rel=0.10)
        assert report.stat().st_size > 50_000 and report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        load_drone_params(out)
    printed = capsys.readouterr().out
    assert "skipped" in printed and "k_T" in printed


def test_params_file_has_provenance_and_uncertainties(tmp_path):
    run = load_run(EXAMPLES / "stand_run_5inch.csv")
    res = fit_runs([run])
    doc = build_params(res, load_body(EXAMPLES / "vehicle_5inch.json"), "x")
    d = write_params(doc, tmp_path / "p.json")
    assert d["mass"] == 0.65
    prov = doc["provenance"]
    assert "thrust stand" in prov["method"] and prov["source"] == "stand_run_5inch.csv"
    assert prov["line_stats"]["skipped"] and prov["fitted"]["k_thrust"][1] > 0
    assert "bifilar" in prov["body"]["method"]
    assert "drag" in prov["not_measured"]
    for key in ("k_thrust", "k_torque", "tau_up", "tau_down", "omega_max", "inertia_x", "mass"):
        assert 0 < doc["uncertainty"][key] < 0.2, key


def test_params_round_trip_hover_speed_matches_the_measured_curve(tmp_path):
    run = load_run(EXAMPLES / "stand_run_5inch.csv")
    res = fit_runs([run])
    body = load_body(EXAMPLES / "vehicle_5inch.json")
    path = tmp_path / "p.json"
    write_params(build_params(res, body), path)
    measured = res.hover(body["mass"])["speed_measured"]
    assert measured is not None, "hover must lie inside the tested range"
    sim = sim_hover_speed(path)
    assert sim["position_error"] < 0.3, sim
    assert sim["speed"] == pytest.approx(measured, rel=0.02), (sim, measured)


def test_tyto_and_our_format_agree_on_one_motor(tmp_path):
    truth = MotorTruth(k_thrust=7.1e-7, k_torque=1.2e-8)
    ours = fit_runs([load_run(synth_stand_run(tmp_path / "a.csv", PLAN, truth, seed=3))])
    tyto = fit_runs([load_run(synth_rcbenchmark(tmp_path / "b.csv", PLAN, truth, seed=3))])
    assert ours.k_thrust.value == pytest.approx(tyto.k_thrust.value, rel=0.02)
    assert ours.k_torque.value == pytest.approx(tyto.k_torque.value, rel=0.02)


# ------------------------------------------------------------------------------------------- vehicle
def test_bifilar_formula_on_a_ring():
    # a thin ring hung by two wires at its rim (D = 2r) has I = m r^2 and swings with the simple pendulum's
    # period 2 pi sqrt(L / g), whatever its mass and radius
    m, r, L = 0.8, 0.12, 0.9
    i, s = Bifilar(2 * r, L).inertia(m, 2 * math.pi * math.sqrt(L / G))
    assert i == pytest.approx(m * r * r, rel=1e-9) and 0 < s < 0.05 * i


def test_vehicle_cli_and_errors(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert cli.main(["vehicle", "--mass", "0.65", "--arm", "0.11", "--wire-separation", "0.2", "--wire-length", "0.8",
                     "--period-x", "8.90/10", "--period-y", "9.44/10", "--period-z", "12.19/10", "-o", str(out)]) == 0
    body = load_body(out)
    assert body["inertia"][2] == pytest.approx(3.0e-3, rel=0.01)
    assert cli.main(["vehicle", "--mass", "0.65", "--arm", "0.11", "--geometry", "--motor-mass", "0.035",
                     "--body", "0.1,0.05,0.04", "-o", str(tmp_path / "g.json")]) == 0
    assert cli.main(["vehicle", "--mass", "0.65", "--arm", "0.11", "--wire-separation", "0.2", "--wire-length", "0.8",
                     "--period-x", "abc", "--period-y", "1", "--period-z", "1"]) == 2
    assert "period 'abc'" in capsys.readouterr().err
    assert cli.main(["vehicle", "--mass", "0.65", "--arm", "0.11"]) == 2
    assert "bifilar pendulum needs" in capsys.readouterr().err
