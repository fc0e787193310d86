/* test_op_profile.c — the op-timing backend of the benchmarks (bench/op_profile.h):
 * a model built on it (dd_model_create_on) trains and infers bit-identically to one
 * on the plain cpu backend, the cpu convolutions accept its engine, and what it
 * counts is right: convolution FLOPs equal the sum over the network's shapes, every
 * op call is counted, times are non-negative and add up to no more than the step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/model.h"
#include "../bench/op_profile.h"

static void tiny_config(dd_model_config *c) {
    dd_model_config_paper(c, 32, 32);
    c->unet.base = 8, c->unet.levels = 2, c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1, c->unet.n_attn = 1, c->unet.attn[0] = 16, c->unet.heads = 2, c->unet.groups = 4;
    c->seg_width = 4;
    c->lr_unet = 1e-3f, c->lr_seg = 1e-3f;
}

/* Two training steps and one inference; the last step's loss, the weights after it
 * and the inference's map out. */
static int run(const dd_backend *be, double *loss, float **weights, size_t *nw, float *map, dd_error *err) {
    dd_model_config c;
    tiny_config(&c);
    const int B = 2, H = 32, W = 32;
    dd_model *m = NULL, *mi = NULL;
    int rc = dd_model_create_on(be, &c, B, 1, 1, &m, err);
    if (rc) return rc;
    dd_model_init_weights(m, 7);
    float img[2 * 32 * 32 * 3], mask[2 * 32 * 32];
    int labels[2] = {0, 1};
    for (int i = 0; i < B * H * W * 3; i++) img[i] = 0.5f + 0.4f * sinf(0.37f * (float)i);
    for (int i = 0; i < B * H * W; i++) mask[i] = (i >= H * W && (i % W) > 10 && (i % W) < 20) ? 1.0f : 0.0f;
    dd_rng r;
    dd_rng_seed(&r, 3);
    dd_step_stats st;
    for (int s = 0; s < 2 && !rc; s++) rc = dd_model_train_step(m, img, mask, labels, &r, &st, err);
    if (!rc) rc = dd_model_create_on(be, &c, 1, 0, 1, &mi, err);
    if (!rc) {
        memcpy(mi->params.value, m->params.value, m->params.total * sizeof(float));
        float recon[32 * 32 * 3];
        rc = dd_model_infer(mi, img, 99, map, recon, err);
    }
    if (!rc) {
        *loss = st.loss;
        *nw = m->params.total;
        *weights = malloc(*nw * sizeof(float));
        if (*weights) memcpy(*weights, m->params.value, *nw * sizeof(float));
        else rc = DD_E_NOMEM;
    }
    dd_model_free(m);
    dd_model_free(mi);
    return rc;
}

