"""What a swarm flight does when a vehicle's check trips, the separation guard trips, a link is lost or the
operator asks: per vehicle, through the flight controller's own modes (the SwarmFlight mixin; the rules are
in deploy/swarm/flight.py's docstring)."""
from __future__ import annotations

import time

import numpy as np

from ..config import vec_list
from ..exits import EXIT_ARMED, EXIT_KILLED, EXIT_OK, EXIT_SAFETY
from ..safety import Trigger
from .member import Member


GUARD_BACKOFF_M = 0.5   # a tripped pair's hold points: this much further apart each (see _apart)


class SwarmResponses:
    """Mixin of SwarmFlight: holds, landings, the guard's trips, the operator's land and kill."""

    def _respond(self, m: Member, trig: Trigger) -> None:
        m.trigger(trig)
        self.end_triggers.append({"vehicle": m.sysid, **trig.as_dict()})
        self.say(f"{m.name}: {trig}")
        if trig.kind in ("link_lost", "laptop_stalled") or trig.response == "firmware":
            m.set_phase("passive", why=trig.kind)
            m.outcome = f"{trig.kind}: its firmware's failsafe is in charge"
            # the others hold where they are, clear of it, and land after the hold time
            for o in self.members:
                if o is not m and o.phase in ("policy", "ready"):
                    self._hold(o, f"{m.name} lost ({trig.kind})", self.config.deploy.limits.hold_s, then_land=True)
            self._aborting = True
            return
        if trig.response == "land":
            self._land(m, str(trig))
            return
        # hold and return: hold where it is (a return point inside the fence for a fence breach), then land
        point = self.fence.return_point(m.est.position) if trig.response == "return" else None
        self._hold(m, str(trig), self.config.deploy.limits.hold_s, then_land=True, point=point)

    def _hold(self, m: Member, why: str, seconds: float, then_land: bool, point=None, with_: int | None = None) -> None:
        if m.phase in ("landing", "passive", "down"):
            return
        m.hold_point = np.array(point if point is not None else m.est.position, dtype=float)
        m.hold_until = time.monotonic() + seconds
        m.hold_then_land = then_land
        m.held_with = with_
        m.set_phase("hold", why=why, point=vec_list(m.hold_point, 3))

    def _guard_trip(self, tr, pos) -> None:
        a, b = self.members[tr.i], self.members[tr.j]
        detail = (f"{a.name} and {b.name} {tr.distance:.2f} m apart, predicted {tr.predicted:.2f} m in {tr.in_s:.2f} s "
                  f"(minimum {self.guard.min_separation_m:g} m)")
        new = False
        for m, other in ((a, b), (b, a)):
            if m.phase == "hold" and m.held_with == other.index:
                continue   # held for this pair already: the hold runs its time
            m.log.event("separation", **tr.as_dict(), other=other.sysid, detail=detail)
            if m.phase in ("policy", "ready", "hold"):
                self._hold(m, "separation: " + detail, self.config.guard_clear_s, then_land=False, with_=other.index,
                           point=self._apart(m, pos[m.index], pos[other.index]))
                new = True
        if new:
            self.say(f"SEPARATION {detail}: the pair holds")

    def _apart(self, m: Member, p: np.ndarray, other: np.ndarray) -> np.ndarray:
        """Where a vehicle of a tripped pair holds: GUARD_BACKOFF_M further across from the other than it is now,
        at its height, inside the fence. Holding where it stands is not enough: a vehicle closing at 2-3 m/s
        brakes through a metre of its position hold (seen with 8 simulated vehicles: 0.25 m); holding apart makes
        its controller fly away from the other. Across only: moving a pair apart in height sent them back
        towards each other when they returned to their slots' common height (8 vehicles: a trip every 4 s)."""
        d = np.asarray(p, float) - np.asarray(other, float)
        d[2] = 0.0
        n = float(np.linalg.norm(d))
        away = d / n if n > 1e-3 else np.array([0.0, 0.0, 1.0 if m.index > 0 else -1.0])   # stacked: apart in height
        return self.fence.return_point(np.asarray(p, float) + GUARD_BACKOFF_M * away)

    def _land(self, m: Member, why: str) -> None:
        if m.phase in ("landing", "down"):
            return
        m.set_phase("landing", why=why)
        m.outcome = m.outcome or why
        m.land_sent = time.monotonic()
        m.run_command(self.pool, m.link.commands.land, "land")

    def _land_all(self, why: str) -> None:
        self._aborting = True
        self.reason = self.reason or why
        for m in self.members:
            if m.phase in ("policy", "ready", "hold", "takeoff"):
                self._land(m, why)
            elif m.phase == "arming":
                m.outcome = why
                self._land(m, why)

    def _abort(self, why: str) -> None:
        self.reason = self.reason or why
        self._aborting = True
        self._land_all(why)

    def _watch(self, pos, vel) -> None:
        """Holds that end, landings that finish or need repeating, passive vehicles that come back."""
        now = time.monotonic()
        for m in self.members:
            if m.pending is not None and m.phase == "landing":
                res = m.finished()
                if res is not None and not res[0]:
                    m.land_sent = 0.0  # ask again below
            if m.phase == "hold" and now >= m.hold_until:
                if m.held_with is not None:
                    o = self.members[m.held_with]
                    if self.guard.clear(pos, vel, m.index, o.index) and not self._aborting:
                        # one at a time: the other of the pair holds on while this one returns to its slot, so
                        # their closing speed is one vehicle's (returning together, the policy's overshoot closed
                        # 1.2 m at 1.8 m/s and tripped the guard again, every 4 s with 8 vehicles)
                        if o.phase == "hold" and o.held_with == m.index:
                            o.hold_until = max(o.hold_until, now + self.config.guard_clear_s)
                        m.held_with = None
                        m.leash = m.est.position.copy()
                        m.last_action = self.policy.hover_action.astype(np.float32).copy()
                        if self.policy.recurrent:   # its row of the batch starts a fresh episode
                            self.policy.reset(np.arange(len(self.members)) == m.index)
                        m.set_phase("policy", why="separation cleared")
                    else:
                        self._land(m, f"separation from {o.name} not cleared within {self.config.guard_clear_s:g} s")
                elif m.hold_then_land:
                    self._land(m, "hold ended")
            elif m.phase == "landing":
                if m.disarmed_confirmed():
                    m.set_phase("down")
                elif (m.pending is None and m.est.armed and m.est.mode != "LAND" and not m.est.stale_link
                      and now - m.land_sent > 2.0):
                    m.land_sent = now
                    m.run_command(self.pool, m.link.commands.land, "land (again)")
                elif now - m.phase_t0 > self.config.deploy.landing_timeout_s:
                    m.outcome += f"; not disarmed within {self.config.deploy.landing_timeout_s:g} s of LAND"
                    m.set_phase("down", still_armed=bool(m.est.armed))
            elif m.phase == "passive":
                e = m.est
                fresh = not e.stale_link and e.age_link < 0.5
                if fresh and m.disarmed_confirmed():
                    m.set_phase("down")
                elif fresh and e.armed and e.mode != "LAND":
                    m.log.event("link", t=None, what="link back while armed: landing")
                    self._land(m, m.outcome + "; link back, landed")
                elif now - m.phase_t0 > self.config.deploy.landing_timeout_s:
                    m.set_phase("down", still_armed=True, unseen=not fresh)
            elif m.phase == "idle" and self._aborting:
                m.set_phase("down", why="not flown")

    def _operator(self) -> int | None:
        c = self.control
        if c.kill_requested:
            return self._kill_all(c.kill_requested)
        if c.land_requested and not getattr(self, "_operator_landing", False):
            self._operator_landing = True
            self.say(f"landing every vehicle ({c.land_requested})")
            for m in self.members:
                m.log.event("operator", what="land", why=c.land_requested)
            self._land_all(f"operator: {c.land_requested}")
        return None

    def _kill_all(self, why: str) -> int:
        self.say(f"KILL ({why}): disarming every vehicle now")
        for m in self.members:
            if m.link.state.armed:
                for _ in range(3):
                    try:
                        m.link.commands.disarm(force=True, confirm_timeout=1.0)
                        m.log.event("command", what="kill", ok=True)
                        break
                    except Exception as exc:
                        m.log.event("command", what="kill", ok=False, detail=str(exc))
            m.outcome = f"killed: {why}"
        armed = any(m.link.state.armed for m in self.members)
        return self._end_all(f"killed: {why}", EXIT_ARMED if armed else EXIT_KILLED)

    def _all_down(self) -> bool:
        return all(m.phase == "down" for m in self.members)

    def _code_for_end(self) -> int:
        if any(m.link.state.armed for m in self.members):
            return EXIT_ARMED
        if self.end_triggers or any("failed" in m.outcome for m in self.members):
            return EXIT_SAFETY
        return EXIT_OK
