# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython binding of the C drone simulator.

A CVecEnv holds every env of a vector in C memory and steps them in a nogil loop. The observation,
action, reward, terminal and truncation arrays are numpy arrays owned by Python; each C env points
into its slice of them, so a step copies nothing across the boundary. Their dtype, shape and layout
are checked once, here, because a wrong dtype across this boundary corrupts memory silently.
"""
import numpy as np

from libc.stdint cimport uint32_t, uint64_t, uint8_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

cdef extern from "csrc/drone_env.h" nogil:
    # sizes of the arrays below, from the headers (an enum: declaration lets Cython size an array by them)
    enum: NUM_TASKS, NUM_CRASH_CAUSES, COURSE_MAX_RINGS, COURSE_MAX_OBSTACLES, COURSE_NEAREST_MAX
    ctypedef struct Range:
        float lo, hi
    ctypedef struct Arena:
        float half_x, half_y, height
    ctypedef struct Ring:
        float pos[3]
        float normal[3]
        float radius
    ctypedef struct Sphere:
        float pos[3]
        float radius
    ctypedef struct Course:
        int num_rings
        Ring rings[COURSE_MAX_RINGS]
        int num_obstacles
        Sphere obstacles[COURSE_MAX_OBSTACLES]
    ctypedef struct DroneParams:
        float mass, arm
        float inertia[3]
        float k_thrust, k_torque, tau_up, tau_down, omega_max
        float drag[3]
        float ang_damp[3]
        float kp[3]
        float ki[3]
        float kd[3]
        float max_rate[3]
        float latency, radius
        float wind[3]
    ctypedef struct DRConfig:
        int enabled, around_nominal
        Range arm
        float arm_ref, mass_ref
        Range mass_factor, inertia_xy, inertia_z, twr
        float omega_ref
        Range omega_factor, torque_ratio, tau, tau_down_ratio, drag_xy, drag_z, ang_damp
        Range kp_rp, kp_yaw, ki_ratio, kd
        float tol_mass, tol_inertia, tol_thrust, tol_torque, tol_tau, tol_drag, tol_gains
        Range latency, obs_noise, wind
        float init_tilt, init_vel, init_rate, ground_start_prob
    ctypedef struct SampledDrone:
        DroneParams params
        float obs_noise
        float hover_thrust_known
    ctypedef struct TaskLog:
        float n, episode_return, episode_length, score, crash, out_of_bounds, timeout, aux_sum, aux_count
        float crash_cause[NUM_CRASH_CAUSES]
    ctypedef struct SimConfig:
        float physics_dt
        int substeps, integrator, action_mode, auto_reset, evaluation
        float task_weights[NUM_TASKS]
        float horizon_s[NUM_TASKS]
        Arena arena
        int collide_all
        float crash_speed, crash_penalty
        float success_radius, follow_radius, formation_radius, goal_radius, formation_spacing
        float clearance_margin, clearance_weight, clearance_time, rim_lookahead, race_tight_room, smooth_weight
        float speed_limit[NUM_TASKS]
        float speed_weight
        int race_rings
        Range ring_radius
        int obstacles_lo, obstacles_hi
        Range obstacle_radius
        float blocked_line_prob
        int fixed_course
        Course course
        DroneParams nominal
        DRConfig dr
    ctypedef struct Agent:
        DroneParams drone
        float obs_noise, hover_thrust_known, t, ep_return
        int ep_len, ring, rings_passed, slot, reached, ended, crash_cause
    ctypedef struct DroneEnv:
        SimConfig cfg
        int n
        float dt
        float *target
        float *target_vel
        Agent *agents
        int task, step, horizon, formation
        float t
        Course course
        TaskLog logs[NUM_TASKS]
        int nonfinite_actions
    ctypedef struct ObsInput:
        float pos[3]
        float vel[3]
        float quat[4]
        float omega[3]
        float last_action[4]
        float target_pos[3]
        float target_vel[3]
        int has_ring
        float ring_normal[3]
        float ring_radius
        int has_next_ring
        float next_ring_pos[3]
        float next_ring_normal[3]
        int num_drones
        float drone_pos[3][3]
        float drone_vel[3][3]
        int num_obstacles
        float obstacle_pos[3][3]
        float obstacle_radius[3]
        int task
        float radius
        float hover_thrust
    ctypedef struct Rng:
        uint32_t s[4]

    int QS_COUNT
    int OBS_SIZE, OBS_VERSION, OBS_K_DRONES, OBS_K_OBSTACLES, NUM_FORMATIONS
    int NUM_ACTION_MODES, NUM_INTEGRATORS
    double QUAD_GRAVITY_MS2
    int OBS_VEL, OBS_RATES, OBS_ROT, OBS_HEIGHT, OBS_LAST_ACTION, OBS_TARGET_POS, OBS_TARGET_DIST
    int OBS_TARGET_VEL, OBS_RING_NORMAL, OBS_RING_RADIUS, OBS_NEXT_RING_POS, OBS_NEXT_RING_NORMAL
    int OBS_DRONES, OBS_DRONE_STRIDE, OBS_OBSTACLES, OBS_OBSTACLE_STRIDE, OBS_TASK, OBS_RADIUS, OBS_HOVER_THRUST
    float OBS_VEL_SCALE, OBS_RATE_SCALE, OBS_HEIGHT_SCALE, OBS_TARGET_CLIP, OBS_DIST_SCALE, OBS_RING_CLIP
    float OBS_DRONE_CLIP, OBS_OBSTACLE_CLIP, OBS_OBSTACLE_RADIUS_SCALE, OBS_GAP_CLIP, OBS_RADIUS_SCALE
    int PRIV_SIZE, PRIV_VERSION, PRIV_MASS, PRIV_ARM, PRIV_INERTIA, PRIV_THRUST_TO_WEIGHT, PRIV_HOVER_THRUST
    int PRIV_HOVER_BELIEF_ERROR, PRIV_TORQUE_RATIO, PRIV_TAU_UP, PRIV_TAU_DOWN, PRIV_DRAG, PRIV_ANG_DAMP, PRIV_GAINS
    int PRIV_MAX_RATE, PRIV_LATENCY, PRIV_WIND, PRIV_OBS_NOISE
    const char *env_task_name(int t)
    const char *env_formation_name(int f)
    const char *env_crash_cause_name(int k)
    const char *quad_action_mode_name(int m)
    const char *quad_integrator_name(int i)
    float quad_max_thrust(const DroneParams *d)
    float quad_thrust_to_weight(const DroneParams *d)
    float quad_hover_thrust_fraction(const DroneParams *d)
    int env_init(DroneEnv *e, const SimConfig *cfg, int n, uint64_t seed)
    void env_bind(DroneEnv *e, float *obs, float *actions, float *rewards, unsigned char *terminals,
                  unsigned char *truncations)
    void env_bind_privileged(DroneEnv *e, float *priv)
    void env_reset(DroneEnv *e, uint64_t seed)
    void env_step(DroneEnv *e)
    void env_close(DroneEnv *e)
    void env_get_state(const DroneEnv *e, int i, float *x)
    void env_set_state(DroneEnv *e, int i, const float *x)
    void env_set_drone(DroneEnv *e, int i, const DroneParams *d)
    void obs_build(const ObsInput *inp, float *out)
    int course_nearest_obstacles(const Sphere *obst, int n, const float *p, int k, int *out)
    int slot_assign(int n, const float *pos, int m, const float *slots, int *slot_of, int *taken, int max_passes)
    enum: SLOT_ASSIGN_MAX_PASSES
    float quad_hover_omega(const DroneParams *d)
    void quad_hover_action(const DroneParams *d, int mode, float *out)
    void dr_sample(const DRConfig *c, const DroneParams *nominal, Rng *r, SampledDrone *out)
    void rng_seed(Rng *r, uint64_t seed)
    void course_generate(Course *c, const Arena *a, int n, float r_lo, float r_hi, Rng *rng)
    int ring_cross(const Ring *g, const float *p0, const float *p1, float *rim_dist)
    void formation_layout(int formation, int n, float spacing, float yaw, const Arena *ar, float *base,
                          float *radius, float *ext_xy, float *ext_z)
    void formation_slot(int formation, const float *base, const float *center, float radius, float omega, float t,
                        float *p, float *v)

STATE_SIZE = QS_COUNT
MAX_OBSTACLES = COURSE_MAX_OBSTACLES   # what an obstacle field may hold
MAX_RINGS = COURSE_MAX_RINGS           # what a race course may hold
OBS_DIM = OBS_SIZE
OBS_LAYOUT_VERSION = OBS_VERSION
GRAVITY = QUAD_GRAVITY_MS2

# enum names in enum order, from the C headers
TASK_NAMES = tuple(env_task_name(i).decode() for i in range(NUM_TASKS))
FORMATION_NAMES = tuple(env_formation_name(i).decode() for i in range(NUM_FORMATIONS))
CRASH_CAUSE_NAMES = tuple(env_crash_cause_name(i).decode() for i in range(1, NUM_CRASH_CAUSES))  # CRASH_NONE left out
ACTION_MODE_NAMES = tuple(quad_action_mode_name(i).decode() for i in range(NUM_ACTION_MODES))
INTEGRATOR_NAMES = tuple(quad_integrator_name(i).decode() for i in range(NUM_INTEGRATORS))


def _layout(starts, int size):
    """name -> (offset, length) of each block, from the blocks' start offsets in a vector of `size` floats."""
    order = sorted(starts, key=starts.get)
    ends = [starts[k] for k in order[1:]] + [size]
    return {k: (starts[k], end - starts[k]) for k, end in zip(order, ends)}


