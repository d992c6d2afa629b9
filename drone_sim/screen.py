"""Where rendered frames go: whether there is a display to open a raylib window on, and the mp4 writer.

Shared by drone-view and the regression games' viewer (drone_sim/ocean/view.py), so neither has to
import the other.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np


def has_display() -> bool:
    """raylib needs an X or Wayland display even for hidden windows; on Linux it is only there when one of
    these is set (elsewhere the desktop always has one)."""
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class VideoOut:
    """RGB frames -> mp4 (OpenCV, mp4v)."""

    def __init__(self, path, fps: float, width: int, height: int):
        import cv2

        self.path = Path(path)
        self.size = (width, height)
        self.frames = 0
        self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not self._w.isOpened():
            raise OSError(f"cannot open {self.path} for writing an mp4v video (OpenCV VideoWriter refused it)")

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise ValueError(f"video frame is {rgb.shape[1]}x{rgb.shape[0]}, expected {self.size[0]}x{self.size[1]}")
        self._w.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def close(self) -> None:
        self._w.release()
