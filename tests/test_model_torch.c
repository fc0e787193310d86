/* test_model_torch.c — the two networks and the joint training step against the
 * PyTorch reference written from docs/method.md (tests/py/ref_model.py):
 *  - small config (32x64, base 16, attention, batch 3 with normal and anomalous
 *    samples): denoiser outputs at both scales, guided reconstruction, mask, every
 *    loss term, every gradient, and parameters + BatchNorm buffers after two Adam
 *    steps; again with the noise loss weighted by Min-SNR-gamma (gamma 5);
 *  - paper config (256 px, base 128, 1,1,2,2,4,4, attention 32/16/8, 4 heads; seg
 *    width 64): parameter counts and the inference forward pass;
 *  - inference in passes (no PyTorch needed): the denoiser of an inference model runs
 *    the t_s and t_b samples as two passes; its outputs must equal a one-pass denoiser's
 *    bit for bit, in float32 and bf16, and survive the seg net that reuses its memory
 *    (a Winograd model keeps one pass);
 *    a model whose activations were freed refuses to run.
 * Weights on both sides come from the same counter-based hash (tests/hashfill.h), so no
 * weight file is exchanged. A perturbed weight must make the comparison fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hashfill.h"
#include "model/model.h"
#include "tensorfile.h"


static tf_file F;
static tf_tensor *get(const char *name) {
    tf_tensor *t = tf_get(&F, name);
    if (!t) {
        fprintf(stderr, "reference dump lacks %s\n", name);
        exit(2);
    }
    return t;
}

static int run_ref(const char *which, char *path) {
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    char args[64];
    snprintf(args, sizeof args, "%s", which);
    int rc = tf_run_python("tests/py/ref_model.py", path, args);
    if (rc == 1) {
        remove(path);
        return 1;
    }
    if (rc != 0 || tf_read(path, &F)) {
        remove(path);
        return -1;
    }
    remove(path);
    return 0;
}

static void small_config(dd_model_config *c) {
    dd_model_config_paper(c, 64, 128);
    c->unet.base = 16;
    c->unet.levels = 2;
    c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1;
    c->unet.n_attn = 1;
    c->unet.attn[0] = 32;
    c->unet.heads = 2;
    c->seg_width = 4;
    c->precision = DD_PREC_F32; /* the reference comparison is float32 (bf16: test_ops, test_trainer) */
    c->unet.groups = 8;
}

static int counts_match(dd_model *m) {
    tf_tensor *raw = get("cfg.counts");
    struct { double data[4]; } c4, *cnt = &c4;
    for (int i = 0; i < 4; i++) c4.data[i] = raw->data[2 * i] * 65536.0 + raw->data[2 * i + 1];
    int nt[2] = {0, 0};
    for (int i = 0; i < m->params.count; i++) nt[m->params.items[i].group]++;
    int ok = 1;
    CHECK((double)dd_model_param_count(m, 0) == cnt->data[0], "denoiser parameters %zu vs PyTorch %.0f",
          dd_model_param_count(m, 0), cnt->data[0]);
    CHECK((double)dd_model_param_count(m, 1) == cnt->data[1], "segmentation parameters %zu vs PyTorch %.0f",
          dd_model_param_count(m, 1), cnt->data[1]);
    CHECK(nt[0] == (int)cnt->data[2] && nt[1] == (int)cnt->data[3], "tensor counts %d/%d vs PyTorch %.0f/%.0f",
          nt[0], nt[1], cnt->data[2], cnt->data[3]);
    ok = (double)dd_model_param_count(m, 0) == cnt->data[0] && (double)dd_model_param_count(m, 1) == cnt->data[1];
    return ok;
}

static void cmp(const char *what, const float *got, tf_tensor *ref, double tol) {
    double e = check_max_err(got, ref->data, (long)ref->numel);
    CHECK(e < tol, "%s: max rel err %.3g (tol %.1g)", what, e, tol);
}

/* The reference's `pfx`.name tensor for a trainable parameter (NULL otherwise or absent). */
static tf_tensor *ref_of(const dd_param *t, const char *pfx) {
    char nm[160];
    if (!t->trainable) return NULL;
    snprintf(nm, sizeof nm, "%s.%s", pfx, t->name);
    return tf_get(&F, nm);
}

