/* bench_sim.c - the C step loop of drone_sim timed on its own, with no Python in the loop.
 *
 * Built and run by scripts/bench_sim.py, which writes the configurations into a generated header
 * (bench_cases.h, from drone_sim.config.build_config, the same dict the Python binding receives)
 * and the pre-generated actions into a binary file. Nothing here chooses a setting.
 *
 *   bench_sim env CASE NUM_ENVS AGENTS SEED WARMUP STEPS WINDOWS ACTIONS_FILE FRAMES [DUMP_FILE]
 *   bench_sim physics LAYOUT CASE AGENTS SEED STEPS WINDOWS
 *
 * "env" times env_step, everything a training step costs. "physics" times only the substep loop
 * (rate loop / motor commands + integrator) of one env's drones holding their reset action, in
 * LAYOUT 0 = the simulator's structure of arrays (one call over all drones) or LAYOUT 1 = array of
 * structures (the same functions called once per drone with n = 1, so each drone's state, parameters
 * and commands are contiguous and nothing can be vectorized across drones).
 *
 * Envs are created and seeded exactly as drone_sim.binding.CVecEnv does (env_init with seed + i,
 * env_reset with seed * 1000003 + i) and stepped in the same order, so after the same actions the
 * observations are bit-identical to the binding's (the Python side checks this with DUMP_FILE).
 * Action frame k % FRAMES is copied into the envs' action buffer before step k, as a trainer would
 * write its policy's actions; the copy is inside the timed loop.
 *
 * Prints one line per timing window: "window <agent_steps_per_s> <seconds>", then "ends <count>" (agents
 * whose episode ended: terminals + truncations). Built with -DBENCH_PROFILE, each window is followed by
 * "phase <window> <i> <s>": the time env_step spent in phase i (see ENV_PROFILE_MARK in drone_env.h).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifdef BENCH_PROFILE
#define BENCH_PHASES 8
static double bench_phase_s[BENCH_PHASES], bench_phase_last;
/* The time since the previous mark is charged to `phase`. */
#define ENV_PROFILE_MARK(phase)                                   \
    do {                                                          \
        double now_ = bench_now();                                \
        bench_phase_s[(phase)] += now_ - bench_phase_last;        \
        bench_phase_last = now_;                                  \
    } while (0)
#endif

#include "drone_env.h"
#include "bench_cases.h" /* generated: BENCH_NUM_CASES, bench_case_config(int, SimConfig *) */

