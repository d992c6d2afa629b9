/* quadrotor.h - quadrotor rigid-body physics, motor model, flight-controller rate loop and mixer.
 *
 * Frames: world is ENU-like with z up; body is FLU (x forward, y left, z up). Quaternions are
 * (w, x, y, z), body-to-world. SI units throughout.
 *
 * Motor numbering (quad X, the ArduPilot/PX4 "Quad X" numbering, zero-based here):
 *   motor 0: front-right, spins CCW seen from above  (ArduPilot/PX4 motor 1)
 *   motor 1: rear-left,   spins CCW                  (motor 2)
 *   motor 2: front-left,  spins CW                   (motor 3)
 *   motor 3: rear-right,  spins CW                   (motor 4)
 * A CCW propeller pushes the frame CW, so its reaction torque about +z is -k_Q w^2.
 *
 * Layout: the state and the per-drone parameters of all drones of an env are stored as structure of
 * arrays, one row of n floats per quantity (S[QS_PX * n + i] ...). The integrator loops over drones
 * with no data-dependent branches, so the compiler vectorizes it across drones (8 drones per AVX2
 * instruction). scripts/bench_sim.py --profile shows why this layout is worth it.
 */
#ifndef DRONE_QUADROTOR_H
#define DRONE_QUADROTOR_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Standard gravity of the simulated world (m/s^2). The double is what the binding exports as
 * drone_sim.GRAVITY, so Python code that needs g reads this one number. */
#define QUAD_GRAVITY_MS2 9.81
#define QUAD_GRAVITY ((float)QUAD_GRAVITY_MS2)
#define QUAD_SQRT_HALF 0.70710678f

/* Small fixed-count loops over state components are fully unrolled so that the loop over drones
 * around them vectorizes (per-drone temporaries become registers). */
#if defined(__GNUC__) && !defined(__clang__)
#define QUAD_UNROLL _Pragma("GCC unroll 32")
/* Loops over drones: iterations are independent (each touches column i only). Their index is a
 * ptrdiff_t, not an int: Python builds extensions with -fwrapv, under which an int index expression
 * like j * n + i may wrap, so GCC cannot prove the accesses contiguous and vectorizes nothing (the
 * binding ran 3x slower than the same code built without -fwrapv). */
#define QUAD_SIMD _Pragma("GCC ivdep")
#elif defined(__clang__)
#define QUAD_UNROLL _Pragma("clang loop unroll(full)")
#define QUAD_SIMD _Pragma("clang loop vectorize(assume_safety)")
#else
#define QUAD_UNROLL
#define QUAD_SIMD
#endif

#if defined(__GNUC__) || defined(__clang__)
#define QUAD_ALWAYS_INLINE __attribute__((always_inline))
#else
#define QUAD_ALWAYS_INLINE
#endif

/* max/min as plain compares: they vectorize without -ffast-math (fmaxf's NaN rules do not). */
static inline float quad_max(float a, float b) { return a > b ? a : b; }
static inline float quad_min(float a, float b) { return a < b ? a : b; }

/* ---- state rows ---- */
enum {
    QS_PX, QS_PY, QS_PZ,          /* position, world (m) */
    QS_VX, QS_VY, QS_VZ,          /* velocity, world (m/s) */
    QS_QW, QS_QX, QS_QY, QS_QZ,   /* attitude, body-to-world */
    QS_WX, QS_WY, QS_WZ,          /* body rates, body frame (rad/s) */
    QS_M0, QS_M1, QS_M2, QS_M3,   /* motor speeds (rad/s) */
    QS_COUNT
};

