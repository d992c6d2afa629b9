"""Several simulated vehicles at once (drone-sim-vehicle --count N): a swarm to fly from one laptop.

Each vehicle is a whole SimVehicle (its own physics, noise, failsafes, parameters and params file) with its
own system id, standing `spacing` metres east of the previous one (each vehicle's local frame is centred on
its own home, as on real firmware; their GLOBAL_POSITION_INT places them apart). They are reached either

- on one shared endpoint, like vehicles behind one telemetry radio or on one MAVLink network (ArduPilot and
  PX4 SITL with distinct system ids): every vehicle hears every frame and acts on those addressed to its
  system id (or to all), and their frames interleave whole on the way out; or
- on N endpoints: consecutive ports from the one given (udpin:, udpout:, tcpin:), or one pty each (pty:LINK
  gives LINK1, LINK2, ...).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from ..shared import SharedTransport
from ..transport import PtyTransport, Transport, serve_endpoint
from .vehicle import SimVehicle, VehicleConfig


def numbered_endpoints(endpoint: str, count: int) -> list[str]:
    """N endpoints from one: consecutive ports (udpin:, udpout:, tcpin:, tcp:), one pty each (pty:LINK -> LINK1...)."""
    if endpoint == "pty":
        return ["pty"] * count
    if endpoint.startswith("pty:"):
        return [f"{endpoint}{k + 1}" for k in range(count)]
    scheme, sep, rest = endpoint.partition(":")
    host, _, port = rest.rpartition(":")
    if sep and host and port.isdigit():
        return [f"{scheme}:{host}:{int(port) + k}" for k in range(count)]
    raise ValueError(f"{endpoint!r}: separate endpoints need a pty or a HOST:PORT endpoint (serial ports cannot "
                     "be numbered: give --link shared)")


class SimSwarm:
    """N SimVehicles; base's system id is the first, home offsets `spacing` metres apart towards the east."""

    def __init__(self, endpoint: str, count: int, base: VehicleConfig, shared: bool = True, spacing: float = 2.0,
                 drones: Sequence | None = None, baud: int = 115200):
        if count < 1:
            raise ValueError(f"--count must be at least 1, got {count}")
        if base.system_id + count - 1 > 255:
            raise ValueError(f"system ids {base.system_id}..{base.system_id + count - 1} go past 255")
        if drones and len(drones) not in (1, count):
            raise ValueError(f"give one params file for all vehicles or one each ({count}), got {len(drones)}")
        self.vehicles: list[SimVehicle] = []
        self.transports: list[Transport] = []
        self._shared: SharedTransport | None = None
        try:
            if shared:
                self._shared = SharedTransport(serve_endpoint(endpoint, baud))
                links: list[Transport] = [self._shared.view() for _ in range(count)]
                self.transports = [self._shared.inner]
            else:
                self.transports = [serve_endpoint(e, baud) for e in numbered_endpoints(endpoint, count)]
                links = list(self.transports)
            for k, link in enumerate(links):
                drone = drones[k if len(drones) == count else 0] if drones else base.drone
                cfg = dataclasses.replace(base, system_id=base.system_id + k, drone=drone, seed=base.seed + k,
                                          home_offset_m=(base.home_offset_m[0], base.home_offset_m[1] + k * spacing))
                self.vehicles.append(SimVehicle(link, cfg))
        except BaseException:
            self.close()
            raise

    @property
    def endpoints(self) -> list[Transport]:
        """The transports a ground station reaches (one when shared)."""
        return self.transports

    def start(self) -> "SimSwarm":
        for v in self.vehicles:
            v.start()
        return self

    def stop(self) -> None:
        for v in self.vehicles:
            v._running = False
        for v in self.vehicles:
            v.stop()

    def close(self) -> None:
        self.stop()
        for v in self.vehicles:
            v.transport.close()
        if self._shared is None:
            for t in self.transports:
                if not any(v.transport is t for v in self.vehicles):
                    t.close()


def describe(transport: Transport) -> str:
    return transport.path if isinstance(transport, PtyTransport) else transport.name
