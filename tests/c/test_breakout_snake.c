/* test_breakout_snake.c - drives breakout and snake through their OceanSpec, built with -Werror and
 * AddressSanitizer/UBSan by tests/test_sanitizers.py. For several agent counts and seeds it feeds random
 * and hostile (out-of-range) actions and checks the ocean contract: a non-zero first observation, finite
 * observations within [-1, 1], rewards within [-1, 1], never a terminal and a truncation together, the
 * same seed giving the same trajectory, a bounded display list inside the canvas, and each game's own
 * bookkeeping (breakout: the brick count; snake: bodies walkable tail to head, food count fixed). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakout.h"
#include "snake.h"

static int failures = 0;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
            failures++;                                          \
        }                                                        \
    } while (0)

typedef struct {
    const OceanSpec *spec;
    void *env;
    int agents;
    float *obs;
    int32_t *actions;
    float *rewards;
    unsigned char *terminals, *truncations;
} Run;

static int run_open(Run *r, const OceanSpec *spec, int agents, uint64_t seed) {
    memset(r, 0, sizeof(*r));
    r->spec = spec;
    r->agents = agents;
    r->env = calloc(1, spec->env_size);
    r->obs = calloc((size_t)(agents * spec->obs_size), sizeof(float));
    r->actions = calloc((size_t)agents, sizeof(int32_t));
    r->rewards = calloc((size_t)agents, sizeof(float));
    r->terminals = calloc((size_t)agents, 1);
    r->truncations = calloc((size_t)agents, 1);
    if (spec->init(r->env, agents, seed) != 0) return -1;
    spec->bind(r->env, r->obs, r->actions, r->rewards, r->terminals, r->truncations);
    spec->reset(r->env, seed);
    return 0;
}

static void run_close(Run *r) {
    r->spec->close(r->env);
    free(r->env);
    free(r->obs);
    free(r->actions);
    free(r->rewards);
    free(r->terminals);
    free(r->truncations);
}

static void check_obs(const Run *r, const char *what) {
    int n = r->agents * r->spec->obs_size, bad = 0;
    for (int k = 0; k < n; k++) bad += !(isfinite(r->obs[k]) && fabsf(r->obs[k]) <= 1.0f);
    CHECK(bad == 0, "%s %s: %d observation values non-finite or outside [-1, 1]", r->spec->name, what, bad);
}

static void check_render(const Run *r) {
    DrawCmd cmds[600];
    int max = strcmp(r->spec->name, "breakout") == 0 ? BREAKOUT_MAX_DRAW : SNAKE_MAX_DRAW;
    int n = r->spec->render(r->env, cmds, 600);
    CHECK(n > 0 && n <= max, "%s: render wrote %d commands (max %d)", r->spec->name, n, max);
    for (int k = 0; k < n; k++) {
        const DrawCmd *c = &cmds[k];
        CHECK(c->x >= -0.01f && c->x <= 1.01f && c->y >= -0.01f && c->y <= 1.01f, "%s: command %d at (%g, %g)",
              r->spec->name, k, (double)c->x, (double)c->y);
    }
    CHECK(r->spec->render(r->env, cmds, 3) <= 3, "%s: render ignored max", r->spec->name);
}

static void check_breakout(const Breakout *b) {
    int left = 0;
    for (int k = 0; k < BREAKOUT_BRICKS; k++) left += b->bricks[k];
    CHECK(left == b->bricks_left, "breakout: %d bricks stand, counted %d", left, b->bricks_left);
    CHECK(b->lives >= 1 && b->lives <= BREAKOUT_LIVES, "breakout: %d lives", b->lives);
    CHECK(b->ball_x >= 0.0f && b->ball_x <= 1.0f && b->ball_y >= 0.0f, "breakout: ball at (%g, %g)",
          (double)b->ball_x, (double)b->ball_y);
}

static void check_snake(const Snake *s) {
    int food = 0, body = 0, total = 0, st = s->stride;
    for (int k = 0; k < st * st; k++) {
        food += s->grid[k] == SNAKE_FOOD;
        body += (s->grid[k] & SNAKE_BODY) != 0;
    }
    CHECK(food == s->num_food, "snake: %d food cells, want %d", food, s->num_food);
    for (int f = 0; f < s->num_food; f++) CHECK(s->grid[s->food[f]] == SNAKE_FOOD, "snake: food %d misplaced", f);
    for (int i = 0; i < s->agents; i++) {
        const SnakeAgent *a = &s->snakes[i];
        CHECK(a->len >= 1 && a->len <= s->max_len, "snake %d: length %d", i, a->len);
        int c = a->tail, k = 1;
        while (c != a->head && k <= a->len) {
            CHECK((s->grid[c] & 0xFC) == (SNAKE_BODY | (i << 2)), "snake %d: segment %d not its own", i, k);
            c += s->off[s->grid[c] & 3];
            k++;
        }
        CHECK(c == a->head && k == a->len, "snake %d: body walk %d cells, length %d", i, k, a->len);
        total += a->len;
    }
    CHECK(body == total, "snake: %d body cells, lengths sum to %d", body, total);
}

/* mode 0: random legal actions, 1: hostile (out of range mixed in), 2: always 0 */
static void fill_actions(Run *r, Rng *rng, int mode) {
    static const int32_t hostile[] = {-1, 3, 4, 100, -100, INT_MAX, INT_MIN, 0, 1, 2};
    for (int i = 0; i < r->agents; i++) {
        if (mode == 0) r->actions[i] = (int32_t)rng_int(rng, r->spec->num_actions);
        else if (mode == 1) r->actions[i] = hostile[rng_int(rng, 10)];
        else r->actions[i] = 0;
    }
}

