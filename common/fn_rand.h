/* fn_rand.h - the project's one small seeded generator: splitmix64
 * (Steele, Lea, Flood 2014). Everything that must give the same result for
 * the same seed on every machine (fold shuffles, tree sampling, HNSW levels,
 * click simulation, damage tests) draws from it. */
#ifndef FUNNEL_FN_RAND_H
#define FUNNEL_FN_RAND_H

#include <stdint.h>

/* The next value of the sequence whose state is *s (any start value). */
static inline uint64_t fn_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
