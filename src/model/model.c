/* model.c — the whole model: construction, training step, inference (see model.h). */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void dd_model_config_paper(dd_model_config *c, int h, int w) {
    memset(c, 0, sizeof *c);
    dd_unet_config_paper(&c->unet, h, w);
    c->seg_width = 64;
    c->T = 1000;
    c->t_s = 200, c->t_b = 400, c->guide_w = 1.0f;
    c->train_ts_max = 299, c->train_tb_min = 300;
    c->lr_unet = 1e-4f, c->lr_seg = 1e-5f;
    c->clip_norm = 0.0f;
    c->focal_weight = 5.0f, c->focal_alpha = 0.5f, c->focal_gamma = 4.0f, c->smoothl1_beta = 1.0f;
    c->topk = 0, c->map_sigma = 0.0f;
    c->conv_algo = DD_CONV_AUTO;
    c->precision = DD_PREC_AUTO;
    c->tile_scale = 0.0f, c->tile_overlap = 0.25f;
    c->min_area = 0, c->max_regions = 16, c->mm_per_pixel = 0.0f;
}

int dd_model_check_regions(long min_area, int max_regions, float mm_per_pixel, const char *prefix, dd_error *err) {
    if (min_area < 0 || min_area > DD_MAX_AREA)
        return dd_fail(err, DD_E_RANGE, "%smin_area %ld out of range 0..%ld (pixels at the input size; 0: every region counts)",
                       prefix, min_area, DD_MAX_AREA);
    if (max_regions < 0 || max_regions > DD_MAX_REGIONS)
        return dd_fail(err, DD_E_RANGE, "%smax_regions %d out of range 0..%d", prefix, max_regions, DD_MAX_REGIONS);
    if (!(mm_per_pixel >= 0 && mm_per_pixel <= DD_MAX_MM_PER_PIXEL))
        return dd_fail(err, DD_E_RANGE, "%smm_per_pixel %g out of range 0..%g (0: unknown; NaN and infinities refused)",
                       prefix, (double)mm_per_pixel, DD_MAX_MM_PER_PIXEL);
    return DD_OK;
}

int dd_model_check_review(float review_lo, float review_hi, const char *prefix, dd_error *err) {
    if (!isfinite(review_lo) || !isfinite(review_hi))
        return dd_fail(err, DD_E_RANGE, "%sreview_lo / review_hi must be finite (%g, %g)", prefix, (double)review_lo,
                       (double)review_hi);
    if (review_lo > review_hi)
        return dd_fail(err, DD_E_RANGE, "%sreview_lo %g is above review_hi %g (the REVIEW band is (review_lo, review_hi])",
                       prefix, (double)review_lo, (double)review_hi);
    return DD_OK;
}

