/* test_ocean.c - drives every env of OCEAN_ENVS straight through its OceanSpec, built with -Werror and under
 * AddressSanitizer/UBSan by tests/test_sanitizers.py. For several agent counts it runs random actions, then
 * hostile ones (negative, past the last action, INT_MIN/INT_MAX), and checks the contract of ocean.h: a
 * non-zero first observation with no reward or episode end left behind by reset(), finite observations,
 * rewards in [-1, 1], never a terminal and a truncation together, bounded render lists inside the canvas,
 * agent counts out of range refused, and the same seed giving the same trajectory. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ocean/csrc/ocean_envs.h"

#define NUM_ENVS 3
#define STEPS 3000
#define MAX_DRAW 512

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
    int agents, total;
    unsigned char *envs;
    float *obs, *rewards;
    int32_t *actions;
    unsigned char *terminals, *truncations;
} Vec;

static void *env_at(Vec *v, int i) { return v->envs + (size_t)i * v->spec->env_size; }

static int vec_open(Vec *v, const OceanSpec *spec, int agents, uint64_t seed) {
    memset(v, 0, sizeof(*v));
    v->spec = spec;
    v->agents = agents;
    v->total = NUM_ENVS * agents;
    size_t n = (size_t)v->total;
    v->envs = calloc(NUM_ENVS, spec->env_size);
    v->obs = calloc(n * (size_t)spec->obs_size, sizeof(float));
    v->rewards = calloc(n, sizeof(float));
    v->actions = calloc(n, sizeof(int32_t));
    v->terminals = calloc(n, 1);
    v->truncations = calloc(n, 1);
    if (!v->envs || !v->obs || !v->rewards || !v->actions || !v->terminals || !v->truncations) return -1;
    for (int i = 0; i < NUM_ENVS; i++) {
        size_t off = (size_t)(i * agents);
        if (spec->init(env_at(v, i), agents, seed + (uint64_t)i) != 0) return -1;
        spec->bind(env_at(v, i), v->obs + off * (size_t)spec->obs_size, v->actions + off, v->rewards + off,
                   v->terminals + off, v->truncations + off);
        for (int a = 0; a < agents; a++) {      /* what a last episode's end would leave; reset() must clear it */
            v->rewards[off + (size_t)a] = NAN;
            v->terminals[off + (size_t)a] = v->truncations[off + (size_t)a] = 1;
        }
        spec->reset(env_at(v, i), seed * 7919u + (uint64_t)i);
    }
    return 0;
}

static void vec_close(Vec *v) {
    for (int i = 0; i < NUM_ENVS && v->envs; i++) v->spec->close(env_at(v, i));
    free(v->envs);
    free(v->obs);
    free(v->rewards);
    free(v->actions);
    free(v->terminals);
    free(v->truncations);
}

static int32_t hostile_action(Rng *r, int num_actions) {
    switch (rng_int(r, 6)) {
    case 0: return -1;
    case 1: return num_actions;
    case 2: return INT_MIN;
    case 3: return INT_MAX;
    case 4: return (int32_t)rng_u32(r);
    default: return (int32_t)rng_int(r, num_actions);
    }
}

static int in_canvas(float v) { return isfinite(v) && v >= -1e-3f && v <= 1.0f + 1e-3f; }

static void check_render(Vec *v, DrawCmd *cmds) {
    const char *name = v->spec->name;
    for (int i = 0; i < NUM_ENVS; i++) {
        int n = v->spec->render(env_at(v, i), cmds, MAX_DRAW);
        CHECK(n > 0 && n <= MAX_DRAW, "%s: render wrote %d commands", name, n);
        for (int k = 0; k < n && k < MAX_DRAW; k++) {
            DrawCmd c = cmds[k];
            CHECK(c.kind == DRAW_RECT || c.kind == DRAW_CIRCLE || c.kind == DRAW_LINE, "%s: draw kind %d", name,
                  c.kind);
            CHECK(in_canvas(c.x) && in_canvas(c.y), "%s: command %d at (%g, %g) off the canvas", name, k,
                  (double)c.x, (double)c.y);
            if (c.kind == DRAW_LINE)
                CHECK(in_canvas(c.w) && in_canvas(c.h), "%s: line %d ends off the canvas", name, k);
            else if (c.kind == DRAW_RECT)
                CHECK(c.w >= 0 && c.h >= 0 && in_canvas(c.x + c.w) && in_canvas(c.y + c.h),
                      "%s: rect %d leaves the canvas", name, k);
            else
                CHECK(c.w > 0 && c.w < 0.5f, "%s: circle %d radius %g", name, k, (double)c.w);
        }
        /* A short buffer must be respected. */
        int m = v->spec->render(env_at(v, i), cmds, 1);
        CHECK(m == 1, "%s: render with max 1 wrote %d", name, m);
    }
}