static void run_env(const OceanSpec *spec, int agents, uint64_t seed, int steps, int mode) {
    Run a, b;
    if (run_open(&a, spec, agents, seed) != 0 || run_open(&b, spec, agents, seed) != 0) {
        CHECK(0, "%s: init failed for %d agents", spec->name, agents);
        return;
    }
    float first = 0.0f;
    for (int k = 0; k < agents * spec->obs_size; k++) first += fabsf(a.obs[k]);
    CHECK(first > 0.0f, "%s: all-zero first observation", spec->name);
    check_obs(&a, "reset");
    Rng rng;
    rng_seed(&rng, seed ^ 0xABCDEFull);
    int ends = 0, diverged = 0;
    for (int t = 0; t < steps; t++) {
        fill_actions(&a, &rng, mode);
        memcpy(b.actions, a.actions, (size_t)agents * sizeof(int32_t));
        spec->step(a.env);
        spec->step(b.env);
        for (int i = 0; i < agents; i++) {
            CHECK(isfinite(a.rewards[i]) && fabsf(a.rewards[i]) <= 1.0f, "%s: reward %g", spec->name,
                  (double)a.rewards[i]);
            CHECK(a.terminals[i] <= 1 && a.truncations[i] <= 1 && !(a.terminals[i] && a.truncations[i]),
                  "%s: terminal %d truncation %d", spec->name, a.terminals[i], a.truncations[i]);
            ends += a.terminals[i] + a.truncations[i];
        }
        if (t % 97 == 0) {
            check_obs(&a, "step");
            if (spec == &BREAKOUT_SPEC) check_breakout((const Breakout *)a.env);
            else check_snake((const Snake *)a.env);
        }
        if (t % 997 == 0) check_render(&a);
        diverged |= memcmp(a.obs, b.obs, (size_t)(agents * spec->obs_size) * sizeof(float)) != 0 ||
                    memcmp(a.rewards, b.rewards, (size_t)agents * sizeof(float)) != 0;
    }
    check_obs(&a, "end");
    CHECK(!diverged, "%s: two envs with the same seed diverged", spec->name);
    OceanLog *log = spec->log(a.env);
    CHECK(ends > 0 && log->n == (float)ends, "%s: %d episode ends, log counted %g", spec->name, ends, (double)log->n);
    CHECK(log->n == 0.0f || (isfinite(log->score) && log->score >= 0.0f), "%s: score %g", spec->name,
          (double)log->score);
    printf("%-8s agents %d mode %d: %d steps, %d episodes, mean score %.3f, mean length %.1f\n", spec->name, agents,
           mode, steps, ends, log->n > 0.0f ? (double)(log->score / log->n) : 0.0,
           log->n > 0.0f ? (double)(log->episode_length / log->n) : 0.0);
    run_close(&a);
    run_close(&b);
}

int main(void) {
    /* agent counts out of range are refused without leaks */
    Breakout bo;
    CHECK(BREAKOUT_SPEC.init(&bo, 2, 1) == -1, "breakout accepted 2 agents");
    Snake sn;
    CHECK(SNAKE_SPEC.init(&sn, 0, 1) == -1, "snake accepted 0 agents");
    CHECK(SNAKE_SPEC.init(&sn, SNAKE_MAX_AGENTS + 1, 1) == -1, "snake accepted too many agents");

    for (int mode = 0; mode < 3; mode++)
        for (uint64_t seed = 1; seed <= 2; seed++) run_env(&BREAKOUT_SPEC, 1, seed, 12000, mode);
    static const int counts[] = {1, 2, 3, 4, 8};
    for (int mode = 0; mode < 3; mode++)
        for (int k = 0; k < 5; k++) run_env(&SNAKE_SPEC, counts[k], (uint64_t)(7 + k), 6000, mode);

    /* the test hook refuses bad input and keeps the board consistent */
    Run r;
    if (run_open(&r, &SNAKE_SPEC, 2, 3) == 0) {
        Snake *s = (Snake *)r.env;
        CHECK(snake_debug_set(r.env, 0, 0, -1, 0, 0, 3) == -1, "hook accepted x = -1");
        CHECK(snake_debug_set(r.env, 0, 2, 3, 3, 0, 3) == -1, "hook accepted snake 2 of 2");
        CHECK(snake_debug_set(r.env, 0, 0, 3, 0, 2, 3) == -1, "hook laid a body through the wall");
        CHECK(snake_debug_set(r.env, 7, 0, 3, 3, 0, 3) == -1, "hook accepted op 7");
        check_snake(s);
        run_close(&r);
    }

    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all runs passed\n");
    return 0;
}