def _obs_layout():
    starts = {
        "velocity": OBS_VEL, "body_rates": OBS_RATES, "rotation": OBS_ROT, "height": OBS_HEIGHT,
        "last_action": OBS_LAST_ACTION, "target_position": OBS_TARGET_POS, "target_distance": OBS_TARGET_DIST,
        "target_velocity": OBS_TARGET_VEL, "ring_normal": OBS_RING_NORMAL, "ring_radius": OBS_RING_RADIUS,
        "next_ring_position": OBS_NEXT_RING_POS, "next_ring_normal": OBS_NEXT_RING_NORMAL,
        "drones": OBS_DRONES, "obstacles": OBS_OBSTACLES, "task": OBS_TASK, "radius": OBS_RADIUS,
        "hover_thrust": OBS_HOVER_THRUST,
    }
    return _layout(starts, OBS_SIZE)


def _priv_layout():
    return _layout({
        "mass": PRIV_MASS, "arm": PRIV_ARM, "inertia": PRIV_INERTIA, "thrust_to_weight": PRIV_THRUST_TO_WEIGHT,
        "hover_thrust": PRIV_HOVER_THRUST, "hover_belief_error": PRIV_HOVER_BELIEF_ERROR,
        "torque_ratio": PRIV_TORQUE_RATIO, "tau_up": PRIV_TAU_UP, "tau_down": PRIV_TAU_DOWN, "drag": PRIV_DRAG,
        "ang_damp": PRIV_ANG_DAMP, "gains": PRIV_GAINS, "max_rate": PRIV_MAX_RATE, "latency": PRIV_LATENCY,
        "wind": PRIV_WIND, "obs_noise": PRIV_OBS_NOISE,
    }, PRIV_SIZE)