/* Every trainable gradient against the reference's (`pfx`.name). Errors are relative
 * to max(|reference|, 1e-3 * gmax): a conv bias right before a BatchNorm has a true
 * gradient of zero (the batch mean removes it), and both sides then hold rounding noise. */
static void compare_grads(dd_model *m, const char *pfx, const char *what, double gmax, double tol) {
    int bad = 0, n = 0;
    double worst = 0;
    char worst_name[128] = "";
    for (int i = 0; i < m->params.count; i++) {
        dd_param *t = &m->params.items[i];
        tf_tensor *r = ref_of(t, pfx);
        if (!r) continue;
        double e = 0, s = 1e-3 * gmax;
        for (size_t k = 0; k < r->numel; k++) s = fmax(s, fabs(r->data[k]));
        for (size_t k = 0; k < r->numel; k++) e = fmax(e, fabs(m->params.grad[t->offset + k] - r->data[k]) / s);
        n++;
        if (e > worst) worst = e, snprintf(worst_name, sizeof worst_name, "%s", t->name);
        if (e > tol) bad++, fprintf(stderr, "  %s %s: %.3g\n", pfx, t->name, e);
    }
    CHECK(bad == 0 && n > 0, "%s: %d of %d gradients (%s) differ from PyTorch by more than %.0g (worst %s: %.3g)", what, bad, n,
          pfx, tol, worst_name, worst);
    printf("%s: %d gradients (%s), worst relative error %.3g (%s)\n", what, n, pfx, worst, worst_name);
}

/* Parameters after `steps` Adam updates against the dump. The updates are ~lr in
 * size, so trainable tensors are compared relative to lr; buffers (BatchNorm running
 * statistics) relative to their values. Adam's first steps are ~lr * sign(g), so an
 * element whose true gradient is zero (a conv bias before BatchNorm, the key bias of
 * attention: both cancel exactly) moves by the sign of rounding noise on either side;
 * elements whose reference gradient is below 1e-5 of the largest are not compared. */
static void compare_params(dd_model *m, const dd_model_config *cfg, const char *pfx, const char *buf_pfx, int steps,
                           double gmax) {
    size_t off_elems = 0, far_elems = 0, total = 0;
    for (int i = 0; i < m->params.count; i++) {
        dd_param *t = &m->params.items[i];
        char nm[160];
        if (t->trainable) snprintf(nm, sizeof nm, "%s.%s", pfx, t->name);
        else if (buf_pfx && t->kind != DD_PK_COUNTER) snprintf(nm, sizeof nm, "%s.%s", buf_pfx, t->name);
        else continue;
        tf_tensor *r = tf_get(&F, nm);
        if (!r) continue;
        float lr = t->group == 0 ? cfg->lr_unet : cfg->lr_seg;
        const float *v = m->params.value + t->offset;
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        tf_tensor *g = t->trainable ? tf_get(&F, nm) : NULL;
        size_t off_here = 0;
        for (size_t k = 0; k < t->numel; k++) {
            if (g && fabs(g->data[k]) < 1e-5 * gmax) continue;
            double d = fabs(v[k] - r->data[k]);
            double tolk = t->trainable ? 0.02 * lr + 1e-6 * fabs(r->data[k]) : 1e-4 * (fabs(r->data[k]) + 1);
            total++;
            if (d > tolk) off_elems++, off_here++;
            if (t->trainable && d > 0.5 * lr) far_elems++;
        }
        if (steps == 1 && off_here) fprintf(stderr, "  after %d steps %s: %zu of %zu off\n", steps, t->name, off_here, t->numel);
    }
    /* Step 2's gradients are ill-conditioned at the rounding level (see test_small), and
     * Adam's ratio m / sqrt(v) mixes two of them where both may be small, so against the
     * reference only half a step is asked there (a wrong gradient or update moves many
     * elements by whole steps); the update itself is checked exactly by check_adam_step2.
     * Measured after 2 steps, outside 2 % of lr: 0 on Intel AVX-512 kernels, 9,463 of
     * 302,498 (3 %) on AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2, and CI's AMD EPYC). */
    if (steps == 1)
        CHECK(off_elems == 0, "parameters after 1 Adam step: %zu of %zu elements off", off_elems, total);
    CHECK(far_elems <= (steps == 1 ? 0 : total / 10000), "parameters after %d Adam steps: %zu of %zu elements off by more than lr/2", steps, far_elems, total);
    printf("small config: after %d steps %zu of %zu parameter elements outside 2%% of lr, %zu beyond lr/2\n", steps, off_elems,
           total, far_elems);
}

