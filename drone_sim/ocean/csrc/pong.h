/* pong.h: one-player pong against a scripted opponent, first to PONG_POINTS points.
 *
 * The field is PONG_W wide and 1 high (canvas aspect PONG_W), y down. The agent plays the right paddle; the
 * left one follows the ball at a limited speed once it comes towards it through the opponent's half, and
 * drifts back to the middle otherwise, so angled fast balls beat it: a policy that tracks the ball wins
 * clearly (5-0 within about 1,200 steps), one that plays randomly loses (about -4.7).
 * The ball leaves a paddle at an angle set by where it hits (centre: straight, edge: PONG_MAX_ANGLE) and
 * gets PONG_SPEEDUP faster at every return, up to PONG_MAX_SPEED. A miss ends the rally at once: the point
 * goes to the other side and the ball is served again from the middle in a random direction.
 * Observation (8 floats, in [-1, 1]):
 *   0 ball x, 1 ball y                      mapped to [-1, 1] across the field
 *   2 ball vx, 3 ball vy                    / PONG_MAX_SPEED (vx > 0: towards the agent)
 *   4 own paddle y, 5 opponent paddle y     mapped to [-1, 1]
 *   6 own points, 7 opponent points         / PONG_POINTS
 * Actions: 0 stay, 1 up, 2 down (out of range: stay).
 * Reward: +1 for a point won, -1 for a point lost, PONG_RETURN_REWARD for returning the ball (a hint that
 * makes learning quick; the score ignores it).
 * Episode end: a side reaches PONG_POINTS (terminal); PONG_MAX_STEPS steps (truncation).
 * score: points won minus points lost in the episode (-PONG_POINTS .. PONG_POINTS).
 * Render: at most PONG_MAX_DRAW commands (field, centre line, paddles, ball, point markers).
 */
#ifndef OCEAN_PONG_H
#define OCEAN_PONG_H

#include <math.h>

#include "ocean.h"

#define PONG_OBS 8
#define PONG_POINTS 5
#define PONG_MAX_STEPS 4000
#define PONG_W (4.0f / 3.0f)
#define PONG_PADDLE_HALF 0.1f
#define PONG_PADDLE_THICK 0.02f
#define PONG_FACE 0.06f          /* distance of a paddle's face from its side wall */
#define PONG_BALL_R 0.015f
#define PONG_SERVE_SPEED 0.035f  /* field heights per step */
#define PONG_MAX_SPEED 0.06f
#define PONG_SPEEDUP 1.08f
#define PONG_MAX_ANGLE 1.0f      /* rad, off the horizontal, for a hit on the paddle's edge */
#define PONG_AGENT_SPEED 0.05f
#define PONG_OPP_SPEED 0.022f
#define PONG_OPP_VIEW 0.5f       /* the opponent reacts once the ball is this far across, from its side */
#define PONG_RETURN_REWARD 0.1f
#define PONG_DASHES 8
#define PONG_MAX_DRAW (1 + PONG_DASHES + 3 + 2 * PONG_POINTS)

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    Rng rng;
    OceanLog log;
    float bx, by, vx, vy, speed;
    float py, oy;               /* paddle centres: agent (right), opponent (left) */
    int won, lost, steps;
    float ep_return;
} Pong;

static inline void pong_observe(Pong *e) {
    float *o = e->io.obs;
    o[0] = e->bx * (2.0f / PONG_W) - 1.0f;
    o[1] = e->by * 2.0f - 1.0f;
    o[2] = e->vx * (1.0f / PONG_MAX_SPEED);
    o[3] = e->vy * (1.0f / PONG_MAX_SPEED);
    o[4] = e->py * 2.0f - 1.0f;
    o[5] = e->oy * 2.0f - 1.0f;
    o[6] = (float)e->won * (1.0f / PONG_POINTS);
    o[7] = (float)e->lost * (1.0f / PONG_POINTS);
}

static inline void pong_serve(Pong *e) {
    float a = rng_uniform(&e->rng, -0.5f, 0.5f);
    float dir = (rng_u32(&e->rng) & 1u) ? 1.0f : -1.0f;
    e->bx = 0.5f * PONG_W;
    e->by = rng_uniform(&e->rng, 0.25f, 0.75f);
    e->speed = PONG_SERVE_SPEED;
    e->vx = dir * e->speed * cosf(a);
    e->vy = e->speed * sinf(a);
}

