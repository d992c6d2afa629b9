"""The benchmark scripts still run against the code they measure (issue: bench_sim.py once failed at HEAD
because build_config gained a key its C config writer did not know). A quick mode, one small case each:
the point is that they run and report, not the figures."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drone_sim.config import sim_default

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def test_bench_sim_writes_every_config_key_build_config_makes():
    """config_to_c refuses a key it does not know: every task and mode's config must pass (no compiler)."""
    import bench_sim
    from drone_sim.config import ACTION_MODES, TASKS, build_config

    for task in TASKS:
        for mode in ACTION_MODES:
            lines = bench_sim.config_to_c(build_config(task, mode))
            assert any(line.startswith("c->evaluation = ") for line in lines)


def test_bench_sim_quick_run(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_sim.py"), "--quick", "--tasks", "hover",
                          "--modes", "ctbr", "--settings", "default", "--num-envs", "2"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "hover" in res.stdout


def test_link_budget_frame_sizes_are_those_pymavlink_sends():
    """scripts/link_budget.py sizes each frame from the message definition: check against real encoded frames
    (every field non-zero, so MAVLink 2 trims nothing), unsigned and signed."""
    import link_budget
    from pymavlink.dialects.v20 import ardupilotmega as mavlink

    class Sink:
        def write(self, b):
            self.last = bytes(b)

    for signed in (False, True):
        sink = Sink()
        mav = mavlink.MAVLink(sink, srcSystem=1, srcComponent=1)
        if signed:
            mav.signing.secret_key = bytes(range(32))
            mav.signing.sign_outgoing = True
        mav.attitude_quaternion_send(1, 0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, [1.0, 2.0, 3.0, 4.0])
        assert len(sink.last) == link_budget.frame_bytes("ATTITUDE_QUATERNION", signed)
        msg = mav.set_attitude_target_encode(1, 1, 1, 7, [1, 0.1, 0.2, 0.3], 0.4, 0.5, 0.6, 0.7)
        msg.thrust_body = [1.0, 2.0, 3.0]      # the MAVLink 2 extension field, sent when non-zero
        mav.send(msg)
        assert len(sink.last) == link_budget.frame_bytes("SET_ATTITUDE_TARGET", signed)
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "link_budget.py")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "| SiK radio, 128 kbps air rate |" in res.stdout, res.stderr


def test_bench_swarm_loop_mode_runs_the_real_tick(tmp_path):
    """scripts/bench_swarm.py --loop times SwarmFlight's own tick; a short run must fly every vehicle under the
    policy (a tick that skipped them would time nothing)."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_swarm.py"), "--loop", "--counts", "3",
                          "--ticks", "60"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    row = [ln for ln in res.stdout.splitlines() if ln.startswith("| 3 |")]
    assert row, res.stdout
    cells = row[0].split("|")
    assert cells[3].strip() == "50 Hz"                  # paced as in flight unless --back-to-back
    assert float(cells[4]) == 3.0                       # every vehicle got its setpoint every tick
    assert float(cells[5].split("/")[0]) > 0.0


def assert_phases_cover_the_flights(crash_report, task: str, flights: list[dict], control_hz: float) -> int:
    """Every counted step of a flight is in one of the task's two phases, the first no longer than its boundary;
    a flight that did not crash flew them all. Returns the task's horizon in steps."""
    _, boundary, (first, second) = crash_report.PHASES[task]
    horizon = round(sim_default("horizon_s")[task] * control_hz)
    for f in flights:
        steps = f[first][0] + f.get(second, (0,))[0]
        assert f[first][0] <= round(boundary * control_hz) and (steps == horizon if not f["crashed"] else steps < horizon)
    return horizon


class _MotorsOff:
    """A policy with every eighth drone's motors off (ctbr thrust -1): those fall and crash on the floor, so a
    crash count is checked on any shipped policy, however rarely it crashes by itself."""

    def __init__(self, policy):
        self.policy = policy

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        act = np.array(self.policy(obs), copy=True)
        act[::8] = (-1.0, 0.0, 0.0, 0.0)
        return act


