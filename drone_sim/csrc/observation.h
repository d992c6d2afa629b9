/* observation.h - THE observation vector, defined once.
 *
 * Training builds it from the simulated state; deploy builds it from the estimated state of a real
 * vehicle by calling this same function through the binding (drone_sim.observe). Anything that
 * changes the layout or the scaling below must bump OBS_VERSION: the version travels in the ONNX
 * metadata and deploy refuses a policy built for another layout.
 *
 * All vectors are expressed in the drone's body frame (FLU) except the rotation matrix itself, which
 * carries the attitude (and so the direction of gravity). Relative positions are norm-clipped so a
 * far target saturates to a unit direction instead of growing without bound.
 *
 * Layout (version 2, OBS_SIZE = 84):
 *   [0:3]   velocity, body frame, / 5 m/s
 *   [3:6]   body rates / 10 rad/s
 *   [6:15]  rotation matrix body-to-world, row-major
 *   [15]    height above the floor / 5 m
 *   [16:20] last action (as applied, in [-1, 1])
 *   [20:23] target position relative to the drone, body frame, norm-clipped at 5 m, / 5 m
 *   [23]    distance to target, tanh(d / 10 m)
 *   [24:27] target velocity, body frame, / 5 m/s
 *   [27:30] ring normal, body frame (zero when the task has no ring)
 *   [30]    ring radius (m) (zero when no ring)
 *   [31:34] the ring after it, relative to the current ring, body frame, clipped at 10 m, / 10 m
 *   [34:37] the ring after it: normal, body frame
 *   [37:58] K = 3 nearest drones, each: relative position (clipped 5 m, / 5), relative velocity (/ 5), present
 *   [58:76] K = 3 nearest obstacles, each: centre relative position (clipped 10 m, / 10), radius / 2 m,
 *           gap between the obstacle's surface and the drone's collision sphere (clipped 5 m, / 5; an empty
 *           slot reads 1, far away), closing speed towards the centre (/ 5 m/s, positive when approaching)
 *   [76:82] task one-hot: hover, goto, follow, race, swarm, obstacles
 *   [82]    the drone's own collision radius (m) / 0.5 m
 *   [83]    the drone's hover thrust as a fraction of its maximum thrust, as its owner knows it
 *
 * Version 2 added the last two (what the drone is: a large drone must keep wider of a rim or a neighbour
 * than a small one, and a weak one must command more thrust) and each obstacle's gap and closing speed
 * (the surface distance and its rate, which an MLP otherwise has to compute from clipped vectors).
 * Both self values are what a real drone's owner has: the params file a thrust stand wrote, or
 * ArduCopter's learned MOT_THST_HOVER.
 */
#ifndef DRONE_OBSERVATION_H
#define DRONE_OBSERVATION_H

#include <math.h>
#include <string.h>

#include "course.h"
#include "quadrotor.h"

#define OBS_VERSION 2
#define OBS_K_DRONES 3
#define OBS_K_OBSTACLES 3
#define OBS_NUM_TASKS 6
#define OBS_SIZE 84

#define OBS_VEL 0
#define OBS_RATES 3
#define OBS_ROT 6
#define OBS_HEIGHT 15
#define OBS_LAST_ACTION 16
#define OBS_TARGET_POS 20
#define OBS_TARGET_DIST 23
#define OBS_TARGET_VEL 24
#define OBS_RING_NORMAL 27
#define OBS_RING_RADIUS 30
#define OBS_NEXT_RING_POS 31
#define OBS_NEXT_RING_NORMAL 34
#define OBS_DRONES 37
#define OBS_DRONE_STRIDE 7
#define OBS_OBSTACLES 58
#define OBS_OBSTACLE_STRIDE 6
#define OBS_TASK 76
#define OBS_RADIUS 82
#define OBS_HOVER_THRUST 83

#define OBS_VEL_SCALE 5.0f
#define OBS_RATE_SCALE 10.0f
#define OBS_HEIGHT_SCALE 5.0f
#define OBS_TARGET_CLIP 5.0f
#define OBS_DIST_SCALE 10.0f
#define OBS_RING_CLIP 10.0f
#define OBS_DRONE_CLIP 5.0f
#define OBS_OBSTACLE_CLIP 10.0f
#define OBS_OBSTACLE_RADIUS_SCALE 2.0f
#define OBS_GAP_CLIP 5.0f
#define OBS_RADIUS_SCALE 0.5f

/* Everything the observation depends on, in world-frame SI units. Neighbour and obstacle lists are
 * already the nearest ones, nearest first (the caller selects; deploy passes what it knows). */
typedef struct {
    float pos[3], vel[3], quat[4], omega[3], last_action[4];
    float target_pos[3], target_vel[3];
    int has_ring;
    float ring_normal[3], ring_radius;
    int has_next_ring;
    float next_ring_pos[3], next_ring_normal[3];
    int num_drones;
    float drone_pos[OBS_K_DRONES][3], drone_vel[OBS_K_DRONES][3];
    int num_obstacles;
    float obstacle_pos[OBS_K_OBSTACLES][3], obstacle_radius[OBS_K_OBSTACLES];
    int task;
    float radius;             /* the drone's collision radius (m) */
    float hover_thrust;       /* its hover thrust / max thrust, as known (quad_hover_thrust_fraction) */
} ObsInput;

/* world vector v -> body frame b = R^T v */
static inline void obs_to_body(const float r[9], const float v[3], float b[3]) {
    b[0] = r[0] * v[0] + r[3] * v[1] + r[6] * v[2];
    b[1] = r[1] * v[0] + r[4] * v[1] + r[7] * v[2];
    b[2] = r[2] * v[0] + r[5] * v[1] + r[8] * v[2];
}

