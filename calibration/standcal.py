"""The stand calibration file: HX711 counts -> newtons (thrust) and newton-metres (torque).

The sketch streams raw counts so that tare and scale live here, in one small JSON file written by
`drone-calibrate scale`, and travel inside every run recording (its `# stand-cal:` header line): a run
can be refitted later with a corrected calibration (`drone-calibrate fit --stand-cal`).

    {"schema": "thrust-stand-cal/1",
     "thrust": {"offset": 84213.5, "counts_per_unit": 41020.0, "sigma_rel": 0.002,
                "reference": "0.5 kg at 9.80665 m/s^2", "date": "..."},
     "torque": {"offset": -11870.2, "counts_per_unit": 1.95e6, "sigma_rel": 0.004,
                "reference": "0.1 kg at 9.80665 m/s^2 on a 0.1 m lever", "date": "..."}}

counts_per_unit is counts per newton (thrust) or per newton-metre (torque); its sign says which way
the cell was loaded by the reference. sigma_rel is the relative 1-sigma of the scale factor.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from drone_sim.params import read_json

from .rundata import STANDARD_GRAVITY

SCHEMA = "thrust-stand-cal/1"
G = STANDARD_GRAVITY   # reference masses are weighed at standard gravity


class StandCalError(ValueError):
    """A stand calibration file that cannot be used; the message names the file and the field."""


@dataclasses.dataclass
class CellCal:
    offset: float
    counts_per_unit: float
    sigma_rel: float = 0.0
    reference: str = ""
    date: str = ""

    def convert(self, raw: float) -> float:
        return (raw - self.offset) / self.counts_per_unit


@dataclasses.dataclass
class StandCal:
    thrust: CellCal | None = None
    torque: CellCal | None = None

    def to_dict(self) -> dict:
        out: dict = {"schema": SCHEMA}
        for name in ("thrust", "torque"):
            cell = getattr(self, name)
            if cell is not None:
                out[name] = dataclasses.asdict(cell)
        return out

    @classmethod
    def from_dict(cls, data, where: str = "stand calibration") -> "StandCal":
        if not isinstance(data, dict):
            raise StandCalError(f"{where}: expected a JSON object")
        if data.get("schema") != SCHEMA:
            raise StandCalError(f"{where}: field schema: expected {SCHEMA!r}, got {data.get('schema')!r}")
        cells = {}
        for name in ("thrust", "torque"):
            c = data.get(name)
            if c is None:
                continue
            if not isinstance(c, dict):
                raise StandCalError(f"{where}: field {name}: expected an object")
            try:
                offset, k = float(c["offset"]), float(c["counts_per_unit"])
                sigma = float(c.get("sigma_rel", 0.0))
            except KeyError as exc:
                raise StandCalError(f"{where}: field {name}/{exc.args[0]} is missing") from None
            except (TypeError, ValueError):
                raise StandCalError(f"{where}: field {name}: offset and counts_per_unit must be numbers") from None
            if not (math.isfinite(offset) and math.isfinite(k)) or k == 0:
                raise StandCalError(f"{where}: field {name}/counts_per_unit must be finite and non-zero")
            if not (math.isfinite(sigma) and sigma >= 0):
                raise StandCalError(f"{where}: field {name}/sigma_rel must be >= 0")
            cells[name] = CellCal(offset, k, sigma, str(c.get("reference", "")), str(c.get("date", "")))
        if not cells:
            raise StandCalError(f"{where}: neither a thrust nor a torque cell is calibrated")
        return cls(**cells)

    @classmethod
    def load(cls, path: str | Path) -> "StandCal":
        data = read_json(path, StandCalError, hint=" (write it with drone-calibrate scale)")
        return cls.from_dict(data, str(Path(path)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def merged(self, other: "StandCal") -> "StandCal":
        """This calibration with the cells that `other` has replaced (scale one cell at a time)."""
        return StandCal(other.thrust or self.thrust, other.torque or self.torque)
