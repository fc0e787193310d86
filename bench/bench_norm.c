/* bench_norm.c — times the GroupNorm(+SiLU) forward of the cpu backend alone, at the
 * shapes of the CPU profile's inference (batch 1, 32 groups), with float32 and with
 * bf16 output.
 *
 * usage: bench_norm [--threads T] [--reps R]
 * Prints per shape and output: the best of 5 timings of R calls (µs per call) and ns per
 * value (wall time, all threads). Used for the SiLU change of 2026-12-03 (bench/README.md
 * "GroupNorm's SiLU on AVX-512"); compare builds in one run, alternating. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/ops.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_norm [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "bench_norm: --threads and --reps must be >= 1\n");
        return 2;
    }
    omp_set_num_threads(threads);
    /* (pixels, channels): the CPU profile's levels 128, 64, 32, 16 px and its widths */
    const struct { int hw, c; } shapes[] = {{16384, 32}, {16384, 64}, {16384, 96}, {4096, 64},
                                            {4096, 128}, {1024, 64},  {1024, 128}, {256, 128}};
    size_t most = 16384 * 96;
    float *x = malloc(most * sizeof *x), *y = malloc(most * sizeof *y);
    uint16_t *y16 = malloc(most * sizeof *y16);
    float gamma[128], beta[128], mean[32], rstd[32];
    if (!x || !y || !y16) {
        fprintf(stderr, "bench_norm: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < most; i++) x[i] = (float)((i * 2654435761u) % 1000) / 250.0f - 2.0f;
    for (int k = 0; k < 128; k++) gamma[k] = 1.0f + 0.01f * k, beta[k] = 0.1f;
    printf("| pixels | C | output | SiLU | µs per call | ns per value |\n|---:|---:|---|---|---:|---:|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int hw = shapes[s].hw, c = shapes[s].c;
        for (int bf = 0; bf <= 1; bf++)
            for (int silu = 0; silu <= 1; silu++) {
                double best = 1e30;
                dd_error err = {0};
                for (int t = 0; t < 5; t++) {
                    double t0 = now();
                    for (int r = 0; r < reps; r++) {
                        int rc = bf ? dd_groupnorm_forward_bf16(x, gamma, beta, y16, mean, rstd, 1, hw, c, 32,
                                                                1e-5f, silu, &err)
                                    : dd_groupnorm_forward(x, gamma, beta, y, mean, rstd, 1, hw, c, 32, 1e-5f,
                                                           silu, &err);
                        if (rc) {
                            fprintf(stderr, "bench_norm: %s\n", err.msg);
                            return 1;
                        }
                    }
                    double dt = (now() - t0) / reps;
                    if (dt < best) best = dt;
                }
                printf("| %d | %d | %s | %s | %.1f | %.3f |\n", hw, c, bf ? "bf16" : "f32", silu ? "yes" : "no",
                       best * 1e6, best * 1e9 / ((double)hw * c));
            }
    }
    free(x), free(y), free(y16);
    return 0;
}
