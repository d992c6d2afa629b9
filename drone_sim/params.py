"""The two files that cross module boundaries: the drone params JSON and the course JSON.

Both are schema-checked on load (jsonschema), so a malformed file fails with the field it got wrong
instead of flying a drone with a missing motor constant. Calibration writes params files; the simulator,
the simulated vehicle and deploy read them.

Drone params file (``"schema": "drone-params/1"``)::

    {
      "schema": "drone-params/1",
      "name": "crazyflie-2.1",
      "mass": 0.027,                       kg, all-up
      "arm": 0.0397,                       m, centre to motor axis
      "inertia": [1.4e-5, 1.4e-5, 2.17e-5],   kg m^2, principal, body FLU
      "motor": {"k_thrust": ..., "k_torque": ...,     N/(rad/s)^2, N m/(rad/s)^2
                "tau_up": ..., "tau_down": ...,       s, first-order lag rising / falling
                "omega_max": ...},                    rad/s
      "drag": [dx, dy, dz],                N/(m/s), body axes           (optional, default 0)
      "angular_damping": [..],             N m/(rad/s)                   (optional, default 0)
      "rate_loop": {"kp": [..], "ki": [..], "kd": [..], "max_rate": [..]}   (optional, simulator defaults)
      "latency": 0.0,                      s, command latency            (optional)
      "radius": 0.07,                      m, collision radius incl. props (optional, 1.5 x arm)
      "uncertainty": {"k_thrust": 0.02, ...}   relative 1-sigma of fitted values (optional)
      "provenance": {"method": "...", "source": "...", "date": "..."}  how the numbers were obtained
    }

Course file (``"schema": "drone-course/1"``)::

    {"schema": "drone-course/1", "name": "...",
     "rings": [{"position": [x, y, z], "normal": [nx, ny, nz], "radius": r}, ...],   in order, >= 2
     "obstacles": [{"position": [x, y, z], "radius": r}, ...]}                         optional
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema

from .config import NOMINAL_DRONE

_VEC3 = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_POS = {"type": "number", "exclusiveMinimum": 0}
_NONNEG_VEC3 = {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3}
_POS_VEC3 = {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 3, "maxItems": 3}

PARAMS_SCHEMA: dict = {
    "type": "object",
    "required": ["schema", "mass", "arm", "inertia", "motor", "provenance"],
    "properties": {
        "schema": {"const": "drone-params/1"},
        "name": {"type": "string"},
        "mass": _POS,
        "arm": _POS,
        "inertia": _POS_VEC3,
        "motor": {
            "type": "object",
            "required": ["k_thrust", "k_torque", "tau_up", "omega_max"],
            "properties": {"k_thrust": _POS, "k_torque": _POS, "tau_up": _POS, "tau_down": _POS, "omega_max": _POS},
        },
        "drag": _NONNEG_VEC3,
        "angular_damping": _NONNEG_VEC3,
        "rate_loop": {
            "type": "object",
            "properties": {"kp": _NONNEG_VEC3, "ki": _NONNEG_VEC3, "kd": _NONNEG_VEC3, "max_rate": _POS_VEC3},
        },
        "latency": {"type": "number", "minimum": 0, "maximum": 0.5},
        "radius": _POS,
        "uncertainty": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "provenance": {"type": "object", "required": ["method"], "properties": {"method": {"type": "string"}}},
    },
}

COURSE_SCHEMA: dict = {
    "type": "object",
    "required": ["schema", "rings"],
    "properties": {
        "schema": {"const": "drone-course/1"},
        "name": {"type": "string"},
        "rings": {
            "type": "array",
            "minItems": 2,
            "maxItems": 32,
            "items": {
                "type": "object",
                "required": ["position", "normal", "radius"],
                "properties": {"position": _VEC3, "normal": _VEC3, "radius": _POS},
            },
        },
        "obstacles": {
            "type": "array",
            "maxItems": 64,
            "items": {"type": "object", "required": ["position", "radius"], "properties": {"position": _VEC3, "radius": _POS}},
        },
    },
}


class FileFormatError(ValueError):
    """A params or course file that cannot be used; the message names the file and the problem."""


def read_json(path: str | Path, error: type[Exception] = FileFormatError, hint: str = "") -> Any:
    """A JSON file's content, or `error` naming the file and what is wrong (unreadable, or where the JSON
    breaks). Every project file that crosses a boundary (params, courses, calibration files) is read here so
    their errors read alike; `hint` is added to an unreadable file's message (how to write one)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}{hint}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{p}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _validate(data: Any, schema: dict, where: str) -> None:
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        field = "/".join(str(x) for x in exc.absolute_path) or "(top level)"
        raise FileFormatError(f"{where}: field {field}: {exc.message}") from None