int dd_model_config_check(const dd_model_config *c, dd_error *err) {
    int rc = dd_unet_config_check(&c->unet, err);
    if (rc) return rc;
    if ((rc = dd_segnet_check(c->unet.h, c->unet.w, c->seg_width, err))) return rc;
    if (c->unet.in_ch != 3) return dd_fail(err, DD_E_RANGE, "model: in_ch must be 3 (RGB), got %d", c->unet.in_ch);
    if (c->T < 2 || c->T > DD_T_MAX) return dd_fail(err, DD_E_RANGE, "model: T = %d out of range 2..%d", c->T, DD_T_MAX);
    if (c->t_s < 0 || c->t_b >= c->T || c->t_s >= c->t_b)
        return dd_fail(err, DD_E_RANGE, "model: need 0 <= t_s < t_b < T (t_s=%d t_b=%d T=%d)", c->t_s, c->t_b, c->T);
    if (c->train_ts_max < 0 || c->train_tb_min <= c->train_ts_max || c->train_tb_min >= c->T)
        return dd_fail(err, DD_E_RANGE, "model: need 0 <= train_ts_max < train_tb_min < T (%d, %d, T=%d)", c->train_ts_max, c->train_tb_min, c->T);
    if (c->train_ts_min < 0 || c->train_ts_min > c->train_ts_max)
        return dd_fail(err, DD_E_RANGE, "model: need 0 <= train_ts_min <= train_ts_max (%d, %d)", c->train_ts_min, c->train_ts_max);
    if (c->train_tb_max && (c->train_tb_max < c->train_tb_min || c->train_tb_max >= c->T))
        return dd_fail(err, DD_E_RANGE, "model: need train_tb_min <= train_tb_max < T, or train_tb_max 0 for T-1 (%d, %d, T=%d)", c->train_tb_min, c->train_tb_max, c->T);
    if (!(c->snr_gamma >= 0 && c->snr_gamma <= 1e6))
        return dd_fail(err, DD_E_RANGE, "model: snr_gamma %g out of range 0..1e6 (0: off)", c->snr_gamma);
    if (!(c->lr_unet >= 0 && c->lr_unet < 1) || !(c->lr_seg >= 0 && c->lr_seg < 1))
        return dd_fail(err, DD_E_RANGE, "model: learning rates must be in [0, 1)");
    if (c->grey_noise < -1 || c->grey_noise > 1)
        return dd_fail(err, DD_E_RANGE, "model: grey_noise %d out of range -1..1", c->grey_noise);
    if (!(c->tile_scale == -1.0f || (c->tile_scale >= 0 && c->tile_scale <= 16)))
        return dd_fail(err, DD_E_RANGE, "model: tile_scale %g out of range (0 fit, 0 < f <= 16, -1 auto)", c->tile_scale);
    if (!(c->tile_overlap >= 0 && c->tile_overlap <= 0.9f))
        return dd_fail(err, DD_E_RANGE, "model: tile_overlap %g out of range 0..0.9", c->tile_overlap);
    if (c->topk < 0 || c->topk > c->unet.h * c->unet.w) return dd_fail(err, DD_E_RANGE, "model: topk %d out of range 0..H*W", c->topk);
    if (!(c->map_sigma >= 0 && c->map_sigma <= DD_MAX_MAP_SIGMA))
        return dd_fail(err, DD_E_RANGE, "model: map_sigma %g out of range 0..%g (working pixels; 0: off)", (double)c->map_sigma,
                       DD_MAX_MAP_SIGMA);
    if (!(c->guide_w >= 0 && c->guide_w <= 10)) return dd_fail(err, DD_E_RANGE, "model: guidance weight w %g out of range 0..10", c->guide_w);
    if ((rc = dd_model_check_regions(c->min_area, c->max_regions, c->mm_per_pixel, "model: ", err))) return rc;
    if (!(c->review >= 0 && c->review <= 0.5f))
        return dd_fail(err, DD_E_RANGE, "model: review %g out of range 0..0.5 (share of good images)", (double)c->review);
    if ((rc = dd_model_check_review(c->review_lo, c->review_hi, "model: ", err))) return rc;
    return DD_OK;
}

void dd_model_draw_noise(const dd_model_config *c, dd_rng *r, float *eps, size_t n_images) {
    size_t px = n_images * (size_t)c->unet.h * c->unet.w;
    if (c->grey_noise == 1) {
        for (size_t i = 0; i < px; i++) eps[3 * i] = eps[3 * i + 1] = eps[3 * i + 2] = (float)dd_rng_normal(r);
    } else {
        for (size_t i = 0; i < 3 * px; i++) eps[i] = (float)dd_rng_normal(r);
    }
}

int dd_model_topk(const dd_model_config *c) {
    if (c->topk > 0) return c->topk;
    long k = lround(50.0 * c->unet.h * c->unet.w / 65536.0);
    return k < 1 ? 1 : (int)k;
}


/* The model's buffers, then the networks'. Training keeps the denoiser's activations
 * for its backward, so everything gets its own bytes. Inference runs the denoiser, then
 * the seg net: the seg net's buffers start where the denoiser's working memory starts
 * (after its output eps, u->work_from), one block for two lifetimes. */
