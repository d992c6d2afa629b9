/* cartpole.h: the classic cart-pole balance task (Barto, Sutton & Anderson 1983), with the constants and the
 * explicit Euler integration of the common gym version, so returns compare with published numbers.
 *
 * A pole is hinged on a cart that moves along a 1-D track; each step the agent pushes the cart left or right
 * with a fixed force. The episode starts with every state variable uniform in [-0.05, 0.05].
 * Observation (4 floats, roughly in [-1, 1] while the episode lasts):
 *   0 cart position x / 2.4 m            1 cart velocity / 2 m/s
 *   2 pole angle theta / 12 deg          3 pole angular velocity / 3 rad/s      (theta > 0: leaning right)
 * Actions: 0 push left, 1 push right (out-of-range actions push right when positive, left otherwise).
 * Reward: +1 for every step, the failing one included, so the return is the episode length.
 * Episode end: |x| > 2.4 m or |theta| > 12 deg (terminal); CARTPOLE_MAX_STEPS steps survived (truncation).
 * score: the episode length in steps (CARTPOLE_MAX_STEPS = solved).
 * Render: at most CARTPOLE_MAX_DRAW commands (track, limits, cart, wheels, pole), canvas aspect 2.
 */
#ifndef OCEAN_CARTPOLE_H
#define OCEAN_CARTPOLE_H

#include <math.h>

#include "ocean.h"

#define CARTPOLE_MAX_STEPS 500
#define CARTPOLE_OBS 4
#define CARTPOLE_MAX_DRAW 8

#define CP_GRAVITY 9.8f
#define CP_MASS_CART 1.0f
#define CP_MASS_POLE 0.1f
#define CP_HALF_LENGTH 0.5f
#define CP_FORCE 10.0f
#define CP_TAU 0.02f
#define CP_X_LIMIT 2.4f
#define CP_THETA_LIMIT (12.0f * 3.14159265f / 180.0f)

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    Rng rng;
    OceanLog log;
    float x, x_dot, theta, theta_dot;
    int steps;
} CartPole;

static inline void cartpole_observe(CartPole *e) {
    float *o = e->io.obs;
    o[0] = e->x * (1.0f / CP_X_LIMIT);
    o[1] = e->x_dot * 0.5f;
    o[2] = e->theta * (1.0f / CP_THETA_LIMIT);
    o[3] = e->theta_dot * (1.0f / 3.0f);
}

static inline void cartpole_new_episode(CartPole *e) {
    e->x = rng_uniform(&e->rng, -0.05f, 0.05f);
    e->x_dot = rng_uniform(&e->rng, -0.05f, 0.05f);
    e->theta = rng_uniform(&e->rng, -0.05f, 0.05f);
    e->theta_dot = rng_uniform(&e->rng, -0.05f, 0.05f);
    e->steps = 0;
}

static inline int cartpole_init(CartPole *e, int agents, uint64_t seed) {
    if (agents != 1) return -1;
    rng_seed(&e->rng, seed);
    e->log = (OceanLog){0, 0, 0, 0};
    cartpole_new_episode(e);
    return 0;
}