/* ---- per-drone parameter rows (derived from DroneParams by quad_params_store) ---- */
enum {
    QP_INV_MASS,
    QP_IXX, QP_IYY, QP_IZZ,
    QP_ARM_D,                     /* arm length * sqrt(1/2): lever of each motor about x and y */
    QP_KT, QP_KQ,                 /* thrust N/(rad/s)^2, torque N m/(rad/s)^2 */
    QP_TAU_UP, QP_TAU_DOWN,       /* motor time constants for rising and falling speed (s) */
    QP_WMAX,                      /* max motor speed (rad/s) */
    QP_DRAG_X, QP_DRAG_Y, QP_DRAG_Z,    /* body-axis linear drag, per unit mass (1/s) */
    QP_ADAMP_X, QP_ADAMP_Y, QP_ADAMP_Z, /* angular damping, per unit inertia (1/s) */
    QP_WIND_X, QP_WIND_Y, QP_WIND_Z,    /* constant disturbance acceleration, world (m/s^2) */
    QP_KP_X, QP_KP_Y, QP_KP_Z,    /* rate loop gains, in angular acceleration per rate error (1/s) */
    QP_KI_X, QP_KI_Y, QP_KI_Z,    /* (1/s^2) */
    QP_KD_X, QP_KD_Y, QP_KD_Z,    /* (dimensionless) */
    QP_RATE_X, QP_RATE_Y, QP_RATE_Z,    /* body rate at |action| = 1 in ctbr mode (rad/s) */
    QP_LATENCY,                   /* action latency in physics substeps (float for branchless select) */
    QP_COUNT
};

/* ---- controller state rows (ctbr rate loop) ---- */
enum { QC_IX, QC_IY, QC_IZ, QC_WPX, QC_WPY, QC_WPZ, QC_COUNT };

enum { INTEGRATOR_RK4 = 0, INTEGRATOR_EULER = 1, NUM_INTEGRATORS };
enum { ACTION_RPM = 0, ACTION_CTBR = 1, NUM_ACTION_MODES };

/* The names users type for these enums (config files, command lines, ONNX metadata); the binding
 * exports them in enum order, so Python never keeps its own copy of the order. */
static inline const char *quad_integrator_name(int i) {
    switch (i) {
    case INTEGRATOR_RK4: return "rk4";
    case INTEGRATOR_EULER: return "euler";
    default: return "";
    }
}

static inline const char *quad_action_mode_name(int m) {
    switch (m) {
    case ACTION_RPM: return "rpm";
    case ACTION_CTBR: return "ctbr";
    default: return "";
    }
}

/* The physical description of one drone, as the params JSON file carries it. */
typedef struct {
    float mass;            /* kg */
    float arm;             /* motor-to-center distance (m) */
    float inertia[3];      /* principal inertia Ixx, Iyy, Izz (kg m^2) */
    float k_thrust;        /* N / (rad/s)^2 */
    float k_torque;        /* N m / (rad/s)^2 */
    float tau_up;          /* motor time constant, speeding up (s) */
    float tau_down;        /* motor time constant, slowing down (s) */
    float omega_max;       /* rad/s */
    float drag[3];         /* body-axis linear drag N / (m/s) */
    float ang_damp[3];     /* angular damping N m / (rad/s) */
    float kp[3], ki[3], kd[3]; /* simulated flight-controller rate-loop gains */
    float max_rate[3];     /* rad/s at full stick in ctbr */
    float latency;         /* action latency (s) */
    float radius;          /* collision radius including propellers (m) */
    float wind[3];         /* constant disturbance force, world (N) */
} DroneParams;

/* Motor speed at which the drone hovers (all four equal). */
static inline float quad_hover_omega(const DroneParams *d) {
    return sqrtf(d->mass * QUAD_GRAVITY / (4.0f * d->k_thrust));
}

/* Collective thrust of the four motors at full speed (N). */
static inline float quad_max_thrust(const DroneParams *d) {
    return 4.0f * d->k_thrust * d->omega_max * d->omega_max;
}

static inline float quad_thrust_to_weight(const DroneParams *d) {
    return quad_max_thrust(d) / (d->mass * QUAD_GRAVITY);
}

/* Collective thrust that holds a level hover, as a fraction of quad_max_thrust (what a ctbr action
 * a0 = 2 f - 1 and a normalized SET_ATTITUDE_TARGET thrust both mean). */
static inline float quad_hover_thrust_fraction(const DroneParams *d) {
    return d->mass * QUAD_GRAVITY / quad_max_thrust(d);
}

