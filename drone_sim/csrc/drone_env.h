/* drone_env.h - one multi-agent, multi-task drone environment: init / reset / step / close.
 *
 * An env holds n drones that share one arena and one task at a time. Each env-episode picks a task
 * among those enabled (weighted), builds what the task needs (a ring course, a formation, an obstacle
 * field, targets) and runs for the task's horizon; drones that crash or leave the arena are respawned
 * on their own (per-agent auto-reset) and start a new episode inside the same env-episode. At the
 * horizon every drone is truncated and the env picks a task again.
 *
 * Buffers (observations, actions, rewards, terminals, truncations, and the optional privileged rows an
 * asymmetric critic reads) belong to the caller (numpy in Python) and are only pointed to; step() allocates
 * nothing. Same seed, same trajectory.
 *
 * Tasks and their scores (the `score` in the logs) and auxiliary figure (`aux`):
 *   hover      hold a nearby target.           score: final distance < success_radius (0/1); aux: time to target (s)
 *   goto       reach a far target and hold it. score: as hover;                               aux: time to target (s)
 *   follow     track a target on a smooth random path. score: share of steps within follow_radius; aux: mean error (m)
 *   race       pass the rings in order, lap after lap. score: rings passed;               aux: lap time (s)
 *   swarm      hold a slot of a formation (sphere shell, orbit, grid, line); contact between drones is a crash.
 *                                               score: share of steps within formation_radius; aux: mean slot error (m)
 *   obstacles  reach a goal across a field of spheres. score: goal reached (0/1);          aux: time to goal (s)
 * Rewards stay in [-1, 1]: shaped progress and proximity terms, a ring bonus of 1, and -crash_penalty (1 by
 * default, the one reward that may leave [-1, 1]) on a crash or on leaving the arena (both terminal): a crash
 * can be made to cost more than the progress a risky pass saves. A timeout is a truncation, never a terminal.
 * Two penalties shape how a drone flies rather than where: closing within clearance_margin of what it can
 * crash into (an obstacle's surface, the nearest drone where contact is a crash, a ring's rim) costs up to
 * clearance_weight per step, so that a near miss is felt before the crash it could have been. An obstacle or
 * a drone approached at closing speed v counts clearance_time * v nearer than it is: at speed the margin
 * reaches out as far as the drone travels in clearance_time, so that a fast approach is felt while there is
 * still room to turn or brake, not in the last centimetres. A ring whose plane the drone would cross within
 * rim_lookahead on its current velocity is felt at the crossing point's distance from the rim, against the
 * margin or the room the ring leaves the drone (its radius less the drone's and the rim's), whichever is
 * smaller: a line that will clip the rim costs while it can still be corrected, and a large drone pays for
 * every centimetre off the centre of a ring barely wider than itself, while a centred line costs nothing. And the
 * change of the action since the last step costs smooth_weight * |a - a_prev|^2 / 4, so that holding a
 * target by switching thrust hard (bang-bang, which real motors and ESCs do not follow) does not pay.
 * On race, progress towards the target ring pays in full at 5 m/s; with race_tight_room R (0: off) a ring that
 * leaves the drone less room than R pays it in full at 5 m/s * room / R (at least a fifth of it): a large drone
 * gains nothing but the rings from rushing a ring barely wider than itself, where almost all the race crashes
 * are (BENCHMARKS, issue 18), while a ring with room to spare is paid as before.
 * Flying faster than the task's speed_limit costs speed_weight * (v - limit) / limit per step (the reward
 * is still clamped to [-1, 1]): drone-deploy holds a drone that flies faster than its max speed (3 m/s by default), so a
 * policy trained to cross the obstacle field at 7 m/s could not be flown; race has no limit by default.
 * An obstacle-task drone starts at the arena's -x end with its goal at the +x end; blocked_line_prob (0 by
 * default, a training curriculum) redraws that share of the starts until the straight line crosses a sphere.
 */
#ifndef DRONE_ENV_H
#define DRONE_ENV_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "course.h"
#include "domain_rand.h"
#include "observation.h"
#include "privileged.h"
#include "quadrotor.h"
#include "rng.h"
#include "slot_assign.h"

enum { TASK_HOVER, TASK_GOTO, TASK_FOLLOW, TASK_RACE, TASK_SWARM, TASK_OBSTACLES, NUM_TASKS };
enum { FORMATION_SPHERE, FORMATION_ORBIT, FORMATION_GRID, FORMATION_LINE, NUM_FORMATIONS };
enum { END_NONE = 0, END_CRASH = 1, END_OUT_OF_BOUNDS = 2, END_TIMEOUT = 3 };
/* What a crash hit (the last check of env_evaluate that found one); CRASH_STATE: a non-finite state. */
enum { CRASH_NONE = 0, CRASH_FLOOR, CRASH_OBSTACLE, CRASH_DRONE, CRASH_RIM, CRASH_STATE, NUM_CRASH_CAUSES };

/* Task and formation names in enum order (the binding exports them as drone_sim.TASKS / FORMATIONS;
 * the task order is also the order of the observation's task one-hot). */
static inline const char *env_task_name(int t) {
    switch (t) {
    case TASK_HOVER: return "hover";
    case TASK_GOTO: return "goto";
    case TASK_FOLLOW: return "follow";
    case TASK_RACE: return "race";
    case TASK_SWARM: return "swarm";
    case TASK_OBSTACLES: return "obstacles";
    default: return "";
    }
}

static inline const char *env_formation_name(int f) {
    switch (f) {
    case FORMATION_SPHERE: return "sphere";
    case FORMATION_ORBIT: return "orbit";
    case FORMATION_GRID: return "grid";
    case FORMATION_LINE: return "line";
    default: return "";
    }
}

static inline const char *env_crash_cause_name(int k) {
    switch (k) {
    case CRASH_FLOOR: return "floor";
    case CRASH_OBSTACLE: return "obstacle";
    case CRASH_DRONE: return "drone";
    case CRASH_RIM: return "rim";
    case CRASH_STATE: return "state";
    default: return "";
    }
}

/* Sums over finished episodes, per task; the binding averages them (n = episodes). */
typedef struct {
    float n, episode_return, episode_length, score, crash, out_of_bounds, timeout, aux_sum, aux_count;
    float crash_cause[NUM_CRASH_CAUSES]; /* crashes by what they hit (index CRASH_*; [CRASH_NONE] stays 0) */
} TaskLog;