def test_crash_report_counts_the_crashes_drone_eval_counts():
    """scripts/crash_report.py watches drone-eval's own episodes: same seed, same drones, the same crashes, each
    with what it hit. Swarm: the shipped policy with some drones' motors off (floor crashes, and drones among the
    formation); obstacles: the hand-written controller, which flies into the obstacles it does not see."""
    import crash_report
    from policies.evaluate import evaluate_task

    shipped, shipped_meta = crash_report.load(str(ROOT / "policies" / "pretrained" / "multitask_ctbr.onnx"))
    flown = {"swarm": ((lambda n: _MotorsOff(shipped(n))), shipped_meta),
             "obstacles": crash_report.load(crash_report.SCRIPTED)}
    for task, (make_policy, meta) in flown.items():
        crashes, flights, watched = crash_report.crashes_of(make_policy, meta, task, "default", episodes=64, seed=5)
        m = evaluate_task(make_policy, task, dr="default", episodes=64, seed=5, action_mode=meta["action_mode"],
                          control_hz=meta["control_hz"], physics_hz=meta["physics_hz"])
        # watching does not change what is evaluated
        assert watched.keys() == m.keys()
        assert all(watched[k] == m[k] or (math.isnan(watched[k]) and math.isnan(m[k])) for k in m)
        assert len(flights) == m["episodes"] == 64
        assert len(crashes) == round(m["crash_rate"] * 64) > 0, task
        if task == "swarm":
            floor = [c for c in crashes if c["cause"] == "floor"]
            assert floor, crashes                                          # the drones with motors off
            # they fell: down faster than the simulator's crash speed, at a tilt between level and upside down
            assert all(c["vz"] < -sim_default("crash_speed") and 0.0 <= c["tilt_deg"] <= 180.0 for c in floor), floor
        for cause in {c["cause"] for c in crashes}:
            assert sum(c["cause"] == cause for c in crashes) == round(m[f"crash_{cause}_rate"] * 64)
        assert sum(f["crashed"] for f in flights) == len(crashes)
        assert "\n".join(crash_report.report(task, crashes, flights)).startswith(f"## {task}: {len(crashes)} crashes")
        if task == "swarm":
            assert_phases_cover_the_flights(crash_report, "swarm", flights, meta["control_hz"])
            assert "holding (after 3 s): in slot" in "\n".join(crash_report.report(task, crashes, flights))
    # obstacles: each crash names the obstacle's geometry, and each flight whether its straight line was blocked
    hits = [c for c in crashes if c["cause"] == "obstacle"]
    assert hits and all(0.0 <= c["heading_off_deg"] <= 180.0 and c["gap_before_m"] > 0.0 for c in hits)
    assert all(c["straight_miss_m"] <= c["gap_before_m"] + 1e-6 for c in hits)   # flying on never gets farther
    # listed without a break up to the crash, never longer than looked at; listed longer than 1 s is listed 1 s before
    assert all(0.0 < c["listed_for_s"] <= crash_report.HISTORY_S + 1e-9 for c in hits)
    assert all(c["listed_before"] for c in hits if c["listed_for_s"] > crash_report.LOOKBACK_S)
    assert {type(c["listed_before"]) for c in hits} == {bool}
    assert all(isinstance(f["line_blocked"], bool) for f in flights)
    assert "through an obstacle" in "\n".join(crash_report.report("obstacles", crashes, flights))