# name -> (offset, length) of each block of observation.h, and its scales (see observation.h)
OBS_LAYOUT = _obs_layout()
# the same for privileged.h: what the simulator knows of each drone and only an asymmetric critic reads
PRIV_DIM = PRIV_SIZE
PRIV_LAYOUT_VERSION = PRIV_VERSION
PRIV_LAYOUT = _priv_layout()
OBS_STRIDES = {"drones": OBS_DRONE_STRIDE, "obstacles": OBS_OBSTACLE_STRIDE}
OBS_SCALES = {
    "velocity": OBS_VEL_SCALE, "body_rates": OBS_RATE_SCALE, "height": OBS_HEIGHT_SCALE,
    "target_clip": OBS_TARGET_CLIP, "target_distance": OBS_DIST_SCALE, "ring_clip": OBS_RING_CLIP,
    "drone_clip": OBS_DRONE_CLIP, "obstacle_clip": OBS_OBSTACLE_CLIP, "obstacle_radius": OBS_OBSTACLE_RADIUS_SCALE,
    "obstacle_gap": OBS_GAP_CLIP, "radius": OBS_RADIUS_SCALE,
}


# ---------------------------------------------------------------- dict <-> struct

cdef void _vec3(float *dst, object src, str name) except *:
    vals = list(src)
    if len(vals) != 3:
        raise ValueError(f"{name}: expected 3 values, got {len(vals)}")
    for k in range(3):
        dst[k] = float(vals[k])


cdef void _range(Range *dst, object src, str name) except *:
    lo, hi = src
    if not (float(lo) <= float(hi)):
        raise ValueError(f"{name}: range lower bound {lo} exceeds upper bound {hi}")
    dst.lo = float(lo)
    dst.hi = float(hi)


cdef void _fill_drone(DroneParams *d, dict p) except *:
    d.mass = p["mass"]
    d.arm = p["arm"]
    _vec3(d.inertia, p["inertia"], "inertia")
    d.k_thrust = p["k_thrust"]
    d.k_torque = p["k_torque"]
    d.tau_up = p["tau_up"]
    d.tau_down = p["tau_down"]
    d.omega_max = p["omega_max"]
    _vec3(d.drag, p["drag"], "drag")
    _vec3(d.ang_damp, p["ang_damp"], "ang_damp")
    _vec3(d.kp, p["kp"], "kp")
    _vec3(d.ki, p["ki"], "ki")
    _vec3(d.kd, p["kd"], "kd")
    _vec3(d.max_rate, p["max_rate"], "max_rate")
    d.latency = p["latency"]
    d.radius = p["radius"]
    _vec3(d.wind, p.get("wind", (0.0, 0.0, 0.0)), "wind")


cdef dict _drone_dict(const DroneParams *d):
    return {
        "mass": d.mass, "arm": d.arm, "inertia": [d.inertia[k] for k in range(3)],
        "k_thrust": d.k_thrust, "k_torque": d.k_torque, "tau_up": d.tau_up, "tau_down": d.tau_down,
        "omega_max": d.omega_max, "drag": [d.drag[k] for k in range(3)],
        "ang_damp": [d.ang_damp[k] for k in range(3)], "kp": [d.kp[k] for k in range(3)],
        "ki": [d.ki[k] for k in range(3)], "kd": [d.kd[k] for k in range(3)],
        "max_rate": [d.max_rate[k] for k in range(3)], "latency": d.latency, "radius": d.radius,
        "wind": [d.wind[k] for k in range(3)],
    }


