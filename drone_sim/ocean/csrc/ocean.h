/* ocean.h: the contract every small regression env ("ocean" env) follows.
 *
 * An ocean env is one C header, <name>.h, with a plain struct and explicit init/bind/reset/step/close like the
 * drone sim (drone_env.h). It owns no buffers of its own in the step loop: the caller binds flat arrays
 * (observations float32 [agents][obs_size], actions int32 [agents], rewards float32, terminals/truncations
 * uint8) once, and step() reads the actions and writes everything else in place. All allocation happens in
 * init(); step() never allocates. Episodes reset themselves inside step() (the observation written is the
 * first of the next episode; reward and flags describe the transition that ended it), and reset() writes
 * a real first observation (never all zeros).
 *
 * Each header ends with an OceanSpec describing it; ocean_envs.h lists them all, and the one Cython class
 * in drone_sim/ocean/binding.pyx drives any of them through that table.
 */
#ifndef OCEAN_H
#define OCEAN_H

#include <stddef.h>
#include <stdint.h>

#include "../../csrc/rng.h"

/* Sums over finished episodes since the last read; the binding divides by n. `score` is the env's own
   measure of how well it was played (see each header), the same number the regression targets use. */
typedef struct {
    float n, episode_return, episode_length, score;
} OceanLog;

/* The caller's flat arrays (see above): an env reads its actions from them and writes everything else into them.
   Every env keeps one, set by its bind(). */
typedef struct {
    float *obs;
    int32_t *actions;
    float *rewards;
    unsigned char *terminals, *truncations;
} OceanIO;

/* No reward and no episode end for any agent: what reset() writes besides the first observation (no transition
   has happened yet), and where a multi-agent step starts before it marks the agents something happened to. */
static inline void ocean_clear_transition(OceanIO *io, int agents) {
    for (int i = 0; i < agents; i++) {
        io->rewards[i] = 0.0f;
        io->terminals[i] = 0;
        io->truncations[i] = 0;
    }
}

/* Adds one finished episode to the sums the binding reads. */
static inline void ocean_log_episode(OceanLog *log, float episode_return, float episode_length, float score) {
    log->n += 1.0f;
    log->episode_return += episode_return;
    log->episode_length += episode_length;
    log->score += score;
}

/* A display list: what render() wants drawn, in a [0,1] x [0,1] canvas (x right, y down), drawn by the
   Python raylib viewer in order. Colours are RGBA bytes. */
enum { DRAW_RECT = 0, DRAW_CIRCLE = 1, DRAW_LINE = 2 };
typedef struct {
    int kind;             /* DRAW_RECT: (x, y) top-left, (w, h) size; DRAW_CIRCLE: (x, y) centre, w radius
                             (in canvas widths); DRAW_LINE: (x, y) to (w, h) */
    float x, y, w, h;
    unsigned char r, g, b, a;
} DrawCmd;

typedef struct {
    const char *name;
    int obs_size;         /* floats per agent, each roughly within [-1, 1] */
    int num_actions;      /* one discrete action per agent: 0 .. num_actions-1 */
    int default_agents;   /* agents per env when the caller does not choose (1 for single-player games) */
    int min_agents, max_agents;
    float aspect;         /* canvas width / height for rendering */
    size_t env_size;      /* sizeof the env struct; the binding allocates num_envs of them */
    /* returns 0, or -1 when the agent count is out of range or memory ran out */
    int (*init)(void *env, int agents, uint64_t seed);
    void (*bind)(void *env, float *obs, int32_t *actions, float *rewards, unsigned char *terminals,
                 unsigned char *truncations);
    void (*reset)(void *env, uint64_t seed);
    void (*step)(void *env);
    void (*close)(void *env);
    OceanLog *(*log)(void *env);
    /* writes at most max commands, returns how many it wrote */
    int (*render)(const void *env, DrawCmd *out, int max);
} OceanSpec;

static inline DrawCmd ocean_cmd(int kind, float x, float y, float w, float h, unsigned char r, unsigned char g,
                                unsigned char b) {
    DrawCmd c = {kind, x, y, w, h, r, g, b, 255};
    return c;
}

#endif
