# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython binding of the ocean envs: one class drives any env of OCEAN_ENVS (csrc/ocean_envs.h) by its spec.

A COceanVec holds num_envs C envs of one kind in one calloc'd block and steps them in a nogil loop. Each env
points into its slice of the caller's numpy buffers, so a step copies nothing across the boundary; their
dtype, shape and layout are checked once, here, because a wrong one corrupts memory silently.
"""
import numpy as np

from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

cdef extern from "ocean_envs.h" nogil:
    ctypedef struct OceanLog:
        float n, episode_return, episode_length, score
    ctypedef struct DrawCmd:
        int kind
        float x, y, w, h
        unsigned char r, g, b, a
    ctypedef struct OceanSpec:
        const char *name
        int obs_size, num_actions, default_agents, min_agents, max_agents
        float aspect
        size_t env_size
        int (*init)(void *env, int agents, uint64_t seed) noexcept nogil
        void (*bind)(void *env, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                     unsigned char *truncations) noexcept nogil
        void (*reset)(void *env, uint64_t seed) noexcept nogil
        void (*step)(void *env) noexcept nogil
        void (*close)(void *env) noexcept nogil
        OceanLog *(*log)(void *env) noexcept nogil
        int (*render)(const void *env, DrawCmd *out, int max) noexcept nogil
    const OceanSpec **OCEAN_ENVS
    int OCEAN_NUM_ENVS
    uint64_t rng_splitmix64(uint64_t *x)
    void connect4_debug_script(void *env, const int *moves, int n, int agent_first)
    int snake_debug_set(void *env, int op, int index, int x, int y, int heading, int length)

# The render list as numpy sees it; the binding checks it matches the C struct's layout.
DRAW_DTYPE = np.dtype([("kind", np.int32), ("x", np.float32), ("y", np.float32), ("w", np.float32),
                       ("h", np.float32), ("r", np.uint8), ("g", np.uint8), ("b", np.uint8), ("a", np.uint8)])
DRAW_KINDS = ("rect", "circle", "line")
MAX_DRAW = 1024
if DRAW_DTYPE.itemsize != sizeof(DrawCmd):
    raise ImportError(f"DrawCmd is {sizeof(DrawCmd)} bytes in C but {DRAW_DTYPE.itemsize} in DRAW_DTYPE")


cdef dict _spec_dict(const OceanSpec *s):
    return {"name": s.name.decode(), "obs_size": s.obs_size, "num_actions": s.num_actions,
            "default_agents": s.default_agents, "min_agents": s.min_agents, "max_agents": s.max_agents,
            "aspect": s.aspect}


def specs():
    """Every env of OCEAN_ENVS as a dict (name, obs_size, num_actions, agent counts, aspect), in table order."""
    return [_spec_dict(OCEAN_ENVS[i]) for i in range(OCEAN_NUM_ENVS)]


cdef const OceanSpec *_find(str name) except NULL:
    cdef int i
    for i in range(OCEAN_NUM_ENVS):
        if OCEAN_ENVS[i].name.decode() == name:
            return OCEAN_ENVS[i]
    known = ", ".join(OCEAN_ENVS[i].name.decode() for i in range(OCEAN_NUM_ENVS))
    raise ValueError(f"unknown ocean env {name!r}; known envs: {known}")


def _check_buffer(arr, name, dtype, shape):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise TypeError(f"{name}: dtype must be {np.dtype(dtype)}, got {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name}: shape must be {shape}, got {arr.shape}")
    if not arr.flags["C_CONTIGUOUS"] or not arr.flags["WRITEABLE"]:
        raise ValueError(f"{name}: must be a writeable C-contiguous array")


cdef uint64_t _env_seed(uint64_t seed, int i) noexcept nogil:
    # Mixed rather than seed + i, so that seed 1 is not seed 0 shifted by one env.
    cdef uint64_t x = seed ^ (<uint64_t>i * 0xD1B54A32D192ED03ULL)
    return rng_splitmix64(&x)


cdef class COceanVec:
    """num_envs C envs of one ocean env, agents_per_env agents each, stepping into caller-owned buffers."""
    cdef const OceanSpec *spec
    cdef char *envs
    cdef int num_envs, agents, inited
    cdef DrawCmd *draw
    cdef readonly object observations, actions, rewards, terminals, truncations

    def __cinit__(self):
        self.spec = NULL
        self.envs = NULL
        self.draw = NULL
        self.num_envs = 0
        self.inited = 0

    def __init__(self, str name, int num_envs, int agents_per_env, observations, actions, rewards, terminals,
                 truncations, uint64_t seed=0):
        self.spec = _find(name)
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if agents_per_env < self.spec.min_agents or agents_per_env > self.spec.max_agents:
            raise ValueError(f"{name}: agents_per_env must be within [{self.spec.min_agents}, "
                             f"{self.spec.max_agents}], got {agents_per_env}")
        cdef int total = num_envs * agents_per_env
        _check_buffer(observations, "observations", np.float32, (total, self.spec.obs_size))
        _check_buffer(actions, "actions", np.int32, (total,))
        _check_buffer(rewards, "rewards", np.float32, (total,))
        _check_buffer(terminals, "terminals", np.uint8, (total,))
        _check_buffer(truncations, "truncations", np.uint8, (total,))
        self.observations, self.actions, self.rewards = observations, actions, rewards
        self.terminals, self.truncations = terminals, truncations
        cdef float[:, ::1] obs = observations
        cdef int32_t[::1] act = actions
        cdef float[::1] rew = rewards
        cdef uint8_t[::1] term = terminals
        cdef uint8_t[::1] trunc = truncations
        self.envs = <char *>calloc(num_envs, self.spec.env_size)
        self.draw = <DrawCmd *>calloc(MAX_DRAW, sizeof(DrawCmd))
        if self.envs == NULL or self.draw == NULL:
            raise MemoryError()
        self.num_envs = num_envs
        self.agents = agents_per_env
        cdef int i, off
        for i in range(num_envs):
            if self.spec.init(self._env(i), agents_per_env, _env_seed(seed, i)) != 0:
                raise MemoryError(f"{name}: env init failed")
            self.inited = i + 1
            off = i * agents_per_env
            self.spec.bind(self._env(i), &obs[off, 0], &act[off], &rew[off], &term[off], &trunc[off])

    cdef inline void *_env(self, int i) noexcept nogil:
        return self.envs + <size_t>i * self.spec.env_size

    def __dealloc__(self):
        cdef int i
        if self.envs != NULL:
            for i in range(self.inited):
                self.spec.close(self._env(i))
            free(self.envs)
            self.envs = NULL
        free(self.draw)
        self.draw = NULL

    @property
    def name(self):
        return self.spec.name.decode()

    @property
    def obs_size(self):
        return self.spec.obs_size

    @property
    def num_actions(self):
        return self.spec.num_actions

    @property
    def default_agents(self):
        return self.spec.default_agents

    @property
    def min_agents(self):
        return self.spec.min_agents

    @property
    def max_agents(self):
        return self.spec.max_agents

    @property
    def aspect(self):
        return self.spec.aspect

    def reset(self, uint64_t seed):
        """Re-seed every env (env i from a mix of seed and i) and start fresh episodes."""
        cdef int i
        with nogil:
            for i in range(self.num_envs):
                self.spec.reset(self._env(i), _env_seed(seed, i))

    def step(self):
        cdef int i
        with nogil:
            for i in range(self.num_envs):
                self.spec.step(self._env(i))

    def logs(self, bint clear=True):
        """Sums over episodes finished since the last clear: {n, episode_return, episode_length, score}."""
        cdef double n = 0, ret = 0, length = 0, score = 0
        cdef OceanLog *l
        cdef int i
        for i in range(self.num_envs):
            l = self.spec.log(self._env(i))
            n += l.n
            ret += l.episode_return
            length += l.episode_length
            score += l.score
            if clear:
                l.n = l.episode_return = l.episode_length = l.score = 0
        return {"n": n, "episode_return": ret, "episode_length": length, "score": score}

    def render(self, int env_index=0):
        """Env env_index's display list as a structured array of DRAW_DTYPE (see ocean.h for the fields)."""
        if env_index < 0 or env_index >= self.num_envs:
            raise IndexError(f"env_index {env_index} out of range [0, {self.num_envs})")
        cdef int n = self.spec.render(self._env(env_index), self.draw, MAX_DRAW)
        out = np.empty(n, dtype=DRAW_DTYPE)
        cdef char[::1] raw = out.view(np.int8)
        if n > 0:
            memcpy(&raw[0], self.draw, <size_t>n * sizeof(DrawCmd))
        return out

    def debug_connect4_script(self, int env_index, moves, int agent_first=-1):
        """Test hook for connect4 / connect4_hard: the opponent of env env_index plays `moves` (columns) in
        order at the start of every game (then its normal play), agent_first 1/0 fixes who starts (-1 random).
        A fresh game starts at once, its first observation written. Empty moves and -1 restore normal play."""
        if not self.name.startswith("connect4"):
            raise TypeError(f"debug_connect4_script needs a connect4 env, not {self.name}")
        if env_index < 0 or env_index >= self.num_envs:
            raise IndexError(f"env_index {env_index} out of range [0, {self.num_envs})")
        cdef int buf[42]
        moves = [int(m) for m in moves]
        if len(moves) > 42:
            raise ValueError("at most 42 scripted moves")
        for k, m in enumerate(moves):
            buf[k] = m
        connect4_debug_script(self._env(env_index), buf, len(moves), agent_first)

    def debug_snake_set(self, int env_index, int op, int index, int x, int y, int heading=0, int length=1):
        """Test hook for snake (snake.h: snake_debug_set): op 0 lays snake `index` straight, head at board cell
        (x, y), heading 0 up / 1 right / 2 down / 3 left, `length` cells long, as a fresh episode; op 1 moves
        food item `index` to (x, y). Every observation is rewritten. Returns 0, or -1 (nothing laid) when the
        arguments are out of range or the cells are not free."""
        if self.name != "snake":
            raise TypeError(f"debug_snake_set needs a snake env, not {self.name}")
        if env_index < 0 or env_index >= self.num_envs:
            raise IndexError(f"env_index {env_index} out of range [0, {self.num_envs})")
        return snake_debug_set(self._env(env_index), op, index, x, y, heading, length)