cdef void _fill_dr(DRConfig *c, dict p) except *:
    c.enabled = int(p["enabled"])
    c.around_nominal = int(p["around_nominal"])
    _range(&c.arm, p["arm"], "arm")
    c.arm_ref = p["arm_ref"]
    c.mass_ref = p["mass_ref"]
    _range(&c.mass_factor, p["mass_factor"], "mass_factor")
    _range(&c.inertia_xy, p["inertia_xy"], "inertia_xy")
    _range(&c.inertia_z, p["inertia_z"], "inertia_z")
    _range(&c.twr, p["twr"], "twr")
    c.omega_ref = p["omega_ref"]
    _range(&c.omega_factor, p["omega_factor"], "omega_factor")
    _range(&c.torque_ratio, p["torque_ratio"], "torque_ratio")
    _range(&c.tau, p["tau"], "tau")
    _range(&c.tau_down_ratio, p["tau_down_ratio"], "tau_down_ratio")
    _range(&c.drag_xy, p["drag_xy"], "drag_xy")
    _range(&c.drag_z, p["drag_z"], "drag_z")
    _range(&c.ang_damp, p["ang_damp"], "ang_damp")
    _range(&c.kp_rp, p["kp_rp"], "kp_rp")
    _range(&c.kp_yaw, p["kp_yaw"], "kp_yaw")
    _range(&c.ki_ratio, p["ki_ratio"], "ki_ratio")
    _range(&c.kd, p["kd"], "kd")
    c.tol_mass = p["tol_mass"]
    c.tol_inertia = p["tol_inertia"]
    c.tol_thrust = p["tol_thrust"]
    c.tol_torque = p["tol_torque"]
    c.tol_tau = p["tol_tau"]
    c.tol_drag = p["tol_drag"]
    c.tol_gains = p["tol_gains"]
    _range(&c.latency, p["latency"], "latency")
    _range(&c.obs_noise, p["obs_noise"], "obs_noise")
    _range(&c.wind, p["wind"], "wind")
    c.init_tilt = p["init_tilt"]
    c.init_vel = p["init_vel"]
    c.init_rate = p["init_rate"]
    c.ground_start_prob = p["ground_start_prob"]


cdef void _fill_course(Course *c, dict course) except *:
    rings = course.get("rings", [])
    obstacles = course.get("obstacles", [])
    if len(rings) > COURSE_MAX_RINGS or len(obstacles) > COURSE_MAX_OBSTACLES:
        raise ValueError(f"course: at most {COURSE_MAX_RINGS} rings and {COURSE_MAX_OBSTACLES} obstacles")
    c.num_rings = len(rings)
    for i, g in enumerate(rings):
        _vec3(c.rings[i].pos, g["position"], "ring position")
        _vec3(c.rings[i].normal, g["normal"], "ring normal")
        c.rings[i].radius = g["radius"]
    c.num_obstacles = len(obstacles)
    for i, s in enumerate(obstacles):
        _vec3(c.obstacles[i].pos, s["position"], "obstacle position")
        c.obstacles[i].radius = s["radius"]


cdef dict _course_dict(const Course *c):
    return {
        "rings": [{"position": [c.rings[i].pos[k] for k in range(3)],
                   "normal": [c.rings[i].normal[k] for k in range(3)],
                   "radius": c.rings[i].radius} for i in range(c.num_rings)],
        "obstacles": [{"position": [c.obstacles[i].pos[k] for k in range(3)],
                       "radius": c.obstacles[i].radius} for i in range(c.num_obstacles)],
    }


cdef void _fill_config(SimConfig *c, dict cfg) except *:
    c.physics_dt = cfg["physics_dt"]
    c.substeps = cfg["substeps"]
    c.integrator = cfg["integrator"]
    c.action_mode = cfg["action_mode"]
    c.auto_reset = int(cfg["auto_reset"])
    c.evaluation = int(cfg["evaluation"])
    weights = cfg["task_weights"]
    horizons = cfg["horizon_s"]
    for k in range(NUM_TASKS):
        c.task_weights[k] = weights[k]
        c.horizon_s[k] = horizons[k]
    hx, hy, h = cfg["arena"]
    c.arena.half_x = hx
    c.arena.half_y = hy
    c.arena.height = h
    c.collide_all = int(cfg["collide_all"])
    c.crash_speed = cfg["crash_speed"]
    c.crash_penalty = cfg["crash_penalty"]
    c.success_radius = cfg["success_radius"]
    c.follow_radius = cfg["follow_radius"]
    c.formation_radius = cfg["formation_radius"]
    c.goal_radius = cfg["goal_radius"]
    c.formation_spacing = cfg["formation_spacing"]
    c.clearance_margin = cfg["clearance_margin"]
    c.clearance_weight = cfg["clearance_weight"]
    c.clearance_time = cfg["clearance_time"]
    c.rim_lookahead = cfg["rim_lookahead"]
    c.race_tight_room = cfg["race_tight_room"]
    c.smooth_weight = cfg["smooth_weight"]
    limits = cfg["speed_limit"]
    for k in range(NUM_TASKS):
        c.speed_limit[k] = limits[k]
    c.speed_weight = cfg["speed_weight"]
    c.race_rings = cfg["race_rings"]
    _range(&c.ring_radius, cfg["ring_radius"], "ring_radius")
    c.obstacles_lo, c.obstacles_hi = cfg["obstacles"]
    _range(&c.obstacle_radius, cfg["obstacle_radius"], "obstacle_radius")
    c.blocked_line_prob = cfg["blocked_line_prob"]
    course = cfg.get("course")
    c.fixed_course = course is not None
    if course is not None:
        _fill_course(&c.course, course)
    _fill_drone(&c.nominal, cfg["nominal"])
    _fill_dr(&c.dr, cfg["dr"])


