/* connect4.h: Connect Four (7 columns x 6 rows) against a scripted opponent.
 *
 * Who moves first is drawn at random each game; when the opponent starts, its first move is already on the
 * board in the first observation. Two opponents, one struct field (`opponent`) apart, each its own spec:
 *   "connect4"       C4_OPP_RANDOM:  a uniformly random legal column (the regression target: beat it nearly
 *                                    always)
 *   "connect4_hard"  C4_OPP_ONE_PLY: wins at once when it can, else blocks the agent's immediate win, else
 *                                    random
 * Observation (43 floats): 0..41 cell (row r from the bottom, column c) at index r * 7 + c, +1 the agent's
 *   piece, -1 the opponent's, 0 empty; 42: +1 when the agent moved first in this game, else -1 (who starts
 *   decides who may claim which threats, and it keeps the first observation of an empty board non-zero).
 * Actions: 0..6, the column to drop a piece in (out-of-range values are clamped to 0..6). Dropping into a
 *   full column loses the game at once, so the policy learns legality from the reward.
 * Reward: +1 win, -1 loss (illegal move included), 0 draw and 0 while the game goes on.
 * Episode end: always terminal (win, loss, full board); games last at most 21 agent moves, so no step cap.
 * score: win 1, draw 0.5, loss 0 (the average is a win rate with draws as half).
 * Render: at most C4_MAX_DRAW commands (board, 42 holes or pieces, the agent's colour, the last move).
 *
 * Board as two bitboards, bit c * 7 + r per cell, a 7th always-empty row above each column: a line walked
 * off the top of a column, or diagonally into the next one, meets that empty row and stops, so the
 * four-in-a-row check from the last move needs no bounds test other than the 0..48 bit range.
 */
#ifndef OCEAN_CONNECT4_H
#define OCEAN_CONNECT4_H

#include "ocean.h"

#define C4_COLS 7
#define C4_ROWS 6
#define C4_CELLS (C4_COLS * C4_ROWS)
#define C4_OBS (C4_CELLS + 1)
#define C4_MAX_DRAW (1 + C4_CELLS + 2)
#define C4_ASPECT (7.0f / 6.5f)

enum { C4_OPP_RANDOM = 0, C4_OPP_ONE_PLY = 1 };

typedef struct {
    OceanIO io; /* the caller's arrays, set by bind() (ocean.h) */
    Rng rng;
    OceanLog log;
    uint64_t board[2];          /* [0] the agent's pieces, [1] the opponent's */
    int height[C4_COLS];
    int moves;                  /* pieces on the board */
    int agent_moves;
    int agent_first;
    int last_bit;               /* bit of the last piece dropped (render), -1 none */
    int opponent;               /* C4_OPP_* */
    /* Test hook (connect4_debug_script): the opponent plays these columns in order, then falls back to its
       normal play; force_first >= 0 fixes who starts (1: the agent). Kept across games until cleared. */
    int script[C4_CELLS];
    int script_len, script_pos, force_first;
} Connect4;

static inline int c4_four_from(uint64_t b, int bit) {
    static const int dirs[4] = {1, 7, 6, 8}; /* vertical, horizontal, the two diagonals */
    for (int d = 0; d < 4; d++) {
        int count = 1;
        for (int p = bit + dirs[d]; p < 49 && (b >> p & 1u); p += dirs[d]) count++;
        for (int p = bit - dirs[d]; p >= 0 && (b >> p & 1u); p -= dirs[d]) count++;
        if (count >= 4) return 1;
    }
    return 0;
}

/* Drops a piece of player 0 (agent) or 1 into column c (not full); returns its bit. */
static inline int c4_drop(Connect4 *e, int player, int c) {
    int bit = c * 7 + e->height[c];
    e->board[player] |= (uint64_t)1 << bit;
    e->height[c]++;
    e->moves++;
    e->last_bit = bit;
    return bit;
}

static inline int c4_wins_at(const Connect4 *e, int player, int c) {
    int bit = c * 7 + e->height[c];
    return c4_four_from(e->board[player] | (uint64_t)1 << bit, bit);
}

static inline int c4_random_legal(Connect4 *e) {
    int legal[C4_COLS], n = 0;
    for (int c = 0; c < C4_COLS; c++)
        if (e->height[c] < C4_ROWS) legal[n++] = c;
    return legal[rng_int(&e->rng, n)];
}

