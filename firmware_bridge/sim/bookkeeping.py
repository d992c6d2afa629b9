"""What the simulated autopilot keeps track of after every step: landed or flying (ArduCopter's land detector,
PX4's landed state), takeoff completion, auto-disarm on the ground, the battery."""
from __future__ import annotations

import numpy as np

from ..modes import Firmware
from .behaviour import LAND_DETECTOR_TRIGGER_S


class Bookkeeping:
    """Mixin of SimAutopilot: the per-step bookkeeping and the state it derives."""

    # ------------------------------------------------------------------ bookkeeping
    def _bookkeeping(self, x: np.ndarray) -> None:
        speed = float(np.linalg.norm(x[3:6]))
        was_landed = self.landed
        self.landed = x[2] <= 0.03 and speed < 0.3
        if self.landed and not was_landed:
            self.landed_since = self.ground_since = self.t
        self._land_detector()
        if not self.landed:
            if self.takeoff_alt is not None and x[2] >= self.home[2] + 0.95 * self.takeoff_alt:
                self.takeoff_alt = None
            if self.behaviour == "takeoff" and x[2] >= self.target_pos[2] - 0.1:
                target = self.target_pos.copy()
                self._enter("AUTO.LOITER")
                self.target_pos = target  # hold the takeoff altitude, not where the climb was cut
        if self.armed and self.landed:
            delay = self.params.role("disarm_delay_s", 10.0)
            if self.landing and self.t - self.landed_since >= self.params.role("disarm_land_s", 1.0):
                self.disarm(force=True, why="landed")
            elif (not self.landing and self.takeoff_alt is None and delay > 0 and self.t - self.ground_since >= delay
                  and self.last_action[0] <= 2 * self.hover - 1 + 0.02):
                self.disarm(force=True, why="auto-disarm on the ground")
        if self.motor_test is not None and self.t >= self.motor_test[2]:
            self.motor_test = None
        # battery: momentum-theory power per motor, 50 % efficient, plus 0.5 A of avionics
        w = x[13:17]
        thrusts = self.drone["k_thrust"] * w * w
        power = float(np.sum(np.power(np.maximum(thrusts, 0.0), 1.5))) * self._power_k
        remaining = max(0.0, 1.0 - self.consumed_mah / self.capacity_mah)
        v_open = self.cells * (3.5 + 0.7 * remaining)
        self.current = 0.5 + power / max(v_open, 1.0)
        self.voltage = v_open - 0.015 * self.cells * self.current
        self.consumed_mah += self.current * self.dt / 3.6

    def _land_detector(self) -> None:
        """land_complete: cleared as soon as the vehicle is off the ground, set after it has sat on the ground
        with the throttle low for LAND_DETECTOR_TRIGGER_SEC (1 s, ArduCopter land_detector.cpp)."""
        if not self.landed:
            self.land_complete = False
            self._ground_low_since = None
            return
        if self.land_complete:
            return
        if self.last_action[0] > 2.0 * self.hover - 1.0:   # throttle not at its lower limit
            self._ground_low_since = None
            return
        if self._ground_low_since is None:
            self._ground_low_since = self.t
        if self.t - self._ground_low_since >= LAND_DETECTOR_TRIGGER_S:
            self.land_complete = True

    @property
    def battery_remaining(self) -> float:
        return max(0.0, 1.0 - self.consumed_mah / self.capacity_mah)

    @property
    def landed_state(self) -> int:
        """MAV_LANDED_STATE: 1 on ground, 2 in air, 3 takeoff, 4 landing (ArduCopter: from land_complete,
        GCS_MAVLink_Copter.cpp landed_state)."""
        if self.land_complete if self.firmware == Firmware.ARDUPILOT else self.landed:
            return 1
        if self.landing:
            return 4
        if self.behaviour == "takeoff" or self.takeoff_alt is not None:
            return 3
        return 2
