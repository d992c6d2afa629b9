"""The fit's product: a drone params JSON (schema drone-params/1, drone_sim/params.py) with provenance.

Motor constants come from the fit, the body (mass, arm, inertia, and drag / rate loop / radius when the
body file has them) from `drone-calibrate vehicle` or an existing params file. `uncertainty` holds the
relative 1-sigmas; `provenance` says how every number was obtained, including what was NOT measured.
Besides the schema's fields the file carries `throttle_curve` (optional, ignored by the simulator): the
measured throttle-to-speed map and thrust exponent, for setting up the real flight controller.
The file is checked by loading it back with drone_sim.load_drone_params before this returns.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

from drone_sim.config import NOMINAL_DRONE
from drone_sim.params import load_drone_params

from .fit import CalibrationResult, summary_lines

TOOL = "drone-calibrate 0.1.0"


def nominal_body() -> dict:
    d = NOMINAL_DRONE
    return {"name": "", "mass": d["mass"], "arm": d["arm"], "inertia": list(d["inertia"]), "uncertainty": {},
            "provenance": {"method": "simulator nominal body (NOT measured): pass --vehicle vehicle.json"},
            "path": None}


def build_params(res: CalibrationResult, body: dict, name: str = "") -> dict:
    if res.k_torque is None:
        raise ValueError("no torque coefficient: the stand has no torque cell; pass --k-torque")
    if res.tau_up is None:
        raise ValueError("no usable rising step: no time constant; pass --tau-up (and --tau-down)")
    tau_down = res.tau_down if res.tau_down is not None else res.tau_up
    motor = {"k_thrust": res.k_thrust.value, "k_torque": res.k_torque.value, "tau_up": res.tau_up.value,
             "tau_down": tau_down.value, "omega_max": res.omega_max.value}
    unc = {k: float(v) for k, v in body.get("uncertainty", {}).items() if isinstance(v, (int, float))}
    unc.update({"k_thrust": res.k_thrust.rel, "k_torque": res.k_torque.rel, "tau_up": res.tau_up.rel,
                "tau_down": tau_down.rel, "omega_max": res.omega_max.rel, "max_thrust": res.max_thrust.rel})
    unc = {k: (v if v == v and v != float("inf") else 1.0) for k, v in unc.items()}
    hover = res.hover(body["mass"])
    sources = [Path(r.source).name for r in res.runs]
    formats = sorted({r.format for r in res.runs})
    fitted = {
        "k_thrust": [res.k_thrust.value, res.k_thrust.sigma],
        "k_torque": [res.k_torque.value, res.k_torque.sigma],
        "tau_up": [res.tau_up.value, res.tau_up.sigma],
        "tau_down": [tau_down.value, tau_down.sigma],
        "omega_max": [res.omega_max.value, res.omega_max.sigma],
        "max_thrust_per_motor_N": [res.max_thrust.value, res.max_thrust.sigma],
        "max_measured_thrust_N": res.measured_max_thrust,
        "hover_speed_rad_s": hover["speed_fit"],
        "hover_speed_measured_curve_rad_s": hover["speed_measured"],
        "hover_throttle": hover["throttle"],
    }
    not_measured = ["drag", "angular damping", "rate-loop gains", "latency"]
    not_measured = [n for n, key in zip(not_measured, ("drag", "angular_damping", "rate_loop", "latency")) if key not in body]
    notes = list(res.notes)
    for label, est in (("k_Q", res.k_torque), ("tau_up", res.tau_up), ("tau_down", tau_down)):
        if est.note:
            notes.append(f"{label}: {est.note}")
    if res.tau_down is None:
        notes.append("tau_down: no usable falling step; set equal to tau_up")
    notes.append(f"omega_max {res.omega_max.note}")
    doc = {
        "schema": "drone-params/1",
        "name": name or body.get("name") or "calibrated",
        "mass": body["mass"],
        "arm": body["arm"],
        "inertia": list(body["inertia"]),
        "motor": motor,
    }
    for key in ("drag", "angular_damping", "rate_loop", "latency", "radius"):
        if key in body:
            doc[key] = body[key]
    doc["uncertainty"] = unc
    doc["throttle_curve"] = {
        "speed_polynomial": [float(c) for c in res.speed_map.coef],
        "note": "motor speed (rad/s) = polyval(speed_polynomial, throttle), throttle 0..1 = motor-test fraction / ESC "
                "signal fraction; valid from spin_start to 1 (beyond the tested range it is an extrapolation)",
        "spin_start": res.speed_map.spin_start,
        "tested_throttle": list(res.speed_map.throttle_range),
        "thrust_expo": res.thrust_expo,
    }
    doc["provenance"] = {
        "method": "thrust stand: steady-state throttle staircase and throttle steps (drone-calibrate fit)",
        "source": ", ".join(sources),
        "formats": formats,
        "date": datetime.date.today().isoformat(),
        "tool": TOOL,
        "motor_runs": [r.meta.get("motor") for r in res.runs],
        "body": body.get("provenance", {}),
        "body_source": body.get("path"),
        "fitted": fitted,
        "line_stats": res.stats.as_dict(),
        "summary": summary_lines(res),
        "not_measured": not_measured,
        "notes": notes,
    }
    return doc


def write_params(doc: dict, path: str | Path) -> dict:
    """Write the params file and load it back through the simulator's own loader (schema and hover check)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2) + "\n")
    return load_drone_params(p)