static inline int c4_opponent_move(Connect4 *e) {
    if (e->script_pos < e->script_len) {
        int c = e->script[e->script_pos++];
        if (c >= 0 && c < C4_COLS && e->height[c] < C4_ROWS) return c;
    }
    if (e->opponent == C4_OPP_ONE_PLY) {
        for (int c = 0; c < C4_COLS; c++)
            if (e->height[c] < C4_ROWS && c4_wins_at(e, 1, c)) return c;
        for (int c = 0; c < C4_COLS; c++)
            if (e->height[c] < C4_ROWS && c4_wins_at(e, 0, c)) return c;
    }
    return c4_random_legal(e);
}

static inline void c4_observe(Connect4 *e) {
    float *o = e->io.obs;
    for (int c = 0; c < C4_COLS; c++) {
        uint64_t mine = e->board[0] >> (c * 7), theirs = e->board[1] >> (c * 7);
        for (int r = 0; r < C4_ROWS; r++)
            o[r * C4_COLS + c] = (float)((int)(mine >> r & 1u) - (int)(theirs >> r & 1u));
    }
    o[C4_CELLS] = e->agent_first ? 1.0f : -1.0f;
}

static inline void c4_new_game(Connect4 *e) {
    e->board[0] = e->board[1] = 0;
    for (int c = 0; c < C4_COLS; c++) e->height[c] = 0;
    e->moves = 0;
    e->agent_moves = 0;
    e->last_bit = -1;
    e->script_pos = 0;
    e->agent_first = e->force_first >= 0 ? e->force_first : (int)(rng_u32(&e->rng) & 1u);
    if (!e->agent_first) c4_drop(e, 1, c4_opponent_move(e));
}

static inline int c4_init(Connect4 *e, int agents, uint64_t seed, int opponent) {
    if (agents != 1) return -1;
    rng_seed(&e->rng, seed);
    e->log = (OceanLog){0, 0, 0, 0};
    e->opponent = opponent;
    e->script_len = 0;
    e->force_first = -1;
    c4_new_game(e);
    return 0;
}

static inline int connect4_init(Connect4 *e, int agents, uint64_t seed) {
    return c4_init(e, agents, seed, C4_OPP_RANDOM);
}

static inline int connect4_hard_init(Connect4 *e, int agents, uint64_t seed) {
    return c4_init(e, agents, seed, C4_OPP_ONE_PLY);
}

static inline void connect4_bind(Connect4 *e, float *obs, int32_t *actions, float *rewards,
                                 unsigned char *terminals, unsigned char *truncations) {
    e->io = (OceanIO){obs, actions, rewards, terminals, truncations};
}

static inline void connect4_reset(Connect4 *e, uint64_t seed) {
    rng_seed(&e->rng, seed);
    c4_new_game(e);
    ocean_clear_transition(&e->io, 1);
    c4_observe(e);
}

static inline void connect4_step(Connect4 *e) {
    int c = e->io.actions[0];
    c = c < 0 ? 0 : (c >= C4_COLS ? C4_COLS - 1 : c);
    float r = 0.0f, score = 0.0f;
    int done = 1;
    e->agent_moves++;
    if (e->height[c] >= C4_ROWS) {
        r = -1.0f; /* illegal move: lost */
    } else if (c4_four_from(e->board[0], c4_drop(e, 0, c))) {
        r = 1.0f;
        score = 1.0f;
    } else if (e->moves == C4_CELLS) {
        score = 0.5f;
    } else if (c4_four_from(e->board[1], c4_drop(e, 1, c4_opponent_move(e)))) {
        r = -1.0f;
    } else if (e->moves == C4_CELLS) {
        score = 0.5f;
    } else {
        done = 0;
    }
    e->io.rewards[0] = r;
    e->io.terminals[0] = (unsigned char)done;
    e->io.truncations[0] = 0;
    if (done) {
        ocean_log_episode(&e->log, r, (float)e->agent_moves, score);
        c4_new_game(e);
    }
    c4_observe(e);
}

static inline void connect4_close(Connect4 *e) { (void)e; }

static inline OceanLog *connect4_log(Connect4 *e) { return &e->log; }

/* Test hook: the opponent plays `moves` (columns) in order at the start of every game, and agent_first
   (1 agent, 0 opponent, -1 random) fixes who starts. A fresh game begins at once and its first observation
   is written. n = 0 and agent_first = -1 restore normal play. */
