/* live_model.h — the one recipe the tests use to make an untrained model give a non-flat
 * anomaly map: the denoiser's zero-initialised output layer gets fixed weights (else it
 * predicts no noise), and the segmentation convolutions a gain (PyTorch's default init
 * shrinks the signal ~6x in variance per conv+ReLU, which leaves the map flat; 2.5 keeps it
 * alive). Header-only, for the test programs. */
#ifndef DD_TEST_LIVE_MODEL_H
#define DD_TEST_LIVE_MODEL_H

#include <string.h>

#include "model/model.h"

static inline void live_model_weights(dd_model *m, float seg_gain) {
    int k = dd_params_find(&m->params, "unet.out.2.weight");
    if (k >= 0) {
        float *v = dd_params_value(&m->params, k);
        for (size_t i = 0; i < m->params.items[k].numel; i++) v[i] = 0.02f * (float)((int)(i * 7919 % 13) - 6);
    }
    for (int i = 0; i < m->params.count; i++) {
        const dd_param *t = &m->params.items[i];
        if (t->ndim != 4 || strncmp(t->name, "seg.", 4)) continue;
        float *v = dd_params_value(&m->params, i);
        for (size_t j = 0; j < t->numel; j++) v[j] *= seg_gain;
    }
}

#endif
