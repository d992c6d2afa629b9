"""The simulated flight controller: drone_sim's C simulator behind a MAVLink endpoint (drone-sim-vehicle).

Modules: vehicle (SimVehicle: the endpoint, pacing, lifecycle), telemetry (what it streams), handlers
(what it does with each message it receives), autopilot (the flight logic: modes, failsafes, the rate
loop and the physics step), mission (the mission micro-service), params (the parameter table of each
firmware), cli (the drone-sim-vehicle command). Only this subpackage of firmware_bridge imports the
simulator: the real-link modules above it never do.
"""
from .vehicle import SensorNoise, SimVehicle, VehicleConfig

__all__ = ["SensorNoise", "SimVehicle", "VehicleConfig"]