/* Norm-clip a body-frame vector at `clip` and divide by it. */
static inline void obs_clip_scale(const float v[3], float clip, float *out) {
    float n = v3_norm(v);
    float s = 1.0f / (n > clip ? n : clip); /* fmaxf(n, clip), inlined (a NaN norm gives clip, as fmaxf) */
    out[0] = v[0] * s;
    out[1] = v[1] * s;
    out[2] = v[2] * s;
}

/* tanh for the distance feature, evaluated in double and rounded once: correctly rounded (checked
 * against long double over [0, 30)), where glibc's tanhf is 1 ulp off for about 5% of arguments and
 * goes through a slow expm1f (it was a tenth of a hover step). */
static inline float obs_tanh(float xf) {
    double x = fabs((double)xf), y;
    if (x < 0.125) { /* odd Taylor series; the first omitted term is below 1e-11 relative */
        double x2 = x * x;
        y = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    } else if (x < 20.0) {
        double t = exp(2.0 * x);
        y = (t - 1.0) / (t + 1.0);
    } else {
        y = x == x ? 1.0 : x; /* 1 for large and infinite x, NaN stays NaN */
    }
    return (float)copysign(y, (double)xf);
}

static inline void obs_build(const ObsInput *in, float *out) {
    float r[9], b[3], d[3];
    float qn = 1.0f / sqrtf(in->quat[0] * in->quat[0] + in->quat[1] * in->quat[1] + in->quat[2] * in->quat[2] +
                            in->quat[3] * in->quat[3]);
    float q[4] = {in->quat[0] * qn, in->quat[1] * qn, in->quat[2] * qn, in->quat[3] * qn};
    quat_to_rotmat(q, r);
    memset(out, 0, sizeof(float) * OBS_SIZE);

    obs_to_body(r, in->vel, b);
    for (int k = 0; k < 3; k++) out[OBS_VEL + k] = b[k] / OBS_VEL_SCALE;
    for (int k = 0; k < 3; k++) out[OBS_RATES + k] = in->omega[k] / OBS_RATE_SCALE;
    for (int k = 0; k < 9; k++) out[OBS_ROT + k] = r[k];
    out[OBS_HEIGHT] = in->pos[2] / OBS_HEIGHT_SCALE;
    for (int k = 0; k < 4; k++) out[OBS_LAST_ACTION + k] = in->last_action[k];

    for (int k = 0; k < 3; k++) d[k] = in->target_pos[k] - in->pos[k];
    obs_to_body(r, d, b);
    obs_clip_scale(b, OBS_TARGET_CLIP, out + OBS_TARGET_POS);
    out[OBS_TARGET_DIST] = obs_tanh(v3_norm(d) / OBS_DIST_SCALE);
    obs_to_body(r, in->target_vel, b);
    for (int k = 0; k < 3; k++) out[OBS_TARGET_VEL + k] = b[k] / OBS_VEL_SCALE;

    if (in->has_ring) {
        obs_to_body(r, in->ring_normal, out + OBS_RING_NORMAL);
        out[OBS_RING_RADIUS] = in->ring_radius;
    }
    if (in->has_next_ring) {
        for (int k = 0; k < 3; k++) d[k] = in->next_ring_pos[k] - in->target_pos[k];
        obs_to_body(r, d, b);
        obs_clip_scale(b, OBS_RING_CLIP, out + OBS_NEXT_RING_POS);
        obs_to_body(r, in->next_ring_normal, out + OBS_NEXT_RING_NORMAL);
    }
    for (int j = 0; j < in->num_drones && j < OBS_K_DRONES; j++) {
        float *o = out + OBS_DRONES + j * OBS_DRONE_STRIDE;
        for (int k = 0; k < 3; k++) d[k] = in->drone_pos[j][k] - in->pos[k];
        obs_to_body(r, d, b);
        obs_clip_scale(b, OBS_DRONE_CLIP, o);
        for (int k = 0; k < 3; k++) d[k] = in->drone_vel[j][k] - in->vel[k];
        obs_to_body(r, d, b);
        for (int k = 0; k < 3; k++) o[3 + k] = b[k] / OBS_VEL_SCALE;
        o[6] = 1.0f;
    }
    for (int j = 0; j < OBS_K_OBSTACLES; j++) {
        float *o = out + OBS_OBSTACLES + j * OBS_OBSTACLE_STRIDE;
        if (j >= in->num_obstacles) {
            o[4] = 1.0f; /* no obstacle: as far as the gap can say */
            continue;
        }
        for (int k = 0; k < 3; k++) d[k] = in->obstacle_pos[j][k] - in->pos[k];
        obs_to_body(r, d, b);
        obs_clip_scale(b, OBS_OBSTACLE_CLIP, o);
        o[3] = in->obstacle_radius[j] / OBS_OBSTACLE_RADIUS_SCALE;
        float dist = v3_norm(d);
        float gap = dist - in->obstacle_radius[j] - in->radius;
        o[4] = (gap < OBS_GAP_CLIP ? gap : OBS_GAP_CLIP) / OBS_GAP_CLIP;
        o[5] = v3_closing_speed(d, dist, in->vel) / OBS_VEL_SCALE;
    }
    if (in->task >= 0 && in->task < OBS_NUM_TASKS) out[OBS_TASK + in->task] = 1.0f;
    out[OBS_RADIUS] = in->radius / OBS_RADIUS_SCALE;
    out[OBS_HOVER_THRUST] = in->hover_thrust;
}

#endif
