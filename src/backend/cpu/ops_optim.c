/* ops_optim.c — the optimiser's numeric loops: the squared gradient norm and the
 * Adam update (nn/adam.c keeps the bookkeeping; see ops.h). */
#include <math.h>

#include "backend/cpu/ops.h"

double dd_sumsq(const float *x, size_t n, double acc) {
    for (size_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return acc;
}

void dd_adam_update(float *w, const float *g, float *m, float *v, size_t n, const dd_adam_coef *k) {
    float clip = k->clip, b1 = k->b1, b2 = k->b2, omb1 = k->omb1, omb2 = k->omb2;
    float eps = k->eps, step_size = k->step_size, bc2_sqrt = k->bc2_sqrt;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * clip;
        m[i] = m[i] * b1 + gi * omb1;
        v[i] = v[i] * b2 + gi * gi * omb2;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] = w[i] - step_size * (m[i] / denom);
    }
}
