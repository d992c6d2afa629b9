/* domain_rand.h - per-episode, per-drone domain randomization.
 *
 * All ranges live in one DRConfig. Three ways to use it:
 *   - enabled = 0: every drone is the nominal drone (exactly, no noise, no wind, no latency beyond its own);
 *   - enabled = 1, around_nominal = 0: whole drones are sampled from size up (tiny whoop to ~0.25 m arm);
 *   - enabled = 1, around_nominal = 1: a calibrated params file is the nominal drone and the tol_* fields
 *     are relative tolerances around it (the measured drone, give or take what the stand could not see).
 * Wind, latency, observation noise and the initial-state spread are sampled in every enabled mode.
 */
#ifndef DRONE_DOMAIN_RAND_H
#define DRONE_DOMAIN_RAND_H

#include "quadrotor.h"
#include "rng.h"

typedef struct {
    float lo, hi;
} Range;

typedef struct {
    int enabled;
    int around_nominal;
    /* whole-drone sampling (around_nominal = 0) */
    Range arm;              /* motor-to-center distance (m), log-uniform */
    float arm_ref, mass_ref; /* mass = mass_ref * (arm / arm_ref)^3 * mass_factor */
    Range mass_factor;
    Range inertia_xy;       /* Ixx, Iyy = factor * mass * arm^2, factor per axis */
    Range inertia_z;
    Range twr;              /* thrust-to-weight ratio at full throttle */
    float omega_ref;        /* max motor speed trend: omega_ref * sqrt(arm_ref / arm) * factor */
    Range omega_factor;
    Range torque_ratio;     /* k_Q / k_T (m) */
    Range tau;              /* motor time constant, speeding up (s) */
    Range tau_down_ratio;   /* tau_down / tau_up */
    Range drag_xy, drag_z;  /* body drag per unit mass (1/s) */
    Range ang_damp;         /* per unit inertia (1/s) */
    Range kp_rp, kp_yaw;    /* rate-loop P gains (1/s) */
    Range ki_ratio;         /* ki = ratio * kp (1/s) */
    Range kd;               /* D gain on measured rate (dimensionless) */
    /* tolerances around a calibrated drone (around_nominal = 1), relative */
    float tol_mass, tol_inertia, tol_thrust, tol_torque, tol_tau, tol_drag, tol_gains;
    /* sampled in every enabled mode */
    Range latency;          /* action latency (s) */
    Range obs_noise;        /* scale of the observation noise model, 1 = the stds in observation.h */
    Range wind;             /* constant disturbance, acceleration magnitude (m/s^2), mostly horizontal */
    float init_tilt;        /* initial roll and pitch spread (rad) */
    float init_vel;         /* initial velocity spread (m/s) */
    float init_rate;        /* initial body-rate spread (rad/s) */
    float ground_start_prob; /* share of hover/goto episodes that start at rest on the floor */
} DRConfig;

/* How far an owner's figure for the hover thrust of a drone drawn whole (no params file) may be from the
 * truth, relative: a thrust-stand reading or a learned MOT_THST_HOVER is good to a few percent, an
 * estimate from a spec sheet to about ten. */
#define DR_HOVER_BELIEF_TOL 0.1f

/* What an episode's drone is, beyond its physics: how noisy its sensing is, and what its owner believes
 * its hover thrust to be (the observation carries the belief, never the truth). */
typedef struct {
    DroneParams params;
    float obs_noise;
    float hover_thrust_known;
} SampledDrone;

static inline float dr_range(Rng *r, Range g) { return rng_uniform(r, g.lo, g.hi); }
static inline float dr_tol(Rng *r, float tol) { return rng_uniform(r, 1.0f - tol, 1.0f + tol); }

static inline void dr_sample_extras(const DRConfig *c, Rng *r, SampledDrone *out) {
    DroneParams *d = &out->params;
    d->latency = dr_range(r, c->latency);
    out->obs_noise = dr_range(r, c->obs_noise);
    float mag = dr_range(r, c->wind), ang = rng_uniform(r, 0.0f, 6.2831853f);
    d->wind[0] = d->mass * mag * cosf(ang);
    d->wind[1] = d->mass * mag * sinf(ang);
    d->wind[2] = d->mass * mag * rng_uniform(r, -0.2f, 0.2f);
}

static inline void dr_sample(const DRConfig *c, const DroneParams *nominal, Rng *r, SampledDrone *out) {
    out->params = *nominal;
    out->obs_noise = 0.0f;
    /* Around a calibrated drone the tolerances are the calibration's error: the owner knows the file. */
    out->hover_thrust_known = quad_hover_thrust_fraction(nominal);
    if (!c->enabled) return;
    DroneParams *d = &out->params;
    if (c->around_nominal) {
        d->mass *= dr_tol(r, c->tol_mass);
        for (int k = 0; k < 3; k++) {
            d->inertia[k] *= dr_tol(r, c->tol_inertia);
            d->drag[k] *= dr_tol(r, c->tol_drag);
            d->ang_damp[k] *= dr_tol(r, c->tol_drag);
            d->kp[k] *= dr_tol(r, c->tol_gains);
            d->ki[k] *= dr_tol(r, c->tol_gains);
            d->kd[k] *= dr_tol(r, c->tol_gains);
        }
        d->k_thrust *= dr_tol(r, c->tol_thrust);
        d->k_torque *= dr_tol(r, c->tol_torque);
        float tf = dr_tol(r, c->tol_tau);
        d->tau_up *= tf;
        d->tau_down *= tf;
    } else {
        float arm = rng_log_uniform(r, c->arm.lo, c->arm.hi);
        float s = arm / c->arm_ref;
        float m = c->mass_ref * s * s * s * dr_range(r, c->mass_factor);
        d->arm = arm;
        d->mass = m;
        d->inertia[0] = dr_range(r, c->inertia_xy) * m * arm * arm;
        d->inertia[1] = dr_range(r, c->inertia_xy) * m * arm * arm;
        d->inertia[2] = dr_range(r, c->inertia_z) * m * arm * arm;
        d->omega_max = c->omega_ref * sqrtf(1.0f / s) * dr_range(r, c->omega_factor);
        float twr = dr_range(r, c->twr);
        d->k_thrust = twr * m * QUAD_GRAVITY / (4.0f * d->omega_max * d->omega_max);
        d->k_torque = d->k_thrust * dr_range(r, c->torque_ratio);
        d->tau_up = dr_range(r, c->tau);
        d->tau_down = d->tau_up * dr_range(r, c->tau_down_ratio);
        float dxy = dr_range(r, c->drag_xy);
        d->drag[0] = d->drag[1] = dxy * m;
        d->drag[2] = dr_range(r, c->drag_z) * m;
        for (int k = 0; k < 3; k++) d->ang_damp[k] = dr_range(r, c->ang_damp) * d->inertia[k];
        float kp = dr_range(r, c->kp_rp), kpy = dr_range(r, c->kp_yaw);
        d->kp[0] = kp * dr_tol(r, 0.1f);
        d->kp[1] = kp * dr_tol(r, 0.1f);
        d->kp[2] = kpy;
        float ki = dr_range(r, c->ki_ratio);
        for (int k = 0; k < 3; k++) d->ki[k] = ki * d->kp[k];
        d->kd[0] = d->kd[1] = dr_range(r, c->kd);
        d->kd[2] = 0.0f;
        d->radius = 1.5f * arm;
        out->hover_thrust_known = quad_hover_thrust_fraction(d) * dr_tol(r, DR_HOVER_BELIEF_TOL);
    }
    dr_sample_extras(c, r, out);
}

#endif