typedef struct {
    float physics_dt;         /* s */
    int substeps;             /* physics steps per control step */
    int integrator;           /* INTEGRATOR_RK4 or INTEGRATOR_EULER */
    int action_mode;          /* ACTION_RPM or ACTION_CTBR */
    int auto_reset;           /* respawn ended agents (1) or leave them where they are (0) */
    int evaluation;           /* 1: env-episodes run their full horizon from reset, and only the episode each
                                 drone began with the env-episode is logged (one per drone), so that crashed,
                                 short episodes are not counted more often than long ones */
    float task_weights[NUM_TASKS];
    float horizon_s[NUM_TASKS];
    Arena arena;
    int collide_all;          /* drone contact is a crash in every task (always in swarm) */
    float crash_speed;        /* touching the floor faster than this is a crash (m/s) */
    float crash_penalty;      /* the reward of a crash or of leaving the arena is -crash_penalty (terminal) */
    float success_radius;     /* hover/goto (m) */
    float follow_radius;      /* follow (m) */
    float formation_radius;   /* swarm (m) */
    float goal_radius;        /* obstacles (m) */
    float formation_spacing;  /* swarm slot spacing (m) */
    float clearance_margin;   /* closer than this to what the drone can crash into is penalized (m) */
    float clearance_weight;   /* the penalty at contact (per step), falling linearly to 0 at the margin */
    float clearance_time;     /* the margin looks this far ahead along the closing speed (s, 0: off): an obstacle or a
                                 drone approached at v counts clearance_time * v nearer than it is */
    float rim_lookahead;      /* s (0: off): a ring plane the drone would cross within this time on its current
                                 velocity costs as if it were already at the crossing point's rim distance */
    float race_tight_room;    /* m (0: off): where the target ring leaves the drone less room than this (its radius
                                 less the drone's and the rim's), race progress is paid in full at a lower speed */
    float smooth_weight;      /* penalty per step for a full-scale change of every action channel */
    float speed_limit[NUM_TASKS]; /* m/s; flying faster costs reward (0: no limit) */
    float speed_weight;       /* the cost per step at twice the limit, linear in the speed from 0 at the limit */
    int race_rings;
    Range ring_radius;
    int obstacles_lo, obstacles_hi;
    Range obstacle_radius;
    float blocked_line_prob;  /* obstacles: the share of spawns redrawn (up to BLOCKED_LINE_DRAWS times) until the
                                 straight line to the goal passes through a sphere (0: drawn freely) */
    int fixed_course;         /* 1: race on `course` (a course JSON) instead of generated ones */
    Course course;
    DroneParams nominal;
    DRConfig dr;
} SimConfig;

typedef struct {
    DroneParams drone;
    float obs_noise;
    float hover_thrust_known; /* what the observation says the hover thrust is (SampledDrone) */
    float t;                  /* time since spawn (s) */
    float ep_return, score_acc, aux_acc, dist_prev, reach_time, lap_start;
    int ep_len, aux_n, ring, rings_passed, slot, reached, ring0_seen, ended;
    int first;                /* spawned when the env-episode began (not a respawn) */
    int crash_cause;          /* CRASH_* of the crash that ended the episode */
    int end;                  /* how this step ended the episode (END_*), set before respawning */
    float follow_c[3], follow_a[3], follow_w[3], follow_phi[3];
} Agent;

typedef struct {
    SimConfig cfg;
    int n;
    float dt;                 /* control step (s) */
    /* physics, structure of arrays */
    float *S, *P, *C, *U, *impact;
    /* per agent */
    float *act, *prev_act, *pos0, *target, *target_vel;
    float *act_change;        /* per agent: |a - a_prev|^2 of this step's action (smoothness penalty) */
    int *nbr, *obst;
    Agent *agents;
    /* caller's buffers */
    float *observations, *actions, *rewards;
    unsigned char *terminals, *truncations;
    float *privileged;        /* PRIV_SIZE per agent, or NULL: the critic's extra input (env_bind_privileged) */
    /* env-episode */
    int task, step, horizon, formation;
    float t;
    float form_center[3], form_spacing, form_radius, form_omega, form_yaw;
    float *slot_base;         /* 3 per slot */
    int *slot_taken;          /* scratch for slot assignment: n each */
    int *slot_of;
    float *slot_pos, *assign_pos; /* 3 per slot, 3 per drone */
    Course course;
    Rng rng;
    TaskLog logs[NUM_TASKS];
    int nonfinite_actions;
} DroneEnv;

/* ------------------------------------------------------------------ helpers */

static inline void env_pos(const DroneEnv *e, int i, float p[3]) {
    p[0] = e->S[QS_PX * e->n + i];
    p[1] = e->S[QS_PY * e->n + i];
    p[2] = e->S[QS_PZ * e->n + i];
}

static inline void env_vel(const DroneEnv *e, int i, float v[3]) {
    v[0] = e->S[QS_VX * e->n + i];
    v[1] = e->S[QS_VY * e->n + i];
    v[2] = e->S[QS_VZ * e->n + i];
}

static inline void env_get_state(const DroneEnv *e, int i, float x[QS_COUNT]) {
    for (int j = 0; j < QS_COUNT; j++) x[j] = e->S[j * e->n + i];
}

/* Put agent i in state x (tests, the simulated vehicle). Resets its rate-loop memory. */
static inline void env_set_state(DroneEnv *e, int i, const float x[QS_COUNT]) {
    for (int j = 0; j < QS_COUNT; j++) e->S[j * e->n + i] = x[j];
    for (int k = 0; k < 3; k++) {
        e->C[(QC_IX + k) * e->n + i] = 0.0f;
        e->C[(QC_WPX + k) * e->n + i] = x[QS_WX + k];
    }
}

/* Agent i's privileged row (privileged.h), when the caller asked for one: written whenever the agent gets a
 * drone, as nothing in it changes within an episode. */
static inline void env_write_privileged(DroneEnv *e, int i) {
    if (e->privileged == NULL) return;
    const Agent *a = &e->agents[i];
    priv_build(&a->drone, a->hover_thrust_known, a->obs_noise, e->privileged + PRIV_SIZE * i);
}

/* Give agent i another drone (the simulated vehicle loads a params file this way); its owner knows this
 * drone's hover thrust exactly. */
static inline void env_set_drone(DroneEnv *e, int i, const DroneParams *d) {
    e->agents[i].drone = *d;
    e->agents[i].hover_thrust_known = quad_hover_thrust_fraction(d);
    quad_params_store(d, e->P, e->n, i, e->cfg.physics_dt);
    env_write_privileged(e, i);
}

static inline float env_task_horizon_s(const DroneEnv *e) { return e->cfg.horizon_s[e->task]; }

/* Where slot j of a formation is at time t (p) and how fast it moves (v): the centre plus the slot's
 * offset; orbit slots hold their phase angle in base[0] and go round the centre at omega rad/s. */
static inline void formation_slot(int formation, const float base[3], const float center[3], float radius,
                                  float omega, float t, float p[3], float v[3]) {
    if (formation == FORMATION_ORBIT) {
        float a = base[0] + omega * t;
        p[0] = center[0] + radius * cosf(a);
        p[1] = center[1] + radius * sinf(a);
        p[2] = center[2];
        v[0] = -radius * omega * sinf(a);
        v[1] = radius * omega * cosf(a);
        v[2] = 0.0f;
    } else {
        for (int k = 0; k < 3; k++) {
            p[k] = center[k] + base[k];
            v[k] = 0.0f;
        }
    }
}

/* Formation slot s at time t. */
static inline void env_slot(const DroneEnv *e, int s, float t, float p[3], float v[3]) {
    formation_slot(e->formation, e->slot_base + 3 * s, e->form_center, e->form_radius, e->form_omega, t, p, v);
}

static inline void env_follow_target(const Agent *a, float t, float p[3], float v[3]) {
    for (int k = 0; k < 3; k++) {
        float ph = a->follow_w[k] * t + a->follow_phi[k];
        p[k] = a->follow_c[k] + a->follow_a[k] * sinf(ph);
        v[k] = a->follow_a[k] * a->follow_w[k] * cosf(ph);
    }
}

