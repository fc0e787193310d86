/* adam.c — PyTorch-equivalent Adam (see adam.h): bookkeeping and scalars here,
 * the per-element loops in the backend (sumsq, adam_update). */
#include "nn/adam.h"

#include <math.h>

void dd_adam_init(dd_adam *a, float lr) {
    for (int i = 0; i < DD_ADAM_MAX_GROUPS; i++) a->lr[i] = lr;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-8f;
    a->clip_norm = 0.0f;
    a->step = 0;
    a->eng = NULL;
}

/* Sum of squares over the trainable gradients, chained through the backend in
 * tensor order (one running double, as a single pass). */
static double grad_norm(const dd_backend *be, dd_engine *e, const dd_params *p) {
    double s = 0;
    for (int t = 0; t < p->count; t++) {
        const dd_param *q = &p->items[t];
        if (!q->trainable) continue;
        s = be->sumsq(e, p->grad + q->offset, q->numel, s);
    }
    return sqrt(s);
}

double dd_grad_norm(const dd_params *p) { return grad_norm(dd_backend_get("cpu"), NULL, p); }

int dd_adam_step(dd_adam *a, dd_params *p, double *norm_out, dd_error *err) {
    if (!p->grad || !p->adam_m || !p->adam_v)
        return dd_fail(err, DD_E_INVALID, "adam: parameters were allocated without training state");
    dd_engine *e = a->eng;
    const dd_backend *be = e ? dd_engine_backend(e) : dd_backend_get("cpu");
    double norm = (a->clip_norm > 0 || norm_out) ? grad_norm(be, e, p) : 0.0;
    if (norm_out) *norm_out = norm;
    if (!isfinite(norm) && a->clip_norm > 0)
        return dd_fail(err, DD_E_RANGE, "adam: gradient norm is not finite (%g); step skipped", norm);
    float clip = 1.0f;
    if (a->clip_norm > 0 && norm > a->clip_norm) clip = (float)(a->clip_norm / (norm + 1e-6));
    a->step++;
    /* As torch.optim.Adam (single-tensor path): scalars in double, tensors in float. */
    double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    dd_adam_coef k = {.clip = clip,
                      .b1 = a->beta1,
                      .b2 = a->beta2,
                      .omb1 = (float)(1.0 - a->beta1),
                      .omb2 = (float)(1.0 - a->beta2),
                      .eps = a->eps,
                      .bc2_sqrt = (float)sqrt(bc2)};
    for (int t = 0; t < p->count; t++) {
        const dd_param *q = &p->items[t];
        if (!q->trainable) continue;
        if (q->group < 0 || q->group >= DD_ADAM_MAX_GROUPS)
            return dd_fail(err, DD_E_INVALID, "adam: tensor '%s' has group %d", q->name, q->group);
        k.step_size = (float)(a->lr[q->group] / bc1);
        size_t o = q->offset;
        be->adam_update(e, p->value + o, p->grad + o, p->adam_m + o, p->adam_v + o, q->numel, &k);
    }
    return DD_OK;
}