static void run(const OceanSpec *spec, int agents, uint64_t seed) {
    Vec v;
    const char *name = spec->name;
    if (vec_open(&v, spec, agents, seed) != 0) {
        CHECK(0, "%s: could not open %d agents", name, agents);
        vec_close(&v);
        return;
    }
    int obs_n = spec->obs_size;
    for (int a = 0; a < v.total; a++) {
        int nonzero = 0;
        for (int k = 0; k < obs_n; k++) nonzero |= v.obs[a * obs_n + k] != 0.0f;
        CHECK(nonzero, "%s: agent %d's first observation is all zero", name, a);
        CHECK(v.rewards[a] == 0.0f && !v.terminals[a] && !v.truncations[a],
              "%s: agent %d: reset() left reward %g, terminal %d, truncation %d", name, a, (double)v.rewards[a],
              v.terminals[a], v.truncations[a]);
    }
    DrawCmd *cmds = calloc(MAX_DRAW, sizeof(DrawCmd));
    check_render(&v, cmds);
    Rng r;
    rng_seed(&r, seed ^ 0xABCDEFu);
    long ends = 0;
    for (int t = 0; t < STEPS; t++) {
        int hostile = t >= STEPS / 2;
        for (int a = 0; a < v.total; a++)
            v.actions[a] = hostile ? hostile_action(&r, spec->num_actions) : (int32_t)rng_int(&r, spec->num_actions);
        for (int i = 0; i < NUM_ENVS; i++) spec->step(env_at(&v, i));
        for (int a = 0; a < v.total; a++) {
            float rew = v.rewards[a];
            CHECK(isfinite(rew) && rew >= -1.0f && rew <= 1.0f, "%s: reward %g at step %d", name, (double)rew, t);
            CHECK(v.terminals[a] <= 1 && v.truncations[a] <= 1, "%s: flags not 0/1", name);
            CHECK(!(v.terminals[a] && v.truncations[a]), "%s: terminal and truncation together, step %d", name, t);
            ends += v.terminals[a] | v.truncations[a];
            for (int k = 0; k < obs_n; k++) {
                float o = v.obs[a * obs_n + k];
                CHECK(isfinite(o) && fabsf(o) <= 10.0f, "%s: obs[%d] = %g at step %d", name, k, (double)o, t);
            }
        }
        if (t % 97 == 0) check_render(&v, cmds);
        if (failures > 20) break;
    }
    float logged = 0.0f;
    for (int i = 0; i < NUM_ENVS; i++) {
        OceanLog *l = spec->log(env_at(&v, i));
        CHECK(isfinite(l->episode_return) && isfinite(l->episode_length) && isfinite(l->score),
              "%s: log not finite", name);
        logged += l->n;
    }
    CHECK(logged > 0.0f || ends == 0, "%s: %ld episode ends but nothing logged", name, ends);
    printf("  %-14s agents %3d: %ld episode ends, %g logged\n", name, agents, ends, (double)logged);
    free(cmds);
    vec_close(&v);
}

/* Two vectors on the same seed, stepped with the same actions, must agree bit for bit. */
static void check_determinism(const OceanSpec *spec) {
    Vec a, b;
    int agents = spec->default_agents;
    if (vec_open(&a, spec, agents, 42) != 0 || vec_open(&b, spec, agents, 42) != 0) {
        CHECK(0, "%s: could not open", spec->name);
    } else {
        Rng r;
        rng_seed(&r, 5);
        size_t obs_bytes = (size_t)a.total * (size_t)spec->obs_size * sizeof(float);
        for (int t = 0; t < 500; t++) {
            for (int k = 0; k < a.total; k++) a.actions[k] = b.actions[k] = (int32_t)rng_int(&r, spec->num_actions);
            for (int i = 0; i < NUM_ENVS; i++) {
                spec->step(env_at(&a, i));
                spec->step(env_at(&b, i));
            }
            int same = memcmp(a.obs, b.obs, obs_bytes) == 0 &&
                       memcmp(a.rewards, b.rewards, (size_t)a.total * sizeof(float)) == 0 &&
                       memcmp(a.terminals, b.terminals, (size_t)a.total) == 0 &&
                       memcmp(a.truncations, b.truncations, (size_t)a.total) == 0;
            CHECK(same, "%s: same seed diverged at step %d", spec->name, t);
            if (!same) break;
        }
    }
    vec_close(&a);
    vec_close(&b);
}

int main(void) {
    for (int e = 0; e < OCEAN_NUM_ENVS; e++) {
        const OceanSpec *s = OCEAN_ENVS[e];
        CHECK(s->name && s->obs_size > 0 && s->num_actions > 0 && s->env_size > 0 && s->aspect > 0,
              "env %d: bad spec", e);
        CHECK(s->min_agents >= 1 && s->min_agents <= s->default_agents && s->default_agents <= s->max_agents,
              "%s: agent counts %d <= %d <= %d", s->name, s->min_agents, s->default_agents, s->max_agents);
        int counts[4] = {s->default_agents, s->min_agents, s->max_agents, (s->min_agents + s->max_agents) / 2};
        for (int k = 0; k < 4; k++) {
            int seen = 0;
            for (int j = 0; j < k; j++) seen |= counts[j] == counts[k];
            if (!seen) run(s, counts[k], (uint64_t)(e * 100 + k));
        }
        /* Agent counts out of range are refused, and close() is safe after a refused init. */
        unsigned char *buf = calloc(1, s->env_size);
        CHECK(s->init(buf, s->min_agents - 1, 1) != 0, "%s: accepted %d agents", s->name, s->min_agents - 1);
        s->close(buf);
        memset(buf, 0, s->env_size);
        CHECK(s->init(buf, s->max_agents + 1, 1) != 0, "%s: accepted %d agents", s->name, s->max_agents + 1);
        s->close(buf);
        free(buf);
        check_determinism(s);
    }
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("all runs passed (%d envs)\n", OCEAN_NUM_ENVS);
    return 0;
}