/* Where agent i should be right now, and how fast that point moves. */
static inline void env_update_target(DroneEnv *e, int i) {
    Agent *a = &e->agents[i];
    float *p = e->target + 3 * i, *v = e->target_vel + 3 * i;
    if (e->task == TASK_FOLLOW) {
        env_follow_target(a, a->t, p, v);
    } else if (e->task == TASK_SWARM) {
        env_slot(e, a->slot, e->t, p, v);
    } else if (e->task == TASK_RACE) {
        const Ring *g = &e->course.rings[a->ring];
        for (int k = 0; k < 3; k++) {
            p[k] = g->pos[k];
            v[k] = 0.0f;
        }
    }
}

static inline float env_target_dist(const DroneEnv *e, int i) {
    float p[3];
    env_pos(e, i, p);
    return v3_dist(p, e->target + 3 * i);
}

static inline void env_random_point(DroneEnv *e, float margin, float zlo, float zhi, float p[3]) {
    const Arena *ar = &e->cfg.arena;
    p[0] = rng_uniform(&e->rng, -ar->half_x + margin, ar->half_x - margin);
    p[1] = rng_uniform(&e->rng, -ar->half_y + margin, ar->half_y - margin);
    p[2] = rng_uniform(&e->rng, zlo, fminf(zhi, ar->height - margin));
}

static inline int env_point_free(const DroneEnv *e, const float p[3], float clearance) {
    for (int j = 0; j < e->course.num_obstacles; j++)
        if (v3_dist(p, e->course.obstacles[j].pos) < e->course.obstacles[j].radius + clearance) return 0;
    return 1;
}

/* ------------------------------------------------------------------ spawning */

#define BLOCKED_LINE_DRAWS 64

/* An obstacle-task start at the arena's -x end and a goal at its +x end, each clear of the spheres by 1 m. */
static inline void env_obstacle_endpoints(DroneEnv *e, float p[3], float tg[3]) {
    const Arena *ar = &e->cfg.arena;
    for (int tries = 0; tries < 32; tries++) {
        p[0] = -ar->half_x + 1.5f;
        p[1] = rng_uniform(&e->rng, -ar->half_y + 2.0f, ar->half_y - 2.0f);
        p[2] = rng_uniform(&e->rng, 1.0f, ar->height - 1.5f);
        if (env_point_free(e, p, 1.0f)) break;
    }
    for (int tries = 0; tries < 32; tries++) {
        tg[0] = ar->half_x - 1.5f;
        tg[1] = rng_uniform(&e->rng, -ar->half_y + 2.0f, ar->half_y - 2.0f);
        tg[2] = rng_uniform(&e->rng, 1.0f, ar->height - 1.5f);
        if (env_point_free(e, tg, 1.0f)) break;
    }
}

static inline void env_spawn(DroneEnv *e, int i) {
    const SimConfig *c = &e->cfg;
    const DRConfig *dr = &c->dr;
    Agent *a = &e->agents[i];
    SampledDrone sd;
    dr_sample(dr, &c->nominal, &e->rng, &sd);
    a->drone = sd.params;
    a->obs_noise = sd.obs_noise;
    a->hover_thrust_known = sd.hover_thrust_known;
    quad_params_store(&a->drone, e->P, e->n, i, c->physics_dt);
    env_write_privileged(e, i);

    float p[3], *tg = e->target + 3 * i, *tv = e->target_vel + 3 * i;
    float tilt = dr->enabled ? dr->init_tilt : 0.0f, vel = dr->enabled ? dr->init_vel : 0.0f;
    float rate = dr->enabled ? dr->init_rate : 0.0f;
    int ground = 0;
    float yaw = rng_uniform(&e->rng, -3.14159265f, 3.14159265f);
    tv[0] = tv[1] = tv[2] = 0.0f;
    a->ring = 0;
    switch (e->task) {
    case TASK_HOVER:
    case TASK_GOTO: {
        env_random_point(e, 2.0f, 1.0f, 6.0f, tg);
        ground = dr->enabled && rng_uniform01(&e->rng) < dr->ground_start_prob;
        for (int tries = 0; tries < 16; tries++) {
            float dir[3];
            rng_unit3(&e->rng, dir);
            if (e->task == TASK_HOVER) {
                float r = rng_uniform(&e->rng, 0.0f, 1.5f);
                for (int k = 0; k < 3; k++) p[k] = tg[k] + r * dir[k];
            } else {
                env_random_point(e, 1.5f, 0.5f, 7.0f, p);
            }
            p[2] = fmaxf(p[2], 0.5f);
            if (e->task == TASK_HOVER || v3_dist(p, tg) > 3.0f) break;
        }
        if (ground) p[2] = 0.0f;
        break;
    }
    case TASK_FOLLOW: {
        const Arena *ar = &c->arena;
        for (int k = 0; k < 3; k++) {
            float amp = k < 2 ? rng_uniform(&e->rng, 0.5f, 4.0f) : rng_uniform(&e->rng, 0.2f, 1.0f);
            float vmax = k < 2 ? 1.5f : 0.5f;
            float w = rng_uniform(&e->rng, 0.2f, 1.0f) * vmax / amp;
            a->follow_a[k] = amp;
            a->follow_w[k] = w;
            a->follow_phi[k] = rng_uniform(&e->rng, 0.0f, 6.2831853f);
        }
        a->follow_c[0] = rng_uniform(&e->rng, -ar->half_x + 2.0f + a->follow_a[0], ar->half_x - 2.0f - a->follow_a[0]);
        a->follow_c[1] = rng_uniform(&e->rng, -ar->half_y + 2.0f + a->follow_a[1], ar->half_y - 2.0f - a->follow_a[1]);
        a->follow_c[2] = rng_uniform(&e->rng, 1.5f + a->follow_a[2], ar->height - 2.0f - a->follow_a[2]);
        env_follow_target(a, 0.0f, tg, tv);
        float dir[3];
        rng_unit3(&e->rng, dir);
        float r = rng_uniform(&e->rng, 0.0f, 1.0f);
        for (int k = 0; k < 3; k++) p[k] = tg[k] + r * dir[k];
        break;
    }
    case TASK_RACE: {
        const Ring *g = &e->course.rings[0];
        float back = rng_uniform(&e->rng, 2.0f, 5.0f);
        for (int k = 0; k < 3; k++) p[k] = g->pos[k] - back * g->normal[k] + rng_uniform(&e->rng, -1.0f, 1.0f);
        p[2] = clampf(p[2], 0.5f, c->arena.height - 0.5f);
        yaw = atan2f(g->normal[1], g->normal[0]) + rng_uniform(&e->rng, -0.5f, 0.5f);
        for (int k = 0; k < 3; k++) tg[k] = g->pos[k];
        break;
    }
    case TASK_SWARM: {
        for (int tries = 0; tries < 32; tries++) {
            for (int k = 0; k < 3; k++) p[k] = e->form_center[k] + rng_uniform(&e->rng, -6.0f, 6.0f);
            p[0] = clampf(p[0], -c->arena.half_x + 1.0f, c->arena.half_x - 1.0f);
            p[1] = clampf(p[1], -c->arena.half_y + 1.0f, c->arena.half_y - 1.0f);
            p[2] = clampf(p[2], 0.7f, c->arena.height - 0.7f);
            int ok = 1;
            for (int j = 0; j < e->n && ok; j++) {
                if (j == i) continue;
                float q[3];
                env_pos(e, j, q);
                if (v3_dist(p, q) < 1.0f + e->agents[j].drone.radius + a->drone.radius) ok = 0;
            }
            if (ok) break;
        }
        env_slot(e, a->slot, e->t, tg, tv);
        break;
    }
    case TASK_OBSTACLES:
    default: {
        /* Drawn freely, about one line in five crosses a sphere, and those lines hold most of the crashes: a
         * training run may ask for more of them (blocked_line_prob). At 0 the random stream is what it was. */
        int want_blocked = c->blocked_line_prob > 0.0f && rng_uniform01(&e->rng) < c->blocked_line_prob;
        for (int draw = 0; draw < (want_blocked ? BLOCKED_LINE_DRAWS : 1); draw++) {
            env_obstacle_endpoints(e, p, tg);
            if (!want_blocked || course_line_blocked(&e->course, p, tg, a->drone.radius)) break;
        }
        yaw = rng_uniform(&e->rng, -1.0f, 1.0f);
        break;
    }
    }

    float x[QS_COUNT];
    float q[4];
    float roll = ground ? 0.0f : rng_uniform(&e->rng, -tilt, tilt);
    float pitch = ground ? 0.0f : rng_uniform(&e->rng, -tilt, tilt);
    quat_from_euler(roll, pitch, yaw, q);
    for (int k = 0; k < 3; k++) {
        x[QS_PX + k] = p[k];
        x[QS_VX + k] = ground ? 0.0f : rng_uniform(&e->rng, -vel, vel);
        x[QS_WX + k] = ground ? 0.0f : rng_uniform(&e->rng, -rate, rate);
    }
    for (int k = 0; k < 4; k++) x[QS_QW + k] = q[k];
    float wh = ground ? 0.0f : quad_hover_omega(&a->drone);
    for (int k = 0; k < 4; k++) x[QS_M0 + k] = wh;
    env_set_state(e, i, x);

    float ha[4];
    quad_hover_action(&a->drone, c->action_mode, ha);
    if (ground) {
        ha[0] = -1.0f;
        if (c->action_mode == ACTION_RPM) ha[1] = ha[2] = ha[3] = -1.0f;
    }
    memcpy(e->prev_act + 4 * i, ha, sizeof(ha));
    memcpy(e->act + 4 * i, ha, sizeof(ha));

    a->t = 0.0f;
    a->ep_return = a->score_acc = a->aux_acc = 0.0f;
    a->ep_len = a->aux_n = a->rings_passed = a->reached = a->ring0_seen = a->ended = 0;
    a->first = e->step == 0;
    a->reach_time = -1.0f;
    a->lap_start = 0.0f;
    a->dist_prev = env_target_dist(e, i);
}

