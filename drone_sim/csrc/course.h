/* course.h - ring courses and obstacle spheres: generation and the geometry of passing and touching.
 *
 * A ring is a circle (centre, unit normal, radius) with a thin rim (a torus tube of radius
 * COURSE_RIM_THICKNESS). It counts as passed when a drone's path crosses the ring's plane in the
 * direction of the normal with the crossing point inside the radius. Touching the rim is a crash.
 * The course JSON file of the design (rings in order, obstacle spheres) maps one-to-one onto Course.
 */
#ifndef DRONE_COURSE_H
#define DRONE_COURSE_H

#include <math.h>

#include "rng.h"

#define COURSE_MAX_RINGS 32
#define COURSE_MAX_OBSTACLES 64
#define COURSE_RIM_THICKNESS 0.05f

typedef struct {
    float pos[3], normal[3], radius;
} Ring;

typedef struct {
    float pos[3], radius;
} Sphere;

typedef struct {
    int num_rings;
    Ring rings[COURSE_MAX_RINGS];
    int num_obstacles;
    Sphere obstacles[COURSE_MAX_OBSTACLES];
} Course;

/* Arena: x, y in [-half_x, half_x] x [-half_y, half_y], z in [0, height]. */
typedef struct {
    float half_x, half_y, height;
} Arena;

/* fminf(fmaxf(x, lo), hi) written as compares: the same result for every x (NaN gives lo), but inlined
 * and vectorizable, where fminf / fmaxf are library calls without -ffast-math. */
static inline float clampf(float x, float lo, float hi) { return x > lo ? (x < hi ? x : hi) : lo; }

