/* adam.c — PyTorch-equivalent Adam (see adam.h). */
#include "nn/adam.h"

#include <math.h>

void dd_adam_init(dd_adam *a, float lr) {
    for (int i = 0; i < DD_ADAM_MAX_GROUPS; i++) a->lr[i] = lr;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-8f;
    a->clip_norm = 0.0f;
    a->step = 0;
}

double dd_grad_norm(const dd_params *p) {
    double s = 0;
    for (int t = 0; t < p->count; t++) {
        const dd_param *q = &p->items[t];
        if (!q->trainable) continue;
        const float *g = p->grad + q->offset;
        for (size_t i = 0; i < q->numel; i++) s += (double)g[i] * g[i];
    }
    return sqrt(s);
}

int dd_adam_step(dd_adam *a, dd_params *p, double *norm_out, dd_error *err) {
    if (!p->grad || !p->adam_m || !p->adam_v)
        return dd_fail(err, DD_E_INVALID, "adam: parameters were allocated without training state");
    double norm = (a->clip_norm > 0 || norm_out) ? dd_grad_norm(p) : 0.0;
    if (norm_out) *norm_out = norm;
    if (!isfinite(norm) && a->clip_norm > 0)
        return dd_fail(err, DD_E_RANGE, "adam: gradient norm is not finite (%g); step skipped", norm);
    float clip = 1.0f;
    if (a->clip_norm > 0 && norm > a->clip_norm) clip = (float)(a->clip_norm / (norm + 1e-6));
    a->step++;
    /* As torch.optim.Adam (single-tensor path): scalars in double, tensors in float. */
    double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = a->beta1, b2 = a->beta2, omb1 = (float)(1.0 - a->beta1), omb2 = (float)(1.0 - a->beta2);
    for (int t = 0; t < p->count; t++) {
        const dd_param *q = &p->items[t];
        if (!q->trainable) continue;
        if (q->group < 0 || q->group >= DD_ADAM_MAX_GROUPS)
            return dd_fail(err, DD_E_INVALID, "adam: tensor '%s' has group %d", q->name, q->group);
        float step_size = (float)(a->lr[q->group] / bc1);
        float *w = p->value + q->offset, *g = p->grad + q->offset;
        float *m = p->adam_m + q->offset, *v = p->adam_v + q->offset;
        size_t n = q->numel;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * clip;
            m[i] = m[i] * b1 + gi * omb1;
            v[i] = v[i] * b2 + gi * gi * omb2;
            float denom = sqrtf(v[i]) / bc2_sqrt + a->eps;
            w[i] = w[i] - step_size * (m[i] / denom);
        }
    }
    return DD_OK;
}
