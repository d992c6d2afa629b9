/* test_env.c - drives the C env directly, built with -Werror and AddressSanitizer/UBSan by
 * tests/test_sanitizers.py. It runs every task in both action modes, with and without domain
 * randomization and auto-reset, feeds hostile actions (NaN, inf, huge values) and checks the contract:
 * finite observations, rewards in [-1, 1], a terminal and a truncation never together, state finite. */
#include <stdio.h>
#include <stdlib.h>

#include "drone_env.h"

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

static void fill_config(SimConfig *c, int task, int mode, int dr, int auto_reset) {
    memset(c, 0, sizeof(*c));
    c->physics_dt = 0.002f;
    c->substeps = 10;
    c->integrator = INTEGRATOR_RK4;
    c->action_mode = mode;
    c->auto_reset = auto_reset;
    c->task_weights[task] = 1.0f;
    for (int k = 0; k < NUM_TASKS; k++) c->horizon_s[k] = 2.0f;
    c->arena = (Arena){15.0f, 15.0f, 8.0f};
    c->crash_speed = 2.0f;
    c->success_radius = 0.3f;
    c->follow_radius = 0.5f;
    c->formation_radius = 0.3f;
    c->goal_radius = 0.5f;
    c->formation_spacing = 1.2f;
    /* every shaping term on, so that the sanitizers see their arithmetic too */
    c->crash_penalty = 1.0f;
    c->clearance_margin = 0.3f;
    c->clearance_weight = 0.3f;
    c->clearance_time = 0.5f;
    c->rim_lookahead = 0.3f;
    c->race_tight_room = 0.6f;
    c->smooth_weight = 0.1f;
    for (int k = 0; k < NUM_TASKS; k++) c->speed_limit[k] = k == TASK_RACE ? 0.0f : 3.0f;
    c->speed_weight = 0.5f;
    c->race_rings = 7;
    c->ring_radius = (Range){0.6f, 1.0f};
    c->obstacles_lo = 8;
    c->obstacles_hi = 16;
    c->obstacle_radius = (Range){0.3f, 1.2f};
    c->blocked_line_prob = 0.5f;
    DroneParams d = {0.5f, 0.1f, {1.5e-3f, 1.5e-3f, 2.75e-3f}, 5.47e-7f, 8.75e-9f, 0.03f, 0.035f, 2800.0f,
                     {0.05f, 0.05f, 0.1f}, {1.5e-4f, 1.5e-4f, 2.75e-4f}, {20, 20, 10}, {10, 10, 5},
                     {0.02f, 0.02f, 0.0f}, {7, 7, 3}, 0.0f, 0.15f, {0, 0, 0}};
    c->nominal = d;
    DRConfig *r = &c->dr;
    r->enabled = dr;
    r->arm = (Range){0.03f, 0.25f};
    r->arm_ref = 0.12f;
    r->mass_ref = 0.6f;
    r->mass_factor = (Range){0.7f, 1.4f};
    r->inertia_xy = (Range){0.2f, 0.35f};
    r->inertia_z = (Range){0.35f, 0.6f};
    r->twr = (Range){1.8f, 4.5f};
    r->omega_ref = 2800.0f;
    r->omega_factor = (Range){0.8f, 1.25f};
    r->torque_ratio = (Range){0.008f, 0.025f};
    r->tau = (Range){0.015f, 0.06f};
    r->tau_down_ratio = (Range){1.0f, 1.5f};
    r->drag_xy = (Range){0.05f, 0.4f};
    r->drag_z = (Range){0.1f, 0.5f};
    r->ang_damp = (Range){0.0f, 0.3f};
    r->kp_rp = (Range){15, 30};
    r->kp_yaw = (Range){8, 16};
    r->ki_ratio = (Range){0, 1};
    r->kd = (Range){0, 0.04f};
    r->latency = (Range){0, 0.02f};
    r->obs_noise = (Range){0, 1};
    r->wind = (Range){0, 0.8f};
    r->init_tilt = 0.5f;
    r->init_vel = 1.0f;
    r->init_rate = 1.0f;
    r->ground_start_prob = 0.2f;
}

