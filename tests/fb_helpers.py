"""Shared set-up for the firmware_bridge tests: a simulated vehicle on a real pty or UDP socket, a link to it."""
from __future__ import annotations

import contextlib
import socket
import time

import numpy as np

from firmware_bridge import MavLink
from firmware_bridge.sim.vehicle import SimVehicle, VehicleConfig
from firmware_bridge.transport import PtyTransport, Transport, UdpTransport


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_vehicle_transport(kind: str, link_path: str | None = None) -> tuple[Transport, str]:
    """The vehicle's transport and the endpoint a GCS opens to reach it."""
    if kind == "pty":
        t = PtyTransport(link_path)
        return t, t.path
    if kind == "udp":
        # the usual SITL/QGC arrangement: the GCS listens, the vehicle sends to it
        port = free_udp_port()
        return UdpTransport(None, ("127.0.0.1", port), f"udp->{port}"), f"udpin:127.0.0.1:{port}"
    raise ValueError(kind)


@contextlib.contextmanager
def vehicle_and_link(kind: str = "pty", link_kwargs: dict | None = None, connect: bool = True,
                     transport_wrapper=None, link_path: str | None = None, **config):
    config.setdefault("ekf_init_s", 0.2)
    transport, endpoint = make_vehicle_transport(kind, link_path)
    if transport_wrapper is not None:
        transport = transport_wrapper(transport)
    vehicle = SimVehicle(transport, VehicleConfig(**config))
    link = MavLink(endpoint, 115200, **(link_kwargs or {}))
    if kind == "udp":
        link.open()  # bind the GCS port before the vehicle starts sending to it
    vehicle.start()
    try:
        if connect:
            link.connect(timeout=5.0)
        yield vehicle, link
    finally:
        link.close()
        vehicle.close()


def wait_for(cond, timeout: float, period: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(period)
    return bool(cond())


def wait_ekf(link, timeout: float = 3.0) -> None:
    assert wait_for(lambda: link.state.estimator_healthy and link.state.system_status != 1, timeout), \
        "vehicle estimator never became healthy"


def yaw_unwrapped(samples: list[float]) -> np.ndarray:
    return np.unwrap(np.asarray(samples))