/* Inference runs the t_s and t_b inputs as two passes of B (half the activations, the
 * same bits: nn/unet.h "Passes"), except with Winograd convolutions (conv_algo winograd in
 * float32; bf16 is always direct): oneDNN's Winograd result depends on the batch size
 * (measured: maps differ from one batch of 2B), so such a model keeps one batch. */
int dd_model_denoiser_chunk(const dd_model_config *cfg, int batch, int training, const dd_engine *e) {
    int winograd = cfg->conv_algo == DD_CONV_WINOGRAD && dd_engine_precision(e) != DD_PREC_BF16;
    return training || winograd ? 2 * batch : batch;
}

static int plan(dd_model *m, dd_arena *a, dd_error *err) {
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w;
    int rc;
    DD_ARENA_ALLOC(a, err, m->x_in, 2 * B * HW * 3);
    DD_ARENA_ALLOC(a, err, m->noise, 2 * B * HW * 3);
    DD_ARENA_ALLOC(a, err, m->x0_hat, B * HW * 3);
    DD_ARENA_ALLOC(a, err, m->seg_in, B * HW * 6);
    if (m->training) {
        DD_ARENA_ALLOC(a, err, m->dseg_in, B * HW * 6);
        DD_ARENA_ALLOC(a, err, m->dx0_hat, B * HW * 3);
        DD_ARENA_ALLOC(a, err, m->de, 2 * B * HW * 3);
        DD_ARENA_ALLOC(a, err, m->dmask, B * HW);
    }
    if ((rc = dd_unet_plan(&m->unet, a, err))) return rc;
    if (m->training) return dd_segnet_plan(&m->seg, a, err);
    size_t unet_end = a->used;
    dd_arena_seek(a, m->unet.work_from);
    if ((rc = dd_segnet_plan(&m->seg, a, err))) return rc;
    if (a->used < unet_end) dd_arena_seek(a, unet_end);
    return DD_OK;
}

int dd_model_create(const dd_model_config *cfg, int batch, int training, int threads,
                    dd_model **out, dd_error *err) {
    return dd_model_create_on(NULL, cfg, batch, training, threads, out, err);
}

int dd_model_create_on(const dd_backend *be, const dd_model_config *cfg, int batch, int training,
                       int threads, dd_model **out, dd_error *err) {
    *out = NULL;
    int rc = dd_model_config_check(cfg, err);
    if (rc) return rc;
    if (batch < 1 || batch > DD_MAX_BATCH) return dd_fail(err, DD_E_RANGE, "model: batch %d out of range 1..%d", batch, DD_MAX_BATCH);
    if (training && batch < 2)
        return dd_fail(err, DD_E_RANGE, "model: training needs a batch of at least 2 (BatchNorm statistics)");
    dd_model *m = calloc(1, sizeof *m);
    if (!m) return dd_fail(err, DD_E_NOMEM, "model: out of memory");
    m->cfg = *cfg;
    m->batch = batch, m->training = training;
    m->tvec = calloc(2 * (size_t)batch, sizeof *m->tvec);
    dd_params_init(&m->params);
    dd_arena a;
    if (!m->tvec) { rc = dd_fail(err, DD_E_NOMEM, "model: out of memory"); goto fail; }
    if ((rc = dd_schedule_init(&m->sched, cfg->T, err)) ||
        (rc = dd_engine_create_on(be, threads, &m->eng, err)) ||
        (rc = dd_engine_set_precision(m->eng, cfg->precision, err)) ||
        (rc = dd_unet_declare(&m->unet, &cfg->unet, &m->params, "unet", 0, err)) ||
        (rc = dd_segnet_declare(&m->seg, cfg->unet.h, cfg->unet.w, cfg->seg_width, 6, &m->params, "seg", 1, err)) ||
        (rc = dd_params_alloc(&m->params, training, err)) ||
        (rc = dd_unet_build(&m->unet, m->eng, 2 * batch, dd_model_denoiser_chunk(cfg, batch, training, m->eng), training,
                            cfg->conv_algo, err)) ||
        (rc = dd_segnet_build(&m->seg, m->eng, batch, training, cfg->conv_algo, err)))
        goto fail;
    dd_arena_init_measure(&a);
    if ((rc = plan(m, &a, err))) goto fail;
    if ((rc = dd_arena_create(&m->arena, a.peak, err)) || (rc = plan(m, &m->arena, err))) goto fail;
    dd_adam_init(&m->adam, cfg->lr_unet);
    m->adam.lr[1] = cfg->lr_seg;
    m->adam.clip_norm = cfg->clip_norm;
    m->adam.eng = m->eng; /* the update runs on the model's backend */
    *out = m;
    return DD_OK;
fail:
    dd_model_free(m);
    return rc;
}

