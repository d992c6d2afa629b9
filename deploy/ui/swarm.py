"""The operator window over a swarm flight (drone-deploy --swarm --ui): every vehicle, its slot, the formation.

The same window as for one vehicle (OperatorWindow: fence, floor, the target ball, HUD, buttons, keys), with
what a swarm flight publishes (deploy/swarm/operator.py): the target is the formation's centre, so dragging
it moves the whole formation (each slot must stay inside the fence, or the move is refused in red); each
vehicle is drawn from its own telemetry with a trail in its colour, its slot as a ring of the same colour
joined to it by a line, and its system id and phase beside it. The HUD's figures are the swarm's: the
phase shared by most vehicles, the mean distance to the slots, the loop's timing, every trigger.
"""
from __future__ import annotations

import collections

import numpy as np

from drone_sim.viewer import PALETTE

from ..control import Snapshot
from .window import OperatorWindow


class SwarmWindow(OperatorWindow):
    def _fence(self) -> dict:
        if self.control.snapshot() is not None or self.control.targeting is not None:
            return super()._fence()
        lim = self.session.flight.config.deploy.limits   # before the swarm frame exists: the limits' shape
        return {"center": (0.0, 0.0), "ground_z": 0.0, "radius": lim.fence_radius_m, "max_alt": lim.max_alt_m,
                "margin": lim.fence_margin_m, "min_alt": lim.min_target_alt_m}

    def _views(self) -> tuple:
        views = tuple(getattr(self.control, "swarm", ()) or ())
        if len(self._trails) != max(1, len(views)):
            self._trails = [collections.deque(maxlen=400) for _ in range(max(1, len(views)))]
            self._phase = np.zeros((max(1, len(views)), 4))
        return views

    def _track(self, snap: Snapshot | None) -> None:
        for j, v in enumerate(self._views()):
            p = np.asarray(v.position, dtype=float)
            tr = self._trails[j]
            if v.armed and (not tr or float(np.linalg.norm(tr[-1] - p)) > 0.01):
                tr.append(p)

    def _draw_vehicle(self, snap: Snapshot) -> None:
        views = self._views()
        if not views:
            return
        if not self._drone_final and getattr(self.session.flight, "policy", None) is not None:
            self._drone, self._drone_final = self.session.drone_params(), True
        d = self._drone
        arm, wmax = float(d.get("arm", 0.12)), max(float(d.get("omega_max", 1.0)), 1.0)
        n = len(views)
        st = np.zeros((n, 17))
        z0 = self._fence()["ground_z"]
        for j, v in enumerate(views):
            st[j, 0:3], st[j, 3:6], st[j, 6:10], st[j, 10:13] = v.position, v.velocity, v.quaternion, v.rates
            u = self._motor_fraction(_as_snapshot(snap, v), d)
            st[j, 13:17] = u * wmax
            self._phase[j] += np.array([1.0, 1.0, -1.0, -1.0]) * u * 0.6
            if v.slot is not None:   # its slot: a ring in its colour, and a line to it
                color = PALETTE[j % len(PALETTE)]
                self._disc((v.slot[0], v.slot[1], z0), 0.18, color, 110)
                self._sphere(v.slot, 0.06, color, 200)
                self._line(v.position, v.slot, color, 160)
        self.scale = 1.0
        self._draw_drones(np.arange(n), st, [{"drone": {"arm": arm, "omega_max": wmax}}] * n)

    def _draw_overlay(self, snap: Snapshot | None, f: dict) -> None:
        super()._draw_overlay(snap, f)
        for j, v in enumerate(self._views()):
            x, y, on = self._screen(v.position)
            if on:
                self._text(f"{v.sysid} {v.phase}", x + 12, y - 20, 10, PALETTE[j % len(PALETTE)])


def _as_snapshot(snap: Snapshot, v) -> Snapshot:
    """The fields _motor_fraction reads, for one vehicle."""
    import dataclasses

    return dataclasses.replace(snap, armed=v.armed, action=v.action)