static inline void pong_new_episode(Pong *e) {
    e->py = 0.5f;
    e->oy = 0.5f;
    e->won = 0;
    e->lost = 0;
    e->steps = 0;
    e->ep_return = 0.0f;
    pong_serve(e);
}

static inline int pong_init(Pong *e, int agents, uint64_t seed) {
    if (agents != 1) return -1;
    rng_seed(&e->rng, seed);
    e->log = (OceanLog){0, 0, 0, 0};
    pong_new_episode(e);
    return 0;
}

static inline void pong_bind(Pong *e, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                             unsigned char *truncations) {
    e->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline void pong_reset(Pong *e, uint64_t seed) {
    rng_seed(&e->rng, seed);
    pong_new_episode(e);
    ocean_clear_transition(&e->io, 1);
    pong_observe(e);
}

static inline float pong_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Sends the ball back from a paddle centred at y; dir is the new horizontal direction. */
static inline void pong_return(Pong *e, float y, float dir) {
    float off = pong_clampf((e->by - y) / (PONG_PADDLE_HALF + PONG_BALL_R), -1.0f, 1.0f);
    float a = off * PONG_MAX_ANGLE;
    e->speed = fminf(e->speed * PONG_SPEEDUP, PONG_MAX_SPEED);
    e->vx = dir * e->speed * cosf(a);
    e->vy = e->speed * sinf(a);
}

static inline void pong_step(Pong *e) {
    const float lo = PONG_PADDLE_HALF, hi = 1.0f - PONG_PADDLE_HALF;
    int act = e->io.actions[0];
    if (act == 1) e->py = fmaxf(e->py - PONG_AGENT_SPEED, lo);
    else if (act == 2) e->py = fminf(e->py + PONG_AGENT_SPEED, hi);
    float aim = e->vx < 0.0f && e->bx < PONG_OPP_VIEW * PONG_W ? e->by : 0.5f;
    e->oy = pong_clampf(e->oy + pong_clampf(aim - e->oy, -PONG_OPP_SPEED, PONG_OPP_SPEED), lo, hi);

    e->bx += e->vx;
    e->by += e->vy;
    if (e->by < PONG_BALL_R) {
        e->by = 2.0f * PONG_BALL_R - e->by;
        e->vy = -e->vy;
    } else if (e->by > 1.0f - PONG_BALL_R) {
        e->by = 2.0f * (1.0f - PONG_BALL_R) - e->by;
        e->vy = -e->vy;
    }

    float r = 0.0f;
    int point = 0; /* +1 won, -1 lost */
    const float right = PONG_W - PONG_FACE - PONG_BALL_R, left = PONG_FACE + PONG_BALL_R;
    /* The hit test uses the ball's height where it crossed the paddle's plane, not where the step left it:
       at full speed the ball moves several of its radii per step. */
    if (e->vx > 0.0f && e->bx >= right) {
        float yc = e->by - e->vy * (e->bx - right) / e->vx;
        if (fabsf(yc - e->py) <= PONG_PADDLE_HALF + PONG_BALL_R) {
            e->bx = 2.0f * right - e->bx;
            e->by = pong_clampf(yc, PONG_BALL_R, 1.0f - PONG_BALL_R);
            pong_return(e, e->py, -1.0f);
            r = PONG_RETURN_REWARD;
        } else {
            point = -1;
        }
    } else if (e->vx < 0.0f && e->bx <= left) {
        float yc = e->by - e->vy * (e->bx - left) / e->vx;
        if (fabsf(yc - e->oy) <= PONG_PADDLE_HALF + PONG_BALL_R) {
            e->bx = 2.0f * left - e->bx;
            e->by = pong_clampf(yc, PONG_BALL_R, 1.0f - PONG_BALL_R);
            pong_return(e, e->oy, 1.0f);
        } else {
            point = 1;
        }
    }
    if (point) {
        r = (float)point;
        if (point > 0) e->won++;
        else e->lost++;
        pong_serve(e);
    }
    e->steps++;
    int done = e->won >= PONG_POINTS || e->lost >= PONG_POINTS;
    int trunc = !done && e->steps >= PONG_MAX_STEPS;
    e->ep_return += r;
    e->io.rewards[0] = r;
    e->io.terminals[0] = (unsigned char)done;
    e->io.truncations[0] = (unsigned char)trunc;
    if (done || trunc) {
        ocean_log_episode(&e->log, e->ep_return, (float)e->steps, (float)(e->won - e->lost));
        pong_new_episode(e);
    }
    pong_observe(e);
}

static inline void pong_close(Pong *e) { (void)e; }

static inline OceanLog *pong_log(Pong *e) { return &e->log; }

static inline int pong_render(const Pong *e, DrawCmd *out, int max) {
    const float sx = 1.0f / PONG_W; /* field x -> canvas x */
    DrawCmd cmds[PONG_MAX_DRAW];
    int n = 0;
    cmds[n++] = ocean_cmd(DRAW_RECT, 0.0f, 0.0f, 1.0f, 1.0f, 20, 22, 28);
    for (int k = 0; k < PONG_DASHES; k++)
        cmds[n++] = ocean_cmd(DRAW_RECT, 0.4975f, ((float)k + 0.25f) / PONG_DASHES, 0.005f, 0.5f / PONG_DASHES, 70,
                              74, 86);
    cmds[n++] = ocean_cmd(DRAW_RECT, PONG_FACE * sx - PONG_PADDLE_THICK * sx, e->oy - PONG_PADDLE_HALF,
                          PONG_PADDLE_THICK * sx, 2.0f * PONG_PADDLE_HALF, 230, 110, 90);
    cmds[n++] = ocean_cmd(DRAW_RECT, (PONG_W - PONG_FACE) * sx, e->py - PONG_PADDLE_HALF, PONG_PADDLE_THICK * sx,
                          2.0f * PONG_PADDLE_HALF, 90, 160, 255);
    cmds[n++] = ocean_cmd(DRAW_CIRCLE, pong_clampf(e->bx * sx, 0.0f, 1.0f), pong_clampf(e->by, 0.0f, 1.0f),
                          PONG_BALL_R * sx, 0.0f, 240, 240, 240);
    /* Points as pips along the top, the opponent's left of the centre line, the agent's right of it. */
    for (int k = 0; k < e->lost && k < PONG_POINTS; k++)
        cmds[n++] = ocean_cmd(DRAW_RECT, 0.44f - 0.03f * (float)k, 0.03f, 0.02f, 0.02f, 230, 110, 90);
    for (int k = 0; k < e->won && k < PONG_POINTS; k++)
        cmds[n++] = ocean_cmd(DRAW_RECT, 0.54f + 0.03f * (float)k, 0.03f, 0.02f, 0.02f, 90, 160, 255);
    if (n > max) n = max < 0 ? 0 : max;
    for (int k = 0; k < n; k++) out[k] = cmds[k];
    return n;
}

static inline int pong_init_v(void *e, int agents, uint64_t seed) { return pong_init((Pong *)e, agents, seed); }
static inline void pong_bind_v(void *e, float *o, int32_t *a, float *r, unsigned char *te, unsigned char *tr) {
    pong_bind((Pong *)e, o, a, r, te, tr);
}
static inline void pong_reset_v(void *e, uint64_t seed) { pong_reset((Pong *)e, seed); }
static inline void pong_step_v(void *e) { pong_step((Pong *)e); }
static inline void pong_close_v(void *e) { pong_close((Pong *)e); }
static inline OceanLog *pong_log_v(void *e) { return pong_log((Pong *)e); }
static inline int pong_render_v(const void *e, DrawCmd *out, int max) { return pong_render((const Pong *)e, out, max); }

static const OceanSpec PONG_SPEC = {
    "pong", PONG_OBS, 3, 1, 1, 1, PONG_W, sizeof(Pong),
    pong_init_v, pong_bind_v, pong_reset_v, pong_step_v, pong_close_v, pong_log_v, pong_render_v,
};

#endif
