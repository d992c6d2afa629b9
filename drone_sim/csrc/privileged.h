/* privileged.h - what the simulator knows about a drone that the drone itself does not: the critic's extra input.
 *
 * An asymmetric actor-critic trains the actor on the observation alone (observation.h: what a real drone
 * has) and lets the critic also read this vector. The critic is dropped at export, so nothing here ever
 * reaches a real vehicle; what it buys is a value estimate that does not have to guess the sampled drone,
 * its wind and its latency from a few noisy steps. Under wide domain randomization that guess is a large
 * part of the value error, and the advantage of every action inherits it.
 *
 * Every entry is constant over an episode (domain randomization samples a drone per spawn), so the
 * vector is written when an agent gets its drone, not every step. Quantities that span decades
 * (mass, inertia, motor time constants) are logarithms; the trainer normalizes every entry with running
 * statistics, so no scale is chosen here. Changing the layout bumps PRIV_VERSION, which checkpoints carry.
 *
 * Layout (version 1, PRIV_SIZE = 34):
 *   [0]     ln mass (kg)
 *   [1]     ln arm (m)
 *   [2:5]   ln principal inertia (kg m^2)
 *   [5]     thrust-to-weight at full throttle
 *   [6]     hover thrust as a fraction of maximum thrust (the truth)
 *   [7]     what the observation says the hover thrust is, minus the truth (the owner's error)
 *   [8]     ln (k_torque / k_thrust) (m)
 *   [9]     ln tau_up (s)
 *   [10]    ln tau_down (s)
 *   [11:14] body drag per unit mass (1/s)
 *   [14:17] angular damping per unit inertia (1/s)
 *   [17:26] rate-loop gains kp[3], ki[3], kd[3]
 *   [26:29] body rate at full stick (rad/s)
 *   [29]    action latency (s)
 *   [30:33] wind as an acceleration, world frame (m/s^2)
 *   [33]    observation noise scale
 */
#ifndef DRONE_PRIVILEGED_H
#define DRONE_PRIVILEGED_H

#include <math.h>

#include "quadrotor.h"

#define PRIV_VERSION 1
#define PRIV_SIZE 34

#define PRIV_MASS 0
#define PRIV_ARM 1
#define PRIV_INERTIA 2
#define PRIV_THRUST_TO_WEIGHT 5
#define PRIV_HOVER_THRUST 6
#define PRIV_HOVER_BELIEF_ERROR 7
#define PRIV_TORQUE_RATIO 8
#define PRIV_TAU_UP 9
#define PRIV_TAU_DOWN 10
#define PRIV_DRAG 11
#define PRIV_ANG_DAMP 14
#define PRIV_GAINS 17
#define PRIV_MAX_RATE 26
#define PRIV_LATENCY 29
#define PRIV_WIND 30
#define PRIV_OBS_NOISE 33

/* A logarithm that stays finite for a zero a hand-written params dict may carry (an ideal motor, tau 0). */
static inline float priv_ln(float x) { return logf(x > 1e-12f ? x : 1e-12f); }

/* Write drone d's privileged vector to out[PRIV_SIZE]. hover_known: the hover thrust fraction the observation
 * carries for it; obs_noise: its noise scale. */
static inline void priv_build(const DroneParams *d, float hover_known, float obs_noise, float *out) {
    float hover = quad_hover_thrust_fraction(d);
    out[PRIV_MASS] = priv_ln(d->mass);
    out[PRIV_ARM] = priv_ln(d->arm);
    for (int k = 0; k < 3; k++) out[PRIV_INERTIA + k] = priv_ln(d->inertia[k]);
    out[PRIV_THRUST_TO_WEIGHT] = quad_thrust_to_weight(d);
    out[PRIV_HOVER_THRUST] = hover;
    out[PRIV_HOVER_BELIEF_ERROR] = hover_known - hover;
    out[PRIV_TORQUE_RATIO] = priv_ln(d->k_torque / d->k_thrust);
    out[PRIV_TAU_UP] = priv_ln(d->tau_up);
    out[PRIV_TAU_DOWN] = priv_ln(d->tau_down);
    for (int k = 0; k < 3; k++) {
        out[PRIV_DRAG + k] = d->drag[k] / d->mass;
        out[PRIV_ANG_DAMP + k] = d->ang_damp[k] / d->inertia[k];
        out[PRIV_GAINS + k] = d->kp[k];
        out[PRIV_GAINS + 3 + k] = d->ki[k];
        out[PRIV_GAINS + 6 + k] = d->kd[k];
        out[PRIV_MAX_RATE + k] = d->max_rate[k];
        out[PRIV_WIND + k] = d->wind[k] / d->mass;
    }
    out[PRIV_LATENCY] = d->latency;
    out[PRIV_OBS_NOISE] = obs_noise;
}

#endif