int main(void) {
    dd_error err = {0};
    double loss_plain = 0, loss_prof = 0;
    float *w_plain = NULL, *w_prof = NULL, map_plain[32 * 32], map_prof[32 * 32];
    size_t n_plain = 0, n_prof = 0;
    int rc = run(NULL, &loss_plain, &w_plain, &n_plain, map_plain, &err);
    CHECK(rc == DD_OK, "plain cpu run: %s", err.msg);
    const dd_backend *be = opprof_backend();
    CHECK(be && be->name && strstr(be->name, "op-timed"), "the wrapper names itself");
    opprof_reset();
    rc = run(be, &loss_prof, &w_prof, &n_prof, map_prof, &err);
    CHECK(rc == DD_OK, "op-timed run: %s", err.msg);
    if (w_plain && w_prof) {
        CHECK(n_plain == n_prof && !memcmp(w_plain, w_prof, n_plain * sizeof(float)),
              "weights after two steps bit-identical on the timing backend");
        CHECK(loss_plain == loss_prof, "loss %.9g vs %.9g", loss_plain, loss_prof);
        CHECK(!memcmp(map_plain, map_prof, sizeof map_plain), "inference map bit-identical");
    }
    /* what it counted: 2 training steps (forward + backward of every conv) and one inference */
    CHECK(opprof_tab[OP_CONV_FWD].calls > 0 && opprof_tab[OP_CONV_BWD].calls > 0, "convolutions counted (%ld fwd, %ld bwd)",
          opprof_tab[OP_CONV_FWD].calls, opprof_tab[OP_CONV_BWD].calls);
    CHECK(opprof_tab[OP_ADAM].calls > 0 && opprof_tab[OP_ATTN_FWD].calls > 0 && opprof_tab[OP_ATTN_BWD].calls > 0 &&
              opprof_tab[OP_GN_FWD].calls > 0 && opprof_tab[OP_BN_FWD].calls > 0,
          "adam, attention, group and batch norm counted");
    double fwd_flop = 0, bwd_flop = 0;
    long fwd_calls = 0, bwd_calls = 0;
    for (int i = 0; i < opprof_nconv; i++) {
        const opprof_conv_rec *r = &opprof_convs[i];
        int ho, wo;
        dd_conv_out_hw(&r->s, &ho, &wo);
        double f = 2.0 * r->s.n * ho * wo * (double)r->s.cout * r->s.cin * r->s.k * r->s.k;
        CHECK(fabs(r->fwd_flop - f * (double)r->fwd_calls) <= 1e-9 * r->fwd_flop + 0.5,
              "conv %dx%dx%d %d->%d: forward FLOPs = calls x shape FLOPs", r->s.n, r->s.h, r->s.w, r->s.cin, r->s.cout);
        /* backward: data and weights for every conv but the first of each network
         * (its input gradient is not needed), so between 1x and 2x the calls */
        CHECK(r->bwd_flop <= 2 * f * (double)r->bwd_calls + 0.5 && r->bwd_flop >= f * (double)r->bwd_calls - 0.5,
              "conv %dx%dx%d %d->%d: backward FLOPs within 1..2x calls x shape FLOPs", r->s.n, r->s.h, r->s.w, r->s.cin,
              r->s.cout);
        CHECK(r->fwd_s >= 0 && r->bwd_s >= 0, "conv times non-negative");
        fwd_flop += r->fwd_flop, bwd_flop += r->bwd_flop;
        fwd_calls += r->fwd_calls, bwd_calls += r->bwd_calls;
    }
    CHECK(fabs(fwd_flop - opprof_tab[OP_CONV_FWD].flop) <= 1e-9 * fwd_flop && fwd_calls == opprof_tab[OP_CONV_FWD].calls,
          "per-shape forward records add up to the op total");
    CHECK(fabs(bwd_flop - opprof_tab[OP_CONV_BWD].flop) <= 1e-9 * bwd_flop && bwd_calls == opprof_tab[OP_CONV_BWD].calls,
          "per-shape backward records add up to the op total");
    /* the attention's FLOPs: 4 N L^2 C forward for the one 16x16 attention block */
    int nfwd = (int)opprof_tab[OP_ATTN_FWD].calls;
    CHECK(nfwd > 0 && opprof_tab[OP_ATTN_FWD].flop > 0, "attention FLOPs counted");
    /* a report prints without crashing and names the step */
    FILE *f = tmpfile();
    if (f) {
        opprof_print(f, 1, 1e6, 100, 200, 0, 5);
        long len = ftell(f);
        rewind(f);
        char *buf = calloc((size_t)len + 1, 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len)
            CHECK(strstr(buf, "| **step** |") && strstr(buf, "conv forward") && strstr(buf, "Largest convolution"),
                  "report has the step row, the conv rows and the shape list");
        free(buf);
        fclose(f);
    }
    /* reset clears the counters but keeps the shapes */
    int nconv = opprof_nconv;
    opprof_reset();
    CHECK(opprof_tab[OP_CONV_FWD].calls == 0 && opprof_nconv == nconv && opprof_convs[0].fwd_calls == 0,
          "opprof_reset clears counts, keeps shapes");
    free(w_plain), free(w_prof);
    return check_summary("test_op_profile");
}