void dd_model_free(dd_model *m) {
    if (!m) return;
    dd_unet_free(&m->unet);
    dd_segnet_free(&m->seg);
    dd_params_free(&m->params);
    dd_arena_free(&m->arena);
    dd_engine_free(m->eng);
    free(m->tvec);
    dd_roi_free(&m->roi);
    free(m);
}

void dd_model_free_activations(dd_model *m) { dd_arena_free(&m->arena); }

/* Every entry point that runs the networks or writes the step buffers (the arena). */
static int check_activations(const dd_model *m, dd_error *err) {
    if (!m->arena.base) return dd_fail(err, DD_E_INVALID, "model: its activation memory was freed (dd_model_free_activations)");
    return DD_OK;
}

void dd_model_init_weights(dd_model *m, uint64_t seed) {
    dd_rng r;
    dd_rng_seed(&r, seed);
    dd_unet_init(&m->unet, &m->params, &r);
    dd_segnet_init(&m->seg, &m->params, &r);
}

dd_precision dd_model_precision(const dd_model *m) { return dd_engine_precision(m->eng); }

size_t dd_model_memory(const dd_model *m) {
    size_t blocks = m->training ? 4 : 1;
    return blocks * m->params.total * sizeof(float) + m->arena.cap + dd_engine_scratch_bytes(m->eng);
}

int dd_model_freeze_weights(dd_model *m, dd_error *err) {
    if (m->training) return dd_fail(err, DD_E_INVALID, "model: a training model's weights cannot be frozen");
    return dd_engine_freeze_weights(m->eng, DD_FROZEN_WEIGHTS_CAP, err);
}

size_t dd_model_param_count(const dd_model *m, int group) {
    size_t n = 0;
    for (int i = 0; i < m->params.count; i++)
        if (m->params.items[i].group == group && m->params.items[i].trainable) n += m->params.items[i].numel;
    return n;
}

/* Noising, both denoiser passes (training: one batch of 2B; inference: the B t_s inputs, then
 * the B t_b ones, nn/unet.h "Passes"), guided reconstruction, seg net. */
static int forward_core(dd_model *m, const float *images, const int *ts, const int *tb,
                        const float *eps, dd_error *err) {
    dd_engine_activate(m->eng);
    const dd_backend *be = dd_engine_backend(m->eng);
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w, n3 = HW * 3;
    for (size_t b = 0; b < B; b++) {
        if (ts[b] < 0 || ts[b] >= m->cfg.T || tb[b] < 0 || tb[b] >= m->cfg.T)
            return dd_fail(err, DD_E_RANGE, "model: timestep out of range 0..%d (t_s=%d, t_b=%d)", m->cfg.T - 1, ts[b], tb[b]);
        m->tvec[b] = ts[b];
        m->tvec[B + b] = tb[b];
        float a, c;
        dd_q_coef(&m->sched, ts[b], &a, &c);
        be->axpby(m->eng, a, images + b * n3, c, eps + b * n3, m->x_in + b * n3, n3);
        dd_q_coef(&m->sched, tb[b], &a, &c);
        be->axpby(m->eng, a, images + b * n3, c, eps + (B + b) * n3, m->x_in + (B + b) * n3, n3);
    }
    double t0 = now_ms();
    int rc = dd_unet_forward(&m->unet, &m->params, m->x_in, m->tvec, err);
    if (rc) return rc;
    double t1 = now_ms();
    m->ms_unet = t1 - t0;
    const float *e = m->unet.eps;
    for (size_t b = 0; b < B; b++) {
        dd_guided_coef k;
        dd_guided_coef_at(&m->sched, ts[b], tb[b], m->cfg.guide_w, &k);
        be->guided_recon_forward(m->eng, &k, m->x_in + b * n3, m->x_in + (B + b) * n3,
                                 e + b * n3, e + (B + b) * n3, m->x0_hat + b * n3, NULL, n3);
    }
    /* seg input: concat(image, x0_hat) [B,H,W,6] */
    be->concat_forward(m->eng, images, 3, m->x0_hat, 3, m->seg_in, B * HW);
    rc = dd_segnet_forward(&m->seg, &m->params, m->seg_in, err);
    m->ms_seg = now_ms() - t1;
    return rc;
}

