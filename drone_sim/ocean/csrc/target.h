/* target.h: walk to the goal on a small grid. The sanity check of the trainer: a working PPO solves it in
 * seconds, so when it does not, the trainer is broken, not the env.
 *
 * One agent and one goal on distinct random cells of a TARGET_N x TARGET_N grid.
 * Observation (6 floats, each in [-1, 1]):
 *   0 agent x, 1 agent y, 2 goal x, 3 goal y   cell / (N - 1) mapped to [-1, 1]
 *   4 goal x - agent x, 5 goal y - agent y     in cells / (N - 1)
 * Actions: 0 stay, 1 up (y - 1), 2 down (y + 1), 3 left (x - 1), 4 right (x + 1); moves into the wall and
 * out-of-range actions stay.
 * Reward: +1 on reaching the goal (terminal), TARGET_STEP_COST on every other step, so the shortest path
 * has the highest return.
 * Episode end: goal reached (terminal), or TARGET_MAX_STEPS steps (truncation; the farthest goal is 2(N-1)
 * steps away, so every episode can be won).
 * score: 1 if the goal was reached, else 0 (the average is a success rate).
 * Render: at most TARGET_MAX_DRAW commands (background, grid lines, goal, agent), y down.
 */
#ifndef OCEAN_TARGET_H
#define OCEAN_TARGET_H

#include "ocean.h"

#define TARGET_N 9
#define TARGET_MAX_STEPS (2 * TARGET_N)
#define TARGET_STEP_COST (-0.01f)
#define TARGET_OBS 6
#define TARGET_MAX_DRAW (3 + 2 * (TARGET_N + 1))

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    Rng rng;
    OceanLog log;
    int ax, ay, gx, gy;
    int steps;
    float ep_return;
} Target;

static inline void target_observe(Target *e) {
    const float s = 2.0f / (float)(TARGET_N - 1);
    float *o = e->io.obs;
    o[0] = (float)e->ax * s - 1.0f;
    o[1] = (float)e->ay * s - 1.0f;
    o[2] = (float)e->gx * s - 1.0f;
    o[3] = (float)e->gy * s - 1.0f;
    o[4] = (float)(e->gx - e->ax) * (0.5f * s);
    o[5] = (float)(e->gy - e->ay) * (0.5f * s);
}

static inline void target_new_episode(Target *e) {
    e->ax = rng_int(&e->rng, TARGET_N);
    e->ay = rng_int(&e->rng, TARGET_N);
    /* Drawing the goal among the N*N - 1 other cells keeps it distinct without a retry loop. */
    int c = rng_int(&e->rng, TARGET_N * TARGET_N - 1);
    if (c >= e->ay * TARGET_N + e->ax) c++;
    e->gx = c % TARGET_N;
    e->gy = c / TARGET_N;
    e->steps = 0;
    e->ep_return = 0.0f;
}

static inline int target_init(Target *e, int agents, uint64_t seed) {
    if (agents != 1) return -1;
    rng_seed(&e->rng, seed);
    e->log = (OceanLog){0, 0, 0, 0};
    target_new_episode(e);
    return 0;
}

static inline void target_bind(Target *e, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                               unsigned char *truncations) {
    e->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline void target_reset(Target *e, uint64_t seed) {
    rng_seed(&e->rng, seed);
    target_new_episode(e);
    ocean_clear_transition(&e->io, 1);
    target_observe(e);
}

static inline void target_step(Target *e) {
    switch (e->io.actions[0]) {
    case 1: e->ay -= e->ay > 0; break;
    case 2: e->ay += e->ay < TARGET_N - 1; break;
    case 3: e->ax -= e->ax > 0; break;
    case 4: e->ax += e->ax < TARGET_N - 1; break;
    default: break;
    }
    e->steps++;
    int reached = e->ax == e->gx && e->ay == e->gy;
    float r = reached ? 1.0f : TARGET_STEP_COST;
    int trunc = !reached && e->steps >= TARGET_MAX_STEPS;
    e->ep_return += r;
    e->io.rewards[0] = r;
    e->io.terminals[0] = (unsigned char)reached;
    e->io.truncations[0] = (unsigned char)trunc;
    if (reached || trunc) {
        ocean_log_episode(&e->log, e->ep_return, (float)e->steps, reached ? 1.0f : 0.0f);
        target_new_episode(e);
    }
    target_observe(e);
}

static inline void target_close(Target *e) { (void)e; }

static inline OceanLog *target_log(Target *e) { return &e->log; }

static inline int target_render(const Target *e, DrawCmd *out, int max) {
    const float cell = 1.0f / (float)TARGET_N;
    int n = 0;
    if (n < max) out[n++] = ocean_cmd(DRAW_RECT, 0.0f, 0.0f, 1.0f, 1.0f, 24, 26, 32);
    for (int k = 0; k <= TARGET_N; k++) {
        float t = (float)k * cell;
        if (n < max) out[n++] = ocean_cmd(DRAW_LINE, t, 0.0f, t, 1.0f, 60, 64, 76);
        if (n < max) out[n++] = ocean_cmd(DRAW_LINE, 0.0f, t, 1.0f, t, 60, 64, 76);
    }
    if (n < max)
        out[n++] = ocean_cmd(DRAW_RECT, ((float)e->gx + 0.1f) * cell, ((float)e->gy + 0.1f) * cell, 0.8f * cell,
                             0.8f * cell, 80, 200, 100);
    if (n < max)
        out[n++] = ocean_cmd(DRAW_CIRCLE, ((float)e->ax + 0.5f) * cell, ((float)e->ay + 0.5f) * cell, 0.35f * cell,
                             0.0f, 80, 150, 255);
    return n;
}

static inline int target_init_v(void *e, int agents, uint64_t seed) { return target_init((Target *)e, agents, seed); }
static inline void target_bind_v(void *e, float *o, int32_t *a, float *r, unsigned char *te, unsigned char *tr) {
    target_bind((Target *)e, o, a, r, te, tr);
}
static inline void target_reset_v(void *e, uint64_t seed) { target_reset((Target *)e, seed); }
static inline void target_step_v(void *e) { target_step((Target *)e); }
static inline void target_close_v(void *e) { target_close((Target *)e); }
static inline OceanLog *target_log_v(void *e) { return target_log((Target *)e); }
static inline int target_render_v(const void *e, DrawCmd *out, int max) {
    return target_render((const Target *)e, out, max);
}

static const OceanSpec TARGET_SPEC = {
    "target", TARGET_OBS, 5, 1, 1, 1, 1.0f, sizeof(Target),
    target_init_v, target_bind_v, target_reset_v, target_step_v, target_close_v, target_log_v, target_render_v,
};

#endif
