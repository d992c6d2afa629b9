/* rng.h - small deterministic random number generator (xoshiro128+ seeded by splitmix64).
 *
 * Every env owns one Rng, so the same seed gives the same trajectory bit for bit and envs never
 * share hidden state. Floats only: the simulator runs in single precision.
 */
#ifndef DRONE_RNG_H
#define DRONE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint32_t s[4];
} Rng;

static inline uint64_t rng_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    uint64_t a = rng_splitmix64(&x), b = rng_splitmix64(&x);
    r->s[0] = (uint32_t)a;
    r->s[1] = (uint32_t)(a >> 32);
    r->s[2] = (uint32_t)b;
    r->s[3] = (uint32_t)(b >> 32);
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

static inline uint32_t rng_u32(Rng *r) {
    uint32_t *s = r->s;
    uint32_t result = s[0] + s[3];
    uint32_t t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >> 21);
    return result;
}

/* Uniform in [0, 1). */
static inline float rng_uniform01(Rng *r) { return (float)(rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

static inline float rng_uniform(Rng *r, float lo, float hi) { return lo + (hi - lo) * rng_uniform01(r); }

/* Log-uniform in [lo, hi] (lo, hi > 0): sizes and time constants span decades. */
static inline float rng_log_uniform(Rng *r, float lo, float hi) {
    return lo * expf(logf(hi / lo) * rng_uniform01(r));
}

static inline int rng_int(Rng *r, int n) { return (int)(rng_uniform01(r) * (float)n) % (n > 0 ? n : 1); }

/* Approximate standard normal from four uniforms (Irwin-Hall). Cheap enough for per-step sensor noise,
 * bounded tails (|x| < 3.47) which is what a sensor-noise model wants anyway. */
static inline float rng_normal_approx(Rng *r) {
    float s = rng_uniform01(r) + rng_uniform01(r) + rng_uniform01(r) + rng_uniform01(r);
    return (s - 2.0f) * 1.7320508f;
}

/* Uniform random unit vector. */
static inline void rng_unit3(Rng *r, float out[3]) {
    float z = rng_uniform(r, -1.0f, 1.0f);
    float a = rng_uniform(r, 0.0f, 6.2831853f);
    float s = sqrtf(fmaxf(0.0f, 1.0f - z * z));
    out[0] = s * cosf(a);
    out[1] = s * sinf(a);
    out[2] = z;
}

#endif