/* Write drone d into column i of the parameter rows P (n columns). dt: physics step for latency. */
static inline void quad_params_store(const DroneParams *d, float *P, int n, int i, float dt) {
    float inv_m = 1.0f / d->mass;
    P[QP_INV_MASS * n + i] = inv_m;
    QUAD_UNROLL
    for (int k = 0; k < 3; k++) {
        P[(QP_IXX + k) * n + i] = d->inertia[k];
        P[(QP_DRAG_X + k) * n + i] = d->drag[k] * inv_m;
        P[(QP_ADAMP_X + k) * n + i] = d->ang_damp[k] / d->inertia[k];
        P[(QP_WIND_X + k) * n + i] = d->wind[k] * inv_m;
        P[(QP_KP_X + k) * n + i] = d->kp[k];
        P[(QP_KI_X + k) * n + i] = d->ki[k];
        P[(QP_KD_X + k) * n + i] = d->kd[k];
        P[(QP_RATE_X + k) * n + i] = d->max_rate[k];
    }
    P[QP_ARM_D * n + i] = d->arm * QUAD_SQRT_HALF;
    P[QP_KT * n + i] = d->k_thrust;
    P[QP_KQ * n + i] = d->k_torque;
    P[QP_TAU_UP * n + i] = d->tau_up;
    P[QP_TAU_DOWN * n + i] = d->tau_down;
    P[QP_WMAX * n + i] = d->omega_max;
    P[QP_LATENCY * n + i] = floorf(d->latency / dt + 0.5f);
}

/* Time derivative of one drone's state x under held motor commands u. No branches: the motor
 * time-constant choice is a select, which vectorizes. */
static inline void quad_deriv(const float *x, const float *p, const float *u, float *dx) {
    float qw = x[QS_QW], qx = x[QS_QX], qy = x[QS_QY], qz = x[QS_QZ];
    /* Rotation matrix of the normalized quaternion (RK4 stages drift slightly off the unit sphere). */
    float s = 2.0f / (qw * qw + qx * qx + qy * qy + qz * qz);
    float r00 = 1.0f - s * (qy * qy + qz * qz), r01 = s * (qx * qy - qw * qz), r02 = s * (qx * qz + qw * qy);
    float r10 = s * (qx * qy + qw * qz), r11 = 1.0f - s * (qx * qx + qz * qz), r12 = s * (qy * qz - qw * qx);
    float r20 = s * (qx * qz - qw * qy), r21 = s * (qy * qz + qw * qx), r22 = 1.0f - s * (qx * qx + qy * qy);

    float m0 = x[QS_M0], m1 = x[QS_M1], m2 = x[QS_M2], m3 = x[QS_M3];
    float kt = p[QP_KT];
    float t0 = kt * m0 * m0, t1 = kt * m1 * m1, t2 = kt * m2 * m2, t3 = kt * m3 * m3;
    float thrust = t0 + t1 + t2 + t3;

    /* Translational: thrust along body z, body-axis drag, gravity, disturbance. */
    float vx = x[QS_VX], vy = x[QS_VY], vz = x[QS_VZ];
    float bvx = r00 * vx + r10 * vy + r20 * vz;
    float bvy = r01 * vx + r11 * vy + r21 * vz;
    float bvz = r02 * vx + r12 * vy + r22 * vz;
    float fbx = -p[QP_DRAG_X] * bvx, fby = -p[QP_DRAG_Y] * bvy;
    float fbz = thrust * p[QP_INV_MASS] - p[QP_DRAG_Z] * bvz;
    dx[QS_PX] = vx;
    dx[QS_PY] = vy;
    dx[QS_PZ] = vz;
    dx[QS_VX] = r00 * fbx + r01 * fby + r02 * fbz + p[QP_WIND_X];
    dx[QS_VY] = r10 * fbx + r11 * fby + r12 * fbz + p[QP_WIND_Y];
    dx[QS_VZ] = r20 * fbx + r21 * fby + r22 * fbz + p[QP_WIND_Z] - QUAD_GRAVITY;

    /* Attitude kinematics: q_dot = 0.5 q (x) (0, w). */
    float wx = x[QS_WX], wy = x[QS_WY], wz = x[QS_WZ];
    dx[QS_QW] = -0.5f * (qx * wx + qy * wy + qz * wz);
    dx[QS_QX] = 0.5f * (qw * wx + qy * wz - qz * wy);
    dx[QS_QY] = 0.5f * (qw * wy - qx * wz + qz * wx);
    dx[QS_QZ] = 0.5f * (qw * wz + qx * wy - qy * wx);

    /* Rotational: motor torques (X layout), gyroscopic term w x Iw, angular damping. */
    float d = p[QP_ARM_D];
    float tx = d * (-t0 + t1 + t2 - t3);
    float ty = d * (-t0 + t1 - t2 + t3);
    float kq = p[QP_KQ];
    float tz = kq * (-m0 * m0 - m1 * m1 + m2 * m2 + m3 * m3);
    float ixx = p[QP_IXX], iyy = p[QP_IYY], izz = p[QP_IZZ];
    dx[QS_WX] = (tx - (izz - iyy) * wy * wz) / ixx - p[QP_ADAMP_X] * wx;
    dx[QS_WY] = (ty - (ixx - izz) * wz * wx) / iyy - p[QP_ADAMP_Y] * wy;
    dx[QS_WZ] = (tz - (iyy - ixx) * wx * wy) / izz - p[QP_ADAMP_Z] * wz;

    /* First-order motor lag with separate rise and fall constants. */
    QUAD_UNROLL
    for (int k = 0; k < 4; k++) {
        float m = x[QS_M0 + k];
        float tau = u[k] > m ? p[QP_TAU_UP] : p[QP_TAU_DOWN];
        dx[QS_M0 + k] = (u[k] - m) / tau;
    }
}

