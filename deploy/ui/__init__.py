"""The operator's window: fly the drone by dragging its target on a 3D map of the flying area (raylib).

    drone-ui --sim                                  # practice: a drone-sim-vehicle it starts itself, on a pty
    drone-ui --sim --lockstep --sim-arg=--noise-pos --sim-arg=0.02     # faster than real time, noisy sensors
    drone-deploy --port /dev/ttyUSB0 --ui           # the real vehicle, same window

What it shows: the floor grid, the fence (a cylinder around the takeoff point: solid at its radius and
ceiling, dashed where targets stop, the margin inside), the drone's pose from telemetry with a fading
trail, a translucent ghost where the simulator's one-step prediction puts it, the target (a white ball
with its floor disc and a drop line), the course rings when racing, and a HUD: phase, link state and
rates, mode, armed, battery, control-loop rate / compute p99 / deadline misses, distance to target,
prediction error, every safety trigger in red, and the flight's messages.

Controls (the buttons at the bottom do the same):
  left drag on the target (ball or floor disc): move it on the floor plane (height kept); elsewhere: orbit
  wheel or Up/Down / PageUp/PageDown: target height (0.1 m steps)    shift+wheel, +/-: zoom   right drag: pan
  T arm and take off   L land   H hold (freeze the target where the drone is)   Tab switch task
  K KILL: disarm at once, no confirmation (the drone falls)   C reset camera   P screenshot
  ESC or closing the window: land, and close once the vehicle is disarmed (close again: close now; the
  flight thread still lands before the program exits)

Why this shape: the control loop is deploy.flight.Flight running on its own thread; this window owns
the main thread (raylib/GLFW want it) and talks to the loop only through deploy.control.FlightControl:
requests are flag writes and a target update under a short lock, the state comes as the Snapshot the
loop publishes each tick. Nothing here holds a lock the loop waits on, so a slow frame (a software
renderer, a window being dragged) delays only the next frame, never a command. The interpreter's switch
interval is lowered while the window runs so the loop thread gets the GIL back within ~0.2 ms,
and the threads the window's creation starts (a software renderer's raster threads) run at a lower CPU
priority than the loop's.
Targets go through FlightControl.set_target, whose fence check is the one the loop uses; a refusal
(TargetError) is shown in red and the target in force is kept.

The package's modules: session.py (the flight on its thread, the practice vehicle), window.py (the
window and its 3D scene), input.py (mouse and keys -> targets and commands), hud.py (the text, buttons
and frame info drawn over the scene), style.py (colours and sizes), cli.py (drone-ui).
"""
from .session import FlightThread, launch_sim_vehicle
from .window import OperatorWindow, run_window

__all__ = ["FlightThread", "OperatorWindow", "launch_sim_vehicle", "run_window"]