static inline void cartpole_bind(CartPole *e, float *obs, int32_t *actions, float *rewards,
                                 unsigned char *terminals, unsigned char *truncations) {
    e->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline void cartpole_reset(CartPole *e, uint64_t seed) {
    rng_seed(&e->rng, seed);
    cartpole_new_episode(e);
    ocean_clear_transition(&e->io, 1);
    cartpole_observe(e);
}

static inline void cartpole_step(CartPole *e) {
    const float total = CP_MASS_CART + CP_MASS_POLE, pml = CP_MASS_POLE * CP_HALF_LENGTH;
    float force = e->io.actions[0] > 0 ? CP_FORCE : -CP_FORCE;
    float c = cosf(e->theta), s = sinf(e->theta);
    float temp = (force + pml * e->theta_dot * e->theta_dot * s) / total;
    float theta_acc = (CP_GRAVITY * s - c * temp) /
                      (CP_HALF_LENGTH * (4.0f / 3.0f - CP_MASS_POLE * c * c / total));
    float x_acc = temp - pml * theta_acc * c / total;
    /* gym's Euler order: positions advance with the old velocities. */
    e->x += CP_TAU * e->x_dot;
    e->x_dot += CP_TAU * x_acc;
    e->theta += CP_TAU * e->theta_dot;
    e->theta_dot += CP_TAU * theta_acc;
    e->steps++;
    int fail = e->x < -CP_X_LIMIT || e->x > CP_X_LIMIT || e->theta < -CP_THETA_LIMIT || e->theta > CP_THETA_LIMIT;
    int trunc = !fail && e->steps >= CARTPOLE_MAX_STEPS;
    e->io.rewards[0] = 1.0f;
    e->io.terminals[0] = (unsigned char)fail;
    e->io.truncations[0] = (unsigned char)trunc;
    if (fail || trunc) {
        ocean_log_episode(&e->log, (float)e->steps, (float)e->steps, (float)e->steps);
        cartpole_new_episode(e);
    }
    cartpole_observe(e);
}

static inline void cartpole_close(CartPole *e) { (void)e; }

static inline OceanLog *cartpole_log(CartPole *e) { return &e->log; }

/* The canvas shows 6 m of track across its width (aspect 2, so 3 m of height); y grows downwards. */
static inline int cartpole_render(const CartPole *e, DrawCmd *out, int max) {
    const float sx = 1.0f / 6.0f, sy = 1.0f / 3.0f, ground = 0.75f;
    float cx = 0.5f + fminf(fmaxf(e->x, -2.6f), 2.6f) * sx;
    float cw = 0.5f * sx, ch = 0.3f * sy;
    float px = cx, py = ground - ch;
    float len = 2.0f * CP_HALF_LENGTH;
    float tx = px + sinf(e->theta) * len * sx, ty = py - cosf(e->theta) * len * sy;
    DrawCmd cmds[CARTPOLE_MAX_DRAW] = {
        ocean_cmd(DRAW_RECT, 0.0f, 0.0f, 1.0f, 1.0f, 24, 26, 32),
        ocean_cmd(DRAW_LINE, 0.0f, ground, 1.0f, ground, 120, 120, 130),
        ocean_cmd(DRAW_LINE, 0.5f - CP_X_LIMIT * sx, ground - 0.05f, 0.5f - CP_X_LIMIT * sx, ground + 0.05f, 200, 80, 80),
        ocean_cmd(DRAW_LINE, 0.5f + CP_X_LIMIT * sx, ground - 0.05f, 0.5f + CP_X_LIMIT * sx, ground + 0.05f, 200, 80, 80),
        ocean_cmd(DRAW_RECT, cx - 0.5f * cw, ground - ch, cw, ch, 80, 150, 255),
        ocean_cmd(DRAW_LINE, px, py, fminf(fmaxf(tx, 0.0f), 1.0f), fminf(fmaxf(ty, 0.0f), 1.0f), 230, 200, 90),
        ocean_cmd(DRAW_CIRCLE, px, py, 0.008f, 0.0f, 240, 240, 240),
        ocean_cmd(DRAW_CIRCLE, cx, ground - 0.5f * ch, 0.006f, 0.0f, 40, 40, 60),
    };
    int n = max < CARTPOLE_MAX_DRAW ? max : CARTPOLE_MAX_DRAW;
    for (int k = 0; k < n; k++) out[k] = cmds[k];
    return n < 0 ? 0 : n;
}

static inline int cartpole_init_v(void *e, int agents, uint64_t seed) {
    return cartpole_init((CartPole *)e, agents, seed);
}
static inline void cartpole_bind_v(void *e, float *o, int32_t *a, float *r, unsigned char *te, unsigned char *tr) {
    cartpole_bind((CartPole *)e, o, a, r, te, tr);
}
static inline void cartpole_reset_v(void *e, uint64_t seed) { cartpole_reset((CartPole *)e, seed); }
static inline void cartpole_step_v(void *e) { cartpole_step((CartPole *)e); }
static inline void cartpole_close_v(void *e) { cartpole_close((CartPole *)e); }
static inline OceanLog *cartpole_log_v(void *e) { return cartpole_log((CartPole *)e); }
static inline int cartpole_render_v(const void *e, DrawCmd *out, int max) {
    return cartpole_render((const CartPole *)e, out, max);
}

static const OceanSpec CARTPOLE_SPEC = {
    "cartpole", CARTPOLE_OBS, 2, 1, 1, 1, 2.0f, sizeof(CartPole),
    cartpole_init_v, cartpole_bind_v, cartpole_reset_v, cartpole_step_v, cartpole_close_v, cartpole_log_v,
    cartpole_render_v,
};

#endif