/* ------------------------------------------------------------------ env-episode setup */

/* The shape of an n-drone formation: each slot's offset from the centre (3 floats per slot into base; an
 * orbit slot's phase angle in base[0]), the sphere's or orbit's radius (written only for those two), and the
 * half extents across and up that keep it inside the arena. spacing: the distance between neighbouring slots
 * (the grid's rows and the line shrink it to fit the arena); yaw (rad) turns the line and the grid. */
static inline void formation_layout(int formation, int n, float spacing, float yaw, const Arena *ar, float *base,
                                    float *radius, float *ext_xy, float *ext_z) {
    float s = spacing;
    float cy = cosf(yaw), sy = sinf(yaw);
    *ext_xy = 1.0f;
    *ext_z = 0.5f;
    if (formation == FORMATION_SPHERE) {
        float r = fmaxf(1.0f, 1.1f * s * sqrtf((float)n / 12.566f));
        *radius = r;
        for (int j = 0; j < n; j++) { /* Fibonacci sphere */
            float z = n > 1 ? 1.0f - 2.0f * ((float)j + 0.5f) / (float)n : 0.0f;
            float rr = sqrtf(fmaxf(0.0f, 1.0f - z * z)), th = 2.39996323f * (float)j;
            base[3 * j + 0] = r * rr * cosf(th);
            base[3 * j + 1] = r * rr * sinf(th);
            base[3 * j + 2] = r * z;
        }
        *ext_xy = r;
        *ext_z = r;
    } else if (formation == FORMATION_ORBIT) {
        float r = fminf(fmaxf(2.0f, (float)n * s / 6.2831853f), fminf(ar->half_x, ar->half_y) - 2.0f);
        *radius = r;
        for (int j = 0; j < n; j++) {
            base[3 * j + 0] = 6.2831853f * (float)j / (float)n;
            base[3 * j + 1] = base[3 * j + 2] = 0.0f;
        }
        *ext_xy = r;
    } else if (formation == FORMATION_GRID) {
        int cols = (int)ceilf(sqrtf((float)n)), rows = (n + cols - 1) / cols;
        float sp = fminf(s, (ar->height - 1.5f) / (float)(rows > 1 ? rows - 1 : 1));
        for (int j = 0; j < n; j++) {
            float u = ((float)(j % cols) - 0.5f * (float)(cols - 1)) * sp;
            float w = ((float)(j / cols) - 0.5f * (float)(rows - 1)) * sp;
            base[3 * j + 0] = u * cy;
            base[3 * j + 1] = u * sy;
            base[3 * j + 2] = w;
        }
        *ext_xy = 0.5f * (float)(cols - 1) * sp + 0.5f;
        *ext_z = 0.5f * (float)(rows - 1) * sp;
    } else {
        float sp = fminf(s, (2.0f * fminf(ar->half_x, ar->half_y) - 4.0f) / (float)(n > 1 ? n - 1 : 1));
        for (int j = 0; j < n; j++) {
            float u = ((float)j - 0.5f * (float)(n - 1)) * sp;
            base[3 * j + 0] = u * cy;
            base[3 * j + 1] = u * sy;
            base[3 * j + 2] = 0.0f;
        }
        *ext_xy = 0.5f * (float)(n - 1) * sp + 0.5f;
    }
}

static inline void env_build_formation(DroneEnv *e) {
    const Arena *ar = &e->cfg.arena;
    float ext_xy, ext_z;
    e->formation = rng_int(&e->rng, NUM_FORMATIONS);
    e->form_yaw = rng_uniform(&e->rng, 0.0f, 3.14159265f);
    formation_layout(e->formation, e->n, e->cfg.formation_spacing, e->form_yaw, ar, e->slot_base, &e->form_radius,
                     &ext_xy, &ext_z);
    if (e->formation == FORMATION_ORBIT) {
        float r = e->form_radius;
        e->form_omega = rng_uniform(&e->rng, 0.5f, 1.5f) / r * (rng_uniform01(&e->rng) < 0.5f ? -1.0f : 1.0f);
    }
    float mx = fmaxf(1.0f, ar->half_x - ext_xy - 1.0f), my = fmaxf(1.0f, ar->half_y - ext_xy - 1.0f);
    float zlo = fmaxf(ext_z + 1.0f, 1.5f), zhi = fmaxf(zlo, ar->height - ext_z - 1.0f);
    e->form_center[0] = rng_uniform(&e->rng, -mx, mx) * 0.5f;
    e->form_center[1] = rng_uniform(&e->rng, -my, my) * 0.5f;
    e->form_center[2] = rng_uniform(&e->rng, zlo, zhi);
    if (e->formation == FORMATION_ORBIT) e->form_center[0] = e->form_center[1] = 0.0f;
}

/* Every drone's slot, from where the drones are now (slot_assign.h: no two drones' straight paths to their
 * slots cross). */