def test_crash_report_takeoff_lines_by_hand():
    """hover and goto: crash rates of drones spawned on the floor and in the air, and how the floor crashes hit."""
    import crash_report

    flights = [{"height": h, "crashed": c} for h, c in ((0.0, True), (0.0, False), (2.0, False), (3.0, True))]
    crashes = [{"cause": "floor", "vz": -3.0, "tilt_deg": 80.0, "t": 0.4},
               {"cause": "floor", "vz": -1.0, "tilt_deg": 10.0, "t": 1.0}]
    assert crash_report._takeoff_lines(crashes, flights) == [
        "spawned on the floor: 0.50 of the episodes, crash rate 0.500; in the air: 0.500",
        "floor crashes: 2; median vertical speed -2.0 m/s, tilt 45 deg (tilted over 60 deg: 0.50), median time 0.7 s"]
    assert crash_report._takeoff_lines([], flights[2:3]) == [
        "spawned on the floor: 0.00 of the episodes, crash rate -; in the air: 0.000"]


def test_crash_report_splits_follow_into_settling_and_tracking():
    """follow hardly crashes: what it loses is time off the moving target. crash_report counts that time over
    drone-eval's own steps, in the approach from the spawn and in the tracking after it, so the two phases add up to
    drone-eval's score; a drone off the target for more than LOST_SHARE of its tracking is named by its size."""
    import crash_report

    make_policy, meta = crash_report.load(str(ROOT / "policies" / "pretrained" / "multitask_ctbr.onnx"))
    crashes, flights, m = crash_report.crashes_of(make_policy, meta, "follow", "default", episodes=64, seed=5)
    horizon = assert_phases_cover_the_flights(crash_report, "follow", flights, meta["control_hz"])
    inside = sum(f["settling"][1] + f.get("tracking", (0, 0))[1] for f in flights)
    steps = sum(f["settling"][0] + f.get("tracking", (0,))[0] for f in flights)
    # the watcher sees the state before each step and drone-eval scores the one after it: one step per flight apart
    assert abs(inside / steps - m["score"]) <= 1.0 / horizon, (inside / steps, m["score"])
    # the approach: every drone spawned 0.5 m or more off that reached it has a first time, at most the boundary
    away = [f for f in flights if f["target_m"] >= 0.5]
    assert away and all(0.0 < f["reached_s"] < 2.0 for f in away if "reached_s" in f)
    assert all("reached_s" not in f for f in flights if not f["settling"][1])
    assert all(f["reached_s"] == 0.0 for f in flights if f["target_m"] < 0.5)
    # the bound is generous: a drone it says must leave the target did leave it
    assert all(f.get("left_again") for f in flights if f.get("must_leave"))
    assert all(f["target_m"] < 0.5 for f in flights if f.get("must_leave"))
    # by hand: two drones, the larger off the target for 50 of its 650 tracking steps (0.077 > 0.05); three spawned
    # 0.5 m or more off it, one of them never there in the first 2 s, one of the other two leaving it again
    made = [{"radius": 0.1, "settling": (100, 50, 30.0), "tracking": (650, 650, 20.0), "target_m": 0.8,
             "reached_s": 0.4},
            {"radius": 0.3, "settling": (100, 40, 40.0), "tracking": (650, 600, 80.0), "target_m": 0.9,
             "reached_s": 0.6, "left_again": True},
            {"radius": 0.2, "settling": (100, 0, 90.0), "target_m": 1.0, "crashed": True},
            {"radius": 0.2, "settling": (100, 100, 10.0), "tracking": (650, 650, 10.0), "target_m": 0.3,
             "reached_s": 0.0}]
    lines = crash_report._follow_lines(made)
    assert lines[0] == "settling (the first 2 s): within 0.5 m 0.475, error 0.42 m (watched each step)"
    assert lines[1] == "tracking (after 2 s): within 0.5 m 0.974, error 0.06 m (watched each step)"
    assert lines[2] == ("spawned within 0.5 m of the target: 1; left it within the first 2 s: 0.000 of them (a drone at "
                        "its thrust and roll-rate limits from the first step could not have stayed on: 0.000)")
    assert lines[3] == ("spawned 0.5 m or more off the target: 3; first within 0.5 m after a median 0.50 s (90th "
                        "percentile 0.58 s), left it again within the first 2 s: 0.500 of them; never within it in "
                        "the first 2 s: 0.333")
    assert lines[4] == "drones off the target for over 5% of the tracking: 1 of 3 (radius 0.30 m)"
    report = "\n".join(crash_report.report("follow", crashes, flights))
    assert report.startswith(f"## follow: {len(crashes)} crashes") and "tracking (after 2 s): within 0.5 m" in report