/* The second Adam update recomputed in double, as torch.optim.Adam defines it (betas
 * 0.9 / 0.999, eps 1e-8, bias corrections, no clipping: the reference's settings), from
 * the gradients this model computed (g1 saved after step 1, g2 now in params.grad) and
 * the weights step 2 started from (the reference's step-1 weights). Independent of how
 * well the gradients match PyTorch, this pins the Adam state: both moments, the step
 * count and the bias corrections. */
static void check_adam_step2(dd_model *m, const dd_model_config *cfg, const float *g1, const float *g2) {
    CHECK(cfg->clip_norm <= 0, "the reference does not clip gradients; the small config must not either");
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, bc1 = 1 - b1 * b1, bc2 = 1 - b2 * b2;
    size_t off = 0, total = 0;
    double worst = 0;
    for (int i = 0; i < m->params.count; i++) {
        dd_param *t = &m->params.items[i];
        tf_tensor *p1 = ref_of(t, "param1");
        if (!p1) continue;
        double lr = t->group == 0 ? cfg->lr_unet : cfg->lr_seg;
        for (size_t k = 0; k < t->numel; k++) {
            double a = g1[t->offset + k], b = g2[t->offset + k];
            double m2 = b1 * (1 - b1) * a + (1 - b1) * b, v2 = b2 * (1 - b2) * a * a + (1 - b2) * b * b;
            double want = p1->data[k] - lr / bc1 * m2 / (sqrt(v2) / sqrt(bc2) + eps);
            double d = fabs(m->params.value[t->offset + k] - want);
            worst = fmax(worst, d / lr);
            off += d > 1e-3 * lr + 1e-6 * fabs(want);
            total++;
        }
    }
    CHECK(total > 0 && off == 0, "Adam step 2: %zu of %zu elements differ from the update recomputed in double (worst %.3g lr)", off,
          total, worst);
    printf("small config: Adam step 2 against double precision: worst %.3g lr over %zu elements\n", worst, total);
}

/* Train-step reference at the small config; snr_gamma > 0 weights the noise loss by
 * Min-SNR-gamma on both sides (the reference's "small_snr" variant uses gamma 5). */