static inline void env_assign_slots(DroneEnv *e) {
    int n = e->n;
    for (int i = 0; i < n; i++) {
        float sv[3];
        env_pos(e, i, e->assign_pos + 3 * i);
        env_slot(e, i, e->t, e->slot_pos + 3 * i, sv);
    }
    slot_assign(n, e->assign_pos, n, e->slot_pos, e->slot_of, e->slot_taken, SLOT_ASSIGN_MAX_PASSES);
    for (int i = 0; i < n; i++) {
        e->agents[i].slot = e->slot_of[i];
        env_update_target(e, i);
        e->agents[i].dist_prev = env_target_dist(e, i);
    }
}

static inline int env_pick_task(DroneEnv *e) {
    float total = 0.0f;
    for (int k = 0; k < NUM_TASKS; k++) total += e->cfg.task_weights[k];
    float u = rng_uniform01(&e->rng) * total;
    int last = TASK_HOVER;
    for (int k = 0; k < NUM_TASKS; k++) {
        if (e->cfg.task_weights[k] <= 0.0f) continue;
        last = k;
        if (u < e->cfg.task_weights[k]) return k;
        u -= e->cfg.task_weights[k];
    }
    return last;
}

/* Start an env-episode: pick a task, build its world, spawn every drone. */
static inline void env_begin_episode(DroneEnv *e) {
    const SimConfig *c = &e->cfg;
    e->task = env_pick_task(e);
    e->step = 0;
    e->t = 0.0f;
    e->horizon = (int)(env_task_horizon_s(e) / e->dt + 0.5f);
    if (e->horizon < 1) e->horizon = 1;
    e->course.num_rings = 0;
    e->course.num_obstacles = 0;
    if (e->task == TASK_RACE) {
        if (c->fixed_course) e->course = c->course;
        else course_generate(&e->course, &c->arena, c->race_rings, c->ring_radius.lo, c->ring_radius.hi, &e->rng);
    } else if (e->task == TASK_OBSTACLES) {
        int lo = c->obstacles_lo, hi = c->obstacles_hi;
        int k = lo + rng_int(&e->rng, hi - lo + 1);
        course_obstacle_field(&e->course, &c->arena, k, c->obstacle_radius.lo, c->obstacle_radius.hi,
                              c->arena.half_x - 5.0f, &e->rng);
    } else if (e->task == TASK_SWARM) {
        env_build_formation(e);
        for (int i = 0; i < e->n; i++) e->agents[i].slot = i;
    }
    /* Move everyone far away first so that swarm spawning only checks already placed drones. */
    for (int i = 0; i < e->n; i++) e->S[QS_PZ * e->n + i] = 1e6f + 10.0f * (float)i;
    for (int i = 0; i < e->n; i++) env_spawn(e, i);
    if (e->task == TASK_SWARM) env_assign_slots(e);
    for (int i = 0; i < e->n; i++) env_update_target(e, i);
}

/* ------------------------------------------------------------------ neighbours and obstacles */

/* K nearest drones (by centre distance) and obstacles (by surface distance) of every agent.
 *
 * The result is that of the plain double loop: the K smallest distances below 1e30, the earlier index
 * first on ties. It is computed faster in the same terms:
 *   - distances to a block of up to ENV_NEAREST_BLOCK drones are computed in a loop over the position
 *     rows that vectorizes (the same float operations, so the same values);
 *   - the insertion pass only looks at candidates not farther than an upper bound t of the K-th
 *     distance: the largest distance to the agent's K previous neighbours (any K distinct other drones
 *     bound it). Drones beyond t can never enter the list, so skipping them changes nothing; the few
 *     within t are gathered without branches, so nothing is mispredicted. Without K previous
 *     neighbours, or with a non-finite position anywhere (a NaN would make the plain loop's insertion
 *     order-dependent), t is infinite and every candidate is looked at.
 * In swarm (64 drones per env) the phase of env_step that runs it went from about 320 to 90 ns per
 * agent-step (scripts/bench_sim.py --profile). */
#define ENV_NEAREST_BLOCK 64

static inline void env_find_nearest(DroneEnv *e, int drones) {
    int n = e->n;
    const float *X = e->S + QS_PX * n, *Y = e->S + QS_PY * n, *Z = e->S + QS_PZ * n;
    float d2[ENV_NEAREST_BLOCK];
    int cand[ENV_NEAREST_BLOCK];
    int finite = 1;
    if (drones)
        for (ptrdiff_t j = 0; j < n; j++) finite &= (fabsf(X[j]) <= FLT_MAX) & (fabsf(Y[j]) <= FLT_MAX) & (fabsf(Z[j]) <= FLT_MAX);
    for (int i = 0; i < n; i++) {
        float p[3];
        env_pos(e, i, p);
        int *nb = e->nbr + OBS_K_DRONES * i;
        float bd[OBS_K_DRONES];
        float t = INFINITY;
        if (drones && finite) { /* bound from the previous neighbours, with the distance formula used below */
            float tb = -1.0f;
            for (int k = 0; k < OBS_K_DRONES; k++) {
                int j = nb[k], repeated = 0;
                for (int k2 = 0; k2 < k; k2++) repeated |= nb[k2] == j;
                if (j < 0 || j >= n || j == i || repeated) { tb = INFINITY; break; } /* not K distinct others */
                float dx = X[j] - p[0], dy = Y[j] - p[1], dz = Z[j] - p[2];
                float d = dx * dx + dy * dy + dz * dz;
                tb = d > tb ? d : tb;
            }
            t = tb;
        }
        for (int k = 0; k < OBS_K_DRONES; k++) { nb[k] = -1; bd[k] = 1e30f; }
        for (int j0 = 0; drones && j0 < n; j0 += ENV_NEAREST_BLOCK) {
            int m = n - j0 < ENV_NEAREST_BLOCK ? n - j0 : ENV_NEAREST_BLOCK;
            for (ptrdiff_t j = 0; j < m; j++) {
                float dx = X[j0 + j] - p[0], dy = Y[j0 + j] - p[1], dz = Z[j0 + j] - p[2];
                d2[j] = dx * dx + dy * dy + dz * dz;
            }
            int c = 0; /* branch-free compaction of the candidates within the bound (a NaN is kept) */
            for (int j = 0; j < m; j++) {
                cand[c] = j;
                c += !(d2[j] > t);
            }
            for (int q = 0; q < c; q++) {
                int j = cand[q];
                float d = d2[j];
                if (d >= bd[OBS_K_DRONES - 1] || j0 + j == i) continue;
                int k = OBS_K_DRONES - 1;
                while (k > 0 && bd[k - 1] > d) { bd[k] = bd[k - 1]; nb[k] = nb[k - 1]; k--; }
                bd[k] = d; nb[k] = j0 + j;
            }
        }
        course_nearest_obstacles(e->course.obstacles, e->course.num_obstacles, p, OBS_K_OBSTACLES,
                                 e->obst + OBS_K_OBSTACLES * i);
    }
}

static inline int env_drones_collide(const DroneEnv *e) { return e->task == TASK_SWARM || e->cfg.collide_all; }

/* ------------------------------------------------------------------ observations */

/* Observation noise stds at noise scale 1. */
#define NOISE_POS 0.02f
#define NOISE_VEL 0.05f
#define NOISE_RATE 0.05f
#define NOISE_ATT 0.01f

