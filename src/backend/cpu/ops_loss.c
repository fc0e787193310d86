/* ops_loss.c — MSE, focal (on probabilities) and SmoothL1 losses, mean reduction.
 * Sums run in double in index order (deterministic); gradients are of scale*loss. */
#include <math.h>

#include "backend/cpu/ops.h"

double dd_mse_loss(const float *pred, const float *target, float *dpred, size_t n, float scale,
                   int acc) {
    double s = 0;
    float g = 2.0f * scale / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target[i];
        s += (double)d * d;
        if (dpred) {
            if (acc) dpred[i] += g * d;
            else dpred[i] = g * d;
        }
    }
    return s / (double)n;
}

double dd_focal_loss(const float *p, const float *y, float *dp, size_t n, float alpha,
                     float gamma, float scale, int acc) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        float lp = logf(p[i]), l1p = logf(1.0f - p[i]);
        if (lp < -100.0f) lp = -100.0f;
        if (l1p < -100.0f) l1p = -100.0f;
        float bce = -(y[i] * lp + (1.0f - y[i]) * l1p);
        float pt = expf(-bce);
        float om = 1.0f - pt;
        float w = powf(om, gamma);
        s += (double)(alpha * w * bce);
        if (dp) {
            /* dL/dbce = alpha * ((1-pt)^g + bce * g * (1-pt)^(g-1) * pt) */
            float dl_dbce = alpha * (w + bce * gamma * powf(om, gamma - 1.0f) * pt);
            float denom = p[i] * (1.0f - p[i]);
            if (denom < 1e-12f) denom = 1e-12f;
            float dbce_dp = (p[i] - y[i]) / denom;
            float v = scale / (float)n * dl_dbce * dbce_dp;
            if (acc) dp[i] += v;
            else dp[i] = v;
        }
    }
    return s / (double)n;
}

double dd_smoothl1_loss(const float *pred, const float *target, float *dpred, size_t n,
                        float beta, float scale, int acc) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target[i], ad = fabsf(d);
        float g;
        if (ad < beta) {
            s += 0.5 * (double)d * d / beta;
            g = d / beta;
        } else {
            s += ad - 0.5 * beta;
            g = d > 0 ? 1.0f : -1.0f;
        }
        if (dpred) {
            float v = scale / (float)n * g;
            if (acc) dpred[i] += v;
            else dpred[i] = v;
        }
    }
    return s / (double)n;
}
