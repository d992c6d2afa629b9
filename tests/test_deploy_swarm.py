"""drone-deploy --swarm: four simulated vehicles flown in formation by one policy from one laptop.

The vehicles run in their own process (tests/swarm_vehicles.py, the simulator drone-sim-vehicle --count uses),
on one shared UDP port or on one pty each; drone-deploy runs as the user runs it. Each flight checks what the
swarm log (swarm.json) and the vehicles themselves say afterwards.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.config import ConfigError
from deploy.swarm.config import parse_sysids
from deploy.swarm.formation import Formation, FormationError, assign_slots, neighbour_table, pairwise_distances
from deploy.swarm.guard import SeparationGuard, closest_approach
from test_deploy_support import DEPLOY, free_udp_port

REPLAY = [str(Path(DEPLOY[0]).with_name("drone-replay"))] if Path(DEPLOY[0]).name == "drone-deploy" else \
    [sys.executable, "-m", "deploy.replay"]

HERE = Path(__file__).resolve().parent


class Vehicles:
    """tests/swarm_vehicles.py in a subprocess."""

    def __init__(self, endpoint: str, count: int, link: str, *params: str):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "swarm_vehicles.py"), endpoint, str(count), link,
                                      *params], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.endpoints = self._read()["endpoints"]

    def _read(self):
        line = self.proc.stdout.readline()
        assert line, "the simulated swarm stopped"
        return json.loads(line)

    def ask(self, command: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(15)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()


def deploy(ports: list[str], log_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = DEPLOY + ["--swarm", "--log", str(log_dir), "--quiet", "--connect-timeout", "10"]
    for p in ports:
        cmd += ["--port", p]
    return subprocess.Popen(cmd + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(proc: subprocess.Popen, text: str, timeout: float, lines: list[str]) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            return False
        lines.append(line.rstrip())
        if text in line:
            return True
    return False


def swarm_log(log_dir: Path) -> tuple[dict, dict[int, list[dict]]]:
    (d,) = list(log_dir.glob("swarm-*"))
    summary = json.loads((d / "swarm.json").read_text())
    logs = {}
    for f in d.glob("vehicle-*.jsonl"):
        logs[int(f.stem.split("-")[1])] = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return summary, logs


# ---------------------------------------------------------------------------------------------- flights

def test_four_vehicles_on_one_shared_udp_port_fly_the_formation_through_garbage_and_land_on_ctrl_c(tmp_path):
    port = free_udp_port()
    veh = Vehicles(f"udpout:127.0.0.1:{port}", 4, "shared")
    proc = deploy([f"udpin:127.0.0.1:{port}"], tmp_path, "--sysids", "1-4", "--formation", "line")
    lines: list[str] = []
    try:
        assert read_until(proc, "formation line: slots", 90, lines), "\n".join(lines)
        for _ in range(5):               # garbage on the shared link, in the stream the vehicles send
            assert veh.ask("garbage 700")["sent"]
            time.sleep(0.3)
        assert read_until(proc, "formation reached", 30, lines), "\n".join(lines)
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: every vehicle lands
        out, _ = proc.communicate(timeout=60)
        lines += out.splitlines()
        state = veh.ask("state")
    finally:
        if proc.poll() is None:
            proc.kill()
        veh.close()
    text = "\n".join(lines)
    assert proc.returncode == 0, text
    assert "landing every vehicle (Ctrl-C)" in text and "all disarmed" in text
    assert all(not v["armed"] and v["landed"] for v in state), state
    summary, logs = swarm_log(tmp_path)
    assert sorted(logs) == [1, 2, 3, 4]
    # formation reached: every vehicle within 0.5 m of its slot at once; and on average over the flight
    assert summary["formation_reached_s"] is not None
    assert summary["formation_error_m"]["mean"] < 0.5, summary["formation_error_m"]
    assert all(v["slot_error_m"] is not None and not v["armed_at_end"] for v in summary["vehicles"])
    sep = summary["separation"]
    assert sep["min_distance_m"] is not None and sep["min_distance_m"] > sep["min_separation_m"], sep
    assert summary["shared_link"]["faults"] > 0          # the garbage was seen, counted and skipped
    for k, records in logs.items():                       # each vehicle's own log: its own steps, landed by Ctrl-C
        steps = [r for r in records if r.get("type") == "step"]
        assert {r["phase"] for r in steps} >= {"ready", "policy", "landing"}
        assert any(r.get("kind") == "operator" and r.get("why") == "Ctrl-C" for r in records)
        assert max(r.get("neighbours", 0) for r in steps) == 3
    # drone-replay reads the swarm flight back from its directory
    (d,) = list(tmp_path.glob("swarm-*"))
    res = subprocess.run(REPLAY + [str(d), "--json", str(tmp_path / "replay.json")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "swarm flight: 4 vehicles, ended: operator: Ctrl-C (exit 0)" in res.stdout
    assert (d / "swarm.png").stat().st_size > 20_000
    rep = json.loads((tmp_path / "replay.json").read_text())["replay"]
    assert [v["sysid"] for v in rep["vehicles"]] == [1, 2, 3, 4]
    assert rep["min_pair_distance_m"] == pytest.approx(sep["min_distance_m"], abs=0.05)


def test_a_vehicle_whose_link_is_cut_is_left_to_its_failsafe_and_the_others_hold_and_land(tmp_path):
    veh = Vehicles(f"pty:{tmp_path / 'ttyV'}", 4, "separate")
    ports = [str(tmp_path / f"ttyV{k}") for k in (1, 2, 3, 4)]
    # the landing timeout leaves room for a long failsafe landing: the cut vehicle flies its last rate command for
    # GUID_TIMEOUT (3 s) before levelling, and in one CI run that took it 22 m away and 6 m up, from where LAND at
    # 0.5 m/s needed 13 s after the link came back (25 s of timeout ran out as it touched down)
    proc = deploy(ports, tmp_path / "logs", "--safety", "hold_s=1.5", "--landing-timeout", "45")
    lines: list[str] = []
    try:
        assert read_until(proc, "formation reached", 120, lines), "\n".join(lines)
        time.sleep(1.0)
        veh.ask("unplug 2")             # vehicle 2's radio is gone
        assert read_until(proc, "link_lost", 10, lines), "\n".join(lines)
        time.sleep(12.0)                # its GCS failsafe (FS_GCS_TIMEOUT 5 s, LAND) brings it down meanwhile
        veh.ask("replug 2")             # back in range: drone-deploy sees it landed and disarmed
        out, _ = proc.communicate(timeout=60)
        lines += out.splitlines()
        state = veh.ask("state")
    finally:
        if proc.poll() is None:
            proc.kill()
        veh.close()
    text = "\n".join(lines)
    assert proc.returncode == 1, text      # a safety trigger ended the flight; everyone landed and disarmed
    assert all(not v["armed"] and v["landed"] for v in state), state
    summary, logs = swarm_log(tmp_path / "logs")
    assert summary["formation_reached_s"] is not None     # on separate ptys as on the shared port
    lost = [t for t in summary["triggers"] if t["kind"] == "link_lost"]
    assert [t["vehicle"] for t in lost] == [2], summary["triggers"]
    phases = {k: [r["phase"] for r in recs if r.get("kind") == "phase"] for k, recs in logs.items()}
    assert "passive" in phases[2] and "landing" not in phases[2][:phases[2].index("passive")]
    for k in (1, 3, 4):                    # the others held where they were, then landed
        assert phases[k][-3:] == ["hold", "landing", "down"], phases[k]
    assert summary["separation"]["min_distance_m"] > summary["separation"]["min_separation_m"]


def test_one_vehicle_failing_preflight_keeps_the_whole_swarm_on_the_ground(tmp_path):
    port = free_udp_port()
    veh = Vehicles(f"udpout:127.0.0.1:{port}", 4, "shared")
    try:
        veh.ask("param 3 FS_GCS_ENABLE 0")  # vehicle 3 has no link-loss failsafe
        proc = deploy([f"udpin:127.0.0.1:{port}"], tmp_path)  # every vehicle that answers
        out, _ = proc.communicate(timeout=90)
        state = veh.ask("state")
    finally:
        veh.close()
    assert proc.returncode == 2, out
    assert "system ids 1, 2, 3, 4" in out
    assert "refused: preflight failed: vehicle 3 " in out and "failsafes: FS_GCS_ENABLE = 0" in out, out
    assert "vehicle 1 " not in out.split("refused:")[1]      # only the failing vehicle is named
    assert all(not v["armed"] for v in state)
    summary, logs = swarm_log(tmp_path)
    assert summary["exit_code"] == 2
    pre = {k: [r for r in recs if r.get("kind") == "preflight"][0] for k, recs in logs.items()}
    assert [pre[k]["ok"] for k in (1, 2, 3, 4)] == [True, True, False, True]


# ---------------------------------------------------------------------------------------------- parts

def test_closest_approach_matches_a_hand_computation():
    # 2 m apart on x, closing at 2 m/s with 1 m/s sideways: closest at t = 0.8 s (beyond a 0.5 s horizon)
    d, t = closest_approach(np.array([2.0, 0, 0]), np.array([-2.0, 1.0, 0]), 0.5)
    assert t == pytest.approx(0.5) and d == pytest.approx(np.hypot(1.0, 0.5))
    d, t = closest_approach(np.array([2.0, 0, 0]), np.array([-2.0, 1.0, 0]), 2.0)
    assert t == pytest.approx(0.8) and d == pytest.approx(np.hypot(2 - 1.6, 0.8))
    d, t = closest_approach(np.array([1.0, 0, 0]), np.array([1.0, 0, 0]), 0.5)   # moving apart: now is closest
    assert t == 0.0 and d == pytest.approx(1.0)


def test_the_guard_trips_on_a_predicted_conflict_not_on_a_formation_at_rest():
    g = SeparationGuard(0.5, horizon_s=0.5)
    line = Formation.shape("line", 4, 1.2, (0, 0, 1.5))
    p, v = line.slots(0.0)
    assert g.check(p, v, np.ones(4, bool)) == []
    assert g.min_distance == pytest.approx(1.2, abs=1e-5)
    v = np.zeros((4, 3))
    v[1, 0], v[2, 0] = 0.8, -0.8                 # 1.2 m apart closing at 1.6 m/s: 0.4 m in 0.5 s
    (trip,) = g.check(p, v, np.ones(4, bool))
    assert (trip.i, trip.j) == (1, 2) and trip.predicted == pytest.approx(0.4, abs=1e-5)
    assert g.check(p, v, np.array([True, True, False, True])) == []   # a vehicle on the ground is not in it


def test_formation_slots_come_from_the_simulator_and_are_assigned_by_its_rule(tmp_path):
    f = Formation.shape("line", 4, 1.2, (3.0, 0.0, 1.5))
    p, v = f.slots(0.0)
    assert p[:, 0] == pytest.approx([1.2, 2.4, 3.6, 4.8]) and np.allclose(p[:, 1:], [0.0, 1.5])
    assert f.min_spacing() == pytest.approx(1.2, abs=1e-5)
    orbit = Formation.shape("orbit", 4, 1.2, (0, 0, 2), omega=0.5)
    p, v = orbit.slots(1.0)
    r = np.linalg.norm(p[:, :2], axis=1)
    assert r == pytest.approx([2.0] * 4, abs=1e-5)                    # the task's smallest orbit radius
    assert np.einsum("ij,ij->i", p[:, :2], v[:, :2]) == pytest.approx([0.0] * 4, abs=1e-5)  # tangential
    assert np.linalg.norm(v, axis=1) == pytest.approx([1.0] * 4, abs=1e-5)                  # r * omega
    # vehicles standing 2 m apart take the nearest free slots, in turn
    homes = np.array([[0.0, 0, 1], [2.0, 0, 1], [4.0, 0, 1], [6.0, 0, 1]])
    assert assign_slots(homes, f.slots(0.0)[0]) == [0, 1, 2, 3]
    assert assign_slots(homes[::-1], f.slots(0.0)[0]) == [3, 2, 1, 0]
    # each vehicle's nearest known others, nearest first; vehicle 2 (its state unknown) is nobody's neighbour
    table = neighbour_table(pairwise_distances(homes), np.array([True, True, False, True]))
    assert table.tolist() == [[1, 3, -1], [0, 3, -1], [1, 3, 0], [1, 0, -1]]
    with pytest.raises(FormationError, match="unknown formation 'vee'"):
        Formation.shape("vee", 4, 1.2, (0, 0, 2))
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps({"format": "drone-formation/1", "slots": [[0, 0, 0], [1, 0]]}))
    with pytest.raises(FormationError, match=r"must be a list of \[x, y, z\] offsets"):
        Formation.from_file(bad, 2, (0, 0, 2))
    bad.write_text(json.dumps({"format": "drone-formation/1", "slots": [[0, 0, 0], [1, 0, float("nan")]]}))
    with pytest.raises(FormationError, match="non-finite"):
        Formation.from_file(bad, 2, (0, 0, 2))
    bad.write_text(json.dumps({"format": "drone-formation/1", "slots": [[0, 0, 0]]}))
    with pytest.raises(FormationError, match="1 slots for 2 vehicles"):
        Formation.from_file(bad, 2, (0, 0, 2))


def test_sysids_and_swarm_options_are_checked():
    assert parse_sysids("1-4") == [1, 2, 3, 4] and parse_sysids("2,5-6") == [2, 5, 6] and parse_sysids("all") is None
    with pytest.raises(ConfigError, match="--sysids"):
        parse_sysids("4-1")
    res = subprocess.run(DEPLOY + ["--swarm", "--port", "udpin:127.0.0.1:1", "--min-separation", "1.5"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "must be below the formation spacing" in res.stdout
    res = subprocess.run(DEPLOY + ["--port", "/dev/null", "--port", "/dev/null"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "one vehicle takes one --port (--swarm flies several)" in res.stdout


def test_moving_the_formation_is_refused_when_a_slot_would_leave_the_fence():
    from deploy.config import SafetyLimits
    from deploy.swarm.operator import FormationTargeting
    from deploy.targets import Fence, TargetError

    f = Formation.shape("line", 4, 1.2, (0.0, 0.0, 1.5))          # slots at x = -1.8 .. 1.8
    tg = FormationTargeting(f, Fence.around((0.0, 0.0, 0.0), SafetyLimits()))   # 5 m radius, 0.5 m margin
    assert tg.set_target((2.6, 0.0, 1.5)).tolist() == [2.6, 0.0, 1.5]   # the outer slot at 4.4 m: inside
    with pytest.raises(TargetError, match="slot 4: .*outside the fence"):
        tg.set_target((2.8, 0.0, 1.5))                                 # it would be at 4.6 m
    assert tg.take().tolist() == [2.6, 0.0, 1.5] and tg.take() is None  # the loop takes the accepted centre once
    with pytest.raises(TargetError, match="swarm task only"):
        tg.set_task("race")


def test_a_swarm_smaller_than_the_policy_has_neighbours_for_is_refused(tmp_path):
    port = free_udp_port()
    veh = Vehicles(f"udpout:127.0.0.1:{port}", 3, "shared")
    try:
        proc = deploy([f"udpin:127.0.0.1:{port}"], tmp_path, "--sysids", "1-3")
        out, _ = proc.communicate(timeout=60)
        state = veh.ask("state")
    finally:
        veh.close()
    assert proc.returncode == 2 and "3 vehicles: a swarm flight needs at least 4" in out, out
    assert all(not v["armed"] for v in state)


def test_a_swarms_estimates_built_at_once_equal_the_single_vehicles():
    """The swarm's tick builds every vehicle's estimate in one pass (Estimate.from_vehicles); each must be what the
    single-vehicle loop builds from that vehicle's state (Estimate.from_vehicle), frames, ages and all."""
    import dataclasses

    from deploy.estimate import Estimate
    from firmware_bridge import MavLink

    rng = np.random.default_rng(8)
    links = []
    for k in range(5):
        link = MavLink("udpout:127.0.0.1:9", target_system=k + 1)   # never opened
        s = link._state
        s.position_ned, s.velocity_ned, s.body_rates_frd = rng.normal(size=(3, 3))
        q = rng.normal(size=4)
        s.quaternion_ned = q / np.linalg.norm(q) * (1.0 + 1e-7 * k)
        s.t_attitude, s.t_position, s.t_last_message = 100.0 - rng.uniform(0, 1, 3)
        s.boot_ms_attitude, s.boot_ms_position = int(rng.integers(1, 10**6)), int(rng.integers(1, 10**6))
        s.stale, s.armed, s.mode, s.landed_state = bool(k % 2), bool(k % 3), ["GUIDED", "LAND"][k % 2], k
        s.battery_voltage, s.battery_remaining, s.estimator_healthy = 15.0 + k, 0.1 * k, k != 4
        links.append(link)
    origins = rng.normal(size=(5, 3))
    batch = Estimate.from_vehicles(links, origins, 100.5)
    for link, origin, e in zip(links, origins, batch):
        one = dataclasses.asdict(Estimate.from_vehicle(link.state, origin, 100.5))
        for name, value in dataclasses.asdict(e).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(value, one[name], rtol=0, atol=1e-15, err_msg=name)
            else:
                assert value == one[name], name
    links[3]._state.quaternion_ned = np.zeros(4)
    with pytest.raises(ValueError, match="row 3: not a rotation"):
        Estimate.from_vehicles(links, origins, 100.5)