def _check_buffer(arr, name, dtype, shape):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise TypeError(f"{name}: dtype must be {np.dtype(dtype)}, got {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name}: shape must be {shape}, got {arr.shape}")
    if not arr.flags["C_CONTIGUOUS"] or not arr.flags["WRITEABLE"]:
        raise ValueError(f"{name}: must be a writeable C-contiguous array")


LOG_FIELDS = ("n", "episode_return", "episode_length", "score", "crash", "out_of_bounds", "timeout",
              "aux_sum", "aux_count") + tuple("crash_" + name for name in CRASH_CAUSE_NAMES)


cdef class CVecEnv:
    """num_envs C envs of agents_per_env drones each, stepping into caller-owned numpy buffers."""
    cdef DroneEnv *envs
    cdef int num_envs, agents
    cdef readonly object observations, actions, rewards, terminals, truncations, privileged

    def __cinit__(self):
        self.envs = NULL
        self.num_envs = 0

    def __init__(self, dict cfg, int num_envs, int agents_per_env, observations, actions, rewards, terminals,
                 truncations, uint64_t seed=0, privileged=None):
        if num_envs < 1 or agents_per_env < 1:
            raise ValueError("num_envs and agents_per_env must be at least 1")
        cdef int total = num_envs * agents_per_env
        _check_buffer(observations, "observations", np.float32, (total, OBS_SIZE))
        _check_buffer(actions, "actions", np.float32, (total, 4))
        _check_buffer(rewards, "rewards", np.float32, (total,))
        _check_buffer(terminals, "terminals", np.uint8, (total,))
        _check_buffer(truncations, "truncations", np.uint8, (total,))
        if privileged is not None:
            _check_buffer(privileged, "privileged", np.float32, (total, PRIV_SIZE))
        cdef SimConfig c
        _fill_config(&c, cfg)
        self.observations, self.actions, self.rewards = observations, actions, rewards
        self.terminals, self.truncations = terminals, truncations
        self.privileged = privileged
        cdef float[:, ::1] obs = observations
        cdef float[:, ::1] act = actions
        cdef float[::1] rew = rewards
        cdef uint8_t[::1] term = terminals
        cdef uint8_t[::1] trunc = truncations
        self.envs = <DroneEnv *>calloc(num_envs, sizeof(DroneEnv))
        if self.envs == NULL:
            raise MemoryError()
        self.num_envs = num_envs
        self.agents = agents_per_env
        cdef int i, off
        for i in range(num_envs):
            if env_init(&self.envs[i], &c, agents_per_env, seed + <uint64_t>i) != 0:
                raise MemoryError("drone env allocation failed")
            off = i * agents_per_env
            env_bind(&self.envs[i], &obs[off, 0], &act[off, 0], &rew[off], &term[off], &trunc[off])
        cdef float[:, ::1] priv
        if privileged is not None:
            priv = privileged
            for i in range(num_envs):
                env_bind_privileged(&self.envs[i], &priv[i * agents_per_env, 0])

    def __dealloc__(self):
        cdef int i
        if self.envs != NULL:
            for i in range(self.num_envs):
                env_close(&self.envs[i])
            free(self.envs)
            self.envs = NULL

    def reset(self, uint64_t seed):
        cdef int i
        with nogil:
            for i in range(self.num_envs):
                env_reset(&self.envs[i], seed * 1000003ULL + <uint64_t>i)

    def step(self):
        cdef int i
        with nogil:
            for i in range(self.num_envs):
                env_step(&self.envs[i])

    def logs(self, bint clear=True):
        """Per-task sums over episodes finished since the last call."""
        out = []
        cdef int i, k, c
        for k in range(NUM_TASKS):
            sums = dict.fromkeys(LOG_FIELDS, 0.0)
            for i in range(self.num_envs):
                l = self.envs[i].logs[k]
                sums["n"] += l.n
                sums["episode_return"] += l.episode_return
                sums["episode_length"] += l.episode_length
                sums["score"] += l.score
                sums["crash"] += l.crash
                sums["out_of_bounds"] += l.out_of_bounds
                sums["timeout"] += l.timeout
                sums["aux_sum"] += l.aux_sum
                sums["aux_count"] += l.aux_count
                for c in range(1, NUM_CRASH_CAUSES):
                    sums["crash_" + CRASH_CAUSE_NAMES[c - 1]] += l.crash_cause[c]
            out.append(sums)
        if clear:
            for i in range(self.num_envs):
                for k in range(NUM_TASKS):
                    memset(&self.envs[i].logs[k], 0, sizeof(TaskLog))
        return out

    def nonfinite_actions(self):
        """How many non-finite action values were replaced by 0 since creation."""
        return sum(self.envs[i].nonfinite_actions for i in range(self.num_envs))

    def _locate(self, int agent):
        if agent < 0 or agent >= self.num_envs * self.agents:
            raise IndexError(f"agent {agent} out of range [0, {self.num_envs * self.agents})")
        return agent // self.agents, agent % self.agents

    def get_states(self, float[:, ::1] out):
        """Copy every agent's physical state (QS_COUNT values) into out."""
        if out.shape[0] != self.num_envs * self.agents or out.shape[1] != QS_COUNT:
            raise ValueError(f"out must have shape ({self.num_envs * self.agents}, {QS_COUNT})")
        cdef int i, j
        for i in range(self.num_envs):
            for j in range(self.agents):
                env_get_state(&self.envs[i], j, &out[i * self.agents + j, 0])

    def set_state(self, int agent, float[::1] x):
        if x.shape[0] != QS_COUNT:
            raise ValueError(f"state must have {QS_COUNT} values")
        e, j = self._locate(agent)
        env_set_state(&self.envs[<int>e], <int>j, &x[0])

    def get_targets(self, float[:, ::1] pos, float[:, ::1] vel):
        cdef int i, j, k
        for i in range(self.num_envs):
            for j in range(self.agents):
                for k in range(3):
                    pos[i * self.agents + j, k] = self.envs[i].target[3 * j + k]
                    vel[i * self.agents + j, k] = self.envs[i].target_vel[3 * j + k]

    def set_target(self, int agent, pos, vel=(0.0, 0.0, 0.0)):
        e, j = self._locate(agent)
        _vec3(&self.envs[<int>e].target[3 * <int>j], pos, "target")
        _vec3(&self.envs[<int>e].target_vel[3 * <int>j], vel, "target velocity")

    def agent_info(self, int agent):
        e, j = self._locate(agent)
        cdef Agent *a = &self.envs[<int>e].agents[<int>j]
        return {"drone": _drone_dict(&a.drone), "obs_noise": a.obs_noise, "hover_thrust_known": a.hover_thrust_known,
                "t": a.t, "episode_return": a.ep_return,
                "episode_length": a.ep_len, "ring": a.ring, "rings_passed": a.rings_passed, "slot": a.slot,
                "reached": a.reached,
                # what the episode's crash hit when this step ended it (until the next step); "" otherwise
                "crash_cause": CRASH_CAUSE_NAMES[a.crash_cause - 1] if a.crash_cause > 0 else ""}

    def set_drone(self, int agent, dict params):
        cdef DroneParams d
        _fill_drone(&d, params)
        e, j = self._locate(agent)
        env_set_drone(&self.envs[<int>e], <int>j, &d)

    def env_info(self, int env):
        if env < 0 or env >= self.num_envs:
            raise IndexError(f"env {env} out of range")
        cdef DroneEnv *e = &self.envs[env]
        return {"task": e.task, "step": e.step, "horizon": e.horizon, "t": e.t, "formation": e.formation,
                "course": _course_dict(&e.course), "control_dt": e.dt}


