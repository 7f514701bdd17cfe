/* SPDX-License-Identifier: Apache-2.0 */
/* xoshiro256** seeded through splitmix64; bounded draws by multiply-and-reject. */
#include "rng.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Percentages are resolved to hundredths: one draw below 10000 decides. */
#define PERCENT_SCALE 10000u

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 spreads any seed, even 0, over a state that is never all zero in practice. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void mesh_rng_seed(struct mesh_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

/* GRND_NONBLOCK: a worker must never hang at start because the pool is not ready (very early
 * boot); it falls back to a weaker seed instead, which is fine for load balancing. */
static bool fill_from_kernel(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = getrandom(p, len, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

enum mesh_err mesh_rng_init(struct mesh_rng *rng)
{
    if (fill_from_kernel(rng->s, sizeof(rng->s))) {
        /* xoshiro's one invalid state; astronomically unlikely, but then reseed. */
        if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
            mesh_rng_seed(rng, 0);
        return MESH_OK;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    seed ^= (uint64_t)(uintptr_t)rng ^ ((uint64_t)getpid() << 32);
    mesh_rng_seed(rng, seed);
    return MESH_E_IO;
}

uint64_t mesh_rng_next(struct mesh_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Lemire's method: the high half of a 32x32 product is uniform once the few low values that
 * would bias it are rejected; the rejection branch is rarely taken. */
uint32_t mesh_rng_below(struct mesh_rng *rng, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t m = (mesh_rng_next(rng) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = -n % n;
        while (low < threshold) {
            m = (mesh_rng_next(rng) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

bool mesh_rng_percent(struct mesh_rng *rng, double pct)
{
    if (!(pct > 0.0)) /* also NaN */
        return false;
    if (pct >= 100.0)
        return true;
    uint32_t hundredths = (uint32_t)lround(pct * 100.0);
    return mesh_rng_below(rng, PERCENT_SCALE) < hundredths;
}
