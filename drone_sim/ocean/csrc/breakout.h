/* breakout.h - a paddle, a ball and a wall of bricks.
 *
 * One agent per env. The field is the unit square (x right, y down): walls left, right and top, an open
 * bottom. A wall of BREAKOUT_ROWS x BREAKOUT_COLS bricks hangs below a gap at the top (so a ball that breaks
 * through bounces around up there, as in the arcade game). The paddle slides along the bottom; each life
 * the ball is served from the paddle at a random angle within 45 degrees of vertical.
 *
 * The ball bounces off the paddle at an angle set by where it lands (centre: straight up, edges: 60
 * degrees), which is what lets a player aim. Every path of the ball leads back to the paddle (it always
 * keeps at least half its speed vertically, walls and bricks only mirror it), so there is no loop the
 * player cannot change; the step cap bounds an episode anyway.
 *
 * Actions: 0 stay, 1 left, 2 right (anything else: stay).
 * Observation (BREAKOUT_OBS = 77 floats):
 *   [0] paddle x      2x - 1
 *   [1] ball x        2x - 1
 *   [2] ball y        2y - 1 (-1 top, +1 bottom)
 *   [3] ball vx       / ball speed
 *   [4] ball vy       / ball speed (negative: going up)
 *   [5 + row * BREAKOUT_COLS + col]  1 if that brick stands, 0 once broken (row 0 is the top row)
 * Rewards: BREAKOUT_BRICK_REWARD per brick broken (a full wall sums to 4), -1 when the ball is lost.
 * Episode: BREAKOUT_LIVES lives; it ends (terminal) when they are gone or the wall is cleared, and is
 * truncated after BREAKOUT_MAX_STEPS steps.
 * score: the share of the wall cleared in the episode, 0..1.
 * render(): at most BREAKOUT_MAX_DRAW commands.
 */
#ifndef OCEAN_BREAKOUT_H
#define OCEAN_BREAKOUT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ocean.h"

#define BREAKOUT_ROWS 6
#define BREAKOUT_COLS 12
#define BREAKOUT_BRICKS (BREAKOUT_ROWS * BREAKOUT_COLS)
#define BREAKOUT_OBS (5 + BREAKOUT_BRICKS)
#define BREAKOUT_LIVES 3
#define BREAKOUT_MAX_STEPS 4000
#define BREAKOUT_MAX_DRAW (3 + BREAKOUT_BRICKS + BREAKOUT_LIVES)
#define BREAKOUT_BRICK_REWARD (4.0f / (float)BREAKOUT_BRICKS)

/* Geometry in field units. The ball moves at most BREAKOUT_SPEED per axis per step, well under a brick's
   height plus the ball's size, so it cannot tunnel through a brick. The paddle is faster than the ball's
   largest sideways speed, so a ball can always be caught. */
#define BREAKOUT_BRICK_TOP 0.12f
#define BREAKOUT_BRICK_W (1.0f / (float)BREAKOUT_COLS)
#define BREAKOUT_BRICK_H 0.04f
#define BREAKOUT_PADDLE_Y 0.92f  /* top face of the paddle */
#define BREAKOUT_PADDLE_H 0.02f
#define BREAKOUT_PADDLE_HALF 0.075f
#define BREAKOUT_PADDLE_SPEED 0.035f
#define BREAKOUT_BALL_R 0.012f
#define BREAKOUT_SPEED 0.03f
#define BREAKOUT_MAX_ANGLE 1.0471976f /* 60 degrees off vertical at the paddle's edge */
#define BREAKOUT_SERVE_ANGLE 0.7853982f

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    float paddle_x, ball_x, ball_y, ball_vx, ball_vy;
    int lives, bricks_left, ep_len;
    float ep_return;
    unsigned char bricks[BREAKOUT_BRICKS];
    OceanLog log;
    Rng rng;
} Breakout;

static inline int breakout_init(Breakout *env, int agents, uint64_t seed) {
    if (agents != 1) return -1;
    memset(env, 0, sizeof(*env));
    rng_seed(&env->rng, seed);
    return 0;
}