static void test_small(int perturb, float snr_gamma) {
    char path[] = "/tmp/diffad_model_XXXXXX";
    int rc = run_ref(snr_gamma > 0 ? "small_snr" : "small", path);
    if (rc == 1) {
        SKIP("PyTorch (Debian python3-torch) not available: network reference test skipped");
        return;
    }
    CHECK(rc == 0, "tests/py/ref_model.py small failed");
    if (rc) return;
    dd_model_config cfg;
    small_config(&cfg);
    cfg.snr_gamma = snr_gamma;
    dd_model *m;
    dd_error err = {0};
    rc = dd_model_create(&cfg, 3, 1, 2, &m, &err);
    CHECK(rc == 0, "model create: %s", err.msg);
    if (rc) return;
    counts_match(m);
    /* Every tensor of ours exists in the reference with the same shape, and back. */
    int missing = 0;
    for (int i = 0; i < m->params.count; i++) {
        dd_param *t = &m->params.items[i];
        if (!t->trainable) continue;
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        tf_tensor *r = tf_get(&F, nm);
        if (!r || r->numel != t->numel) missing++;
    }
    CHECK(missing == 0, "%d parameter names or shapes differ from the PyTorch state_dict", missing);
    hashfill_params(&m->params);
    if (perturb) dd_params_value(&m->params, dd_params_find(&m->params, "unet.down.1.0.in_layers.2.weight"))[7] += 0.05f;
    int ts[3], tb[3], labels[3];
    for (int b = 0; b < 3; b++) ts[b] = (int)get("in.ts")->data[b], tb[b] = (int)get("in.tb")->data[b], labels[b] = (int)get("in.labels")->data[b];
    dd_step_stats st;
    rc = dd_model_train_step_with(m, get("in.x0")->data, get("in.mask")->data, labels, ts, tb, get("in.eps")->data, &st, &err);
    CHECK(rc == 0, "train step: %s", err.msg);
    if (perturb) {
        /* One changed weight must show in the outputs. */
        double e = check_max_err(m->unet.eps, get("out.e")->data, (long)get("out.e")->numel);
        CHECK(e > 1e-3, "a perturbed weight went unnoticed (denoiser output error %.3g)", e);
        dd_model_free(m);
        tf_free(&F);
        return;
    }
    double tol = 1e-4;
    cmp("denoiser outputs e_s|e_b", m->unet.eps, get("out.e"), tol);
    cmp("guided reconstruction x0_hat", m->x0_hat, get("out.x0_hat"), tol);
    cmp("anomaly mask", m->seg.mask, get("out.mask"), tol);
    float *lref = get("out.losses")->data;
    CHECK(check_rel(st.loss, lref[0], 1e-12) < tol, "loss %.8g vs %.8g", st.loss, lref[0]);
    CHECK(check_rel(st.noise, lref[1], 1e-12) < tol, "noise loss %.8g vs %.8g", st.noise, lref[1]);
    CHECK(check_rel(st.focal, lref[2], 1e-12) < tol, "focal loss %.8g vs %.8g", st.focal, lref[2]);
    CHECK(check_rel(st.smoothl1, lref[3], 1e-12) < tol, "smoothl1 loss %.8g vs %.8g", st.smoothl1, lref[3]);
    /* the largest reference gradient of the network (compare_grads' floor) */
    double gmax = 0;
    for (int i = 0; i < m->params.count; i++) {
        tf_tensor *r = ref_of(&m->params.items[i], "grad");
        for (size_t k = 0; r && k < r->numel; k++) gmax = fmax(gmax, fabs(r->data[k]));
    }
    compare_grads(m, "grad", "small config", gmax, 1e-3);
    compare_params(m, &cfg, "param1", NULL, 1, gmax);
    float *g1 = malloc(m->params.total * sizeof(float)); /* for check_adam_step2 */
    CHECK(g1 != NULL, "out of memory");
    if (g1) memcpy(g1, m->params.grad, m->params.total * sizeof(float));
    /* Min-SNR-gamma changes the loss and its gradient, checked above; the Adam state it
     * feeds is the plain variant's and is checked there. Its second step is not compared:
     * measured, the step-2 denoiser gradients then differ from the reference by 1-4 %
     * (plain: 0.1-0.3 %), as the 500x smaller weight of the t_s = 5 noise term leaves
     * the gradient through the reconstruction's clamps, where rounding picks the side of
     * a kink, a larger share. */
    if (snr_gamma > 0 || !g1) {
        free(g1);
        dd_model_free(m);
        tf_free(&F);
        return;
    }
    /* Step 2 starts from the reference's step-1 weights: the loss surface is not
     * smooth (ReLU, max-pool, the clamps), so rounding-level differences after one
     * step would otherwise change which side of a kink an element falls; what step 2
     * tests is the Adam state (moments, step count, bias corrections) and the
     * gradient at the new weights. */
    for (int i = 0; i < m->params.count; i++) {
        dd_param *t = &m->params.items[i];
        tf_tensor *r = ref_of(t, "param1");
        if (r) memcpy(m->params.value + t->offset, r->data, r->numel * 4);
    }
    /* Second step, then parameters and BatchNorm buffers after two Adam updates. */
    rc = dd_model_forward_backward_with(m, get("in.x0")->data, get("in.mask")->data, labels, ts, tb, get("in.eps")->data, &st, &err);
    CHECK(rc == 0, "train step 2: %s", err.msg);
    float *g2 = rc ? NULL : malloc(m->params.total * sizeof(float));
    if (g2) {
        /* The step-2 gradients are ill-conditioned: the weights after one step put many
         * activations next to a kink (ReLU, max-pool, the reconstruction's clamps), and
         * rounding picks the side. Measured (worst error per tensor, relative to its
         * largest reference value): 5e-4 on Intel AVX-512 kernels; 6e-3 there after
         * changing every weight by one ulp; 2.5e-2 on AVX2 kernels. Step 1's 1e-3 is the
         * precise gradient check; here 5e-2 still catches a wrong term (errors of order 1). */
        compare_grads(m, "grad2", "small config, step 2", gmax, 5e-2);
        memcpy(g2, m->params.grad, m->params.total * sizeof(float));
        rc = dd_model_update(m, cfg.lr_unet, cfg.lr_seg, &st.grad_norm, &err);
        CHECK(rc == 0, "update 2: %s", err.msg);
        check_adam_step2(m, &cfg, g1, g2);
        compare_params(m, &cfg, "param2", "buf2", 2, gmax);
    }
    free(g1), free(g2);
    dd_model_free(m);
    tf_free(&F);
}