/* Advance all n drones by one physics step of length dt under held motor commands U (4 rows).
 * The floor at z = 0 is applied after the step: a drone below it is put on it, loses its downward
 * velocity and feels ground friction; impact[i] keeps the fastest downward speed at which drone i
 * touched the floor during this control step (the caller decides what counts as a crash). */
static inline void quad_integrate(int n, float *restrict S, const float *restrict P, const float *restrict U,
                                  float dt, int integrator, float *restrict impact);

/* The loop of quad_integrate for one integrator: `euler` is a constant at both calls, so each inlined
 * copy holds one integrator. (With the integrator test inside a single loop, GCC if-converted it and
 * computed both integrators for every drone: Euler cost as much as RK4, and RK4 paid for Euler.) */
QUAD_ALWAYS_INLINE
static inline void quad_integrate_with(int n, float *restrict S, const float *restrict P, const float *restrict U,
                                       float dt, const int euler, float *restrict impact) {
QUAD_SIMD
    for (ptrdiff_t i = 0; i < n; i++) {
        float x[QS_COUNT], p[QP_COUNT], u[4], k[QS_COUNT], acc[QS_COUNT], tmp[QS_COUNT];
        QUAD_UNROLL
        for (int j = 0; j < QS_COUNT; j++) x[j] = S[j * n + i];
        QUAD_UNROLL
        for (int j = 0; j < QP_COUNT; j++) p[j] = P[j * n + i];
        QUAD_UNROLL
        for (int j = 0; j < 4; j++) u[j] = U[j * n + i];

        quad_deriv(x, p, u, k);
        if (euler) {
            QUAD_UNROLL
            for (int j = 0; j < QS_COUNT; j++) acc[j] = x[j] + dt * k[j];
        } else {
            QUAD_UNROLL
            for (int j = 0; j < QS_COUNT; j++) { acc[j] = k[j]; tmp[j] = x[j] + 0.5f * dt * k[j]; }
            quad_deriv(tmp, p, u, k);
            QUAD_UNROLL
            for (int j = 0; j < QS_COUNT; j++) { acc[j] += 2.0f * k[j]; tmp[j] = x[j] + 0.5f * dt * k[j]; }
            quad_deriv(tmp, p, u, k);
            QUAD_UNROLL
            for (int j = 0; j < QS_COUNT; j++) { acc[j] += 2.0f * k[j]; tmp[j] = x[j] + dt * k[j]; }
            quad_deriv(tmp, p, u, k);
            QUAD_UNROLL
            for (int j = 0; j < QS_COUNT; j++) acc[j] = x[j] + dt * (1.0f / 6.0f) * (acc[j] + k[j]);
        }

        /* Keep the quaternion on the unit sphere. */
        float qn = 1.0f / sqrtf(acc[QS_QW] * acc[QS_QW] + acc[QS_QX] * acc[QS_QX] + acc[QS_QY] * acc[QS_QY] +
                                acc[QS_QZ] * acc[QS_QZ]);
        acc[QS_QW] *= qn; acc[QS_QX] *= qn; acc[QS_QY] *= qn; acc[QS_QZ] *= qn;

        /* Floor contact (branchless). */
        float below = acc[QS_PZ] <= 0.0f ? 1.0f : 0.0f;
        float hit = below * quad_max(-acc[QS_VZ], 0.0f);
        impact[i] = quad_max(impact[i], hit);
        float keep = 1.0f - below * 0.2f; /* ground friction on sliding and spinning */
        acc[QS_PZ] = quad_max(acc[QS_PZ], 0.0f);
        acc[QS_VZ] = below * quad_max(acc[QS_VZ], 0.0f) + (1.0f - below) * acc[QS_VZ];
        acc[QS_VX] *= keep; acc[QS_VY] *= keep;
        acc[QS_WX] *= keep; acc[QS_WY] *= keep; acc[QS_WZ] *= keep;
        /* Standing on its legs, the frame sits level: keep only the yaw part of the attitude (the twist
         * about z of a swing-twist decomposition) and drop roll and pitch rates, so a drone that landed
         * tilted can take off again. */
        float tn = 1.0f / sqrtf(quad_max(acc[QS_QW] * acc[QS_QW] + acc[QS_QZ] * acc[QS_QZ], 1e-12f));
        float lvl = 1.0f - below;
        acc[QS_QW] = lvl * acc[QS_QW] + below * acc[QS_QW] * tn;
        acc[QS_QZ] = lvl * acc[QS_QZ] + below * acc[QS_QZ] * tn;
        acc[QS_QX] *= lvl; acc[QS_QY] *= lvl;
        acc[QS_WX] *= lvl; acc[QS_WY] *= lvl;

        QUAD_UNROLL
        for (int j = 0; j < QS_COUNT; j++) S[j * n + i] = acc[j];
    }
}