static inline void breakout_bind(Breakout *env, float *obs, int32_t *actions, float *rewards,
                                 unsigned char *terminals, unsigned char *truncations) {
    env->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline void breakout_observe(const Breakout *env) {
    float *o = env->io.obs;
    o[0] = 2.0f * env->paddle_x - 1.0f;
    o[1] = 2.0f * env->ball_x - 1.0f;
    o[2] = 2.0f * env->ball_y - 1.0f;
    o[3] = env->ball_vx * (1.0f / BREAKOUT_SPEED);
    o[4] = env->ball_vy * (1.0f / BREAKOUT_SPEED);
    for (int k = 0; k < BREAKOUT_BRICKS; k++) o[5 + k] = (float)env->bricks[k];
}

static inline void breakout_serve(Breakout *env) {
    float a = rng_uniform(&env->rng, -BREAKOUT_SERVE_ANGLE, BREAKOUT_SERVE_ANGLE);
    env->ball_x = env->paddle_x;
    env->ball_y = BREAKOUT_PADDLE_Y - BREAKOUT_BALL_R;
    env->ball_vx = BREAKOUT_SPEED * sinf(a);
    env->ball_vy = -BREAKOUT_SPEED * cosf(a);
}

static inline void breakout_new_episode(Breakout *env) {
    memset(env->bricks, 1, sizeof(env->bricks));
    env->bricks_left = BREAKOUT_BRICKS;
    env->lives = BREAKOUT_LIVES;
    env->ep_len = 0;
    env->ep_return = 0.0f;
    env->paddle_x = 0.5f;
    breakout_serve(env);
}

static inline void breakout_reset(Breakout *env, uint64_t seed) {
    rng_seed(&env->rng, seed);
    breakout_new_episode(env);
    ocean_clear_transition(&env->io, 1);
    breakout_observe(env);
}

/* Breaks every standing brick the ball's box overlaps at (x, y); returns how many. The box is smaller than a
   brick, so it spans at most 2 x 2 cells of the wall. */
static inline int breakout_hit_bricks(Breakout *env, float x, float y) {
    float top = y - BREAKOUT_BALL_R - BREAKOUT_BRICK_TOP, bottom = y + BREAKOUT_BALL_R - BREAKOUT_BRICK_TOP;
    if (bottom < 0.0f || top >= (float)BREAKOUT_ROWS * BREAKOUT_BRICK_H) return 0;
    int r0 = (int)floorf(top * (1.0f / BREAKOUT_BRICK_H)), r1 = (int)floorf(bottom * (1.0f / BREAKOUT_BRICK_H));
    int c0 = (int)floorf((x - BREAKOUT_BALL_R) * (float)BREAKOUT_COLS);
    int c1 = (int)floorf((x + BREAKOUT_BALL_R) * (float)BREAKOUT_COLS);
    if (r0 < 0) r0 = 0;
    if (r1 > BREAKOUT_ROWS - 1) r1 = BREAKOUT_ROWS - 1;
    if (c0 < 0) c0 = 0;
    if (c1 > BREAKOUT_COLS - 1) c1 = BREAKOUT_COLS - 1;
    int hits = 0;
    for (int r = r0; r <= r1; r++)
        for (int c = c0; c <= c1; c++) {
            unsigned char *b = &env->bricks[r * BREAKOUT_COLS + c];
            hits += *b;
            *b = 0;
        }
    return hits;
}

static inline void breakout_step(Breakout *env) {
    int a = env->io.actions[0];
    float reward = 0.0f;
    float dx = a == 1 ? -BREAKOUT_PADDLE_SPEED : (a == 2 ? BREAKOUT_PADDLE_SPEED : 0.0f);
    env->paddle_x = fminf(fmaxf(env->paddle_x + dx, BREAKOUT_PADDLE_HALF), 1.0f - BREAKOUT_PADDLE_HALF);

    /* One axis at a time: a hit on an axis mirrors that axis and undoes its move, so the ball never rests
       inside a brick and corners resolve the same way every time. */
    float x = env->ball_x + env->ball_vx;
    if (x < BREAKOUT_BALL_R) {
        x = 2.0f * BREAKOUT_BALL_R - x;
        env->ball_vx = fabsf(env->ball_vx);
    } else if (x > 1.0f - BREAKOUT_BALL_R) {
        x = 2.0f * (1.0f - BREAKOUT_BALL_R) - x;
        env->ball_vx = -fabsf(env->ball_vx);
    }
    int hits = breakout_hit_bricks(env, x, env->ball_y);
    if (hits) {
        x = env->ball_x;
        env->ball_vx = -env->ball_vx;
    }
    float y = env->ball_y + env->ball_vy;
    if (y < BREAKOUT_BALL_R) {
        y = 2.0f * BREAKOUT_BALL_R - y;
        env->ball_vy = fabsf(env->ball_vy);
    }
    int hy = breakout_hit_bricks(env, x, y);
    if (hy) {
        y = env->ball_y;
        env->ball_vy = -env->ball_vy;
    }
    hits += hy;
    float lip = BREAKOUT_PADDLE_Y - BREAKOUT_BALL_R;
    if (env->ball_vy > 0.0f && env->ball_y <= lip && y >= lip &&
        fabsf(x - env->paddle_x) <= BREAKOUT_PADDLE_HALF + BREAKOUT_BALL_R) {
        float u = (x - env->paddle_x) * (1.0f / (BREAKOUT_PADDLE_HALF + BREAKOUT_BALL_R));
        float angle = fminf(fmaxf(u, -1.0f), 1.0f) * BREAKOUT_MAX_ANGLE;
        env->ball_vx = BREAKOUT_SPEED * sinf(angle);
        env->ball_vy = -BREAKOUT_SPEED * cosf(angle);
        y = lip;
    }
    env->ball_x = x;
    env->ball_y = y;

    if (hits) {
        env->bricks_left -= hits;
        reward += (float)hits * BREAKOUT_BRICK_REWARD;
    }
    if (y > 1.0f - BREAKOUT_BALL_R) { /* touching the bottom edge: lost, and the observation stays in [-1, 1] */
        env->lives--;
        reward = -1.0f; /* bricks are far from the bottom: never in the same step as a brick */
        if (env->lives > 0) breakout_serve(env);
    }
    env->ep_len++;
    env->ep_return += reward;
    int terminal = env->lives <= 0 || env->bricks_left <= 0;
    int truncated = !terminal && env->ep_len >= BREAKOUT_MAX_STEPS;
    env->io.rewards[0] = reward;
    env->io.terminals[0] = (unsigned char)terminal;
    env->io.truncations[0] = (unsigned char)truncated;
    if (terminal || truncated) {
        float bricks_broken = (float)(BREAKOUT_BRICKS - env->bricks_left) * (1.0f / (float)BREAKOUT_BRICKS);
        ocean_log_episode(&env->log, env->ep_return, (float)env->ep_len, bricks_broken);
        breakout_new_episode(env);
    }
    breakout_observe(env);
}

static inline void breakout_close(Breakout *env) { (void)env; }

static inline OceanLog *breakout_log(Breakout *env) { return &env->log; }

static inline int breakout_render(const Breakout *env, DrawCmd *out, int max) {
    static const unsigned char row_rgb[BREAKOUT_ROWS][3] = {{200, 72, 72},  {198, 108, 58}, {180, 122, 48},
                                                            {162, 162, 42}, {72, 160, 72},  {66, 72, 200}};
    int n = 0;
    if (n < max) out[n++] = ocean_cmd(DRAW_RECT, 0.0f, 0.0f, 1.0f, 1.0f, 0, 0, 0);
    for (int r = 0; r < BREAKOUT_ROWS; r++)
        for (int c = 0; c < BREAKOUT_COLS; c++) {
            if (!env->bricks[r * BREAKOUT_COLS + c] || n >= max) continue;
            out[n++] = ocean_cmd(DRAW_RECT, (float)c * BREAKOUT_BRICK_W + 0.002f,
                                 BREAKOUT_BRICK_TOP + (float)r * BREAKOUT_BRICK_H + 0.002f, BREAKOUT_BRICK_W - 0.004f,
                                 BREAKOUT_BRICK_H - 0.004f, row_rgb[r][0], row_rgb[r][1], row_rgb[r][2]);
        }
    if (n < max)
        out[n++] = ocean_cmd(DRAW_RECT, env->paddle_x - BREAKOUT_PADDLE_HALF, BREAKOUT_PADDLE_Y,
                             2.0f * BREAKOUT_PADDLE_HALF, BREAKOUT_PADDLE_H, 200, 72, 72);
    if (n < max) out[n++] = ocean_cmd(DRAW_CIRCLE, env->ball_x, env->ball_y, BREAKOUT_BALL_R, 0.0f, 230, 230, 230);
    for (int k = 0; k < env->lives && n < max; k++)
        out[n++] = ocean_cmd(DRAW_CIRCLE, 0.03f + 0.035f * (float)k, 0.05f, 0.01f, 0.0f, 200, 72, 72);
    return n;
}

/* Type-erased entry points for the OceanSpec table. */
static inline int breakout_init_v(void *e, int agents, uint64_t seed) { return breakout_init((Breakout *)e, agents, seed); }
static inline void breakout_bind_v(void *e, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                                   unsigned char *truncations) {
    breakout_bind((Breakout *)e, obs, actions, rewards, terminals, truncations);
}
static inline void breakout_reset_v(void *e, uint64_t seed) { breakout_reset((Breakout *)e, seed); }
static inline void breakout_step_v(void *e) { breakout_step((Breakout *)e); }
static inline void breakout_close_v(void *e) { breakout_close((Breakout *)e); }
static inline OceanLog *breakout_log_v(void *e) { return breakout_log((Breakout *)e); }
static inline int breakout_render_v(const void *e, DrawCmd *out, int max) {
    return breakout_render((const Breakout *)e, out, max);
}

static const OceanSpec BREAKOUT_SPEC = {
    "breakout", BREAKOUT_OBS, 3, 1, 1, 1, 1.0f, sizeof(Breakout), breakout_init_v, breakout_bind_v,
    breakout_reset_v, breakout_step_v, breakout_close_v, breakout_log_v, breakout_render_v,
};

#endif
