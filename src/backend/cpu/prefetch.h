/* prefetch.h — owns the software prefetch of the cpu backend's streaming loops (the
 * norms' per-pixel passes): while one pixel row is computed, the row a fixed distance
 * ahead is requested from memory.
 *
 * Why: a loop that does real arithmetic per value (GroupNorm with SiLU: an exp and a
 * division each) keeps too few loads in flight for the hardware prefetchers, and
 * then runs at the speed of memory latency, not of its arithmetic: on the 2-core
 * Sapphire Rapids machine of 2026-12-03 the SiLU-gradient loop over a 64 MiB tensor
 * took 1.45 ns per value without and 0.70 ns with this prefetch (the same loop in L1:
 * 0.65 ns; bench/README.md "Training step on Sapphire Rapids"). Prefetches never fault and
 * change no result. */
#ifndef DD_CPU_PREFETCH_H
#define DD_CPU_PREFETCH_H

#include <stddef.h>

/* How far ahead: 4 KiB (measured flat from 1 to 16 KiB). */
#define DD_PREFETCH_AHEAD_FLOATS 1024

/* Prefetch the n floats that start DD_PREFETCH_AHEAD_FLOATS after row, one request per
 * 64-byte line, as long as they lie before end (the end of the array: no pointer is
 * formed beyond it). write: the loop will store there. */
static inline void dd_prefetch_ahead(const float *row, const float *end, size_t n, int write) {
    if ((size_t)(end - row) <= DD_PREFETCH_AHEAD_FLOATS) return;
    const float *p = row + DD_PREFETCH_AHEAD_FLOATS;
    size_t left = (size_t)(end - p);
    if (n > left) n = left;
    for (size_t q = 0; q < n; q += 16) {
        if (write)
            __builtin_prefetch(p + q, 1);
        else
            __builtin_prefetch(p + q, 0);
    }
}

#endif