static inline void quad_integrate(int n, float *restrict S, const float *restrict P, const float *restrict U,
                                  float dt, int integrator, float *restrict impact) {
    if (integrator == INTEGRATOR_EULER)
        quad_integrate_with(n, S, P, U, dt, 1, impact);
    else
        quad_integrate_with(n, S, P, U, dt, 0, impact);
}

/* rpm mode: action a in [-1, 1] per motor maps linearly to a motor speed command in [0, omega_max].
 * prev holds the previous control step's action, used for the first `latency` substeps. */
static inline void quad_commands_rpm(int n, const float *restrict P, const float *restrict act,
                                     const float *restrict prev, float *restrict U, int substep) {
QUAD_SIMD
    for (ptrdiff_t i = 0; i < n; i++) {
        float late = (float)substep < P[QP_LATENCY * n + i] ? 1.0f : 0.0f;
        float wmax = P[QP_WMAX * n + i];
        QUAD_UNROLL
        for (int k = 0; k < 4; k++) {
            float a = late * prev[i * 4 + k] + (1.0f - late) * act[i * 4 + k];
            U[k * n + i] = 0.5f * (a + 1.0f) * wmax;
        }
    }
}

/* ctbr mode: action (collective thrust, roll rate, pitch rate, yaw rate) in [-1, 1].
 * Thrust maps linearly to [0, 4 k_T w_max^2]; rates scale by max_rate. A PID rate loop (gains per
 * drone, D on measurement) computes the angular acceleration it wants, times inertia gives torque,
 * and the mixer solves for four motor thrusts. Saturation is handled as flight controllers do in
 * "air mode": the torque part is scaled down only if its spread exceeds the motor range, then the
 * whole set is shifted into [0, max] (attitude authority before collective thrust). */