/* Observation noise sample: the same approximate standard normal as rng_normal_approx (Irwin-Hall sum
 * of four uniforms, (s - 2) sqrt(3)), with the four uniforms taken as the 16-bit halves of two draws
 * instead of the top 24 bits of four: half the generator calls, which were a tenth of a hover step.
 * The sum is formed exactly in integers; the uniforms sit at (k + 0.5) / 65536, so the mean is 0. */
static inline float env_noise_normal(Rng *r) {
    uint32_t a = rng_u32(r), b = rng_u32(r);
    uint32_t k = (a >> 16) + (a & 0xffffu) + (b >> 16) + (b & 0xffffu);
    return ((float)k * (1.0f / 65536.0f) + (2.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static inline void env_observe(DroneEnv *e, int i) {
    int n = e->n;
    Agent *a = &e->agents[i];
    ObsInput in;
    float x[QS_COUNT];
    env_get_state(e, i, x);
    for (int k = 0; k < 3; k++) {
        in.pos[k] = x[QS_PX + k];
        in.vel[k] = x[QS_VX + k];
        in.omega[k] = x[QS_WX + k];
    }
    for (int k = 0; k < 4; k++) in.quat[k] = x[QS_QW + k];
    if (a->obs_noise > 0.0f) {
        float s = a->obs_noise;
        for (int k = 0; k < 3; k++) {
            in.pos[k] += s * NOISE_POS * env_noise_normal(&e->rng);
            in.vel[k] += s * NOISE_VEL * env_noise_normal(&e->rng);
            in.omega[k] += s * NOISE_RATE * env_noise_normal(&e->rng);
        }
        /* small random rotation q <- q (x) (1, d/2) */
        float d0 = 0.5f * s * NOISE_ATT * env_noise_normal(&e->rng);
        float d1 = 0.5f * s * NOISE_ATT * env_noise_normal(&e->rng);
        float d2 = 0.5f * s * NOISE_ATT * env_noise_normal(&e->rng);
        float w = in.quat[0], qx = in.quat[1], qy = in.quat[2], qz = in.quat[3];
        in.quat[0] = w - qx * d0 - qy * d1 - qz * d2;
        in.quat[1] = qx + w * d0 + qy * d2 - qz * d1;
        in.quat[2] = qy + w * d1 - qx * d2 + qz * d0;
        in.quat[3] = qz + w * d2 + qx * d1 - qy * d0;
    }
    memcpy(in.last_action, e->prev_act + 4 * i, sizeof(in.last_action));
    memcpy(in.target_pos, e->target + 3 * i, sizeof(in.target_pos));
    memcpy(in.target_vel, e->target_vel + 3 * i, sizeof(in.target_vel));
    in.has_ring = in.has_next_ring = 0;
    if (e->task == TASK_RACE && e->course.num_rings > 0) {
        const Ring *g = &e->course.rings[a->ring];
        const Ring *h = &e->course.rings[(a->ring + 1) % e->course.num_rings];
        in.has_ring = in.has_next_ring = 1;
        memcpy(in.ring_normal, g->normal, sizeof(in.ring_normal));
        in.ring_radius = g->radius;
        memcpy(in.next_ring_pos, h->pos, sizeof(in.next_ring_pos));
        memcpy(in.next_ring_normal, h->normal, sizeof(in.next_ring_normal));
    }
    in.num_drones = 0;
    for (int k = 0; k < OBS_K_DRONES; k++) {
        int j = e->nbr[OBS_K_DRONES * i + k];
        if (j < 0) break;
        for (int m = 0; m < 3; m++) {
            in.drone_pos[k][m] = e->S[(QS_PX + m) * n + j];
            in.drone_vel[k][m] = e->S[(QS_VX + m) * n + j];
        }
        in.num_drones++;
    }
    in.num_obstacles = 0;
    for (int k = 0; k < OBS_K_OBSTACLES; k++) {
        int j = e->obst[OBS_K_OBSTACLES * i + k];
        if (j < 0) break;
        memcpy(in.obstacle_pos[k], e->course.obstacles[j].pos, sizeof(in.obstacle_pos[k]));
        in.obstacle_radius[k] = e->course.obstacles[j].radius;
        in.num_obstacles++;
    }
    in.task = e->task;
    in.radius = a->drone.radius;
    in.hover_thrust = a->hover_thrust_known;
    obs_build(&in, e->observations + OBS_SIZE * i);
}

static inline void env_observe_all(DroneEnv *e) {
    env_find_nearest(e, env_drones_collide(e));
    for (int i = 0; i < e->n; i++) env_observe(e, i);
}

/* ------------------------------------------------------------------ init / reset / step / close */

/* Allocate everything an env needs for n agents. Returns 0 on success, -1 on allocation failure. */
static inline int env_init(DroneEnv *e, const SimConfig *cfg, int n, uint64_t seed) {
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    e->n = n;
    e->dt = cfg->physics_dt * (float)cfg->substeps;
    e->S = (float *)calloc((size_t)QS_COUNT * (size_t)n, sizeof(float));
    e->P = (float *)calloc((size_t)QP_COUNT * (size_t)n, sizeof(float));
    e->C = (float *)calloc((size_t)QC_COUNT * (size_t)n, sizeof(float));
    e->U = (float *)calloc((size_t)4 * (size_t)n, sizeof(float));
    e->impact = (float *)calloc((size_t)n, sizeof(float));
    e->act = (float *)calloc((size_t)4 * (size_t)n, sizeof(float));
    e->prev_act = (float *)calloc((size_t)4 * (size_t)n, sizeof(float));
    e->act_change = (float *)calloc((size_t)n, sizeof(float));
    e->pos0 = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->target = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->target_vel = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->slot_base = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->slot_taken = (int *)calloc((size_t)n, sizeof(int));
    e->slot_of = (int *)calloc((size_t)n, sizeof(int));
    e->slot_pos = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->assign_pos = (float *)calloc((size_t)3 * (size_t)n, sizeof(float));
    e->nbr = (int *)calloc((size_t)OBS_K_DRONES * (size_t)n, sizeof(int));
    e->obst = (int *)calloc((size_t)OBS_K_OBSTACLES * (size_t)n, sizeof(int));
    e->agents = (Agent *)calloc((size_t)n, sizeof(Agent));
    rng_seed(&e->rng, seed);
    if (!e->S || !e->P || !e->C || !e->U || !e->impact || !e->act || !e->prev_act || !e->act_change || !e->pos0 || !e->target ||
        !e->target_vel || !e->slot_base || !e->slot_taken || !e->slot_of || !e->slot_pos || !e->assign_pos || !e->nbr ||
        !e->obst || !e->agents)
        return -1;
    return 0;
}

/* Point the env at the caller's buffers (views into the vector's arrays). */
static inline void env_bind(DroneEnv *e, float *obs, float *actions, float *rewards, unsigned char *terminals,
                            unsigned char *truncations) {
    e->observations = obs;
    e->actions = actions;
    e->rewards = rewards;
    e->terminals = terminals;
    e->truncations = truncations;
}

/* Also write each agent's privileged vector (PRIV_SIZE floats per agent) to priv from the next reset on; NULL
 * stops it. Optional: only an asymmetric critic reads it. */
static inline void env_bind_privileged(DroneEnv *e, float *priv) { e->privileged = priv; }

static inline void env_reset(DroneEnv *e, uint64_t seed) {
    rng_seed(&e->rng, seed);
    env_begin_episode(e);
    /* Spread env-episode ends over time so a vector of envs does not end all its episodes at once. */
    if (!e->cfg.evaluation) e->horizon = (int)((float)e->horizon * rng_uniform(&e->rng, 0.5f, 1.0f)) + 1;
    for (int i = 0; i < e->n; i++) {
        e->rewards[i] = 0.0f;
        e->terminals[i] = e->truncations[i] = 0;
    }
    env_observe_all(e);
}

static inline void env_log_episode(DroneEnv *e, int i, int end) {
    Agent *a = &e->agents[i];
    TaskLog *l = &e->logs[e->task];
    if (e->cfg.evaluation && !a->first) return;
    float score = 0.0f;
    switch (e->task) {
    case TASK_HOVER:
    case TASK_GOTO:
        score = (end == END_TIMEOUT && env_target_dist(e, i) < e->cfg.success_radius) ? 1.0f : 0.0f;
        break;
    case TASK_RACE:
        score = (float)a->rings_passed;
        break;
    case TASK_OBSTACLES:
        score = (float)a->reached;
        break;
    default:
        score = a->ep_len > 0 ? a->score_acc / (float)a->ep_len : 0.0f;
    }
    l->n += 1.0f;
    l->episode_return += a->ep_return;
    l->episode_length += (float)a->ep_len;
    l->score += score;
    l->crash += end == END_CRASH;
    l->out_of_bounds += end == END_OUT_OF_BOUNDS;
    l->timeout += end == END_TIMEOUT;
    if (end == END_CRASH) l->crash_cause[a->crash_cause] += 1.0f;
    l->aux_sum += a->aux_acc;
    l->aux_count += (float)a->aux_n;
}

/* What the clearance penalty sees of a gap g (m) to something at q, dist (m) from the drone at p: g less
 * clearance_time * the speed at which the drone closes on it (rel_vel: the drone's velocity relative to it). */
static inline float env_felt_clearance(const SimConfig *c, float g, const float p[3], const float q[3], float dist,
                                       const float rel_vel[3]) {
    float d[3] = {q[0] - p[0], q[1] - p[1], q[2] - p[2]};
    float closing = v3_closing_speed(d, dist, rel_vel);
    return g - c->clearance_time * (closing > 0.0f ? closing : 0.0f);
}

/* Reward, progress and end of episode for agent i after the physics of this step. */
static inline int env_evaluate(DroneEnv *e, int i, float *reward) {
    const SimConfig *c = &e->cfg;
    Agent *a = &e->agents[i];
    int n = e->n;
    float p[3], x[QS_COUNT];
    env_pos(e, i, p);
    env_get_state(e, i, x);
    float r = 0.0f;
    int end = END_NONE, cause = CRASH_NONE;
    /* the smallest clearance between the drone and what it can crash into (m), each clearance less
     * clearance_time * its closing speed: what the clearance penalty sees */
    float felt = INFINITY;
    float near = 0.0f; /* the share of clearance_weight charged, 0 to 1: rim look-ahead or plain clearance */

    /* crash: floor impact, obstacles, other drones; out of bounds */
    if (e->impact[i] > c->crash_speed) cause = CRASH_FLOOR;
    for (int k = 0; k < OBS_K_OBSTACLES; k++) {
        int j = e->obst[OBS_K_OBSTACLES * i + k];
        if (j < 0) break;
        const Sphere *s = &e->course.obstacles[j];
        float dc = v3_dist(p, s->pos);
        float g = dc - s->radius - a->drone.radius;
        if (g < 0.0f) cause = CRASH_OBSTACLE;
        float f = env_felt_clearance(c, g, p, s->pos, dc, &x[QS_VX]);
        felt = f < felt ? f : felt;
    }
    if (env_drones_collide(e)) {
        int j = e->nbr[OBS_K_DRONES * i];
        if (j >= 0) {
            float q[3];
            env_pos(e, j, q);
            float dc = v3_dist(p, q);
            float g = dc - a->drone.radius - e->agents[j].drone.radius;
            if (g < 0.0f) cause = CRASH_DRONE;
            float rv[3] = {x[QS_VX] - e->S[QS_VX * n + j], x[QS_VY] - e->S[QS_VY * n + j],
                           x[QS_VZ] - e->S[QS_VZ * n + j]}; /* i's velocity relative to j */
            float f = env_felt_clearance(c, g, p, q, dc, rv);
            felt = f < felt ? f : felt;
        }
    }
    if (cause != CRASH_NONE) end = END_CRASH;
    if (end == END_NONE && (fabsf(p[0]) > c->arena.half_x || fabsf(p[1]) > c->arena.half_y || p[2] > c->arena.height))
        end = END_OUT_OF_BOUNDS;
    int finite = 1; /* fabsf(v) <= FLT_MAX is isfinite(v), without a branch per component */
    for (int k = 0; k < QS_COUNT; k++) finite &= fabsf(x[k]) <= FLT_MAX;
    if (!finite) {
        end = END_CRASH;
        cause = CRASH_STATE;
    }

    float rate = v3_norm(&x[QS_WX]);
    float rate_frac = rate / 10.0f;
    float effort = 0.05f * (rate_frac < 1.0f ? rate_frac : 1.0f); /* fminf(rate_frac, 1), inlined */
    const float v_ref = 5.0f;

    if (e->task == TASK_RACE) {
        const Ring *g = &e->course.rings[a->ring];
        /* the drone touches a rim when its centre comes this near the rim's circle: its radius + the tube's */
        const float touch = a->drone.radius + COURSE_RIM_THICKNESS;
        for (int k = 0; k < e->course.num_rings; k++) {
            float rim;
            int res = ring_cross(&e->course.rings[k], e->pos0 + 3 * i, p, &rim);
            float rim_gap = rim - touch;
            if (rim_gap < 0.0f) {
                end = END_CRASH;
                cause = CRASH_RIM;
            }
            felt = rim_gap < felt ? rim_gap : felt; /* a rim has no one closing speed: its plain clearance */
            float cross;
            if (c->rim_lookahead > 0.0f &&
                ring_crossing_ahead(&e->course.rings[k], p, &x[QS_VX], c->rim_lookahead, &cross)) {
                float room = e->course.rings[k].radius - touch;
                float m = room < c->clearance_margin ? room : c->clearance_margin;
                float gap = cross - touch;
                if (m > 0.0f && gap < m) {
                    float share = 1.0f - (gap > 0.0f ? gap : 0.0f) / m;
                    near = share > near ? share : near;
                }
            }
            if (k == a->ring && res == RING_PASSED && end == END_NONE) {
                r += 1.0f;
                a->rings_passed++;
                if (a->ring == 0) {
                    if (a->ring0_seen) {
                        a->aux_acc += a->t - a->lap_start;
                        a->aux_n++;
                    }
                    a->ring0_seen = 1;
                    a->lap_start = a->t;
                }
            }
        }
        if (r > 0.0f) {
            a->ring = (a->ring + 1) % e->course.num_rings;
            env_update_target(e, i);
            a->dist_prev = env_target_dist(e, i);
        } else {
            float d = v3_dist(p, g->pos);
            float v_paid = v_ref; /* the speed at which progress towards this ring pays in full */
            if (c->race_tight_room > 0.0f)
                v_paid = v_ref * clampf((g->radius - touch) / c->race_tight_room, 0.2f, 1.0f);
            r += 0.5f * clampf((a->dist_prev - d) / (v_paid * e->dt), -1.0f, 1.0f);
            a->dist_prev = d;
        }
        r -= effort;
    } else {
        float d = env_target_dist(e, i);
        float prog = clampf((a->dist_prev - d) / (v_ref * e->dt), -1.0f, 1.0f);
        float prox = 1.0f / (1.0f + (d / 0.3f) * (d / 0.3f));
        a->dist_prev = d;
        r = 0.3f * prog + 0.5f * prox - effort;
        switch (e->task) {
        case TASK_HOVER:
        case TASK_GOTO:
        case TASK_OBSTACLES: {
            float radius = e->task == TASK_OBSTACLES ? c->goal_radius : c->success_radius;
            if (d < radius && a->reach_time < 0.0f) {
                a->reach_time = a->t;
                a->reached = 1;
                a->aux_acc += a->t;
                a->aux_n++;
            }
            break;
        }
        case TASK_FOLLOW:
            a->score_acc += d < c->follow_radius;
            a->aux_acc += d;
            a->aux_n++;
            break;
        case TASK_SWARM:
            a->score_acc += d < c->formation_radius;
            a->aux_acc += d;
            a->aux_n++;
            break;
        }
    }
    if (c->clearance_margin > 0.0f && felt < c->clearance_margin) {
        float now = 1.0f - (felt > 0.0f ? felt : 0.0f) / c->clearance_margin;
        near = now > near ? now : near;
    }
    r -= c->clearance_weight * near; /* the larger of what is close now and the rim line ahead */
    r -= c->smooth_weight * 0.25f * e->act_change[i];
    float limit = c->speed_limit[e->task];
    if (c->speed_weight > 0.0f && limit > 0.0f) {
        float v = v3_norm(&x[QS_VX]);
        float over = (v - limit) / limit;
        if (over > 0.0f) r -= c->speed_weight * over;
    }
    *reward = end == END_CRASH || end == END_OUT_OF_BOUNDS ? -c->crash_penalty : clampf(r, -1.0f, 1.0f);
    a->crash_cause = end == END_CRASH ? cause : CRASH_NONE;
    return end;
}

/* Profiling hook: scripts/bench_sim.py --profile defines ENV_PROFILE_MARK(phase) before including this
 * header to time the phases of env_step (the time since the previous mark is charged to `phase`).
 * By default it expands to nothing. */
enum { ENV_PHASE_ACTIONS, ENV_PHASE_PHYSICS, ENV_PHASE_NEIGHBOURS, ENV_PHASE_TASK, ENV_PHASE_OBSERVE, ENV_NUM_PHASES };
#ifndef ENV_PROFILE_MARK
#define ENV_PROFILE_MARK(phase) ((void)0)
#endif

/* Advance every agent one control step using e->actions; write observations, rewards, flags. */
static inline void env_step(DroneEnv *e) {
    const SimConfig *c = &e->cfg;
    int n = e->n;
    /* Sanitize actions: clip to [-1, 1]; a non-finite action is replaced by the hover-neutral 0 and counted.
     * Branch-free (fabsf(a) <= FLT_MAX is isfinite(a)) so that the loop vectorizes. */
    int nonfinite = 0;
    for (ptrdiff_t j = 0; j < 4 * (ptrdiff_t)n; j++) {
        float a = e->actions[j];
        int finite = fabsf(a) <= FLT_MAX;
        nonfinite += !finite;
        e->act[j] = clampf(finite ? a : 0.0f, -1.0f, 1.0f);
    }
    e->nonfinite_actions += nonfinite;
    for (int i = 0; i < n; i++) {
        const float *a = e->act + 4 * i, *b = e->prev_act + 4 * i;
        float d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2], d3 = a[3] - b[3];
        e->act_change[i] = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
    }
    ENV_PROFILE_MARK(ENV_PHASE_ACTIONS);
    for (int i = 0; i < n; i++) {
        env_pos(e, i, e->pos0 + 3 * i);
        e->impact[i] = 0.0f;
    }
    for (int s = 0; s < c->substeps; s++) {
        if (c->action_mode == ACTION_CTBR)
            quad_commands_ctbr(n, e->S, e->P, e->act, e->prev_act, e->C, e->U, s, c->physics_dt);
        else
            quad_commands_rpm(n, e->P, e->act, e->prev_act, e->U, s);
        quad_integrate(n, e->S, e->P, e->U, c->physics_dt, c->integrator, e->impact);
    }
    ENV_PROFILE_MARK(ENV_PHASE_PHYSICS);
    memcpy(e->prev_act, e->act, sizeof(float) * 4 * (size_t)n);
    e->step++;
    e->t += e->dt;

    for (int i = 0; i < n; i++) {
        e->agents[i].t += e->dt;
        if (e->task != TASK_RACE) env_update_target(e, i);
    }
    env_find_nearest(e, env_drones_collide(e));
    ENV_PROFILE_MARK(ENV_PHASE_NEIGHBOURS);

    /* Without auto-reset (a simulated vehicle, a scripted test) there is no horizon either. */
    int horizon_reached = c->auto_reset && e->step >= e->horizon;
    for (int i = 0; i < n; i++) {
        Agent *a = &e->agents[i];
        if (a->ended) { /* without auto-reset an ended agent stays ended */
            e->rewards[i] = 0.0f;
            e->terminals[i] = 1;
            e->truncations[i] = 0;
            continue;
        }
        float r;
        int end = env_evaluate(e, i, &r);
        a->ep_return += r;
        a->ep_len++;
        if (end == END_NONE && horizon_reached) end = END_TIMEOUT;
        e->rewards[i] = r;
        e->terminals[i] = end == END_CRASH || end == END_OUT_OF_BOUNDS;
        e->truncations[i] = end == END_TIMEOUT;
        a->end = end;
    }
    /* Respawn only after every agent was judged, so a collision counts for both drones involved. */
    int moved = 0; /* did a drone jump (respawn, new env-episode) since the neighbour search above? */
    for (int i = 0; i < n; i++) {
        Agent *a = &e->agents[i];
        if (a->ended || a->end == END_NONE) continue;
        env_log_episode(e, i, a->end);
        if (!horizon_reached) {
            if (c->auto_reset) {
                env_spawn(e, i);
                moved = 1;
            } else {
                a->ended = 1;
            }
        }
    }
    if (horizon_reached && c->auto_reset) {
        env_begin_episode(e);
        moved = 1;
    }
    ENV_PROFILE_MARK(ENV_PHASE_TASK);
    /* The neighbour lists found above still hold unless a drone was put somewhere else. */
    if (moved) env_find_nearest(e, env_drones_collide(e));
    for (int i = 0; i < n; i++) env_observe(e, i);
    ENV_PROFILE_MARK(ENV_PHASE_OBSERVE);
}

static inline void env_close(DroneEnv *e) {
    free(e->S);
    free(e->P);
    free(e->C);
    free(e->U);
    free(e->impact);
    free(e->act);
    free(e->prev_act);
    free(e->act_change);
    free(e->pos0);
    free(e->target);
    free(e->target_vel);
    free(e->slot_base);
    free(e->slot_taken);
    free(e->slot_of);
    free(e->slot_pos);
    free(e->assign_pos);
    free(e->nbr);
    free(e->obst);
    free(e->agents);
    memset(e, 0, sizeof(*e));
}

#endif