# ---------------------------------------------------------------- free functions

def observe(dict s):
    """Build one observation from a state and target given in world-frame SI units (see drone_sim.observe)."""
    cdef ObsInput inp
    _vec3(inp.pos, s["position"], "position")
    _vec3(inp.vel, s["velocity"], "velocity")
    q = list(s["quaternion"])
    if len(q) != 4:
        raise ValueError("quaternion: expected 4 values (w, x, y, z)")
    for k in range(4):
        inp.quat[k] = q[k]
    _vec3(inp.omega, s["body_rates"], "body_rates")
    a = list(s["last_action"])
    if len(a) != 4:
        raise ValueError("last_action: expected 4 values")
    for k in range(4):
        inp.last_action[k] = a[k]
    _vec3(inp.target_pos, s["target_position"], "target_position")
    _vec3(inp.target_vel, s.get("target_velocity", (0, 0, 0)), "target_velocity")
    ring = s.get("ring")
    inp.has_ring = ring is not None
    if ring is not None:
        _vec3(inp.ring_normal, ring["normal"], "ring normal")
        inp.ring_radius = ring["radius"]
    nxt = s.get("next_ring")
    inp.has_next_ring = nxt is not None
    if nxt is not None:
        _vec3(inp.next_ring_pos, nxt["position"], "next ring position")
        _vec3(inp.next_ring_normal, nxt["normal"], "next ring normal")
    drones = list(s.get("drones", ()))[:OBS_K_DRONES]
    inp.num_drones = len(drones)
    for j, d in enumerate(drones):
        _vec3(inp.drone_pos[j], d["position"], "drone position")
        _vec3(inp.drone_vel[j], d.get("velocity", (0, 0, 0)), "drone velocity")
    obstacles = list(s.get("obstacles", ()))[:OBS_K_OBSTACLES]
    inp.num_obstacles = len(obstacles)
    for j, ob in enumerate(obstacles):
        _vec3(inp.obstacle_pos[j], ob["position"], "obstacle position")
        inp.obstacle_radius[j] = ob["radius"]
    inp.task = s["task"]
    inp.radius, inp.hover_thrust = obs_self(s["drone"])
    out = np.zeros(OBS_SIZE, dtype=np.float32)
    cdef float[::1] view = out
    obs_build(&inp, &view[0])
    return out