/* Min-SNR-gamma weight of a noise-loss term at timestep t (Hang et al. 2023): the MSE of an
 * epsilon prediction weighted by min(SNR_t, gamma) / SNR_t, SNR_t = abar_t / (1 - abar_t).
 * It caps the weight of the nearly clean timesteps (SNR above gamma), whose epsilon error
 * barely moves the x0 estimate (x0 error = epsilon error / sqrt(SNR_t)), so the gradient
 * goes to the noisier ones. 1 when off. */
static double snr_weight(const dd_model *m, int t) {
    if (m->cfg.snr_gamma <= 0) return 1.0;
    double ab = m->sched.alpha_bar[t], snr = ab / (1.0 - ab);
    return snr > m->cfg.snr_gamma ? m->cfg.snr_gamma / snr : 1.0;
}

/* Loss terms and their gradients (dmask, de from the noise loss). */
static void losses(dd_model *m, const float *masks, const int *labels, const float *eps,
                   dd_step_stats *st, int with_grad) {
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w, n3 = HW * 3;
    const dd_model_config *c = &m->cfg;
    const dd_backend *be = dd_engine_backend(m->eng);
    memset(st, 0, sizeof *st);
    /* a part of a global batch: its share of the per-pixel means (1 for the whole batch) */
    float share = m->part_global > 0 ? (float)B / (float)m->part_global : 1.0f;
    st->focal = share * be->focal_loss(m->eng, m->seg.mask, masks, with_grad ? m->dmask : NULL, B * HW,
                                       c->focal_alpha, c->focal_gamma, c->focal_weight * share, 0);
    st->smoothl1 = share * be->smoothl1_loss(m->eng, m->seg.mask, masks, with_grad ? m->dmask : NULL, B * HW,
                                             c->smoothl1_beta, share, 1);
    int own = 0;
    for (size_t b = 0; b < B; b++) own += labels[b] == 0;
    st->normal_count = own;
    /* the noise loss is a mean over the global batch's normal samples */
    int normal = m->part_global > 0 ? m->part_normal : own;
    if (with_grad) be->buf_zero(m->eng, m->de, 2 * B * n3 * sizeof(float));
    double noise = 0;
    const float *e = m->unet.eps;
    for (size_t b = 0; b < B && normal > 0 && own > 0; b++) {
        if (labels[b] != 0) continue;
        /* mean over normal samples of w_s MSE(e_s, eps_s) + w_b MSE(e_b, eps_b); the
         * timesteps are the ones forward_core put in tvec */
        double ws = snr_weight(m, m->tvec[b]), wb = snr_weight(m, m->tvec[B + b]);
        noise += ws * be->mse_loss(m->eng, e + b * n3, eps + b * n3, with_grad ? m->de + b * n3 : NULL, n3,
                                   (float)(ws / normal), 0) / normal;
        noise += wb * be->mse_loss(m->eng, e + (B + b) * n3, eps + (B + b) * n3, with_grad ? m->de + (B + b) * n3 : NULL,
                                   n3, (float)(wb / normal), 0) / normal;
    }
    st->noise = noise;
    st->loss = st->noise + c->focal_weight * st->focal + st->smoothl1;
}