static void test_paper(void) {
    char path[] = "/tmp/diffad_paper_XXXXXX";
    int rc = run_ref("paper", path);
    if (rc == 1) {
        SKIP("PyTorch not available: paper-config forward check skipped");
        return;
    }
    CHECK(rc == 0, "tests/py/ref_model.py paper failed");
    if (rc) return;
    dd_model_config cfg;
    dd_model_config_paper(&cfg, 256, 256);
    cfg.precision = DD_PREC_F32;
    dd_model *m;
    dd_error err = {0};
    rc = dd_model_create(&cfg, 1, 0, 2, &m, &err);
    CHECK(rc == 0, "paper model create: %s", err.msg);
    if (rc) return;
    counts_match(m);
    CHECK(dd_model_param_count(m, 0) == 131654403, "paper denoiser has %zu parameters, docs/method.md says 131,654,403", dd_model_param_count(m, 0));
    CHECK(dd_model_param_count(m, 1) == 28373569, "paper segmentation net has %zu parameters, docs/method.md says 28,373,569", dd_model_param_count(m, 1));
    int nt0 = 0;
    for (int i = 0; i < m->params.count; i++) nt0 += m->params.items[i].group == 0;
    CHECK(nt0 == 566, "paper denoiser has %d tensors, docs/method.md says 566", nt0);
    hashfill_params(&m->params);
    rc = dd_model_infer_with(m, get("in.x0")->data, get("in.eps")->data, NULL, NULL, &err);
    CHECK(rc == 0, "paper forward: %s", err.msg);
    cmp("paper config: denoiser outputs", m->unet.eps, get("out.e"), 1e-4);
    cmp("paper config: reconstruction", m->x0_hat, get("out.x0_hat"), 1e-4);
    cmp("paper config: anomaly mask", m->seg.mask, get("out.mask"), 1e-4);
    printf("paper config: memory %.1f MiB (parameters %.1f MiB)\n", dd_model_memory(m) / 1048576.0,
           m->params.total * 4 / 1048576.0);
    dd_model_free(m);
    tf_free(&F);
}


/* The inference model's denoiser runs its 2B samples as two passes of B (half the
 * activation memory, nn/unet.h "Passes"). Against a denoiser over the same parameters
 * that runs all 2B samples in one pass: the outputs must be the same bits (the passes
 * keep every matrix product's row count), and they must still be there after
 * dd_model_infer_with, whose seg net is planned into the denoiser's working memory. */