def nearest_obstacles(position, obstacles, int k=OBS_K_OBSTACLES):
    """Indices of the k obstacles ({'position', 'radius'}) nearest to position by surface distance, nearest first:
    the simulator's own selection (course_nearest_obstacles), so deploy lists the obstacles training did."""
    cdef int n = len(obstacles), j
    cdef float p[3]
    cdef int out[COURSE_NEAREST_MAX]
    if not 0 <= k <= COURSE_NEAREST_MAX:
        raise ValueError(f"k must be in 0..{COURSE_NEAREST_MAX}, got {k}")
    _vec3(p, position, "position")
    cdef Sphere *s = <Sphere *>calloc(max(n, 1), sizeof(Sphere))
    if s == NULL:
        raise MemoryError()
    try:
        for j in range(n):
            _vec3(s[j].pos, obstacles[j]["position"], "obstacle position")
            s[j].radius = obstacles[j]["radius"]
        found = course_nearest_obstacles(s, n, p, k, out)
        return [out[j] for j in range(found)]
    finally:
        free(s)


def assign_slots(positions, slots):
    """Slot index of each drone (row of positions, m) among slots (m >= drones): the simulator's own rule
    (slot_assign.h, no two straight paths to the slots cross), so deploy fills a formation as training did."""
    cdef float[:, ::1] p = np.ascontiguousarray(positions, dtype=np.float32).reshape(-1, 3)
    cdef float[:, ::1] s = np.ascontiguousarray(slots, dtype=np.float32).reshape(-1, 3)
    cdef int n = p.shape[0], m = s.shape[0]
    if m < n:
        raise ValueError(f"{n} drones need at least {n} slots, got {m}")
    if n == 0:
        return []
    if not (np.isfinite(p).all() and np.isfinite(s).all()):
        raise ValueError("drone and slot positions must be finite")
    cdef int[::1] slot_of = np.empty(n, dtype=np.intc)
    cdef int[::1] taken = np.empty(m, dtype=np.intc)
    slot_assign(n, &p[0, 0], m, &s[0, 0], &slot_of[0], &taken[0], SLOT_ASSIGN_MAX_PASSES)
    return [int(x) for x in slot_of]


def observe_swarm(const float[:, ::1] position, const float[:, ::1] velocity, const float[:, ::1] quaternion,
                  const float[:, ::1] body_rates, const float[:, ::1] last_action, const float[:, ::1] target_position,
                  const float[:, ::1] target_velocity, const int[:, ::1] neighbours,
                  const float[:, ::1] neighbour_position, const float[:, ::1] neighbour_velocity,
                  const float[::1] radius, const float[::1] hover_thrust, float[:, ::1] out, int task):
    """Observations of n drones at once (see drone_sim.observe_swarm): row i of every input is drone i;
    neighbours[i] lists rows of neighbour_position / neighbour_velocity, nearest first, -1 after the last;
    radius and hover_thrust are each drone's obs_self."""
    cdef Py_ssize_t n = position.shape[0], i, j, k, m
    cdef Py_ssize_t kmax = neighbours.shape[1]
    cdef ObsInput inp
    if kmax > OBS_K_DRONES:
        kmax = OBS_K_DRONES
    with nogil:
        for i in range(n):
            memset(&inp, 0, sizeof(ObsInput))
            for k in range(3):
                inp.pos[k] = position[i, k]
                inp.vel[k] = velocity[i, k]
                inp.omega[k] = body_rates[i, k]
                inp.target_pos[k] = target_position[i, k]
                inp.target_vel[k] = target_velocity[i, k]
            for k in range(4):
                inp.quat[k] = quaternion[i, k]
                inp.last_action[k] = last_action[i, k]
            m = 0
            for j in range(kmax):
                if neighbours[i, j] < 0:
                    break
                for k in range(3):
                    inp.drone_pos[m][k] = neighbour_position[neighbours[i, j], k]
                    inp.drone_vel[m][k] = neighbour_velocity[neighbours[i, j], k]
                m += 1
            inp.num_drones = <int>m
            inp.task = task
            inp.radius = radius[i]
            inp.hover_thrust = hover_thrust[i]
            obs_build(&inp, &out[i, 0])


cdef void _fill_thrust(DroneParams *d, object p) except *:
    # the three parameters the thrust figures depend on; a partial dict (a policy's metadata) is enough
    memset(d, 0, sizeof(DroneParams))
    try:
        d.mass = float(p["mass"])
        d.k_thrust = float(p["k_thrust"])
        d.omega_max = float(p["omega_max"])
    except KeyError as exc:
        raise KeyError(f"drone params need mass, k_thrust and omega_max; missing {exc}") from None
    if not (d.mass > 0 and d.k_thrust > 0 and d.omega_max > 0):
        raise ValueError(f"drone params: mass {d.mass}, k_thrust {d.k_thrust} and omega_max {d.omega_max} "
                         "must be positive")


def hover_omega(params):
    """Motor speed (rad/s) at which the drone hovers."""
    cdef DroneParams d
    _fill_thrust(&d, params)
    return quad_hover_omega(&d)


def hover_action(params, mode):
    """The action (4 values in [-1, 1]) that holds a level hover in action mode `mode` ('rpm' / 'ctbr' or
    its enum value)."""
    cdef DroneParams d
    cdef float out[4]
    if isinstance(mode, str):
        if mode not in ACTION_MODE_NAMES:
            raise ValueError(f"unknown action mode {mode!r}; one of {', '.join(ACTION_MODE_NAMES)}")
        mode = ACTION_MODE_NAMES.index(mode)
    elif not 0 <= int(mode) < NUM_ACTION_MODES:
        raise ValueError(f"unknown action mode {mode!r}")
    _fill_thrust(&d, params)
    quad_hover_action(&d, int(mode), out)
    return [out[0], out[1], out[2], out[3]]


