"""A raylib 3D viewer for a DroneVecEnv: arena, drones (attitude, props, trails), targets, rings, obstacles, HUD.

    env = drone_sim.make("race", agents_per_env=8, dr="nominal")
    viewer = Viewer(env, controller_name="hover")
    obs, _ = env.reset()
    while not viewer.should_close():
        obs, rewards, term, trunc, _ = env.step(actions)
        viewer.update(rewards, term | trunc)
        viewer.draw()
    viewer.close()

The viewer shows one env of the vector (env 0 by default; agent i belongs to env i // agents_per_env);
N / P switch env while it runs. Every frame is rendered into an offscreen RenderTexture, so the same
pixels go to the window, to `frame()` (numpy RGB) for videos and to `save_screenshot()`; with
hidden=True no window is ever shown (raylib still needs a display: run under xvfb-run on a headless box).

Frames. The simulator's world is ENU with z up, raylib's is y up: a world point (x, y, z) is drawn at
raylib (x, z, -y), a proper rotation, so handedness and triangle winding are kept. Quaternions are
(w, x, y, z) body-to-world, body FLU. Motors follow the X layout of quadrotor.h: 0 front-right (CCW),
1 rear-left (CCW), 2 front-left (CW), 3 rear-right (CW), at (+-arm/sqrt2, +-arm/sqrt2) in body x/y.

What is drawn: front arms red, rear arms grey, body in the agent's colour; each prop is a disc whose
colour is its motor speed (blue slow .. red at omega_max) with a blade that turns the way the prop spins
(slowed down to be visible); a floor shadow and drop line give height; a fading trail of recent positions.
Rings are numbered in course order, the rings some drone is heading for are orange, an arrow gives the
direction of passage. Targets are white markers (swarm: formation slots in the agent's colour).

Controls: left drag rotate, wheel zoom, right drag pan, F follow the drones on/off, R reset the camera,
N / P next / previous env, T trails, L labels, H help, SPACE pause (the caller's loop reads `paused`).

Modules: window.py (Viewer), scene.py (the 3D world), overlay.py (HUD and labels), drawing.py (raylib,
frames, colours, the drone model; the public drawing helpers other windows use).
"""
from .drawing import (FLOOR, FRONT_MOTORS, MOTOR_DIRS, MOTOR_SPIN, OBSTACLE, PALETTE, RING_IDLE, RING_NEXT, SKY,
                      blit_flipped, quat_to_matrix, raylib_point, rgba, rl, speed_color, world_to_raylib)
from .window import Viewer

__all__ = ["FLOOR", "FRONT_MOTORS", "MOTOR_DIRS", "MOTOR_SPIN", "OBSTACLE", "PALETTE", "RING_IDLE", "RING_NEXT", "SKY",
           "Viewer", "blit_flipped", "quat_to_matrix", "raylib_point", "rgba", "rl", "speed_color", "world_to_raylib"]
