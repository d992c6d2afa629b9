/* slot_assign.h - which formation slot each drone flies to.
 *
 * Drones converging on a formation meet on the way when their straight paths cross. The assignment here keeps
 * the sum of squared drone-to-slot distances at a pairwise minimum: no two drones would lower it by trading
 * slots, and no drone by moving to a free slot. For any two drones i, j with starts a and slots g that means
 * (a_i - a_j) . (g_i - g_j) >= 0, so if both flew straight lines over the same time span their separation
 * would never fall below min(|a_i - a_j|, |g_i - g_j|) / sqrt(2): paths that cross inside the formation
 * are what it rules out. (This is the argument of concurrent assignment and planning of trajectories,
 * Turpin, Michael and Kumar 2014; the sum of plain distances, or nearest-free-slot greedy, has no such bound.)
 *
 * It starts from the greedy assignment (each drone in turn takes the nearest free slot, the rule before
 * this header) and improves it by swaps and moves until none helps. Every accepted change lowers the sum
 * by more than a small tolerance, so it ends; max_passes bounds the work anyway. No allocation: the caller
 * passes a scratch array of m ints.
 */
#ifndef SLOT_ASSIGN_H
#define SLOT_ASSIGN_H

#include <math.h>

/* Enough for any formation the env builds: a pass is O(n^2), and the greedy start leaves few changes. */
enum { SLOT_ASSIGN_MAX_PASSES = 64 };

static inline float slot_sq_dist(const float *a, const float *b) {
    float dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* n drones at pos (3 floats each) onto m >= n slots (3 floats each): slot_of[i] is drone i's slot.
 * taken: scratch, m ints. Returns the number of improvement passes run (1 when greedy was already optimal
 * pairwise: the pass that found nothing), or -1 when m < n. */
static inline int slot_assign(int n, const float *pos, int m, const float *slots, int *slot_of, int *taken,
                              int max_passes) {
    if (m < n) return -1;
    for (int s = 0; s < m; s++) taken[s] = 0;
    for (int i = 0; i < n; i++) {
        int best = -1;
        float bd = INFINITY;
        for (int s = 0; s < m; s++) {
            if (taken[s]) continue;
            float d = slot_sq_dist(pos + 3 * i, slots + 3 * s);
            if (d < bd || best < 0) {
                bd = d;
                best = s;
            }
        }
        taken[best] = 1;
        slot_of[i] = best;
    }
    const float tol = 1e-6f;
    int passes = 0;
    for (int changed = 1; changed && passes < max_passes;) {
        changed = 0;
        passes++;
        for (int i = 0; i < n; i++) {
            const float *pi = pos + 3 * i;
            for (int j = i + 1; j < n; j++) {
                const float *pj = pos + 3 * j;
                const float *si = slots + 3 * slot_of[i], *sj = slots + 3 * slot_of[j];
                float now = slot_sq_dist(pi, si) + slot_sq_dist(pj, sj);
                float traded = slot_sq_dist(pi, sj) + slot_sq_dist(pj, si);
                if (traded < now - tol * (1.0f + now)) {
                    int t = slot_of[i];
                    slot_of[i] = slot_of[j];
                    slot_of[j] = t;
                    changed = 1;
                }
            }
            for (int s = 0; s < m; s++) {
                if (taken[s]) continue;
                float now = slot_sq_dist(pi, slots + 3 * slot_of[i]);
                if (slot_sq_dist(pi, slots + 3 * s) < now - tol * (1.0f + now)) {
                    taken[slot_of[i]] = 0;
                    taken[s] = 1;
                    slot_of[i] = s;
                    changed = 1;
                }
            }
        }
    }
    return passes;
}

#endif
