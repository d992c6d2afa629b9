/* ocean_envs.h: the table of every ocean env, in the order drone_sim.ocean.ENVS lists them.
 *
 * To add an env: include its header here and append &<NAME>_SPEC to OCEAN_ENVS. The binding and the C test
 * harness (tests/c/test_ocean.c) find envs only through this table.
 */
#ifndef OCEAN_ENVS_H
#define OCEAN_ENVS_H

#include "ocean.h"

#include "target.h"
#include "cartpole.h"
#include "pong.h"
#include "breakout.h"
#include "snake.h"
#include "connect4.h"

static const OceanSpec *const OCEAN_ENVS[] = {
    &TARGET_SPEC,
    &CARTPOLE_SPEC,
    &PONG_SPEC,
    &BREAKOUT_SPEC,
    &SNAKE_SPEC,
    &CONNECT4_SPEC,
    &CONNECT4_HARD_SPEC,
};

#define OCEAN_NUM_ENVS ((int)(sizeof(OCEAN_ENVS) / sizeof(OCEAN_ENVS[0])))

#endif