static inline float v3_dot(const float a[3], const float b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
static inline float v3_norm(const float a[3]) { return sqrtf(v3_dot(a, a)); }
static inline float v3_dist(const float a[3], const float b[3]) {
    float d[3] = {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
    return v3_norm(d);
}
/* How fast a point moving at vel approaches something offset from it by d at distance |d| = dist (m/s,
 * negative when moving away; 0 when on top of it, where no direction is defined). The observation's closing
 * speed of an obstacle and the clearance penalty's look-ahead are both this. */
static inline float v3_closing_speed(const float d[3], float dist, const float vel[3]) {
    return dist > 0.0f ? v3_dot(d, vel) / dist : 0.0f;
}

#define COURSE_NEAREST_MAX 8

/* The k (<= COURSE_NEAREST_MAX) obstacles nearest to p by surface distance, nearest first and the earlier index
 * on ties, into out; -1 past the last. The order the observation lists obstacles in: training and deploy both
 * select with this. Returns how many were found. */
static inline int course_nearest_obstacles(const Sphere *obst, int n, const float p[3], int k, int *out) {
    float best[COURSE_NEAREST_MAX];
    if (k > COURSE_NEAREST_MAX) k = COURSE_NEAREST_MAX;
    for (int m = 0; m < k; m++) { out[m] = -1; best[m] = 1e30f; }
    int found = 0;
    for (int j = 0; j < n && k > 0; j++) {
        float d = v3_dist(p, obst[j].pos) - obst[j].radius;
        if (d >= best[k - 1]) continue;
        int m = k - 1;
        while (m > 0 && best[m - 1] > d) { best[m] = best[m - 1]; out[m] = out[m - 1]; m--; }
        best[m] = d; out[m] = j;
        found += found < k;
    }
    return found;
}

/* Distance from point p to the ring's rim circle. */
static inline float ring_rim_distance(const Ring *g, const float p[3]) {
    float d[3] = {p[0] - g->pos[0], p[1] - g->pos[1], p[2] - g->pos[2]};
    float h = v3_dot(d, g->normal);
    float in[3] = {d[0] - h * g->normal[0], d[1] - h * g->normal[1], d[2] - h * g->normal[2]};
    float rho = v3_norm(in) - g->radius;
    return sqrtf(h * h + rho * rho);
}

/* Where a drone at p flying straight at v would cross ring g's plane, if it would within horizon seconds:
 * returns 1 and the crossing point's distance from the rim circle in *rim_dist (0: it would not). Lets the
 * reward see a line that will clip the rim while there is still time to correct it, not in the last step. */
static inline int ring_crossing_ahead(const Ring *g, const float p[3], const float v[3], float horizon,
                                      float *rim_dist) {
    float d[3] = {p[0] - g->pos[0], p[1] - g->pos[1], p[2] - g->pos[2]};
    float s = v3_dot(d, g->normal), vn = v3_dot(v, g->normal);
    if (s * vn >= 0.0f || fabsf(s) > horizon * fabsf(vn)) return 0; /* receding, parallel, or further than horizon */
    float t = -s / vn;
    float x[3] = {p[0] + t * v[0], p[1] + t * v[1], p[2] + t * v[2]};
    *rim_dist = ring_rim_distance(g, x);
    return 1;
}

enum { RING_NO_CROSS = 0, RING_PASSED = 1, RING_WRONG_WAY = 2, RING_OUTSIDE = 3 };

/* Classify the segment p0 -> p1 against ring g. *rim_dist is the distance from the rim at the
 * plane crossing (or at p1 when the plane is not crossed), so a fast drone cannot tunnel through
 * the rim between two control steps. */
static inline int ring_cross(const Ring *g, const float p0[3], const float p1[3], float *rim_dist) {
    float d0[3] = {p0[0] - g->pos[0], p0[1] - g->pos[1], p0[2] - g->pos[2]};
    float d1[3] = {p1[0] - g->pos[0], p1[1] - g->pos[1], p1[2] - g->pos[2]};
    float s0 = v3_dot(d0, g->normal), s1 = v3_dot(d1, g->normal);
    *rim_dist = ring_rim_distance(g, p1);
    if ((s0 < 0.0f) == (s1 < 0.0f)) return RING_NO_CROSS;
    float t = s0 / (s0 - s1);
    float x[3] = {p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]), p0[2] + t * (p1[2] - p0[2])};
    float rx = ring_rim_distance(g, x);
    if (rx < *rim_dist) *rim_dist = rx;
    float r = v3_dist(x, g->pos);
    if (r >= g->radius) return RING_OUTSIDE;
    return s0 < 0.0f ? RING_PASSED : RING_WRONG_WAY;
}

/* Procedural ring course: a closed loop of n rings on a perturbed ellipse around the arena centre,
 * heights varying smoothly, each normal along the local direction of travel (so every ring can be
 * entered head-on from the previous one). Rings keep clear of each other and of the arena walls.
 * Sized like the published champion-level track: 7 rings, about 75 m per lap in 30 x 30 x 8 m. */
