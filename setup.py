"""Build of the drone sim-to-real stack: the Cython extension over the C simulator, and the console scripts.

The C code is compiled for the building machine's CPU (-march=native) because the integrator is laid out
to vectorize across drones; set DRONE_SIM_PORTABLE=1 for a wheel that runs on any x86-64 / arm64 CPU.
"""
import os
import platform

from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

flags = ["-O3", "-std=c11", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function"]
if os.environ.get("DRONE_SIM_PORTABLE", "0") != "1" and platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):
    flags.append("-march=native")

extensions = [
    Extension(
        "drone_sim.binding",
        sources=["drone_sim/binding.pyx"],
        include_dirs=["drone_sim"],
        depends=[os.path.join("drone_sim", "csrc", f) for f in os.listdir(os.path.join("drone_sim", "csrc"))],
        extra_compile_args=flags,
    ),
    Extension(
        "drone_sim.ocean.binding",
        sources=["drone_sim/ocean/binding.pyx"],
        include_dirs=[os.path.join("drone_sim", "ocean", "csrc")],
        depends=[os.path.join("drone_sim", "csrc", "rng.h")]
        + [os.path.join("drone_sim", "ocean", "csrc", f) for f in os.listdir(os.path.join("drone_sim", "ocean", "csrc"))],
        extra_compile_args=flags,
    ),
]

_DEPLOY = ["pymavlink>=2.4.40", "pyserial>=3.5", "onnxruntime>=1.17", "rich>=13", "matplotlib>=3.7"]
_TRAIN = ["torch>=2.1", "onnx>=1.15", "onnxruntime>=1.17", "rich>=13", "matplotlib>=3.7", "opencv-python-headless>=4.8",
          # drone-sweep; psycopg: studies on a PostgreSQL server; sqlalchemy, which optuna stores through:
          # open_storage tells its errors apart
          "optuna>=4.9", "sqlalchemy>=2.0", "psycopg[binary]>=3.1"]
_UI = ["raylib>=5.0"]
EXTRAS = {
    "train": _TRAIN,                            # drone-train, drone-eval, drone-export, drone-sweep (torch; opencv for videos)
    "deploy": _DEPLOY,                          # drone-deploy, drone-replay, drone-sim-vehicle, drone-calibrate
    "ui": _UI + _DEPLOY,                        # drone-ui, drone-deploy --ui, drone-view (raylib windows)
    "all": sorted(set(_TRAIN + _DEPLOY + _UI)),
}
# mavsdk: MAVSDK-Python 4 (its C++ core ships in the wheel), the second ground-station client of
# tests/test_gcs_conformance.py
EXTRAS["test"] = EXTRAS["all"] + ["pytest>=7", "mavsdk>=4.1"]

setup(
    name="drone-sim2real",
    version="0.1.0",
    description="Fast multi-task C drone simulator, PPO trainer and MAVLink deploy stack",
    packages=find_packages(include=["drone_sim", "drone_sim.*", "policies", "policies.*", "firmware_bridge", "deploy",
                                    "calibration"]),
    package_data={"drone_sim": ["csrc/*.h", "data/*.json", "*.pyx", "ocean/csrc/*.h", "ocean/*.pyx"],
                  # the shipped policies drone-deploy flies by default, with their model cards
                  "policies": ["pretrained/*.onnx", "pretrained/*.md", "pretrained/*.toml"]},
    ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}),
    python_requires=">=3.10",
    # The simulator alone: what `import drone_sim` needs. The rest comes in extras, so that the laptop that flies
    # the drone (deploy) installs no torch and no opencv: see README "Install".
    install_requires=[
        "numpy>=1.24",
        "gymnasium>=0.29",
        "jsonschema>=4.0",
    ],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "drone-view=policies.view:main",
            "drone-sim-vehicle=firmware_bridge.sim.cli:main",
            "drone-train=policies.cli:train_entry",
            "drone-eval=policies.cli:eval_entry",
            "drone-export=policies.export:main",
            "drone-sweep=policies.sweep.cli:entry",
            "drone-deploy=deploy.cli:main",
            "drone-replay=deploy.replay:main",
            "drone-ui=deploy.ui.cli:main",
            "drone-calibrate=calibration.cli:main",
        ]
    },
)
