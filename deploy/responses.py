"""What a flight does when a safety trigger fires or the operator asks: hold, fly back inside the fence, land,
leave it to the firmware's failsafe (passive), or disarm at once (kill). Each watches the vehicle until it
is disarmed or drone-deploy stops watching, and returns the run's exit code (deploy/exits.py)."""
from __future__ import annotations

import time

import numpy as np

from .config import vec_list
from .exits import EXIT_ARMED, EXIT_KILLED, EXIT_SAFETY
from .loop import Commander
from .safety import Trigger


class Responses:
    """Mixin of deploy.flight.Flight: the responses, on its link, runner, log and limits."""

    def _respond(self, trig: Trigger) -> int:
        """Carry out a trigger's response through the firmware's own modes."""
        why = str(trig)
        if trig.response == "firmware":
            return self._passive(why)
        if trig.response == "land":
            return self._land(why, EXIT_SAFETY)
        if trig.response == "return":
            return self._return(why)
        return self._hold(why)

    def _hold(self, why: str) -> int:
        self._phase("hold")
        if not self._command(lambda: self.link.commands.set_mode("HOLD"), "hold"):
            return self._land(why, EXIT_SAFETY)
        t_end = time.monotonic() + self.config.limits.hold_s
        while time.monotonic() < t_end:
            r = self._tick(Commander("none"), ())
            if self.control.kill_requested:
                return self._kill(self.control.kill_requested)
            if self._disarmed_confirmed(r.est):
                return self._finish(why, EXIT_SAFETY)
            if self.runner.safety.check_link(r.est) is not None and r.est.age_link > self.config.limits.link_lost_after_s:
                return self._passive(why + "; link lost during the hold")
            if self.control.land_requested:
                break
        return self._land(why, EXIT_SAFETY)

    def _return(self, why: str) -> int:
        self._phase("return")
        est = self.runner.last_est
        point_nav = self.fence.return_point(est.position if est is not None else (0.0, 0.0, 1.0))
        point_local = point_nav + self.home_local
        self.log.event("return", t=None, point=vec_list(point_nav, 3))
        t_end = time.monotonic() + self.config.limits.return_timeout_s
        while time.monotonic() < t_end:
            r = self._tick(Commander("position", point_local), ("link",))
            if self.control.kill_requested:
                return self._kill(self.control.kill_requested)
            if r.trigger is not None and r.trigger.kind in ("link_lost", "laptop_stalled"):
                self._trigger_event(r.trigger)
                return self._passive(why + "; " + str(r.trigger))
            if r.trigger is not None:
                break  # stale telemetry on the way back: land where it is
            if self._disarmed_confirmed(r.est):
                return self._finish(why, EXIT_SAFETY)
            if np.linalg.norm(r.est.position - point_nav) < 0.3 and r.est.speed < 0.5:
                break
            if self.control.land_requested:
                break
        return self._land(why, EXIT_SAFETY)

    def _land(self, why: str, code: int) -> int:
        self._phase("landing")
        if not self._command(lambda: self.link.commands.land(), "land"):
            if not self.link.connected:
                return self._passive(why + "; land command not delivered (link down)")
        t_end = time.monotonic() + self.config.landing_timeout_s
        land_sent = time.monotonic()
        while time.monotonic() < t_end:
            r = self._tick(Commander("none"), ())
            if self.control.kill_requested:
                return self._kill(self.control.kill_requested)
            if self._disarmed_confirmed(r.est):
                return self._finish(why, code)
            landing_modes = ("LAND", "AUTO.LAND")
            if (r.est.armed and r.est.mode not in landing_modes and not r.est.stale_link
                    and time.monotonic() - land_sent > 2.0):
                # the land command was lost (a garbled frame) or overridden by a failsafe hold: ask again
                land_sent = time.monotonic()
                self._command(lambda: self.link.commands.land(), "land (again)")
        return self._finish(why + f"; not disarmed within {self.config.landing_timeout_s:g} s of the land command",
                            EXIT_ARMED)

    def _passive(self, why: str) -> int:
        """Send nothing; the firmware's failsafe is in charge. Land when the link comes back."""
        self._phase("passive")
        self.say(f"{why}: not commanding; the flight controller's failsafe is in charge")
        t_end = time.monotonic() + self.config.landing_timeout_s
        link_was_down = not self.link.connected
        while time.monotonic() < t_end:
            r = self._tick(Commander("none"), ())
            if self.control.kill_requested:
                return self._kill(self.control.kill_requested)
            fresh = not r.est.stale_link and r.est.age_link < 0.5
            if fresh and self._disarmed_confirmed(r.est):
                return self._finish(why, EXIT_SAFETY)
            if fresh and r.est.armed and (link_was_down or self.control.land_requested) \
                    and r.est.mode not in ("LAND", "AUTO.LAND"):
                self.log.event("link", t=None, what="link back while armed: landing")
                return self._land(why + "; link back, landed", EXIT_SAFETY)
            link_was_down = link_was_down or not fresh
        return self._finish(why + "; still armed or unseen when drone-deploy stopped watching", EXIT_ARMED)

    def _kill(self, why: str) -> int:
        self._phase("kill")
        self.say(f"KILL ({why}): disarming now")
        for _ in range(3):
            if self._command(lambda: self.link.commands.disarm(force=True, confirm_timeout=1.0), "kill"):
                break
        armed = self.link.state.armed
        return self._finish(f"killed: {why}", EXIT_ARMED if armed else EXIT_KILLED)