static inline void quad_commands_ctbr(int n, const float *restrict S, const float *restrict P,
                                      const float *restrict act, const float *restrict prev, float *restrict C,
                                      float *restrict U, int substep, float dt) {
QUAD_SIMD
    for (ptrdiff_t i = 0; i < n; i++) {
        float late = (float)substep < P[QP_LATENCY * n + i] ? 1.0f : 0.0f;
        float a[4];
        QUAD_UNROLL
        for (int k = 0; k < 4; k++) a[k] = late * prev[i * 4 + k] + (1.0f - late) * act[i * 4 + k];
        float kt = P[QP_KT * n + i], wmax = P[QP_WMAX * n + i];
        float tmax = kt * wmax * wmax; /* per motor */
        float thrust = 0.5f * (a[0] + 1.0f) * 4.0f * tmax;
        float alpha[3];
        QUAD_UNROLL
        for (int k = 0; k < 3; k++) {
            float w = S[(QS_WX + k) * n + i];
            float err = a[k + 1] * P[(QP_RATE_X + k) * n + i] - w;
            float integ = C[(QC_IX + k) * n + i] + err * dt;
            float ilim = 0.5f * P[(QP_RATE_X + k) * n + i];
            integ = quad_min(quad_max(integ, -ilim), ilim);
            C[(QC_IX + k) * n + i] = integ;
            float dw = (w - C[(QC_WPX + k) * n + i]) / dt;
            C[(QC_WPX + k) * n + i] = w;
            alpha[k] = P[(QP_KP_X + k) * n + i] * err + P[(QP_KI_X + k) * n + i] * integ -
                       P[(QP_KD_X + k) * n + i] * dw;
        }
        float tx = alpha[0] * P[QP_IXX * n + i];
        float ty = alpha[1] * P[QP_IYY * n + i];
        float tz = alpha[2] * P[QP_IZZ * n + i];
        float id = 0.25f / P[QP_ARM_D * n + i];
        float iq = 0.25f * kt / P[QP_KQ * n + i]; /* thrust per unit yaw torque, /4 */
        float base = 0.25f * thrust;
        float d0 = -tx * id - ty * id - tz * iq;
        float d1 = tx * id + ty * id - tz * iq;
        float d2 = tx * id - ty * id + tz * iq;
        float d3 = -tx * id + ty * id + tz * iq;
        float lo = quad_min(quad_min(d0, d1), quad_min(d2, d3));
        float hi = quad_max(quad_max(d0, d1), quad_max(d2, d3));
        float scale = quad_min(1.0f, tmax / quad_max(hi - lo, 1e-9f));
        d0 *= scale; d1 *= scale; d2 *= scale; d3 *= scale; lo *= scale; hi *= scale;
        float shift = quad_max(0.0f, -(base + lo)) - quad_max(0.0f, base + hi - tmax);
        float tm[4] = {base + d0 + shift, base + d1 + shift, base + d2 + shift, base + d3 + shift};
        QUAD_UNROLL
        for (int k = 0; k < 4; k++) {
            float t = quad_min(quad_max(tm[k], 0.0f), tmax);
            U[k * n + i] = sqrtf(t / kt);
        }
    }
}

/* Action that holds a level hover for drone d in the given mode (used for resets and by tests). */
static inline void quad_hover_action(const DroneParams *d, int mode, float out[4]) {
    float wh = quad_hover_omega(d);
    if (mode == ACTION_RPM) {
        QUAD_UNROLL
        for (int k = 0; k < 4; k++) out[k] = 2.0f * wh / d->omega_max - 1.0f;
    } else {
        float tmax = quad_max_thrust(d);
        out[0] = 2.0f * d->mass * QUAD_GRAVITY / tmax - 1.0f;
        out[1] = out[2] = out[3] = 0.0f;
    }
}

/* Rotation matrix (row-major, body-to-world) of a unit quaternion (w, x, y, z). */
static inline void quat_to_rotmat(const float q[4], float r[9]) {
    float w = q[0], x = q[1], y = q[2], z = q[3];
    r[0] = 1.0f - 2.0f * (y * y + z * z); r[1] = 2.0f * (x * y - w * z);        r[2] = 2.0f * (x * z + w * y);
    r[3] = 2.0f * (x * y + w * z);        r[4] = 1.0f - 2.0f * (x * x + z * z); r[5] = 2.0f * (y * z - w * x);
    r[6] = 2.0f * (x * z - w * y);        r[7] = 2.0f * (y * z + w * x);        r[8] = 1.0f - 2.0f * (x * x + y * y);
}

/* Quaternion from roll, pitch, yaw (Z-Y-X intrinsic, radians). */
static inline void quat_from_euler(float roll, float pitch, float yaw, float q[4]) {
    float cr = cosf(0.5f * roll), sr = sinf(0.5f * roll);
    float cp = cosf(0.5f * pitch), sp = sinf(0.5f * pitch);
    float cy = cosf(0.5f * yaw), sy = sinf(0.5f * yaw);
    q[0] = cr * cp * cy + sr * sp * sy;
    q[1] = sr * cp * cy - cr * sp * sy;
    q[2] = cr * sp * cy + sr * cp * sy;
    q[3] = cr * cp * sy - sr * sp * cy;
}

#endif