def params_from_dict(data: dict, where: str = "drone params") -> dict:
    """Validate a params document and flatten it into the simulator's drone dict."""
    _validate(data, PARAMS_SCHEMA, where)
    motor = data["motor"]
    rate = data.get("rate_loop", {})
    nominal = NOMINAL_DRONE
    return {
        "mass": float(data["mass"]),
        "arm": float(data["arm"]),
        "inertia": [float(x) for x in data["inertia"]],
        "k_thrust": float(motor["k_thrust"]),
        "k_torque": float(motor["k_torque"]),
        "tau_up": float(motor["tau_up"]),
        "tau_down": float(motor.get("tau_down", motor["tau_up"])),
        "omega_max": float(motor["omega_max"]),
        "drag": [float(x) for x in data.get("drag", [0.0, 0.0, 0.0])],
        "ang_damp": [float(x) for x in data.get("angular_damping", [0.0, 0.0, 0.0])],
        "kp": [float(x) for x in rate.get("kp", nominal["kp"])],
        "ki": [float(x) for x in rate.get("ki", nominal["ki"])],
        "kd": [float(x) for x in rate.get("kd", nominal["kd"])],
        "max_rate": [float(x) for x in rate.get("max_rate", nominal["max_rate"])],
        "latency": float(data.get("latency", 0.0)),
        "radius": float(data.get("radius", 1.5 * float(data["arm"]))),
        "wind": [0.0, 0.0, 0.0],
    }


def load_drone_params(path: str | Path) -> dict:
    """Read and check a drone params JSON file; returns the simulator's flat drone dict."""
    data = read_json(path)
    params = params_from_dict(data, str(path))
    from .binding import hover_omega

    w_hover = hover_omega(params)
    if w_hover >= params["omega_max"]:
        raise FileFormatError(
            f"{path}: this drone cannot hover: hover motor speed {w_hover:.0f} rad/s exceeds omega_max "
            f"{params['omega_max']:.0f} rad/s (check mass, k_thrust and omega_max units)")
    return params


def course_from_dict(data: dict, where: str = "course") -> dict:
    """Validate a course document; returns it with unit ring normals."""
    _validate(data, COURSE_SCHEMA, where)
    rings = []
    for i, ring in enumerate(data["rings"]):
        n = [float(x) for x in ring["normal"]]
        norm = math.sqrt(sum(x * x for x in n))
        if not norm > 1e-6:
            raise FileFormatError(f"{where}: field rings/{i}/normal: normal must not be zero")
        rings.append({"position": [float(x) for x in ring["position"]], "normal": [x / norm for x in n],
                      "radius": float(ring["radius"])})
    obstacles = [{"position": [float(x) for x in o["position"]], "radius": float(o["radius"])}
                 for o in data.get("obstacles", [])]
    return {"name": data.get("name", ""), "rings": rings, "obstacles": obstacles}


def load_course(path: str | Path) -> dict:
    """Read and check a course JSON file."""
    return course_from_dict(read_json(path), str(path))


def save_course(course: dict, path: str | Path, name: str = "") -> None:
    doc = {"schema": "drone-course/1", "name": name or course.get("name", ""), "rings": course["rings"],
           "obstacles": course.get("obstacles", [])}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")