def max_thrust(params):
    """Collective thrust (N) of the four motors at omega_max."""
    cdef DroneParams d
    _fill_thrust(&d, params)
    return quad_max_thrust(&d)


def thrust_to_weight(params):
    cdef DroneParams d
    _fill_thrust(&d, params)
    return quad_thrust_to_weight(&d)


def obs_self(params):
    """(collision radius m, hover thrust fraction): what the observation says about the drone itself, from
    its params (a params file, a policy's nominal drone)."""
    try:
        radius = float(params["radius"])
    except KeyError:
        raise KeyError("drone params need radius (the collision radius the observation carries)") from None
    if not radius >= 0.0:
        raise ValueError(f"drone params: radius {radius} must be >= 0")
    return radius, hover_thrust_fraction(params)


def hover_thrust_fraction(params):
    """Hover thrust as a fraction of max_thrust (a normalized thrust setpoint, MOT_THST_HOVER's meaning)."""
    cdef DroneParams d
    _fill_thrust(&d, params)
    return quad_hover_thrust_fraction(&d)


def sample_drones(dict dr, dict nominal, int count, uint64_t seed):
    """Draw `count` drones the way episodes do; returns a list of (params dict, obs_noise)."""
    cdef DRConfig c
    cdef DroneParams nom
    cdef Rng rng
    cdef SampledDrone sd
    _fill_dr(&c, dr)
    _fill_drone(&nom, nominal)
    rng_seed(&rng, seed)
    out = []
    for _ in range(count):
        dr_sample(&c, &nom, &rng, &sd)
        out.append((_drone_dict(&sd.params), sd.obs_noise))
    return out


def generate_course(uint64_t seed, int rings=7, arena=(15.0, 15.0, 8.0), ring_radius=(0.6, 1.0)):
    cdef Course c
    cdef Arena a
    cdef Rng rng
    a.half_x, a.half_y, a.height = arena
    rng_seed(&rng, seed)
    course_generate(&c, &a, rings, ring_radius[0], ring_radius[1], &rng)
    c.num_obstacles = 0
    return _course_dict(&c)


def formation_layout_of(str name, int n, float spacing, float yaw=0.0, arena=(15.0, 15.0, 8.0)):
    """The swarm task's formation `name` for n drones, as the simulator lays it out (formation_layout in
    drone_env.h): {'formation', 'base' (n, 3) slot offsets (orbit: phase angle in column 0), 'radius',
    'extent' (half widths across and up)}."""
    if name not in FORMATION_NAMES:
        raise ValueError(f"unknown formation {name!r}; choose among {', '.join(FORMATION_NAMES)}")
    if n < 1 or n > 4096:
        raise ValueError(f"a formation needs 1..4096 drones, got {n}")
    if not spacing > 0:
        raise ValueError(f"formation spacing must be positive, got {spacing}")
    cdef Arena a
    a.half_x, a.half_y, a.height = arena
    base = np.zeros((n, 3), dtype=np.float32)
    cdef float[:, ::1] b = base
    cdef float radius = 0.0, ext_xy = 0.0, ext_z = 0.0
    formation_layout(FORMATION_NAMES.index(name), n, spacing, yaw, &a, &b[0, 0], &radius, &ext_xy, &ext_z)
    return {"formation": name, "base": base, "radius": float(radius), "extent": (float(ext_xy), float(ext_z))}


def formation_slots_at(dict layout, center, float omega=0.0, float t=0.0):
    """Positions and velocities ((n, 3) each) of every slot of a formation_layout_of() layout at time t, around
    `center` (orbit slots go round at omega rad/s): formation_slot in drone_env.h, which the swarm task uses."""
    base = np.ascontiguousarray(layout["base"], dtype=np.float32)
    n = base.shape[0]
    cdef int f = FORMATION_NAMES.index(layout["formation"])
    cdef float c[3]
    _vec3(c, center, "center")
    pos = np.zeros((n, 3), dtype=np.float32)
    vel = np.zeros((n, 3), dtype=np.float32)
    cdef float[:, ::1] b = base
    cdef float[:, ::1] pv = pos
    cdef float[:, ::1] vv = vel
    cdef float radius = layout["radius"]
    for j in range(n):
        formation_slot(f, &b[j, 0], c, radius, omega, t, &pv[j, 0], &vv[j, 0])
    return pos, vel


def classify_ring_crossing(dict ring, p0, p1):
    """(result, rim_distance) for the segment p0 -> p1: 0 no cross, 1 passed, 2 wrong way, 3 outside."""
    cdef Ring g
    cdef float a[3]
    cdef float b[3]
    cdef float rim
    _vec3(g.pos, ring["position"], "position")
    _vec3(g.normal, ring["normal"], "normal")
    g.radius = ring["radius"]
    _vec3(a, p0, "p0")
    _vec3(b, p1, "p1")
    res = ring_cross(&g, a, b, &rim)
    return res, rim
