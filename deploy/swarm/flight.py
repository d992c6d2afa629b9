"""`drone-deploy --swarm`: one policy flying N vehicles in formation from one laptop.

The sequence:

  connect    every vehicle: one endpoint each (repeated --port) or one shared endpoint carrying several
             system ids (--sysids, or every vehicle that answers); the shared port has one reader and each
             vehicle's link keeps the frames of its own system id (firmware_bridge/shared.py)
  place      each vehicle's home (HOME_POSITION) puts its local frame into one swarm frame: ENU metres from
             the first vehicle's home
  preflight  every check of a single flight, on every vehicle at once; if any vehicle fails any check the
             swarm does not fly, and the refusal names the vehicle and the check
  takeoff    in sequence: a vehicle arms and takes off once the one before it holds its takeoff point
  formation  once all hold, each gets its slot by the training rule (paths that do not cross), and the
             policy flies all of them: per tick, each vehicle's observation from its estimate, its slot and its
             three nearest neighbours (their telemetry moved forward by its age), built by the simulator's C
             code; one onnxruntime call for the whole swarm
  landing    Ctrl-C, SIGTERM, --duration or the end of the centres list lands everyone (the firmware's LAND)

Safety for many (deploy/swarm/guard.py for the guard):
- each vehicle has every check of a single flight (link, fence, tilt, speed, battery, mode, the policy's
  output); its trigger's response applies to that vehicle (hold is a position hold where it is, then LAND);
- the separation guard: a pair predicted closer than the minimum within half a second holds; a pair that has
  not cleared after guard_clear_s lands;
- a vehicle whose link is lost is left to its firmware's failsafe (which must land it: preflight warns about
  RTL, whose climb and flight home cross the formation); the others hold where they are, keeping clear of
  it, and land after the hold time.

Logs: a directory per flight (flight-logs/swarm-TIME/) with one flight log per vehicle (vehicle-SYSID.jsonl:
the single-flight format, so drone-replay reads each) and swarm.json: the vehicles, their outcomes, the
smallest distance between any two airborne vehicles, the formation error and the loop timing.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

import drone_sim
from firmware_bridge import CommandError
from firmware_bridge.gate import ReaderGate
from firmware_bridge.shared import SharedTransport
from firmware_bridge.thrust import ctbr_to_setpoints

from ..config import ConfigError, vec_list
from ..control import FlightControl, Snapshot, euler_deg
from ..drone import flown_drone
from ..estimate import Estimate
from ..exits import EXIT_ARMED, EXIT_OK, EXIT_REFUSED, EXIT_SAFETY
from ..flight import Refused, _realtime_priority, handover_ready, load_policy, takeoff_complete
from ..safety import Trigger
from ..flightlog import unique_path
from ..timing import ComputeWindow, TimingStats, WallClock, settle_heap
from .config import SwarmConfig
from .formation import (Formation, FormationError, assign_slots, lead_targets, neighbour_table,
                        pairwise_distances)
from .guard import SeparationGuard
from .member import Member
from .operator import FormationTargeting, VehicleView
from .responses import SwarmResponses
from .setup import SwarmSetup

SETTLE_S = 1.0                # the last vehicle holds its takeoff point this long before the policy takes over
FORMATION_REACHED_M = 0.5     # "formation reached": every vehicle this close to its slot at once


class SwarmFlight(SwarmSetup, SwarmResponses):
    """One swarm flight; run() returns the exit code (deploy/exits.py), as a single flight's does."""

    def __init__(self, config: SwarmConfig, control: FlightControl | None = None,
                 say: Callable[[str], None] = print):
        self.config = config
        self.control = control or FlightControl()
        self.say = say
        self.members: list[Member] = []
        self.shared: SharedTransport | None = None
        self.stop = threading.Event()
        self.dir: Path | None = None
        self.exit_code = EXIT_OK
        self.reason = ""
        self.formation: Formation | None = None
        self.drone: dict = dict(drone_sim.NOMINAL_DRONE)   # the flown drone (deploy.drone.flown_drone), once loaded
        self.guard = SeparationGuard(config.min_separation_m, config.guard_horizon_s, config.guard_clear_s)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="swarm-cmd")
        # no garbage collection and no telemetry parsing between a tick's wake-up and its last command: every
        # member's link and the shared port get this gate once they exist (_run_logged)
        self.window = ComputeWindow(ReaderGate())
        self.form_t0: float | None = None
        self.slot_errors: list[float] = []       # each policy vehicle's distance to its slot, every tick
        self.formation_reached_s: float | None = None
        self.end_triggers: list[dict] = []

    # ------------------------------------------------------------------ top level
    def run(self) -> int:
        cfg = self.config
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))  # as in a single flight (deploy/flight.py)
        if cfg.deploy.realtime:
            self.say(_realtime_priority())
        try:
            cfg.validate()
            self.policy = load_policy(cfg.deploy.policy, cfg.deploy.onnx_threads)
            # every vehicle is this drone: what the observation says about size and hover thrust
            self.drone = flown_drone(cfg.deploy.drone, self.policy)
        except (ConfigError, Refused, OSError, ValueError) as exc:
            self.say(f"drone-deploy: {exc}")
            return EXIT_REFUSED
        self.dir = _new_dir(Path(cfg.deploy.log_dir))
        self.say(f"swarm flight logs: {self.dir}")
        try:
            code = self._run_logged()
        except BaseException as exc:
            self.reason = f"crashed: {type(exc).__name__}: {exc}"
            self.exit_code = EXIT_ARMED if any(m.link.state.armed for m in self.members) else EXIT_SAFETY
            for m in self.members:
                m.log.event("error", detail=self.reason)
            raise
        finally:
            self._close()
        return code

    def _close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for m in self.members:
            if not m.log._closed:
                m.log.end(m.outcome or self.reason, self.exit_code, self._member_summary(m))
            m.link.close()
            m.log.close()
        if self.shared is not None:
            self.shared.close()
        if self.dir is not None:
            (self.dir / "swarm.json").write_text(json.dumps(self.summary(), indent=2, default=str) + "\n")
        self.control.mark_done()

    def _run_logged(self) -> int:
        cfg = self.config
        try:
            self._connect()
        except Refused as exc:
            return self._refuse(str(exc))
        try:
            self._place()
            self._make_formation()
        except (Refused, FormationError) as exc:
            return self._refuse(str(exc))
        self.targeting = FormationTargeting(self.formation, self.fence)
        self.control.targeting = self.targeting     # the operator window moves the formation's centre
        problems = self._preflight_all()
        if problems:
            return self._refuse("preflight failed: " + "; ".join(problems))
        self.rate = float(cfg.deploy.rate_hz or self.policy.control_hz)
        self.clock = WallClock(self.rate)
        self.timing = TimingStats(1.0 / self.rate)
        for m in self.members:   # their readers wait while a tick computes (firmware_bridge/gate.py)
            m.link.gate = self.window.gate
        if self.shared is not None:
            self.shared.gate = self.window.gate
        if self.control.arm_gate:   # the operator window: nothing armed until its arm-and-take-off
            self.say("preflight passed: waiting for the operator to arm and take off")
            while not (self.control.arm_requested or self.control.land_requested or self.control.kill_requested):
                self._tick()
        if self.control.land_requested or self.control.kill_requested:
            return self._end_all("stopped by the operator before arming", EXIT_OK)
        if not self._write_guid_options():
            return self._refuse("could not set GUID_OPTIONS on every vehicle")
        return self._fly()

    # ------------------------------------------------------------------ flight
    def _fly(self) -> int:
        d = self.config.deploy
        queue = list(self.members)
        current: Member | None = None
        gap_until = 0.0
        self.say(f"taking off in sequence: {', '.join(m.name for m in self.members)}")
        settle_heap()
        while True:
            self._tick()
            end = self._operator()
            if end is not None:
                return end
            if self._all_down():
                return self._end_all("every vehicle is down", self._code_for_end())
            # the sequenced takeoff
            if current is None and queue and time.monotonic() >= gap_until and not self._aborting:
                current = queue.pop(0)
                self._arm_and_takeoff(current)
            if current is not None:
                state = self._takeoff_progress(current)
                if state == "ready":
                    current, gap_until = None, time.monotonic() + self.config.takeoff_gap_s
                elif state == "failed":
                    current = None
                    self._abort("a vehicle failed its takeoff")
            if not queue and current is None and not self._aborting and self.form_t0 is None \
                    and all(m.phase == "ready" for m in self.members) and self._settled():
                self._start_formation()
            if self.form_t0 is not None and not self._aborting:
                flown = time.monotonic() - self.form_t0
                if d.duration_s is not None and flown >= d.duration_s:
                    self._land_all(f"duration {d.duration_s:g} s reached")
                self._advance_centre()

    _aborting = False

    def _arm_and_takeoff(self, m: Member) -> None:
        d = self.config.deploy
        m.takeoff_point = m.home_swarm + np.array([0.0, 0.0, d.takeoff_alt_m])
        m.set_phase("arming")
        self.say(f"{m.name}: arming and taking off to {d.takeoff_alt_m:g} m")
        cmds = m.link.commands

        def go():
            cmds.set_mode("GUIDED")
            cmds.arm()
            cmds.takeoff(d.takeoff_alt_m)
        m.run_command(self.pool, go, "arm and takeoff")
        m.takeoff_deadline = time.monotonic() + d.takeoff_timeout_s + 5.0

    def _takeoff_progress(self, m: Member) -> str:
        """'going', 'ready' (holding its takeoff point, steady) or 'failed'."""
        if m.phase == "arming":
            res = m.finished()
            if res is None:
                return "going"
            ok, detail = res
            if not ok:
                self.say(f"{m.name}: arming/takeoff failed: {detail}")
                m.outcome = f"arming/takeoff failed: {detail}"
                m.set_phase("down" if not m.link.state.armed else "landing")
                if m.link.state.armed:
                    self._land(m, "takeoff failed")
                return "failed"
            m.set_phase("takeoff")
            m.settled = 0
            return "going"
        if m.phase == "takeoff":
            if m.est is not None and takeoff_complete(m.est, self.config.deploy.takeoff_alt_m):
                m.hold_point = m.takeoff_point.copy()
                m.set_phase("ready")
            elif time.monotonic() > m.takeoff_deadline:
                m.outcome = "takeoff not complete in time"
                self._land(m, m.outcome)
                return "failed"
            return "going"
        if m.phase == "ready":
            if m.est is not None:
                off = m.est.position - m.takeoff_point
                m.settled = m.settled + 1 if handover_ready(off, m.est.speed, self.config.deploy.handover_tolerance_m) else 0
                if m.settled >= max(3, int(0.2 * self.rate)):
                    return "ready"
            if time.monotonic() > m.takeoff_deadline:
                m.outcome = "did not settle at its takeoff point in time"
                self._land(m, m.outcome)
                return "failed"
            return "going"
        return "failed"   # landed, passive: a trigger ended its takeoff

    def _settled(self) -> bool:
        """Every vehicle steady at its takeoff point, and the last one up for a second: the policy takes over
        from a hover, not from the end of a climb."""
        steady = all(m.est is not None and handover_ready(m.est.position - m.takeoff_point, m.est.speed,
                                                         self.config.deploy.handover_tolerance_m)
                     for m in self.members)
        return steady and time.monotonic() - max(m.phase_t0 for m in self.members) >= SETTLE_S

    def _start_formation(self) -> None:
        f = self.formation
        pos = np.array([m.est.position for m in self.members])
        slots = assign_slots(pos, f.slots(0.0)[0])
        for m, s in zip(self.members, slots):
            m.slot = s
            m.leash = m.est.position.copy()
            m.last_action = self.policy.hover_action.astype(np.float32).copy()
            m.set_phase("policy", slot=s + 1)
            m.log.event("target", t=None, target=vec_list(f.slots(0.0)[0][s], 4), formation=f.describe())
        self.policy.reset()
        self.form_t0 = time.monotonic()
        self.centre_reached_since: float | None = None
        self.say(f"formation {f.name}: slots {', '.join(f'{m.sysid}->{m.slot + 1}' for m in self.members)}")

    def _advance_centre(self) -> None:
        """Several centres (--target): the formation moves on once every vehicle has held its slot for --hold."""
        d = self.config.deploy
        flying = [m for m in self.members if m.phase == "policy"]
        if not flying or self.centre_index >= len(self.centres) - 1:
            if flying and len(self.centres) > 1 and d.then != "stay" and self._all_in_slots(flying):
                self._land_all("formation flown at every centre")
            return
        if self._all_in_slots(flying):
            self.centre_reached_since = self.centre_reached_since or time.monotonic()
            if time.monotonic() - self.centre_reached_since >= d.hold_at_target_s:
                self.centre_index += 1
                self.formation.move_to(self.centres[self.centre_index])
                self.centre_reached_since = None
                for m in self.members:
                    m.log.event("target", t=None, target=vec_list(self.centres[self.centre_index], 3),
                                index=self.centre_index, what="formation centre")
                self.say(f"formation centre {self.centre_index + 1}: {tuple(self.centres[self.centre_index])}")
        else:
            self.centre_reached_since = None

    def _all_in_slots(self, flying: list[Member]) -> bool:
        if self.centre_reached_since is None and not flying:
            return False
        slots = self.formation.slots(time.monotonic() - self.form_t0)[0]
        tol = self.config.deploy.target_tolerance_m
        return all(float(np.linalg.norm(m.est.position - slots[m.slot])) < tol for m in flying)

    # ------------------------------------------------------------------ the tick: every vehicle at once
    def _tick(self) -> None:
        now, due, deadline, skipped = self.clock.wait(self.stop)
        self.window.open()
        shared = self.shared
        if shared is not None:   # every vehicle's command in one write (firmware_bridge/shared.py)
            shared.hold_writes()
        try:
            late = max(0.0, now - due)
            cpu0 = time.thread_time()
            members = self.members
            n = len(members)
            ests = Estimate.from_vehicles([m.link for m in members], np.array([m.origin_local for m in members]), now)
            for m, e in zip(members, ests):
                m.est = e
            pos = np.array([e.position for e in ests])
            vel = np.array([e.velocity for e in ests])
            quat = np.array([e.quaternion for e in ests])
            rates = np.array([e.rates for e in ests])
            # the neighbours' positions moved forward by the age of their telemetry
            ages = np.minimum([e.age_position for e in ests], 0.5)
            pos_now = pos + vel * ages[:, None]
            known = (np.array([m.airborne and not e.stale_link for m, e in zip(members, ests)])
                     & np.isfinite(pos_now).all(axis=1))
            moved = self.targeting.take()
            if moved is not None:
                self.formation.move_to(moved)
                for m in members:
                    m.log.event("target", t=None, target=vec_list(moved, 3), what="formation centre (operator)")
            t_form = 0.0 if self.form_t0 is None else now - self.form_t0
            slots_p, slots_v = self.formation.slots(t_form)
            targets, target_vel = lead_targets(members, slots_p, slots_v, self.config.transition_speed_mps,
                                               self.rate)
            # per-vehicle checks; the flight envelope screened for all at once (every member's monitor has the
            # swarm's limits and fence), check_state asked only about a row the screen does not pass
            state_ok = members[0].safety.states_pass(pos, vel, quat, rates)
            trig: list[Trigger | None] = [None] * n
            for i, (m, e) in enumerate(zip(members, ests)):
                if m.phase in ("policy", "ready", "hold", "takeoff"):
                    trig[i] = self._check(m, e, state_ok[i])
            # observations for all, one policy call
            obs = np.zeros((n, drone_sim.OBS_SIZE), dtype=np.float32)
            neigh_counts = [0] * n
            use = [m.phase == "policy" and trig[i] is None for i, m in enumerate(members)]
            if any(use):
                table = neighbour_table(pairwise_distances(pos_now), known)
                neigh_counts = (table >= 0).sum(axis=1).tolist()
                obs = drone_sim.observe_swarm(
                    pos, vel, quat, rates, np.array([m.last_action for m in members]), targets, target_vel, table,
                    neighbour_position=pos_now, task="swarm", drone=self.drone)
                actions = np.asarray(self.policy(obs), dtype=np.float32).reshape(n, -1)
            else:
                actions = None
            # commands
            sent_desc: list[tuple[bool, dict | None]] = [(False, None)] * n
            if actions is not None:
                size = self.policy.action_size
                passed = members[use.index(True)].safety.policy_rows_pass(obs, actions, size)
                clipped = np.clip(actions, -1.0, 1.0).astype(np.float32)
                if self.policy.action_mode == "ctbr" and size == 4:   # every row's rates and thrust at once
                    rates_frd, thrusts = ctbr_to_setpoints(actions, self.policy.max_rate)
                    rates_frd, thrusts = rates_frd.tolist(), thrusts.tolist()
                else:
                    rates_frd = None
            for i, m in enumerate(members):
                if trig[i] is not None or not use[i]:
                    continue
                if not passed[i]:   # the vehicle's own checks name what is wrong
                    t = m.safety.check_observation(obs[i], ests[i]) or m.safety.check_action(actions[i], ests[i],
                                                                                              size)
                    if t is not None:
                        trig[i] = t
                        use[i] = False
                        continue
                if rates_frd is not None:
                    msg, desc = m.mapper.rates_setpoint(rates_frd[i], thrusts[i])
                else:
                    msg, desc = m.mapper.setpoint(actions[i])
                sent_desc[i] = (m.link.send(msg), desc)
                m.last_action = clipped[i]
            for i, m in enumerate(members):
                if m.phase in ("ready", "hold") and trig[i] is None and m.hold_point is not None:
                    msg, desc = m.mapper.position(m.local(m.hold_point))
                    sent_desc[i] = (m.link.send(msg), desc)
            if shared is not None and not shared.flush_writes():
                sent_desc = [(False, desc) for _, desc in sent_desc]
            t_sent = time.monotonic()
            compute = t_sent - now
            missed = t_sent > deadline or skipped > 0
            cpu = time.thread_time() - cpu0
        finally:
            if shared is not None:
                shared.flush_writes()
            self.window.close()
        # ---- after the commands: the guard, the responses, the records
        for m, e in zip(self.members, ests):
            m.state_events.update(e)
        trips = self.guard.check(pos_now, vel, known)
        for tr in trips:
            self._guard_trip(tr, pos_now)
        for i, m in enumerate(self.members):
            if trig[i] is not None:
                self._respond(m, trig[i])
        self._watch(pos_now, vel)
        if self.form_t0 is not None:
            in_slot = 0
            for m in self.members:
                if m.phase == "policy" and m.attached:
                    err = float(np.linalg.norm(m.est.position - slots_p[m.slot]))
                    self.slot_errors.append(err)
                    m.recent_errors.append(err)
                    in_slot += err < FORMATION_REACHED_M
            if in_slot == n and self.formation_reached_s is None:
                self.formation_reached_s = now - self.form_t0
                self.say(f"formation reached: every vehicle within {FORMATION_REACHED_M:g} m of its slot, "
                         f"{self.formation_reached_s:.1f} s after the policy took over")
        work = time.monotonic() - t_sent
        self.timing.record(now, late, compute, work, missed, skipped, cpu)
        timing = {"late_ms": round(late * 1e3, 3), "compute_ms": round(compute * 1e3, 4), "cpu_ms": round(cpu * 1e3, 4),
                  "miss": missed}
        for i, m in enumerate(self.members):
            flying = m.slot is not None and m.phase == "policy"
            target = targets[i] if flying else m.hold_point
            tv = target_vel[i] if flying else None
            m.log_step(ests[i], target, tv, obs[i] if use[i] else None,
                       actions[i] if (use[i] and actions is not None) else None, sent_desc[i][1], sent_desc[i][0],
                       timing, neigh_counts[i], trig[i])
        self._publish(ests, slots_p, actions, use)

    def _publish(self, ests, slots_p: np.ndarray, actions, use) -> None:
        """The operator window's view of this tick: an aggregate Snapshot and one VehicleView per vehicle."""
        views = []
        for i, (m, e) in enumerate(zip(self.members, ests)):
            views.append(VehicleView(
                m.sysid or 0, m.phase, bool(e.armed), tuple(map(float, e.position)), tuple(map(float, e.velocity)),
                tuple(map(float, e.quaternion)), tuple(map(float, e.rates)),
                None if m.slot is None else tuple(map(float, slots_p[m.slot])),
                tuple(map(float, actions[i])) if (actions is not None and use[i]) else None))
        self.control.swarm = tuple(views)
        phases = [m.phase for m in self.members]
        common = max(set(phases), key=phases.count)
        phase = common if phases.count(common) == len(phases) else f"{common} {phases.count(common)}/{len(phases)}"
        e0 = ests[0]
        centroid = np.mean([e.position for e in ests], axis=0)
        errs = [m.recent_errors[-1] for m in self.members if m.phase == "policy" and m.recent_errors]
        st = self.timing.summary_fast()
        centre = self.formation.center
        self.control.publish(Snapshot(
            t=e0.t, vt=e0.vt, phase=phase, dry_run=False, armed=any(e.armed for e in ests), mode=e0.mode,
            position=tuple(map(float, centroid)), velocity=tuple(map(float, np.mean([e.velocity for e in ests], axis=0))),
            quaternion=tuple(map(float, e0.quaternion)), euler_deg=euler_deg(e0.quaternion),
            rates=tuple(map(float, e0.rates)), predicted_position=None, task="swarm",
            target=tuple(map(float, centre)), target_label=f"formation {self.formation.name} centre",
            distance_to_target=float(np.mean(errs)) if errs else float(np.linalg.norm(centroid - centre)),
            battery_voltage=min(e.battery_voltage for e in ests),
            battery_remaining=min(e.battery_remaining for e in ests),
            link_ok=not any(e.stale_link for e in ests), telemetry_age_s=max(e.age() for e in ests),
            loop_rate_hz=st["rate_hz"], compute_p99_ms=st["compute_p99_ms"], deadline_misses=st["misses"],
            triggers=tuple(self.end_triggers), action=None, fence=self.fence.as_dict()))

    def _check(self, m: Member, e, state_ok: bool = False) -> Trigger | None:
        """This tick's trigger for one vehicle. A vehicle already holding is watched for its link only: the hold
        is the response, and the reason it holds (a tilt, a speed) would otherwise restart it every tick.
        state_ok: SafetyMonitor.states_pass passed this vehicle's state, so check_state would find nothing."""
        s = m.safety
        t = s.check_stall(self.clock.stalled_s, e) or s.check_link(e)
        if t is not None or m.phase == "hold":
            return t
        if m.phase != "takeoff" and not state_ok:
            t = s.check_state(e)
        if t is None:
            t = s.check_battery(e)
        if t is None and e.mode and e.mode != "GUIDED" and m.phase in ("policy", "ready", "hold"):
            t = s.mode_changed(e.mode, "GUIDED", e)
        if t is None and m.phase == "policy" and self.form_t0 is not None:
            t = s.check_flight_time(time.monotonic() - self.form_t0, e)
        return t

    # ------------------------------------------------------------------ the end
    def _refuse(self, why: str) -> int:
        self.say(f"drone-deploy: refused: {why}")
        return self._end_all(f"refused: {why}", EXIT_REFUSED)

    def _end_all(self, reason: str, code: int) -> int:
        self.exit_code = code
        self.reason = self.reason if (self.reason and code != EXIT_REFUSED) else reason
        self._restore_params()
        for m in self.members:
            m.log.end(m.outcome or reason, code, self._member_summary(m))
        armed = [m.name for m in self.members if m.link.state.armed]
        self.say(("STILL ARMED: " + ", ".join(armed) if armed else "all disarmed") + f": {self.reason}")
        return code

    def _restore_params(self) -> None:
        for m in self.members:
            if m.old_guid_options is None:
                continue
            if m.link.state.armed or not m.link.connected:
                m.log.event("param", name="GUID_OPTIONS", restored=False, value=m.old_guid_options,
                            why="still armed" if m.link.state.armed else "no link")
                self.say(f"{m.name}: GUID_OPTIONS NOT restored to {m.old_guid_options:g}: set it back with a "
                         "ground station")
                continue
            try:
                m.link.commands.set_param("GUID_OPTIONS", m.old_guid_options)
                m.log.event("param", name="GUID_OPTIONS", restored=True, value=m.old_guid_options)
                m.old_guid_options = None
            except CommandError as exc:
                m.log.event("param", name="GUID_OPTIONS", restored=False, value=m.old_guid_options, why=str(exc))

    def _member_summary(self, m: Member) -> dict:
        recent = list(m.recent_errors)
        return {"sysid": m.sysid, "slot": None if m.slot is None else m.slot + 1, "outcome": m.outcome,
                "slot_error_m": round(float(np.mean(recent)), 3) if recent else None,
                "triggers": [t.as_dict() for t in m.triggers], "ticks": m.k,
                "link": dataclasses.asdict(m.link.stats), "armed_at_end": bool(m.link.state.armed),
                "params_not_restored": {} if m.old_guid_options is None else {"GUID_OPTIONS": m.old_guid_options}}

    def status_line(self) -> str | None:
        """One line for the terminal, once a second (read from another thread: plain attribute reads)."""
        if not self.members or not hasattr(self, "timing"):
            return None
        parts = []
        for m in list(self.members):
            e = m.est
            err = f" {m.recent_errors[-1]:.2f}m" if m.phase == "policy" and m.recent_errors else ""
            parts.append(f"{m.sysid}:{m.phase}{err}" + ("" if e is None or not e.stale_link else "(no link)"))
        st = self.timing.summary_fast()
        md = self.guard.min_distance
        return (" ".join(parts) + f" | closest {md:.2f} m" if math.isfinite(md) else " ".join(parts)) + \
            f" | loop {st['rate_hz']:.0f} Hz p99 {st['compute_p99_ms']:.2f} ms"

    def summary(self) -> dict:
        errs = np.array(self.slot_errors) if self.slot_errors else None
        return {
            "format": "drone-swarm/1", "reason": self.reason, "exit_code": self.exit_code,
            "vehicles": [self._member_summary(m) | {"log": m.log.path.name, "home_swarm": vec_list(m.home_swarm, 3)}
                         for m in self.members],
            "formation": None if self.formation is None else self.formation.describe(),
            "formation_reached_s": None if self.formation_reached_s is None else round(self.formation_reached_s, 2),
            "shared_link": None if self.shared is None else {**self.shared.stats.as_dict(),
                                                             "reopened": self.shared.reopened},
            "separation": self.guard.summary(),
            "formation_error_m": None if errs is None else {
                "mean": round(float(errs.mean()), 3), "p95": round(float(np.percentile(errs, 95)), 3)},
            "timing": self.timing.summary() if hasattr(self, "timing") else None,
            "triggers": self.end_triggers,
        }


def _new_dir(root: Path) -> Path:
    d = unique_path(root, "swarm")
    d.mkdir(parents=True)
    return d
