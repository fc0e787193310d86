/* live_model.h — the one recipe the tests use to make an untrained model give a non-flat
 * anomaly map: the denoiser's zero-initialised output layer gets fixed weights (else it
 * predicts no noise), and the segmentation convolutions a gain (PyTorch's default init
 * shrinks the signal ~6x in variance per conv+ReLU, which leaves the map flat; 2.5 keeps it
 * alive); and the tiny model the API, CLI and soak tests score (live_model_save). Header-only,
 * for the test programs. */
#ifndef DD_TEST_LIVE_MODEL_H
#define DD_TEST_LIVE_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "model/modelfile.h"

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

/* The tests' tiny calibrated model (32-px-class U-Net, base 8, two levels, seg width 4) at hw x hw,
 * its weights from `seed` made live, saved to path; tweak (may be NULL) edits the config first.
 * The thresholds sit inside the sample's score range (about 0.55..0.61) so both decisions occur.
 * Returns 0, or 1 with the message on stderr. */
static inline int live_model_save(const char *path, int hw, uint64_t seed, void (*tweak)(dd_model_config *)) {
    dd_model_config c;
    dd_model_config_paper(&c, hw, hw);
    c.unet.base = 8, c.unet.levels = 2, c.unet.mult[0] = 1, c.unet.mult[1] = 2;
    c.unet.res_blocks = 1, c.unet.n_attn = 0, c.unet.heads = 1, c.unet.groups = 8;
    c.seg_width = 4;
    c.image_threshold = 0.58f, c.pixel_threshold = 0.6f, c.score_lo = 0.3f, c.score_hi = 0.58f;
    if (tweak) tweak(&c);
    dd_model *m = NULL;
    dd_error err = {0};
    if (dd_model_create(&c, 1, 0, 1, &m, &err)) {
        fprintf(stderr, "live_model_save: %s\n", err.msg);
        return 1;
    }
    dd_model_init_weights(m, seed);
    live_model_weights(m, 2.5f);
    int rc = dd_model_save(m, path, 0, NULL, 0, &err);
    if (rc) fprintf(stderr, "live_model_save: %s\n", err.msg);
    dd_model_free(m);
    return rc ? 1 : 0;
}

#endif
