/* snake.h - several snakes on one shared grid, eating food.
 *
 * Each agent is a snake; all of an env's snakes (1..SNAKE_MAX_AGENTS, default 4) share one square grid whose
 * side grows with their number so each has about 100 cells: side = max(12, ceil(10 * sqrt(agents)))
 * (1 snake: 12, 4: 20, 8: 29). agents + 2 food items lie on the board at all times: an eaten one reappears
 * on a random free cell.
 *
 * Actions, relative to the heading: 0 turn left, 1 straight, 2 turn right (anything else: straight). A
 * relative action can never reverse the snake onto itself, and the policy need not know its heading.
 *
 * All snakes move at once. Tails move first (a snake that eats keeps its tail), so a head may enter a cell
 * a tail leaves this step. Then a snake dies if its head enters a wall, any snake's body (its own included;
 * snakes that die this step still block the others), or the same cell as another head: both die there,
 * food or not. Two heads swapping cells each run into the other's neck, so both die too. A dead snake is
 * taken off the board and respawns, length SNAKE_START_LEN, on free cells as a new episode.
 * Growth stops at max_len = side^2 / (2 agents) (the snake still eats and scores but no longer grows), which
 * keeps half the board free so food and respawns always find room.
 *
 * Observation (SNAKE_OBS = 124 floats per agent), egocentric and turned with the heading:
 *   [r * 11 + c]  the 11 x 11 window around the head; row 0 is 5 cells ahead, row 10 is 5 behind, column 0
 *                 is 5 cells to the left, column 10 to the right, the head is at [5 * 11 + 5]. 0 empty,
 *                 +1 food, -1 wall or another snake, -0.5 the snake's own body (head included).
 *   [121]         own length / max_len
 *   [122], [123]  the nearest food (Manhattan) ahead (+) / behind (-) and right (+) / left (-), in cells / side
 * Rewards: +1 for eating, -1 for dying (terminal). Each snake's episode is truncated after
 * SNAKE_MAX_STEPS steps (the snake is taken off and respawns).
 * score: food eaten in the episode.
 * render(): at most SNAKE_MAX_DRAW commands (bodies never cover more than half the board).
 */
#ifndef OCEAN_SNAKE_H
#define OCEAN_SNAKE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocean.h"

#define SNAKE_MAX_AGENTS 8
#define SNAKE_DEFAULT_AGENTS 4
#define SNAKE_MAX_FOOD (SNAKE_MAX_AGENTS + 2)
#define SNAKE_VIEW 5 /* window radius */
#define SNAKE_WIN (2 * SNAKE_VIEW + 1)
#define SNAKE_OBS (SNAKE_WIN * SNAKE_WIN + 3)
#define SNAKE_START_LEN 3
#define SNAKE_MAX_STEPS 1000
#define SNAKE_MAX_DRAW 448 /* 1 board + 10 food + at most 29 * 29 / 2 body cells + 8 eyes */

/* Grid cells are bytes. A body cell stores its snake's id and the direction to the next segment towards the
   head, so the tail can follow the body without a list of segments. */
enum { SNAKE_EMPTY = 0, SNAKE_FOOD = 1, SNAKE_WALL = 2, SNAKE_BODY = 0x80 };
#define SNAKE_CELL(id, dir) ((unsigned char)(SNAKE_BODY | ((id) << 2) | (dir)))

/* Directions: 0 up (-y), 1 right (+x), 2 down (+y), 3 left (-x); turning right is +1. */
typedef struct {
    int head, tail, heading, len, ep_len, food;
    float ep_return;
} SnakeAgent;

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    int agents, side, stride, num_food, max_len;
    int off[4];                  /* index step per direction in the padded grid */
    unsigned char *grid;         /* stride x stride: the board inside a SNAKE_VIEW-wide ring of wall */
    SnakeAgent snakes[SNAKE_MAX_AGENTS];
    int food[SNAKE_MAX_FOOD];    /* cell index of each food item */
    OceanLog log;
    Rng rng;
} Snake;