def test_crash_report_reach_by_hand():
    """follow's floor on the start drop-off: how far a drone can have moved, against the closed forms of its first
    moments (sideways: twr g sin(rate t) ~ twr g rate t, so twr g rate t^3 / 6; vertical: g t^2 / 2 for twr <= 2)."""
    import crash_report

    drone = {"max_rate": [7.0, 7.0, 3.0], "latency": 0.0, "mass": 1.0, "k_thrust": 1e-6, "omega_max": 3000.0}
    twr = crash_report.binding.thrust_to_weight(drone)
    late = {**drone, "latency": 0.02}
    t = np.array([0.0, 0.02, 0.04])
    (h, v), (h_late, v_late) = (crash_report.reach([d], t, np.zeros(1)) for d in (drone, late))
    g = crash_report.GRAVITY
    assert h[0, 0] == v[0, 0] == 0.0
    assert h[2, 0] == pytest.approx(twr * g * 7.0 * 0.04 ** 3 / 6, rel=0.01)
    assert v[2, 0] == pytest.approx(g * max(twr - 1.0, 1.0) * 0.04 ** 2 / 2, rel=0.01)
    assert h_late[1, 0] == 0.0 and h_late[2, 0] == pytest.approx(h[1, 0], rel=0.01)    # the roll waits for it
    assert (v_late == v).all()
    # a drone spawned already tilted accelerates sideways from the first instant: twr g sin(tilt0) t^2 / 2 at first
    tilted, _ = crash_report.reach([drone], np.array([0.0, 0.001]), np.array([0.5]))
    assert tilted[1, 0] == pytest.approx(twr * g * np.sin(0.5) * 0.001 ** 2 / 2, rel=0.01)


def test_crash_report_bounds_the_swarm_by_the_assembly_at_the_speed_limit():
    """The best in-slot share and slot error a drone could reach that flew straight to its slot at the speed limit
    (3 m/s) and held it exactly, over the 15 s episode: by hand for slots 3.3 m and 6.3 m from the spawn."""
    import crash_report

    flights = [{"target_m": 3.3, "assembling": (150, 30, 150.0), "holding": (600, 540, 60.0)},
               {"target_m": 6.3, "assembling": (150, 0, 450.0), "holding": (600, 600, 36.0)}]
    lines = crash_report._slot_lines(flights)
    assert lines[0] == "assembling (the first 3 s): in slot 0.100, slot error 2.00 m (watched each step)"
    assert lines[1] == "holding (after 3 s): in slot 0.950, slot error 0.08 m (watched each step)"
    # 3.0 m at 3 m/s is 1 s out of 15 outside the 0.3 m slot radius, 6.0 m is 2 s: (14/15 + 13/15) / 2 = 0.900;
    # the error falls linearly from d to 0 in d / 3 s: (3.3 x 1.1 / 2 + 6.3 x 2.1 / 2) / 15 / 2 = 0.28
    assert lines[2].endswith("in slot at most 0.900, slot error at least 0.28 m")