static int check_inputs(const dd_model *m, const float *images, const float *masks, const int *labels,
                        dd_error *err) {
    if (!images || !masks || !labels) return dd_fail(err, DD_E_INVALID, "train step: NULL images, masks or labels");
    if (!m->training) return dd_fail(err, DD_E_INVALID, "train step: model was built for inference");
    return check_activations(m, err);
}

int dd_model_forward_with(dd_model *m, const float *images, const float *masks, const int *labels,
                          const int *ts, const int *tb, const float *eps, dd_step_stats *st,
                          dd_error *err) {
    int rc = check_inputs(m, images, masks, labels, err);
    if (rc || (rc = forward_core(m, images, ts, tb, eps, err))) return rc;
    losses(m, masks, labels, eps, st, 0);
    return DD_OK;
}

int dd_model_forward_backward_with(dd_model *m, const float *images, const float *masks,
                                   const int *labels, const int *ts, const int *tb, const float *eps,
                                   dd_step_stats *st, dd_error *err) {
    int rc = check_inputs(m, images, masks, labels, err);
    if (rc) return rc;
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w, n3 = HW * 3;
    const dd_backend *be = dd_engine_backend(m->eng);
    be->buf_zero(m->eng, m->params.grad, m->params.total * sizeof(float));
    if ((rc = forward_core(m, images, ts, tb, eps, err))) return rc;
    losses(m, masks, labels, eps, st, 1);
    if (!isfinite(st->loss)) return dd_fail(err, DD_E_RANGE, "train step: loss is not finite (%g)", st->loss);
    /* seg net backward -> d(seg input); its channels 3..5 are d(x0_hat) */
    if ((rc = dd_segnet_backward(&m->seg, &m->params, m->dmask, m->dseg_in, err))) return rc;
    be->concat_backward(m->eng, m->dseg_in, NULL, 3, m->dx0_hat, 3, B * HW, 0, 0);
    const float *e = m->unet.eps;
    for (size_t b = 0; b < B; b++) {
        dd_guided_coef k;
        dd_guided_coef_at(&m->sched, ts[b], tb[b], m->cfg.guide_w, &k);
        be->guided_recon_backward(m->eng, &k, m->x_in + b * n3, m->x_in + (B + b) * n3, e + b * n3,
                                  e + (B + b) * n3, m->dx0_hat + b * n3, m->de + b * n3,
                                  m->de + (B + b) * n3, n3);
    }
    return dd_unet_backward(&m->unet, &m->params, m->de, err);
}

int dd_model_forward_backward(dd_model *m, const float *images, const float *masks,
                              const int *labels, dd_rng *r, dd_step_stats *st, dd_error *err) {
    return dd_model_forward_backward_part(m, images, masks, labels, r, 0, m->batch, 0, st, err);
}

int dd_model_forward_backward_part(dd_model *m, const float *images, const float *masks,
                                   const int *labels, dd_rng *r, int offset, int global_batch,
                                   int global_normal, dd_step_stats *st, dd_error *err) {
    int B = m->batch;
    if (global_batch < B || global_batch > DD_MAX_BATCH || offset < 0 || offset > global_batch - B ||
        global_normal < 0 || global_normal > global_batch)
        return dd_fail(err, DD_E_RANGE, "train step: part [%d, %d) of a global batch of %d (%d normal) is invalid",
                       offset, offset + B, global_batch, global_normal);
    int rc = check_activations(m, err); /* the noise is drawn into the arena */
    if (rc) return rc;
    int ts[DD_MAX_BATCH], tb[DD_MAX_BATCH];
    /* Draw order (all t_s, t_b pairs, then the noise: eps_s of every sample, then eps_b)
     * is part of the (seed, step) contract; a part draws the global batch's and keeps its slice. */
    for (int b = 0; b < global_batch; b++) {
        int s = (int)dd_rng_int(r, m->cfg.train_ts_min, m->cfg.train_ts_max);
        int t = (int)dd_rng_int(r, m->cfg.train_tb_min, m->cfg.train_tb_max ? m->cfg.train_tb_max : m->cfg.T - 1);
        if (b >= offset && b < offset + B) ts[b - offset] = s, tb[b - offset] = t;
    }
    for (int half = 0; half < 2; half++) {
        /* other parts' noise is drawn (the stream must advance) into x0_hat, which the
         * forward pass overwrites anyway */
        for (int b = 0; b < offset; b++) dd_model_draw_noise(&m->cfg, r, m->x0_hat, 1);
        dd_model_draw_noise(&m->cfg, r, m->noise + (size_t)half * B * m->cfg.unet.h * m->cfg.unet.w * 3, (size_t)B);
        for (int b = offset + B; b < global_batch; b++) dd_model_draw_noise(&m->cfg, r, m->x0_hat, 1);
    }
    m->part_global = global_batch > B ? global_batch : 0;
    m->part_normal = global_normal;
    rc = dd_model_forward_backward_with(m, images, masks, labels, ts, tb, m->noise, st, err);
    m->part_global = m->part_normal = 0;
    return rc;
}