static void test_passes(int batch, dd_precision prec) {
    dd_model_config cfg;
    small_config(&cfg);
    cfg.precision = prec;
    const char *pn = prec == DD_PREC_BF16 ? "bf16" : "f32";
    dd_model *m = NULL;
    dd_error err = {0};
    if (dd_model_create(&cfg, batch, 0, 2, &m, &err)) {
        if (prec == DD_PREC_BF16) SKIP("passes, bf16: %s", err.msg);
        else CHECK(0, "passes: model create: %s", err.msg);
        return;
    }
    hashfill_params(&m->params);
    CHECK(m->unet.n == 2 * batch && m->unet.chunk == batch, "passes: inference denoiser of %d samples runs passes of %d (batch %d)",
          m->unet.n, m->unet.chunk, batch);
    /* one pass of 2B over the model's parameters (declared in the same order: same tensors) */
    dd_params tmp;
    dd_params_init(&tmp);
    dd_unet one;
    dd_arena meas, a1;
    memset(&a1, 0, sizeof a1);
    int rc = dd_unet_declare(&one, &cfg.unet, &tmp, "unet", 0, &err);
    dd_params_free(&tmp);
    if (!rc) rc = dd_unet_build(&one, m->eng, 2 * batch, 2 * batch, 0, cfg.conv_algo, &err);
    dd_arena_init_measure(&meas);
    if (!rc) rc = dd_unet_plan(&one, &meas, &err);
    if (!rc) rc = dd_arena_create(&a1, meas.peak, &err);
    if (!rc) rc = dd_unet_plan(&one, &a1, &err);
    CHECK(rc == 0, "passes: one-pass denoiser: %s", err.msg);
    size_t HW = (size_t)cfg.unet.h * cfg.unet.w, n3 = 2 * (size_t)batch * HW * 3;
    float *img = malloc((size_t)batch * HW * 3 * sizeof(float)), *eps = malloc(n3 * sizeof(float));
    float *ref = malloc(n3 * sizeof(float));
    hashfill_uniform("passes.image", img, (size_t)batch * HW * 3);
    for (size_t i = 0; i < (size_t)batch * HW * 3; i++) img[i] = 0.5f + 0.5f * img[i];
    hashfill_uniform("passes.eps", eps, n3);
    if (!rc) rc = dd_model_infer_with(m, img, eps, NULL, NULL, &err);
    CHECK(rc == 0, "passes: inference: %s", err.msg);
    if (!rc) rc = dd_unet_forward(&one, &m->params, m->x_in, m->tvec, &err);
    CHECK(rc == 0, "passes: one-pass forward: %s", err.msg);
    if (!rc) {
        memcpy(ref, one.eps, n3 * sizeof(float));
        long differ = 0;
        for (size_t i = 0; i < n3; i++) differ += memcmp(&ref[i], &m->unet.eps[i], sizeof(float)) != 0;
        CHECK(differ == 0, "passes (%s, batch %d): %ld of %zu denoiser outputs differ from one pass", pn, batch, differ, n3);
        double mx = 0;
        for (size_t i = 0; i < n3; i++) mx = fmax(mx, fabs(ref[i]));
        CHECK(mx > 1e-3, "passes (%s, batch %d): the denoiser output is not trivial (max |e| %.3g)", pn, batch, mx);
        /* and the passes themselves agree with one pass when called directly */
        rc = dd_unet_forward(&m->unet, &m->params, m->x_in, m->tvec, &err);
        differ = 0;
        for (size_t i = 0; !rc && i < n3; i++) differ += memcmp(&ref[i], &m->unet.eps[i], sizeof(float)) != 0;
        CHECK(rc == 0 && differ == 0, "passes (%s, batch %d): direct call, %ld differ (%s)", pn, batch, differ, rc ? err.msg : "ok");
    }
    /* a denoiser's passes must divide its samples, and training runs one pass */
    dd_unet bad = one;
    CHECK(dd_unet_build(&bad, m->eng, 4, 3, 0, cfg.conv_algo, &err) == DD_E_INVALID && strstr(err.msg, "passes of 3"),
          "passes: 4 samples in passes of 3 refused (%s)", err.msg);
    CHECK(dd_unet_build(&bad, m->eng, 4, 2, 1, cfg.conv_algo, &err) == DD_E_INVALID,
          "passes: training in passes refused (%s)", err.msg);
    free(img), free(eps), free(ref);
    dd_arena_free(&a1);
    dd_unet_free(&one);
    dd_model_free(m);
}

/* With Winograd convolutions (f32) oneDNN's result depends on the batch size, so such an
 * inference model keeps one pass of 2B; bf16 convolutions are always direct: passes. */