def test_crash_report_flies_the_hand_written_controller_as_a_reference(capsys):
    """`--policy scripted` evaluates drone_sim.controllers.HoverController on drone-eval's episodes; its speed cap
    is what makes it a reference for the obstacle field (BENCHMARKS: 3 m/s crashes far less than no cap)."""
    import crash_report

    assert crash_report.main(["--policy", "scripted", "--tasks", "obstacles", "--episodes", "64",
                              "--scripted-speed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## obstacles: ") and "success " in out and "time to goal s " in out
    crashes = {}
    for cap in (3.0, None):
        make_policy, meta = crash_report.load("scripted", cap)
        assert meta["action_mode"] == "ctbr"
        found, flights, metrics = crash_report.crashes_of(make_policy, meta, "obstacles", "default", 64, seed=12345)
        assert len(flights) == 64
        crashes[cap] = len(found)
        if cap:
            assert metrics["score"] > 0.8                                  # it does reach the goal
            assert all(c["speed"] < cap + 0.5 for c in found)
    assert crashes[3.0] < crashes[None]


def test_crash_report_segment_clearance_by_hand():
    """The straight-line test of the obstacle report: distance from points to a segment, against a hand
    computation (beside the segment, past either end)."""
    import crash_report

    a, b = np.array([0.0, 0.0, 1.0]), np.array([10.0, 0.0, 1.0])
    points = np.array([[5.0, 3.0, 1.0], [-4.0, 0.0, 4.0], [13.0, 4.0, 1.0], [2.0, 0.0, 1.0]])
    assert np.allclose(crash_report._segment_clearance(a, b, points), [3.0, 5.0, 5.0, 0.0])
    # flying on straight: a point 4 m ahead and 1 m aside is passed at 1 m; one behind stays where it is (5 m)
    v = np.array([2.0, 0.0, 0.0])
    assert crash_report.straight_miss(np.array([4.0, 1.0, 0.0]), v) == pytest.approx(1.0)
    assert crash_report.straight_miss(np.array([-3.0, 4.0, 0.0]), v) == pytest.approx(5.0)
    assert crash_report.straight_miss(np.array([3.0, 0.0, 4.0]), np.zeros(3)) == pytest.approx(5.0)


def test_pick_checkpoint_evaluates_every_kept_checkpoint_and_keeps_the_fewest_crashes(tmp_path, capsys):
    """scripts/pick_checkpoint.py: each kept checkpoint and model.pt through drone-eval's evaluation on the chosen
    seed, and the lowest crash sum picked, a tie going to the later one."""
    import json

    import pick_checkpoint
    from policies.config import make_config
    from policies.train import train

    run = tmp_path / "run"
    train(make_config(cli_values=dict(tasks="hover,race", num_envs=2, agents_per_env=8, horizon=8, minibatch_size=64,
                                      epochs=1, total_steps=768, keep_checkpoint_every=256, log_every=0.0,
                                      checkpoint_every=10**9, threads=1)), run)
    assert pick_checkpoint.main([str(run), "--episodes", "8", "--seed", "3", "--from-step", "500",
                                 "--json", str(tmp_path / "pick.json")]) == 0
    doc = json.loads((tmp_path / "pick.json").read_text())
    # 128 agent-steps per iteration: 256 and 512 kept, 256 left out by --from-step, then the final model
    assert [r["global_step"] for r in doc["results"]] == [512, 768]
    assert doc["results"][-1]["checkpoint"].endswith("model.pt")
    for r in doc["results"]:
        assert [row["task"] for row in r["rows"]] == ["hover", "race"]
        assert r["crash_sum"] == pytest.approx(sum(row["crash_rate"] for row in r["rows"]))
    assert doc["pick"] == pick_checkpoint.pick(doc["results"])["checkpoint"]
    assert "pick:" in capsys.readouterr().out
    # the rule on its own: fewest crashes, the later of a tie
    rs = [{"checkpoint": name, "crash_sum": c} for name, c in (("a", 0.3), ("b", 0.1), ("c", 0.2), ("d", 0.1))]
    assert pick_checkpoint.pick(rs)["checkpoint"] == "d"
    with pytest.raises(SystemExit):
        pick_checkpoint.main([str(tmp_path / "nowhere")])
    assert "no model.pt" in capsys.readouterr().err