int dd_model_update(dd_model *m, float lr_unet, float lr_seg, double *grad_norm, dd_error *err) {
    if (!m->training) return dd_fail(err, DD_E_INVALID, "update: model was built for inference");
    m->adam.lr[0] = lr_unet;
    m->adam.lr[1] = lr_seg;
    return dd_adam_step(&m->adam, &m->params, grad_norm, err);
}

long dd_model_updates(const dd_model *m) { return m->adam.step; }

void dd_model_set_updates(dd_model *m, long step) { m->adam.step = step; }

int dd_model_train_step_with(dd_model *m, const float *images, const float *masks,
                             const int *labels, const int *ts, const int *tb, const float *eps,
                             dd_step_stats *st, dd_error *err) {
    int rc = dd_model_forward_backward_with(m, images, masks, labels, ts, tb, eps, st, err);
    return rc ? rc : dd_model_update(m, m->adam.lr[0], m->adam.lr[1], &st->grad_norm, err);
}

int dd_model_train_step(dd_model *m, const float *images, const float *masks, const int *labels,
                        dd_rng *r, dd_step_stats *st, dd_error *err) {
    int rc = dd_model_forward_backward(m, images, masks, labels, r, st, err);
    return rc ? rc : dd_model_update(m, m->adam.lr[0], m->adam.lr[1], &st->grad_norm, err);
}

int dd_model_infer(dd_model *m, const float *images, uint64_t seed, float *map, float *recon,
                   dd_error *err) {
    if (!images) return dd_fail(err, DD_E_INVALID, "infer: NULL images");
    int rc = check_activations(m, err); /* the noise is drawn into the arena */
    if (rc) return rc;
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w;
    dd_rng r;
    dd_rng_seed(&r, seed);
    (void)HW;
    dd_model_draw_noise(&m->cfg, &r, m->noise, 2 * B);
    return dd_model_infer_with(m, images, m->noise, map, recon, err);
}

int dd_model_infer_with(dd_model *m, const float *images, const float *eps, float *map,
                        float *recon, dd_error *err) {
    if (!images || !eps) return dd_fail(err, DD_E_INVALID, "infer: NULL images or noise");
    int rc = check_activations(m, err);
    if (rc) return rc;
    size_t B = (size_t)m->batch, HW = (size_t)m->cfg.unet.h * m->cfg.unet.w;
    int ts[DD_MAX_BATCH], tb[DD_MAX_BATCH];
    for (size_t b = 0; b < B; b++) ts[b] = m->cfg.t_s, tb[b] = m->cfg.t_b;
    rc = forward_core(m, images, ts, tb, eps, err);
    if (rc) return rc;
    const dd_backend *be = dd_engine_backend(m->eng);
    if (map) be->copy_d2h(m->eng, map, m->seg.mask, B * HW * sizeof(float));
    if (recon) be->copy_d2h(m->eng, recon, m->x0_hat, B * HW * 3 * sizeof(float));
    return DD_OK;
}