static inline int snake_side(int agents) {
    int s = 12;
    while (s * s < 100 * agents) s++;
    return s;
}

static inline int snake_init(Snake *env, int agents, uint64_t seed) {
    memset(env, 0, sizeof(*env));
    if (agents < 1 || agents > SNAKE_MAX_AGENTS) return -1;
    env->agents = agents;
    env->side = snake_side(agents);
    env->stride = env->side + 2 * SNAKE_VIEW;
    env->num_food = agents + 2;
    env->max_len = env->side * env->side / (2 * agents);
    env->off[0] = -env->stride;
    env->off[1] = 1;
    env->off[2] = env->stride;
    env->off[3] = -1;
    env->grid = (unsigned char *)malloc((size_t)(env->stride * env->stride));
    if (!env->grid) return -1;
    rng_seed(&env->rng, seed);
    return 0;
}

static inline void snake_bind(Snake *env, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                              unsigned char *truncations) {
    env->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline int snake_cell(const Snake *env, int x, int y) { return (y + SNAKE_VIEW) * env->stride + x + SNAKE_VIEW; }

static inline void snake_observe(const Snake *env, int i) {
    const SnakeAgent *s = &env->snakes[i];
    const unsigned char *g = env->grid;
    float *o = env->io.obs + (size_t)i * SNAKE_OBS;
    int fwd = env->off[s->heading], right = env->off[(s->heading + 1) & 3];
    int own = SNAKE_BODY | (i << 2);
    int row = s->head + SNAKE_VIEW * fwd - SNAKE_VIEW * right;
    for (int r = 0; r < SNAKE_WIN; r++, row -= fwd) {
        int k = row;
        for (int c = 0; c < SNAKE_WIN; c++, k += right) {
            int v = g[k];
            /* -1 for walls and bodies, +1 food, own body lifted to -0.5; no data-dependent branch */
            *o++ = (float)(v == SNAKE_FOOD) - (float)(v >= SNAKE_WALL) + 0.5f * (float)((v & 0xFC) == own);
        }
    }
    int hx = s->head % env->stride, hy = s->head / env->stride, best = 1 << 30, bx = 0, by = 0;
    for (int f = 0; f < env->num_food; f++) {
        int dx = env->food[f] % env->stride - hx, dy = env->food[f] / env->stride - hy;
        int d = abs(dx) + abs(dy);
        if (d < best) {
            best = d;
            bx = dx;
            by = dy;
        }
    }
    /* (bx, by) in the snake's frame: ahead = dot with the heading, right = dot with the heading turned right */
    static const int DX[4] = {0, 1, 0, -1}, DY[4] = {-1, 0, 1, 0};
    int h = s->heading, hr = (h + 1) & 3;
    float inv = 1.0f / (float)env->side;
    o[0] = (float)s->len / (float)env->max_len;
    o[1] = (float)(bx * DX[h] + by * DY[h]) * inv;
    o[2] = (float)(bx * DX[hr] + by * DY[hr]) * inv;
}

/* A random free board cell: a few random tries, then a scan from a random start (never fails while the board
   is at most half full, which max_len guarantees). Returns -1 if the board has no empty cell. */
static inline int snake_free_cell(Snake *env) {
    int side = env->side;
    for (int t = 0; t < 32; t++) {
        int c = snake_cell(env, rng_int(&env->rng, side), rng_int(&env->rng, side));
        if (env->grid[c] == SNAKE_EMPTY) return c;
    }
    int start = rng_int(&env->rng, side * side);
    for (int k = 0; k < side * side; k++) {
        int p = (start + k) % (side * side);
        int c = snake_cell(env, p % side, p / side);
        if (env->grid[c] == SNAKE_EMPTY) return c;
    }
    return -1;
}

static inline void snake_lay(Snake *env, int i, int head, int heading, int len) {
    SnakeAgent *s = &env->snakes[i];
    int back = env->off[(heading + 2) & 3];
    for (int k = 0; k < len; k++) env->grid[head + k * back] = SNAKE_CELL(i, heading);
    s->head = head;
    s->tail = head + (len - 1) * back;
    s->heading = heading;
    s->len = len;
    s->ep_len = 0;
    s->food = 0;
    s->ep_return = 0.0f;
}

/* Lays snake i out straight, SNAKE_START_LEN long, on free cells with a free (or food) cell ahead; if the board
   is too crowded for that, any straight free run, and at worst a single free cell. */
static inline void snake_spawn(Snake *env, int i) {
    const unsigned char *g = env->grid;
    int side = env->side, n = side * side;
    for (int t = 0; t < 64; t++) {
        int h = (int)(rng_u32(&env->rng) & 3);
        int c = snake_cell(env, rng_int(&env->rng, side), rng_int(&env->rng, side));
        int b = env->off[(h + 2) & 3], ok = g[c + env->off[h]] <= SNAKE_FOOD;
        for (int k = 0; k < SNAKE_START_LEN; k++) ok &= g[c + k * b] == SNAKE_EMPTY;
        if (ok) {
            snake_lay(env, i, c, h, SNAKE_START_LEN);
            return;
        }
    }
    int start = rng_int(&env->rng, n);
    for (int k = 0; k < n; k++)
        for (int h = 0; h < 4; h++) {
            int p = (start + k) % n, c = snake_cell(env, p % side, p / side), b = env->off[(h + 2) & 3], ok = 1;
            for (int j = 0; j < SNAKE_START_LEN; j++) ok &= g[c + j * b] == SNAKE_EMPTY;
            if (ok) {
                snake_lay(env, i, c, h, SNAKE_START_LEN);
                return;
            }
        }
    snake_lay(env, i, snake_free_cell(env), 0, 1);
}

/* Clears snake i's cells, walking from the tail along the stored directions. */
static inline void snake_remove(Snake *env, int i) {
    SnakeAgent *s = &env->snakes[i];
    int c = s->tail;
    for (int k = 0; k < s->len; k++) {
        int d = env->grid[c] & 3;
        env->grid[c] = SNAKE_EMPTY;
        if (c == s->head) break;
        c += env->off[d];
    }
    env->grid[s->head] = SNAKE_EMPTY;
}

static inline void snake_reset(Snake *env, uint64_t seed) {
    rng_seed(&env->rng, seed);
    int st = env->stride, side = env->side;
    memset(env->grid, SNAKE_WALL, (size_t)(st * st));
    for (int y = 0; y < side; y++) memset(env->grid + snake_cell(env, 0, y), SNAKE_EMPTY, (size_t)side);
    for (int i = 0; i < env->agents; i++) snake_spawn(env, i);
    for (int f = 0; f < env->num_food; f++) {
        env->food[f] = snake_free_cell(env);
        env->grid[env->food[f]] = SNAKE_FOOD;
    }
    ocean_clear_transition(&env->io, env->agents);
    for (int i = 0; i < env->agents; i++) snake_observe(env, i);
}

static inline void snake_end_episode(Snake *env, int i) {
    SnakeAgent *s = &env->snakes[i];
    ocean_log_episode(&env->log, s->ep_return, (float)s->ep_len, (float)s->food);
}

static inline void snake_step(Snake *env) {
    int n = env->agents;
    unsigned char *g = env->grid;
    int target[SNAKE_MAX_AGENTS], grow[SNAKE_MAX_AGENTS], dead[SNAKE_MAX_AGENTS], eaten[SNAKE_MAX_FOOD];
    int num_eaten = 0;
    ocean_clear_transition(&env->io, n);   /* the moves below set a reward or an end only where one happens */
    for (int i = 0; i < n; i++) {
        SnakeAgent *s = &env->snakes[i];
        int a = env->io.actions[i];
        s->heading = (s->heading + (a == 0 ? 3 : (a == 2 ? 1 : 0))) & 3;
        target[i] = s->head + env->off[s->heading];
        grow[i] = g[target[i]] == SNAKE_FOOD && s->len < env->max_len;
    }
    for (int i = 0; i < n; i++) {
        if (grow[i]) continue;
        SnakeAgent *s = &env->snakes[i];
        int d = g[s->tail] & 3;
        g[s->tail] = SNAKE_EMPTY;
        s->tail += env->off[d];
        s->len--; /* back up when the head moves in */
    }
    for (int i = 0; i < n; i++) {
        dead[i] = g[target[i]] > SNAKE_FOOD;
        for (int j = 0; j < n; j++) dead[i] |= j != i && target[j] == target[i];
    }
    for (int i = 0; i < n; i++) {
        if (dead[i]) continue;
        SnakeAgent *s = &env->snakes[i];
        if (g[target[i]] == SNAKE_FOOD) {
            for (int f = 0; f < env->num_food; f++)
                if (env->food[f] == target[i]) eaten[num_eaten++] = f;
            env->io.rewards[i] = 1.0f;
            s->food++;
        }
        g[s->head] = SNAKE_CELL(i, s->heading);
        g[target[i]] = SNAKE_CELL(i, s->heading);
        s->head = target[i];
        s->len++;
    }
    for (int i = 0; i < n; i++) {
        SnakeAgent *s = &env->snakes[i];
        s->ep_len++;
        if (dead[i]) {
            env->io.rewards[i] = -1.0f;
            env->io.terminals[i] = 1;
        } else if (s->ep_len >= SNAKE_MAX_STEPS) {
            env->io.truncations[i] = 1;
        }
        s->ep_return += env->io.rewards[i];
        if (dead[i] || env->io.truncations[i]) {
            snake_end_episode(env, i);
            snake_remove(env, i);
        }
    }
    /* respawn after every removal, so the order of the snakes does not decide where there is room */
    for (int i = 0; i < n; i++)
        if (env->io.terminals[i] || env->io.truncations[i]) snake_spawn(env, i);
    for (int k = 0; k < num_eaten; k++) {
        int f = eaten[k];
        env->food[f] = snake_free_cell(env);
        g[env->food[f]] = SNAKE_FOOD;
    }
    for (int i = 0; i < n; i++) snake_observe(env, i);
}

static inline void snake_close(Snake *env) {
    free(env->grid);
    env->grid = NULL;
}

static inline OceanLog *snake_log(Snake *env) { return &env->log; }

static inline int snake_render(const Snake *env, DrawCmd *out, int max) {
    static const unsigned char rgb[SNAKE_MAX_AGENTS][3] = {{72, 200, 72}, {72, 140, 230}, {230, 200, 60},
                                                           {200, 90, 220}, {60, 210, 210}, {240, 140, 60},
                                                           {170, 170, 170}, {140, 100, 60}};
    int n = 0, side = env->side, st = env->stride;
    float cell = 1.0f / (float)side;
    if (n < max) out[n++] = ocean_cmd(DRAW_RECT, 0.0f, 0.0f, 1.0f, 1.0f, 30, 34, 44);
    for (int f = 0; f < env->num_food && n < max; f++) {
        int x = env->food[f] % st - SNAKE_VIEW, y = env->food[f] / st - SNAKE_VIEW;
        out[n++] = ocean_cmd(DRAW_CIRCLE, ((float)x + 0.5f) * cell, ((float)y + 0.5f) * cell, 0.35f * cell, 0.0f,
                             230, 60, 60);
    }
    for (int i = 0; i < env->agents; i++) {
        const SnakeAgent *s = &env->snakes[i];
        int c = s->tail;
        for (int k = 0; k < s->len && n < max; k++) {
            int x = c % st - SNAKE_VIEW, y = c / st - SNAKE_VIEW;
            float shade = c == s->head ? 1.0f : 0.7f;
            out[n++] = ocean_cmd(DRAW_RECT, (float)x * cell + 0.05f * cell, (float)y * cell + 0.05f * cell,
                                 0.9f * cell, 0.9f * cell, (unsigned char)(shade * (float)rgb[i][0]),
                                 (unsigned char)(shade * (float)rgb[i][1]), (unsigned char)(shade * (float)rgb[i][2]));
            if (c == s->head) break;
            c += env->off[env->grid[c] & 3];
        }
        /* an eye ahead of the head centre shows the heading */
        static const float EX[4] = {0.0f, 0.25f, 0.0f, -0.25f}, EY[4] = {-0.25f, 0.0f, 0.25f, 0.0f};
        if (n < max) {
            int x = s->head % st - SNAKE_VIEW, y = s->head / st - SNAKE_VIEW;
            out[n++] = ocean_cmd(DRAW_CIRCLE, ((float)x + 0.5f + EX[s->heading]) * cell,
                                 ((float)y + 0.5f + EY[s->heading]) * cell, 0.12f * cell, 0.0f, 20, 20, 20);
        }
    }
    return n;
}

/* Test hook (not used by training): puts a position on the board, then rewrites every observation.
 *   op 0: lay snake `index` (removed first) straight with its head at board cell (x, y), heading `heading`
 *         (0 up, 1 right, 2 down, 3 left) and `len` cells behind the head; its episode starts afresh.
 *   op 1: move food item `index` to (x, y).
 * Returns 0, or -1 (and nothing changes) when the arguments are out of range or the cells are taken. */
static inline int snake_debug_set(void *e, int op, int index, int x, int y, int heading, int len) {
    Snake *env = (Snake *)e;
    if (x < 0 || y < 0 || x >= env->side || y >= env->side) return -1;
    int c = snake_cell(env, x, y);
    if (op == 0) {
        if (index < 0 || index >= env->agents || heading < 0 || heading > 3 || len < 1 || len > env->max_len)
            return -1;
        int b = env->off[(heading + 2) & 3];
        for (int k = 0; k < len; k++) {
            /* stops at the first wall, so the walk never leaves the grid */
            int v = env->grid[c + k * b];
            if (v != SNAKE_EMPTY && (v & 0xFC) != (SNAKE_BODY | (index << 2))) return -1;
        }
        snake_remove(env, index);
        snake_lay(env, index, c, heading, len);
    } else if (op == 1) {
        if (index < 0 || index >= env->num_food || env->grid[c] != SNAKE_EMPTY) return -1;
        env->grid[env->food[index]] = SNAKE_EMPTY;
        env->food[index] = c;
        env->grid[c] = SNAKE_FOOD;
    } else {
        return -1;
    }
    for (int i = 0; i < env->agents; i++) snake_observe(env, i);
    return 0;
}

/* Type-erased entry points for the OceanSpec table. */
static inline int snake_init_v(void *e, int agents, uint64_t seed) { return snake_init((Snake *)e, agents, seed); }
static inline void snake_bind_v(void *e, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                                unsigned char *truncations) {
    snake_bind((Snake *)e, obs, actions, rewards, terminals, truncations);
}
static inline void snake_reset_v(void *e, uint64_t seed) { snake_reset((Snake *)e, seed); }
static inline void snake_step_v(void *e) { snake_step((Snake *)e); }
static inline void snake_close_v(void *e) { snake_close((Snake *)e); }
static inline OceanLog *snake_log_v(void *e) { return snake_log((Snake *)e); }
static inline int snake_render_v(const void *e, DrawCmd *out, int max) { return snake_render((const Snake *)e, out, max); }

static const OceanSpec SNAKE_SPEC = {
    "snake", SNAKE_OBS, 3, SNAKE_DEFAULT_AGENTS, 1, SNAKE_MAX_AGENTS, 1.0f, sizeof(Snake), snake_init_v,
    snake_bind_v, snake_reset_v, snake_step_v, snake_close_v, snake_log_v, snake_render_v,
};

#endif
