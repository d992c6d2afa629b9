"""Thrust-stand calibration: measure a real motor and propeller, fit the simulator's motor constants.

`drone-calibrate` (calibration/cli.py) is the user's entry point: `scale` (tare and scale the load cells),
`thrust-stand` (drive the motor through the flight controller's MAV_CMD_DO_MOTOR_TEST and record the
stand's line protocol to a CSV as it goes), `fit` (offline: k_T, k_Q, throttle map, time constants,
maximum thrust, with 1-sigmas, into a drone-params/1 file and a PNG report), `vehicle` (mass, arm,
inertia by the bifilar pendulum or from geometry). The microcontroller sketch is in calibration/firmware/.
"""
from .fit import CalibrationResult, FitOptions, fit_runs, load_run
from .rundata import CalibrationDataError, RunData

__all__ = ["CalibrationDataError", "CalibrationResult", "FitOptions", "RunData", "fit_runs", "load_run"]