static inline void course_generate(Course *c, const Arena *a, int n, float r_lo, float r_hi, Rng *rng) {
    if (n < 3) n = 3;
    if (n > COURSE_MAX_RINGS) n = COURSE_MAX_RINGS;
    float margin = 2.5f;
    for (int attempt = 0; attempt < 64; attempt++) {
        float ax = rng_uniform(rng, 0.8f, 0.95f) * (a->half_x - margin);
        float ay = rng_uniform(rng, 0.7f, 0.95f) * (a->half_y - margin);
        float rot = rng_uniform(rng, 0.0f, 6.2831853f), dir = rng_uniform01(rng) < 0.5f ? 1.0f : -1.0f;
        float cr = cosf(rot), sr = sinf(rot);
        float zlo = 1.2f, zhi = a->height - 1.5f;
        float z = rng_uniform(rng, zlo, zhi);
        for (int i = 0; i < n; i++) {
            float th = dir * (6.2831853f * ((float)i + rng_uniform(rng, -0.2f, 0.2f)) / (float)n);
            /* alternate inward and outward so the line weaves (longer laps, real turns) */
            float s = (i & 1) ? rng_uniform(rng, 0.65f, 0.85f) : rng_uniform(rng, 0.95f, 1.1f);
            float ex = ax * s * cosf(th), ey = ay * s * sinf(th);
            Ring *g = &c->rings[i];
            g->pos[0] = cr * ex - sr * ey;
            g->pos[1] = sr * ex + cr * ey;
            z = fminf(fmaxf(z + rng_uniform(rng, -2.0f, 2.0f), zlo), zhi);
            g->pos[2] = z;
            g->radius = rng_uniform(rng, r_lo, r_hi);
            float lim_x = a->half_x - 1.0f - g->radius, lim_y = a->half_y - 1.0f - g->radius;
            g->pos[0] = fminf(fmaxf(g->pos[0], -lim_x), lim_x);
            g->pos[1] = fminf(fmaxf(g->pos[1], -lim_y), lim_y);
            g->pos[2] = fminf(fmaxf(g->pos[2], 0.3f + g->radius), a->height - 0.3f - g->radius);
        }
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            Ring *g = &c->rings[i];
            const Ring *prev = &c->rings[(i + n - 1) % n], *next = &c->rings[(i + 1) % n];
            float t[3];
            for (int k = 0; k < 3; k++) t[k] = next->pos[k] - prev->pos[k];
            t[2] *= 0.5f; /* keep rings closer to upright */
            float tn = v3_norm(t);
            for (int k = 0; k < 3; k++) g->normal[k] = t[k] / tn;
            for (int j = 0; j < i && ok; j++)
                if (v3_dist(g->pos, c->rings[j].pos) < g->radius + c->rings[j].radius + 3.0f) ok = 0;
        }
        if (ok) break;
    }
    c->num_rings = n;
}

/* Length of one lap through the ring centres (m). */
static inline float course_lap_length(const Course *c) {
    float len = 0.0f;
    for (int i = 0; i < c->num_rings; i++)
        len += v3_dist(c->rings[i].pos, c->rings[(i + 1) % c->num_rings].pos);
    return len;
}

/* Random obstacle field between x = -span and x = +span. */
static inline void course_obstacle_field(Course *c, const Arena *a, int n, float r_lo, float r_hi, float span,
                                         Rng *rng) {
    if (n > COURSE_MAX_OBSTACLES) n = COURSE_MAX_OBSTACLES;
    for (int i = 0; i < n; i++) {
        Sphere *s = &c->obstacles[i];
        s->radius = rng_uniform(rng, r_lo, r_hi);
        s->pos[0] = rng_uniform(rng, -span, span);
        s->pos[1] = rng_uniform(rng, -(a->half_y - 2.0f), a->half_y - 2.0f);
        s->pos[2] = rng_uniform(rng, 0.5f, a->height - 0.5f);
    }
    c->num_obstacles = n;
}

/* Does the straight segment a -> b pass within an obstacle's radius + clearance of its centre? That is a drone
 * of radius `clearance` flying straight from a to b hitting it: the obstacle crashes are almost all such lines
 * (BENCHMARKS, issue 18), and crash_report classifies episodes by the same test. */
static inline int course_line_blocked(const Course *c, const float a[3], const float b[3], float clearance) {
    float ab[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    float len2 = v3_dot(ab, ab);
    for (int j = 0; j < c->num_obstacles; j++) {
        const Sphere *s = &c->obstacles[j];
        float as[3] = {s->pos[0] - a[0], s->pos[1] - a[1], s->pos[2] - a[2]};
        float t = len2 > 0.0f ? clampf(v3_dot(as, ab) / len2, 0.0f, 1.0f) : 0.0f;
        float near[3] = {a[0] + t * ab[0], a[1] + t * ab[1], a[2] + t * ab[2]};
        if (v3_dist(near, s->pos) < s->radius + clearance) return 1;
    }
    return 0;
}

#endif