static void run(int task, int mode, int dr, int auto_reset, int n) {
    SimConfig c;
    fill_config(&c, task, mode, dr, auto_reset);
    DroneEnv e;
    float *obs = calloc((size_t)n * OBS_SIZE, sizeof(float));
    float *act = calloc((size_t)n * 4, sizeof(float));
    float *rew = calloc((size_t)n, sizeof(float));
    unsigned char *term = calloc((size_t)n, 1), *trunc = calloc((size_t)n, 1);
    float *priv = calloc((size_t)n * PRIV_SIZE, sizeof(float)); /* exactly n rows: ASan sees a row written past */
    CHECK(env_init(&e, &c, n, 7) == 0, "env_init failed");
    env_bind(&e, obs, act, rew, term, trunc);
    env_bind_privileged(&e, priv);
    env_reset(&e, 11);
    Rng r;
    rng_seed(&r, 3);
    int episodes = 0;
    for (int step = 0; step < 400; step++) {
        for (int j = 0; j < 4 * n; j++) {
            float u = rng_uniform01(&r);
            act[j] = u < 0.01f ? NAN : u < 0.02f ? INFINITY : u < 0.03f ? -1e30f : rng_uniform(&r, -1.2f, 1.2f);
        }
        env_step(&e);
        for (int i = 0; i < n; i++) {
            CHECK(rew[i] >= -1.0f && rew[i] <= 1.0f, "task %d reward %f out of range", task, (double)rew[i]);
            CHECK(!(term[i] && trunc[i]), "terminal and truncation together");
            episodes += term[i] || trunc[i];
            float x[QS_COUNT];
            env_get_state(&e, i, x);
            for (int k = 0; k < QS_COUNT; k++) CHECK(isfinite(x[k]), "state not finite");
        }
        for (int j = 0; j < n * OBS_SIZE; j++) CHECK(isfinite(obs[j]), "observation %d not finite", j);
        for (int j = 0; j < n * PRIV_SIZE; j++) CHECK(isfinite(priv[j]), "privileged value %d not finite", j);
    }
    if (auto_reset) CHECK(episodes > 0, "task %d mode %d: no episode ended in 400 steps", task, mode);
    CHECK(e.nonfinite_actions > 0, "non-finite actions were not counted");
    env_close(&e);
    free(obs);
    free(act);
    free(rew);
    free(term);
    free(trunc);
    free(priv);
}

/* Evaluation mode: whole env-episodes from reset, one logged episode per drone per env-episode, however
   often crashed drones respawn in between. */
static void run_evaluation(int task, int n) {
    SimConfig c;
    fill_config(&c, task, ACTION_CTBR, 1, 1);
    c.evaluation = 1;
    DroneEnv e;
    float *obs = calloc((size_t)n * OBS_SIZE, sizeof(float));
    float *act = calloc((size_t)n * 4, sizeof(float));
    float *rew = calloc((size_t)n, sizeof(float));
    unsigned char *term = calloc((size_t)n, 1), *trunc = calloc((size_t)n, 1);
    CHECK(env_init(&e, &c, n, 5) == 0, "env_init failed");
    env_bind(&e, obs, act, rew, term, trunc);
    env_reset(&e, 13);
    Rng r;
    rng_seed(&r, 9);
    int horizon = e.horizon, rounds = 3, ends = 0;
    for (int step = 0; step < rounds * horizon; step++) {
        for (int j = 0; j < 4 * n; j++) act[j] = rng_uniform(&r, -1.0f, 1.0f);
        env_step(&e);
        for (int i = 0; i < n; i++) ends += term[i] || trunc[i];
    }
    CHECK(e.step == 0, "task %d: evaluation env-episodes must run exactly their horizon (%d steps)", task, horizon);
    CHECK((int)e.logs[task].n == rounds * n, "task %d: evaluation logged %d episodes, expected %d",
          task, (int)e.logs[task].n, rounds * n);
    CHECK(ends > rounds * n, "task %d: random actions should have crashed and respawned some drones", task);
    env_close(&e);
    free(obs);
    free(act);
    free(rew);
    free(term);
    free(trunc);
}

int main(void) {
    run_evaluation(TASK_HOVER, 4);
    run_evaluation(TASK_RACE, 3);
    for (int task = 0; task < NUM_TASKS; task++)
        for (int mode = 0; mode < 2; mode++)
            for (int dr = 0; dr < 2; dr++) run(task, mode, dr, 1, task == TASK_SWARM ? 9 : 4);
    run(TASK_HOVER, ACTION_CTBR, 1, 0, 3);
    run(TASK_SWARM, ACTION_RPM, 1, 1, 1); /* a formation of one */
    if (failures) {
        printf("0 passed, %d failed\n", failures);
        return 1;
    }
    printf("c env contract: all runs passed\n");
    return 0;
}
