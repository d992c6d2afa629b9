/* test_nearest.c - the fast neighbour search of drone_env.h against the plain double loop it replaces.
 * Random swarms of 1 to 200 drones, exact distance ties, NaN / infinite / huge positions, stale and
 * garbage neighbour lists, obstacles on and off: the lists must be identical, ties included. */
#include <stdio.h>
#include <stdlib.h>

#include "drone_env.h"

/* the plain double loop */
static void ref_nearest(DroneEnv *e, int drones, int *nbr, int *obst) {
    int n = e->n;
    for (int i = 0; i < n; i++) {
        float p[3]; env_pos(e, i, p);
        int *nb = nbr + OBS_K_DRONES * i; float bd[OBS_K_DRONES];
        for (int k = 0; k < OBS_K_DRONES; k++) { nb[k] = -1; bd[k] = 1e30f; }
        if (drones) for (int j = 0; j < n; j++) {
            if (j == i) continue;
            float dx = e->S[QS_PX * n + j] - p[0], dy = e->S[QS_PY * n + j] - p[1], dz = e->S[QS_PZ * n + j] - p[2];
            float d = dx * dx + dy * dy + dz * dz;
            if (d >= bd[OBS_K_DRONES - 1]) continue;
            int k = OBS_K_DRONES - 1;
            while (k > 0 && bd[k - 1] > d) { bd[k] = bd[k - 1]; nb[k] = nb[k - 1]; k--; }
            bd[k] = d; nb[k] = j;
        }
        int *ob = obst + OBS_K_OBSTACLES * i; float bo[OBS_K_OBSTACLES];
        for (int k = 0; k < OBS_K_OBSTACLES; k++) { ob[k] = -1; bo[k] = 1e30f; }
        for (int j = 0; j < e->course.num_obstacles; j++) {
            const Sphere *s = &e->course.obstacles[j];
            float d = v3_dist(p, s->pos) - s->radius;
            if (d >= bo[OBS_K_OBSTACLES - 1]) continue;
            int k = OBS_K_OBSTACLES - 1;
            while (k > 0 && bo[k - 1] > d) { bo[k] = bo[k - 1]; ob[k] = ob[k - 1]; k--; }
            bo[k] = d; ob[k] = j;
        }
    }
}
int main(void) {
    Rng r; rng_seed(&r, 42); long bad = 0, runs = 0;
    int sizes[] = {1, 2, 3, 4, 5, 17, 63, 64, 65, 130, 200};
    for (int si = 0; si < 11; si++) for (int trial = 0; trial < 300; trial++) {
        int n = sizes[si];
        size_t sz = (size_t)n;
        DroneEnv e;
        memset(&e, 0, sizeof e);
        e.n = n;
        e.S = calloc(QS_COUNT * sz, sizeof(float));
        e.nbr = calloc(OBS_K_DRONES * sz, sizeof(int));
        e.obst = calloc(OBS_K_OBSTACLES * sz, sizeof(int));
        int *rn = calloc(OBS_K_DRONES * sz, sizeof(int)), *ro = calloc(OBS_K_OBSTACLES * sz, sizeof(int));
        e.course.num_obstacles = trial % 5 == 0 ? 20 : 0;
        for (int j = 0; j < e.course.num_obstacles; j++) { for (int k = 0; k < 3; k++) e.course.obstacles[j].pos[k] = rng_uniform(&r, -5, 5); e.course.obstacles[j].radius = rng_uniform(&r, 0.3f, 1.2f); }
        for (int step = 0; step < 6; step++) {
            int mode = trial % 7;
            for (int j = 0; j < n; j++) for (int k = 0; k < 3; k++) {
                float v = mode == 0 ? (float)rng_int(&r, 3) : rng_uniform(&r, -4, 4); /* mode 0: many exact ties */
                if (step == 0 || rng_uniform01(&r) < 0.3f) e.S[(QS_PX + k) * n + j] = v;
            }
            if (mode == 1 && step == 3) e.S[QS_PY * n + rng_int(&r, n)] = NAN;
            if (mode == 2 && step == 2) e.S[QS_PX * n + rng_int(&r, n)] = INFINITY;
            if (mode == 3 && step == 4) e.S[QS_PZ * n + rng_int(&r, n)] = 3e38f;
            if (mode == 4) for (int j = 0; j < 3 * n; j++) e.nbr[j] = rng_int(&r, n + 2) - 1; /* garbage lists */
            int drones = step != 1;
            ref_nearest(&e, drones, rn, ro);
            env_find_nearest(&e, drones);
            runs++;
            if (memcmp(rn, e.nbr, OBS_K_DRONES * sz * sizeof(int)) ||
                memcmp(ro, e.obst, OBS_K_OBSTACLES * sz * sizeof(int))) { bad++; if (bad < 5) printf("mismatch n=%d trial=%d step=%d mode=%d\n", n, trial, step, mode); }
        }
        free(e.S); free(e.nbr); free(e.obst); free(rn); free(ro);
    }
    printf("%ld runs, %ld mismatches\n", runs, bad);
    if (bad == 0) printf("nearest search: all runs passed\n");
    return bad != 0;
}