/* Time env_step over NUM_ENVS envs of AGENTS drones, as drone_sim.binding.CVecEnv.step does. */
static int bench_env(int argc, char **argv) {
    if (argc < 11) {
        fprintf(stderr, "usage: %s env CASE NUM_ENVS AGENTS SEED WARMUP STEPS WINDOWS ACTIONS_FILE FRAMES [DUMP]\n",
                argv[0]);
        return 2;
    }
    int which = atoi(argv[2]), num_envs = atoi(argv[3]), agents = atoi(argv[4]);
    unsigned long long seed = strtoull(argv[5], NULL, 10);
    int warmup = atoi(argv[6]), steps = atoi(argv[7]), windows = atoi(argv[8]);
    const char *actions_path = argv[9];
    int frames = atoi(argv[10]);
    const char *dump_path = argc > 11 ? argv[11] : NULL;
    if (which < 0 || which >= BENCH_NUM_CASES || num_envs < 1 || agents < 1 || frames < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    static SimConfig cfg; /* large (courses), keep it off the stack */
    bench_case_config(which, &cfg);

    size_t total = (size_t)num_envs * (size_t)agents;
    float *table = malloc(sizeof(float) * 4 * total * (size_t)frames);
    FILE *f = fopen(actions_path, "rb");
    if (!table || !f || fread(table, sizeof(float) * 4 * total, (size_t)frames, f) != (size_t)frames) {
        fprintf(stderr, "cannot read %d action frames for %zu agents from %s\n", frames, total, actions_path);
        return 1;
    }
    fclose(f);

    DroneEnv *envs = calloc((size_t)num_envs, sizeof(DroneEnv));
    float *obs = calloc(total * OBS_SIZE, sizeof(float)), *act = calloc(total * 4, sizeof(float));
    float *rew = calloc(total, sizeof(float));
    unsigned char *term = calloc(total, 1), *trunc = calloc(total, 1);
    if (!envs || !obs || !act || !rew || !term || !trunc) return 1;
    for (int e = 0; e < num_envs; e++) {
        size_t off = (size_t)e * (size_t)agents;
        if (env_init(&envs[e], &cfg, agents, seed + (unsigned long long)e) != 0) return 1;
        env_bind(&envs[e], obs + off * OBS_SIZE, act + off * 4, rew + off, term + off, trunc + off);
    }
    for (int e = 0; e < num_envs; e++) env_reset(&envs[e], seed * 1000003ULL + (unsigned long long)e);

    long step = 0, ends = 0;
    for (; step < warmup; step++) {
        memcpy(act, table + (size_t)(step % frames) * 4 * total, sizeof(float) * 4 * total);
        for (int e = 0; e < num_envs; e++) env_step(&envs[e]);
    }
    for (int w = 0; w < windows; w++) {
#ifdef BENCH_PROFILE
        memset(bench_phase_s, 0, sizeof(bench_phase_s));
#endif
        double t0 = bench_now();
        for (int s = 0; s < steps; s++, step++) {
            memcpy(act, table + (size_t)(step % frames) * 4 * total, sizeof(float) * 4 * total);
            for (int e = 0; e < num_envs; e++) {
#ifdef BENCH_PROFILE
                bench_phase_last = bench_now();
#endif
                env_step(&envs[e]);
            }
            for (size_t i = 0; i < total; i++) ends += term[i] | trunc[i];
        }
        double dt = bench_now() - t0;
        printf("window %.1f %.6f\n", (double)steps * (double)total / dt, dt);
#ifdef BENCH_PROFILE
        for (int p = 0; p < BENCH_PHASES; p++) printf("phase %d %d %.6f\n", w, p, bench_phase_s[p]);
#endif
    }
    printf("ends %ld\n", ends);
    if (dump_path) {
        FILE *d = fopen(dump_path, "wb");
        if (!d || fwrite(obs, sizeof(float) * OBS_SIZE, total, d) != total ||
            fwrite(rew, sizeof(float), total, d) != total)
            return 1;
        fclose(d);
    }
    for (int e = 0; e < num_envs; e++) env_close(&envs[e]);
    free(envs); free(obs); free(act); free(rew); free(term); free(trunc); free(table);
    return 0;
}

/* Time the physics substeps alone, in the simulator's layout or in an array-of-structures layout. */
static int bench_physics(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s physics LAYOUT CASE AGENTS SEED STEPS WINDOWS\n", argv[0]);
        return 2;
    }
    int aos = atoi(argv[2]), which = atoi(argv[3]), n = atoi(argv[4]);
    unsigned long long seed = strtoull(argv[5], NULL, 10);
    int steps = atoi(argv[6]), windows = atoi(argv[7]);
    if (which < 0 || which >= BENCH_NUM_CASES || n < 1) return 2;
    static SimConfig cfg;
    bench_case_config(which, &cfg);
    /* One env, reset as usual, gives the drones (sampled parameters, spawn states, reset actions). */
    DroneEnv env;
    float *obs = calloc((size_t)n * OBS_SIZE, sizeof(float)), *actbuf = calloc((size_t)n * 4, sizeof(float));
    float *rew = calloc((size_t)n, sizeof(float));
    unsigned char *term = calloc((size_t)n, 1), *trunc = calloc((size_t)n, 1);
    if (env_init(&env, &cfg, n, seed) != 0) return 1;
    env_bind(&env, obs, actbuf, rew, term, trunc);
    env_reset(&env, seed * 1000003ULL);

    /* Working copies: S, P, C, U and the actions, in the chosen layout. */
    float *S0 = malloc(sizeof(float) * QS_COUNT * n), *S = malloc(sizeof(float) * QS_COUNT * n);
    float *P = malloc(sizeof(float) * QP_COUNT * n), *C = calloc((size_t)QC_COUNT * n, sizeof(float));
    float *U = calloc((size_t)4 * n, sizeof(float)), *impact = calloc((size_t)n, sizeof(float));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < QS_COUNT; j++) S0[aos ? i * QS_COUNT + j : j * n + i] = env.S[j * n + i];
        for (int j = 0; j < QP_COUNT; j++) P[aos ? i * QP_COUNT + j : j * n + i] = env.P[j * n + i];
    }
    const float *act = env.act, *prev = env.prev_act; /* 4 per drone in both layouts */
    const float dt = cfg.physics_dt;
    const int substeps = cfg.substeps, mode = cfg.action_mode, integ = cfg.integrator;
    double sum = 0.0;
    for (int w = 0; w < windows; w++) {
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) {
            if (s % 50 == 0) memcpy(S, S0, sizeof(float) * QS_COUNT * n); /* start over every simulated second */
            for (int k = 0; k < substeps; k++) {
                if (!aos) {
                    if (mode == ACTION_CTBR) quad_commands_ctbr(n, S, P, act, prev, C, U, k, dt);
                    else quad_commands_rpm(n, P, act, prev, U, k);
                    quad_integrate(n, S, P, U, dt, integ, impact);
                } else {
                    for (int i = 0; i < n; i++) {
                        float *s1 = S + i * QS_COUNT, *u1 = U + 4 * i;
                        const float *p1 = P + i * QP_COUNT;
                        if (mode == ACTION_CTBR)
                            quad_commands_ctbr(1, s1, p1, act + 4 * i, prev + 4 * i, C + i * QC_COUNT, u1, k, dt);
                        else
                            quad_commands_rpm(1, p1, act + 4 * i, prev + 4 * i, u1, k);
                        quad_integrate(1, s1, p1, u1, dt, integ, impact + i);
                    }
                }
            }
        }
        double el = bench_now() - t0;
        printf("window %.1f %.6f\n", (double)steps * (double)n / el, el);
    }
    for (int i = 0; i < QS_COUNT * n; i++) sum += S[i];
    printf("checksum %.6g\n", sum); /* keeps the work observable */
    env_close(&env);
    free(S0); free(S); free(P); free(C); free(U); free(impact);
    free(obs); free(actbuf); free(rew); free(term); free(trunc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "env") == 0) return bench_env(argc, argv);
    if (argc > 1 && strcmp(argv[1], "physics") == 0) return bench_physics(argc, argv);
    fprintf(stderr, "usage: %s env ... | physics ... (see the comment at the top of bench_sim.c)\n", argv[0]);
    return 2;
}
