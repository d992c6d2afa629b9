"""`drone-calibrate vehicle`: mass, arm length and inertia of the whole drone.

Inertia by the bifilar (two-wire) pendulum: hang the drone level from two parallel vertical wires of
length L, a distance D apart, symmetric about the centre of mass, twist it a few degrees about the
vertical axis and time the oscillation. For small angles the period T gives

    I = m g D^2 T^2 / (16 pi^2 L)

about the vertical axis through the centre of mass (m: the hung mass). Hang it three ways (the drone's
z axis vertical for Izz; nose down or on its side for Ixx and Iyy), time 10-20 periods each and divide
(`--period-x 14.2/10` means 10 periods in 14.2 s). Keep the wires long next to D (L >= 2 D) and the
twist small (< 10 deg); a fixture's own inertia adds to the drone's (measure it alone and subtract, with
--fixture-inertia). The 1-sigma propagates the given measurement uncertainties (period, lengths,
mass); the method itself is good to a few percent when the wires are vertical and parallel.

Inertia from geometry (`--geometry`, a rough prior when there is no pendulum): the four motors (with
props) as point masses at the arm length on the X diagonals and the rest of the mass as a uniform box
(body size LX, LY, LZ). Expect +-20 %: it is written with that uncertainty.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
from pathlib import Path

from drone_sim.params import read_json

from .rundata import STANDARD_GRAVITY

G = STANDARD_GRAVITY
SCHEMA = "drone-vehicle/1"


class VehicleError(ValueError):
    pass


def parse_period(text: str) -> float:
    """'1.42' -> 1.42 s; '14.2/10' -> 1.42 s (10 periods timed together)."""
    try:
        if "/" in text:
            total, count = text.split("/", 1)
            value = float(total) / float(count)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise VehicleError(f"period {text!r}: give seconds, or TOTAL/COUNT like 14.2/10") from None
    if not value > 0 or not math.isfinite(value):
        raise VehicleError(f"period {text!r} must be positive")
    return value


@dataclasses.dataclass
class Bifilar:
    separation: float          # D, m
    length: float              # L, m
    sigma_period_rel: float = 0.005
    sigma_length: float = 0.002   # m, for both D and L

    def inertia(self, hung_mass: float, period: float, sigma_mass_rel: float = 0.0) -> tuple[float, float]:
        """(I, 1-sigma) about the vertical axis for the given period."""
        if not (self.separation > 0 and self.length > 0):
            raise VehicleError("bifilar wire separation and length must be positive")
        value = hung_mass * G * self.separation ** 2 * period ** 2 / (16.0 * math.pi ** 2 * self.length)
        rel = math.sqrt(sigma_mass_rel ** 2 + (2 * self.sigma_period_rel) ** 2
                        + (2 * self.sigma_length / self.separation) ** 2 + (self.sigma_length / self.length) ** 2)
        return value, value * rel


def geometry_inertia(mass: float, arm: float, motor_mass: float, body: tuple[float, float, float]) -> list[float]:
    """Point-mass motors on X diagonals plus a uniform box for the rest (see the module docstring)."""
    body_mass = mass - 4.0 * motor_mass
    if body_mass <= 0:
        raise VehicleError(f"four motors of {motor_mass} kg weigh more than the whole drone ({mass} kg)")
    lx, ly, lz = body
    d2 = 0.5 * arm * arm            # squared distance of each motor from the x (and y) axis
    ixx = body_mass * (ly ** 2 + lz ** 2) / 12.0 + 4 * motor_mass * d2
    iyy = body_mass * (lx ** 2 + lz ** 2) / 12.0 + 4 * motor_mass * d2
    izz = body_mass * (lx ** 2 + ly ** 2) / 12.0 + 4 * motor_mass * arm * arm
    return [ixx, iyy, izz]


def vehicle_doc(name: str, mass: float, arm: float, inertia: list[float], inertia_sigma: list[float],
                mass_sigma: float, arm_sigma: float, method: str, details: dict) -> dict:
    if not (mass > 0 and arm > 0):
        raise VehicleError("mass and arm length must be positive")
    if any(not (i > 0) for i in inertia):
        raise VehicleError(f"inertia must be positive, got {inertia}")
    return {
        "schema": SCHEMA, "name": name, "mass": mass, "arm": arm, "inertia": inertia,
        "uncertainty": {"mass": mass_sigma / mass, "arm": arm_sigma / arm,
                        **{f"inertia_{ax}": s / i for ax, s, i in zip("xyz", inertia_sigma, inertia)}},
        "provenance": {"method": method, "date": datetime.date.today().isoformat(), **details},
    }


def load_body(path: str | Path) -> dict:
    """Mass, arm, inertia (+ uncertainty, provenance, name) from a vehicle file or a drone params file."""
    p = Path(path)
    data = read_json(p, VehicleError)
    if not isinstance(data, dict) or data.get("schema") not in (SCHEMA, "drone-params/1"):
        raise VehicleError(f"{p}: expected a {SCHEMA} file (drone-calibrate vehicle) or a drone-params/1 file")
    for key in ("mass", "arm", "inertia"):
        if key not in data:
            raise VehicleError(f"{p}: field {key} is missing")
    try:
        mass, arm = float(data["mass"]), float(data["arm"])
        inertia = [float(x) for x in data["inertia"]]
    except (TypeError, ValueError):
        raise VehicleError(f"{p}: mass, arm and inertia must be numbers") from None
    if len(inertia) != 3 or not (mass > 0 and arm > 0) or any(not i > 0 for i in inertia):
        raise VehicleError(f"{p}: mass and arm must be positive and inertia three positive numbers")
    body = {"name": data.get("name", ""), "mass": mass, "arm": arm, "inertia": inertia,
            "uncertainty": data.get("uncertainty", {}), "provenance": data.get("provenance", {}), "path": str(p)}
    for key in ("radius", "drag", "angular_damping", "rate_loop", "latency"):
        if key in data:
            body[key] = data[key]
    return body