static void test_passes_winograd(void) {
    dd_model_config cfg;
    small_config(&cfg);
    cfg.conv_algo = DD_CONV_WINOGRAD;
    for (int k = 0; k < 2; k++) {
        cfg.precision = k ? DD_PREC_BF16 : DD_PREC_F32;
        dd_model *m = NULL;
        dd_error err = {0};
        if (dd_model_create(&cfg, 1, 0, 2, &m, &err)) {
            if (k) SKIP("passes, Winograd in bf16: %s", err.msg);
            else CHECK(0, "passes, Winograd: create: %s", err.msg);
            continue;
        }
        int want = k ? 1 : 2;
        CHECK(m->unet.chunk == want && dd_model_denoiser_chunk(&cfg, 1, 0, m->eng) == want,
              "passes, Winograd in %s: passes of %d (want %d)", k ? "bf16 (direct)" : "f32", m->unet.chunk, want);
        CHECK(dd_model_denoiser_chunk(&cfg, 3, 1, m->eng) == 6, "passes: training runs one batch of 2B");
        dd_model_free(m);
    }
}

/* dd_model_free_activations (a finished training run before it calibrates): every
 * later run of the networks is refused with a message, the parameters stay. */
static void test_free_activations(void) {
    dd_model_config cfg;
    small_config(&cfg);
    dd_error err = {0};
    for (int training = 0; training <= 1; training++) {
        dd_model *m = NULL;
        if (dd_model_create(&cfg, 2, training, 2, &m, &err)) {
            CHECK(0, "free activations: create: %s", err.msg);
            return;
        }
        hashfill_params(&m->params);
        size_t HW = (size_t)cfg.unet.h * cfg.unet.w;
        float *img = calloc(2 * HW * 3, sizeof(float)), *mask = calloc(2 * HW, sizeof(float));
        int labels[2] = {0, 1};
        dd_rng r;
        dd_rng_seed(&r, 3);
        dd_step_stats st;
        int rc = training ? dd_model_train_step(m, img, mask, labels, &r, &st, &err) : dd_model_infer(m, img, 1, NULL, NULL, &err);
        CHECK(rc == 0, "free activations: a run before (%s): %s", training ? "training" : "inference", err.msg);
        size_t before = dd_model_memory(m), np = m->params.total;
        float *kept = malloc(np * sizeof(float));
        memcpy(kept, m->params.value, np * sizeof(float));
        dd_model_free_activations(m);
        CHECK(dd_model_memory(m) < before && !memcmp(kept, m->params.value, np * sizeof(float)),
              "free activations: memory %zu -> %zu, parameters kept", before, dd_model_memory(m));
        free(kept);
        err.msg[0] = 0;
        rc = training ? dd_model_train_step(m, img, mask, labels, &r, &st, &err) : dd_model_infer(m, img, 1, NULL, NULL, &err);
        CHECK(rc == DD_E_INVALID && strstr(err.msg, "activation memory was freed"),
              "free activations: a run after is refused (%s): rc %d, %s", training ? "training" : "inference", rc, err.msg);
        if (!training) {
            float eps[1];
            rc = dd_model_infer_with(m, img, eps, NULL, NULL, &err);
            CHECK(rc == DD_E_INVALID, "free activations: infer_with after is refused: rc %d", rc);
        } else {
            rc = dd_model_forward_with(m, img, mask, labels, (int[]){1, 2}, (int[]){400, 500}, img, &st, &err);
            CHECK(rc == DD_E_INVALID, "free activations: forward after is refused: rc %d", rc);
        }
        free(img), free(mask);
        dd_model_free(m); /* and freeing the model afterwards is fine */
    }
}

int main(int argc, char **argv) {
    for (int b = 1; b <= 2; b++) {
        test_passes(b, DD_PREC_F32);
        test_passes(b, DD_PREC_BF16);
    }
    test_passes_winograd();
    test_free_activations();
    test_small(0, 0);
    test_small(1, 0);
    test_small(0, 5); /* Min-SNR-gamma: the reference weights the noise loss too */
    if ((argc > 1 && strcmp(argv[1], "--no-paper") == 0) || getenv("DIFFAD_SKIP_PAPER"))
        SKIP("paper config skipped on request (--no-paper or DIFFAD_SKIP_PAPER)");
    else test_paper();
    return check_summary("test_model_torch");
}