def test_targets_lead_each_vehicle_to_its_slot_at_the_transition_speed():
    """A vehicle's target walks from where it took over to its slot at transition_speed_mps, then rides the slot
    (with the slot's velocity); a vehicle without a slot keeps its own position."""
    from types import SimpleNamespace

    from deploy.swarm.formation import lead_targets

    a = SimpleNamespace(slot=0, leash=np.array([0.0, 0.0, 1.0]), attached=False, est=None)
    b = SimpleNamespace(slot=None, leash=None, attached=False, est=SimpleNamespace(position=np.array([5.0, 1.0, 2.0])))
    slots_p, slots_v = np.array([[0.03, 0.04, 1.0]]), np.array([[0.2, 0.0, 0.0]])
    targets, vel = lead_targets([a, b], slots_p, slots_v, 0.5, 50.0)   # 0.01 m per tick, 0.05 m to go
    np.testing.assert_allclose(targets[0], [0.006, 0.008, 1.0])
    np.testing.assert_allclose(vel[0], [0.3, 0.4, 0.0])
    np.testing.assert_allclose(targets[1], [5.0, 1.0, 2.0])
    assert not a.attached and not vel[1].any()
    for _ in range(4):
        lead_targets([a, b], slots_p, slots_v, 0.5, 50.0)
    targets, vel = lead_targets([a, b], slots_p, slots_v, 0.5, 50.0)
    np.testing.assert_allclose(targets[0], slots_p[0])
    np.testing.assert_allclose(vel[0], slots_v[0])
    assert a.attached