static inline void connect4_debug_script(Connect4 *e, const int *moves, int n, int agent_first) {
    n = n < 0 ? 0 : (n > C4_CELLS ? C4_CELLS : n);
    for (int k = 0; k < n; k++) e->script[k] = moves[k];
    e->script_len = n;
    e->force_first = agent_first < 0 ? -1 : (agent_first ? 1 : 0);
    c4_new_game(e);
    if (e->io.obs) c4_observe(e);
}

static inline int connect4_render(const Connect4 *e, DrawCmd *out, int max) {
    /* Canvas aspect 7 / 6.5: a 7 x 6 board of unit cells under a half-cell strip for the status marks. */
    const float cw = 1.0f / 7.0f, ch = 1.0f / 6.5f, top = 0.5f * ch;
    int agent_red = e->agent_first; /* the first player is red */
    int n = 0;
    if (n < max) out[n++] = ocean_cmd(DRAW_RECT, 0.0f, top, 1.0f, 1.0f - top, 30, 60, 170);
    for (int r = 0; r < C4_ROWS; r++)
        for (int c = 0; c < C4_COLS; c++) {
            int bit = c * 7 + r;
            int mine = (int)(e->board[0] >> bit & 1u), theirs = (int)(e->board[1] >> bit & 1u);
            unsigned char cr = 16, cg = 20, cb = 40;
            if (mine || theirs) {
                int red = mine ? agent_red : !agent_red;
                cr = red ? 220 : 235;
                cg = red ? 50 : 200;
                cb = red ? 50 : 40;
            }
            if (n < max)
                out[n++] = ocean_cmd(DRAW_CIRCLE, ((float)c + 0.5f) * cw, top + ((float)(C4_ROWS - 1 - r) + 0.5f) * ch,
                                     0.4f * cw, 0.0f, cr, cg, cb);
        }
    /* The agent's colour, top left. */
    if (n < max)
        out[n++] = ocean_cmd(DRAW_CIRCLE, 0.5f * cw, 0.5f * top, 0.2f * cw, 0.0f, agent_red ? 220 : 235,
                             agent_red ? 50 : 200, agent_red ? 50 : 40);
    if (e->last_bit >= 0 && n < max) {
        int c = e->last_bit / 7, r = e->last_bit % 7;
        out[n++] = ocean_cmd(DRAW_CIRCLE, ((float)c + 0.5f) * cw, top + ((float)(C4_ROWS - 1 - r) + 0.5f) * ch,
                             0.1f * cw, 0.0f, 255, 255, 255);
    }
    return n;
}

static inline int connect4_init_v(void *e, int agents, uint64_t seed) {
    return connect4_init((Connect4 *)e, agents, seed);
}
static inline int connect4_hard_init_v(void *e, int agents, uint64_t seed) {
    return connect4_hard_init((Connect4 *)e, agents, seed);
}
static inline void connect4_bind_v(void *e, float *o, int32_t *a, float *r, unsigned char *te, unsigned char *tr) {
    connect4_bind((Connect4 *)e, o, a, r, te, tr);
}
static inline void connect4_reset_v(void *e, uint64_t seed) { connect4_reset((Connect4 *)e, seed); }
static inline void connect4_step_v(void *e) { connect4_step((Connect4 *)e); }
static inline void connect4_close_v(void *e) { connect4_close((Connect4 *)e); }
static inline OceanLog *connect4_log_v(void *e) { return connect4_log((Connect4 *)e); }
static inline int connect4_render_v(const void *e, DrawCmd *out, int max) {
    return connect4_render((const Connect4 *)e, out, max);
}

static const OceanSpec CONNECT4_SPEC = {
    "connect4", C4_OBS, C4_COLS, 1, 1, 1, C4_ASPECT, sizeof(Connect4),
    connect4_init_v, connect4_bind_v, connect4_reset_v, connect4_step_v, connect4_close_v, connect4_log_v,
    connect4_render_v,
};

static const OceanSpec CONNECT4_HARD_SPEC = {
    "connect4_hard", C4_OBS, C4_COLS, 1, 1, 1, C4_ASPECT, sizeof(Connect4),
    connect4_hard_init_v, connect4_bind_v, connect4_reset_v, connect4_step_v, connect4_close_v, connect4_log_v,
    connect4_render_v,
};

#endif
