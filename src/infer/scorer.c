/* scorer.c — the one scoring path: working scale, tiles, stitching, top-k, maps at
 * the input size (see scorer.h for the steps and the memory). */
#include "infer/scorer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "data/image.h"
#include "eval/metrics.h"

typedef struct fbuf {
    float *p;
    size_t cap; /* floats */
} fbuf;

struct dd_scorer {
    dd_model *m;
    dd_scorer_opts o;
    int h, w;                   /* tile = model size */
    float *noise;               /* [2,h,w,3] */
    float *win_y, *win_x;       /* [h], [w]: the tile window per axis */
    int *pos_y, *pos_x;         /* [DD_TILE_MAX_PER_AXIS] */
    fbuf tile_in, tile_map, tile_rec; /* [h,w,3], [h,w], [h,w,3] */
    fbuf work;                  /* [wh,ww,3] when the working image is not the input itself */
    fbuf acc_map, acc_rec;      /* [wh,ww], [wh,ww,3] */
    fbuf sum_y, sum_x;          /* [wh], [ww]: window sums per axis */
    fbuf out_map, out_rec;      /* [ih,iw], [ih,iw,3] when the input size differs from the working size */
    fbuf blur;                  /* [wh,ww] the Gaussian's row pass when the model smooths its map (map_sigma > 0) */
    /* region of interest (a copy of the model's; mask NULL: none), resampled per size */
    dd_roi roi;
    uint8_t *roi_work, *roi_in; /* [wh,ww]; [ih,iw] when the input size differs from the working size */
    uint64_t *roi_acc;          /* [max(ww, iw)] resampling scratch */
    size_t roi_work_cap, roi_in_cap, roi_acc_cap; /* bytes */
    int roi_work_h, roi_work_w, roi_in_h, roi_in_w; /* the sizes they hold now (0: none yet) */
    long roi_work_n, roi_in_n;                      /* their inspected pixels */
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void dd_scorer_opts_init(dd_scorer_opts *o) {
    o->seed = DD_PREDICT_SEED;
    o->want_recon = 1;
    o->overlap = -1.0f;
}

void dd_scorer_work_size(const dd_model_config *c, int ih, int iw, int *wh, int *ww) {
    dd_scaled_size(ih, iw, c->tile_scale, c->unet.h, c->unet.w, wh, ww);
}

int dd_tile_positions(int len, int tile, float overlap, int *pos, int max) {
    if (tile < 1 || len < tile || max < 1 || !(overlap >= 0 && overlap < 1)) return 0;
    if (len == tile) {
        pos[0] = 0;
        return 1;
    }
    double stride = tile * (1.0 - overlap);
    if (stride < 1) stride = 1;
    long n = (long)ceil((len - tile) / stride - 1e-9) + 1;
    if (n < 2) n = 2;
    if (n > max) return 0;
    for (long i = 0; i < n; i++) pos[i] = (int)lround((double)i * (len - tile) / (double)(n - 1));
    return (int)n;
}

/* Raised cosine over the tile, floored so that every pixel keeps a weight. */
static void make_window(float *win, int n) {
    for (int i = 0; i < n; i++) {
        float v = (float)(0.5 - 0.5 * cos(6.283185307179586 * (i + 0.5) / n));
        win[i] = v > DD_TILE_WIN_FLOOR ? v : DD_TILE_WIN_FLOOR;
    }
}

int dd_scorer_create(dd_model *m, const dd_scorer_opts *o, dd_scorer **out, dd_error *err) {
    if (out) *out = NULL;
    if (!m || !out) return dd_fail(err, DD_E_INVALID, "scorer: NULL model or output");
    if (m->batch != 1 || m->training) return dd_fail(err, DD_E_INVALID, "scorer: needs an inference model of batch 1");
    if (m->cfg.tile_scale < 0)
        return dd_fail(err, DD_E_INVALID, "scorer: tile_scale %g is unresolved (-1 is a training setting)", m->cfg.tile_scale);
    dd_scorer *s = calloc(1, sizeof *s);
    if (!s) return dd_fail(err, DD_E_NOMEM, "scorer: out of memory");
    s->m = m;
    if (o) s->o = *o;
    else dd_scorer_opts_init(&s->o);
    if (s->o.overlap < 0) s->o.overlap = m->cfg.tile_overlap;
    if (!(s->o.overlap >= 0 && s->o.overlap < 1)) {
        double ov = s->o.overlap;
        free(s);
        return dd_fail(err, DD_E_RANGE, "scorer: tile overlap %g out of range 0..0.9", ov);
    }
    s->h = m->cfg.unet.h, s->w = m->cfg.unet.w;
    int rc = dd_roi_copy(&s->roi, &m->roi, err);
    if (rc) {
        free(s);
        return rc;
    }
    size_t hw = (size_t)s->h * s->w;
    s->noise = malloc(hw * 6 * sizeof(float));
    s->win_y = malloc((size_t)s->h * sizeof(float));
    s->win_x = malloc((size_t)s->w * sizeof(float));
    s->pos_y = malloc(DD_TILE_MAX_PER_AXIS * sizeof(int));
    s->pos_x = malloc(DD_TILE_MAX_PER_AXIS * sizeof(int));
    if (!s->noise || !s->win_y || !s->win_x || !s->pos_y || !s->pos_x) {
        dd_scorer_free(s);
        return dd_fail(err, DD_E_NOMEM, "scorer: out of memory");
    }
    /* The draw dd_model_infer makes from a seed, done once instead of per image. */
    dd_rng r;
    dd_rng_seed(&r, s->o.seed);
    dd_model_draw_noise(&m->cfg, &r, s->noise, 2);
    make_window(s->win_y, s->h);
    make_window(s->win_x, s->w);
    *out = s;
    return DD_OK;
}

void dd_scorer_free(dd_scorer *s) {
    if (!s) return;
    fbuf *b[] = {&s->tile_in, &s->tile_map, &s->tile_rec, &s->work, &s->acc_map, &s->acc_rec,
                 &s->sum_y, &s->sum_x, &s->out_map, &s->out_rec, &s->blur};
    for (size_t i = 0; i < sizeof b / sizeof *b; i++) free(b[i]->p);
    free(s->noise), free(s->win_y), free(s->win_x), free(s->pos_y), free(s->pos_x);
    free(s->roi_work), free(s->roi_in), free(s->roi_acc);
    dd_roi_free(&s->roi);
    free(s);
}

/* What each buffer needs for an ih x iw input (floats); index order as in plan_grow. */
enum { B_TILE_IN, B_TILE_MAP, B_TILE_REC, B_WORK, B_ACC_MAP, B_ACC_REC, B_SUM_Y, B_SUM_X, B_OUT_MAP, B_OUT_REC, B_BLUR, B_N };

static void needs(const dd_scorer *s, int ih, int iw, size_t *n) {
    int wh, ww;
    dd_scorer_work_size(&s->m->cfg, ih, iw, &wh, &ww);
    size_t hw = (size_t)s->h * s->w, whw = (size_t)wh * ww, ihw = (size_t)ih * iw;
    int rec = s->o.want_recon, same_in = wh == ih && ww == iw;
    int one_tile = wh == s->h && ww == s->w;
    memset(n, 0, B_N * sizeof *n);
    n[B_TILE_IN] = one_tile ? 0 : hw * 3;
    n[B_TILE_MAP] = one_tile ? 0 : hw;
    n[B_TILE_REC] = one_tile || !rec ? 0 : hw * 3;
    n[B_WORK] = same_in ? 0 : whw * 3;
    n[B_ACC_MAP] = whw;
    n[B_ACC_REC] = rec ? whw * 3 : 0;
    n[B_SUM_Y] = (size_t)wh, n[B_SUM_X] = (size_t)ww;
    n[B_OUT_MAP] = same_in ? 0 : ihw;
    n[B_OUT_REC] = same_in || !rec ? 0 : ihw * 3;
    n[B_BLUR] = s->m->cfg.map_sigma > 0 ? whw : 0;
}

/* Bytes of the ROI buffers for an ih x iw input: [0] working-size mask, [1] input-size mask,
 * [2] scratch (all 0 without an ROI). */
static void roi_needs(const dd_scorer *s, int ih, int iw, size_t *n) {
    n[0] = n[1] = n[2] = 0;
    if (!s->roi.mask) return;
    int wh, ww;
    dd_scorer_work_size(&s->m->cfg, ih, iw, &wh, &ww);
    n[0] = (size_t)wh * ww;
    n[1] = wh == ih && ww == iw ? 0 : (size_t)ih * iw;
    n[2] = (size_t)(ww > iw ? ww : iw) * sizeof(uint64_t);
}

static fbuf *buf_at(dd_scorer *s, int i) {
    fbuf *b[B_N] = {&s->tile_in, &s->tile_map, &s->tile_rec, &s->work, &s->acc_map, &s->acc_rec,
                    &s->sum_y, &s->sum_x, &s->out_map, &s->out_rec, &s->blur};
    return b[i];
}

size_t dd_scorer_memory(const dd_scorer *s) {
    if (!s) return 0;
    size_t f = (size_t)s->h * s->w * 6 + (size_t)s->h + s->w;
    for (int i = 0; i < B_N; i++) f += buf_at((dd_scorer *)s, i)->cap;
    size_t roi = s->roi_work_cap + s->roi_in_cap + s->roi_acc_cap + (s->roi.mask ? (size_t)s->roi.h * s->roi.w : 0);
    return f * sizeof(float) + roi + 2 * DD_TILE_MAX_PER_AXIS * sizeof(int) + sizeof *s;
}

size_t dd_scorer_bytes_for(const dd_scorer *s, int ih, int iw) {
    if (!s) return 0;
    size_t n[B_N], extra = 0;
    needs(s, ih, iw, n);
    for (int i = 0; i < B_N; i++) {
        size_t cap = buf_at((dd_scorer *)s, i)->cap;
        if (n[i] > cap) extra += n[i] - cap;
    }
    size_t r[3], rcap[3] = {s->roi_work_cap, s->roi_in_cap, s->roi_acc_cap}, extra_roi = 0;
    roi_needs(s, ih, iw, r);
    for (int i = 0; i < 3; i++)
        if (r[i] > rcap[i]) extra_roi += r[i] - rcap[i];
    return dd_scorer_memory(s) + extra * sizeof(float) + extra_roi;
}

static int grow_all(dd_scorer *s, int ih, int iw, dd_error *err) {
    size_t n[B_N];
    needs(s, ih, iw, n);
    for (int i = 0; i < B_N; i++) {
        fbuf *b = buf_at(s, i);
        if (n[i] <= b->cap) continue;
        float *p = realloc(b->p, n[i] * sizeof(float));
        if (!p) return dd_fail(err, DD_E_NOMEM, "scorer: out of memory for a %dx%d image", ih, iw);
        b->p = p, b->cap = n[i];
    }
    size_t r[3];
    roi_needs(s, ih, iw, r);
    void **rp[3] = {(void **)&s->roi_work, (void **)&s->roi_in, (void **)&s->roi_acc};
    size_t *rcap[3] = {&s->roi_work_cap, &s->roi_in_cap, &s->roi_acc_cap};
    for (int i = 0; i < 3; i++) {
        if (r[i] <= *rcap[i]) continue;
        void *p = realloc(*rp[i], r[i]);
        if (!p) return dd_fail(err, DD_E_NOMEM, "scorer: out of memory for the region of interest of a %dx%d image", ih, iw);
        *rp[i] = p, *rcap[i] = r[i];
    }
    return DD_OK;
}

/* The ROI at the working size and at the input size of an ih x iw image (resampled only
 * when a size changes), or DD_E_RANGE when it covers no pixel at one of them. */
static int roi_for(dd_scorer *s, int ih, int iw, int wh, int ww, dd_error *err) {
    if (s->roi_work_h != wh || s->roi_work_w != ww) {
        s->roi_work_h = s->roi_work_w = 0; /* invalid until the new one is complete */
        s->roi_work_n = dd_roi_resample(&s->roi, wh, ww, s->roi_work, s->roi_acc);
        s->roi_work_h = wh, s->roi_work_w = ww;
    }
    int same = wh == ih && ww == iw;
    if (!same && (s->roi_in_h != ih || s->roi_in_w != iw)) {
        s->roi_in_h = s->roi_in_w = 0;
        s->roi_in_n = dd_roi_resample(&s->roi, ih, iw, s->roi_in, s->roi_acc);
        s->roi_in_h = ih, s->roi_in_w = iw;
    }
    long n_in = same ? s->roi_work_n : s->roi_in_n;
    if (s->roi_work_n < 1 || n_in < 1)
        return dd_fail(err, DD_E_RANGE, "scorer: the %dx%d region of interest covers no pixel of a %dx%d image%s (a pixel "
                       "is inspected when at least half of it is)", s->roi.w, s->roi.h, iw, ih,
                       n_in < 1 ? "" : " at its working size");
    return DD_OK;
}

static void zero_outside(float *map, const uint8_t *roi, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!roi[i]) map[i] = 0;
}

/* Window sums along one axis of length len for tiles at pos[0..n) of size t. */
static void window_sums(float *sum, int len, const int *pos, int n, const float *win, int t) {
    for (int i = 0; i < len; i++) sum[i] = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < t; i++) sum[pos[k] + i] += win[i];
}

int dd_scorer_run(dd_scorer *s, const float *rgb, int ih, int iw, dd_score *out, dd_error *err) {
    if (!s || !rgb || !out) return dd_fail(err, DD_E_INVALID, "scorer: NULL argument");
    memset(out, 0, sizeof *out);
    if (ih < 1 || iw < 1) return dd_fail(err, DD_E_INVALID, "scorer: image size %dx%d", ih, iw);
    const dd_model_config *c = &s->m->cfg;
    int h = s->h, w = s->w, wh, ww;
    dd_scorer_work_size(c, ih, iw, &wh, &ww);
    int ny = dd_tile_positions(wh, h, s->o.overlap, s->pos_y, DD_TILE_MAX_PER_AXIS);
    int nx = dd_tile_positions(ww, w, s->o.overlap, s->pos_x, DD_TILE_MAX_PER_AXIS);
    if (!ny || !nx)
        return dd_fail(err, DD_E_RANGE, "scorer: a %dx%d image at scale %g needs more than %d tiles per side", ih, iw,
                       c->tile_scale, DD_TILE_MAX_PER_AXIS);
    int rc = grow_all(s, ih, iw, err);
    if (rc) return rc;
    int rec = s->o.want_recon;
    double t0 = now_ms();
    /* the working image */
    const float *work = rgb;
    if (wh != ih || ww != iw) {
        if ((rc = dd_resize(rgb, ih, iw, 3, s->work.p, wh, ww, err))) return rc;
        work = s->work.p;
    }
    double t1 = now_ms();
    out->ms_resample = t1 - t0;
    size_t hw = (size_t)h * w, whw = (size_t)wh * ww;
    float *acc = s->acc_map.p, *accr = rec ? s->acc_rec.p : NULL;
    if (ny == 1 && nx == 1) { /* one tile: the map as the model gives it */
        if ((rc = dd_model_infer_with(s->m, work, s->noise, acc, accr, err))) return rc;
        out->ms_denoise = s->m->ms_unet, out->ms_segment = s->m->ms_seg;
    } else {
        memset(acc, 0, whw * sizeof(float));
        if (accr) memset(accr, 0, whw * 3 * sizeof(float));
        float *tin = s->tile_in.p, *tmap = s->tile_map.p, *trec = rec ? s->tile_rec.p : NULL;
        for (int a = 0; a < ny; a++)
            for (int b = 0; b < nx; b++) {
                int ty = s->pos_y[a], tx = s->pos_x[b];
                for (int y = 0; y < h; y++)
                    memcpy(tin + (size_t)y * w * 3, work + ((size_t)(ty + y) * ww + tx) * 3, (size_t)w * 3 * sizeof(float));
                if ((rc = dd_model_infer_with(s->m, tin, s->noise, tmap, trec, err))) return rc;
                out->ms_denoise += s->m->ms_unet, out->ms_segment += s->m->ms_seg;
                double ts = now_ms();
                for (int y = 0; y < h; y++) {
                    float wy = s->win_y[y];
                    float *ar = acc + (size_t)(ty + y) * ww + tx;
                    const float *mr = tmap + (size_t)y * w;
                    for (int x = 0; x < w; x++) ar[x] += wy * s->win_x[x] * mr[x];
                    if (trec) {
                        float *rr = accr + ((size_t)(ty + y) * ww + tx) * 3;
                        const float *tr = trec + (size_t)y * w * 3;
                        for (int x = 0; x < w; x++) {
                            float wt = wy * s->win_x[x];
                            rr[3 * x] += wt * tr[3 * x], rr[3 * x + 1] += wt * tr[3 * x + 1], rr[3 * x + 2] += wt * tr[3 * x + 2];
                        }
                    }
                }
                out->ms_stitch += now_ms() - ts;
            }
        double ts = now_ms();
        window_sums(s->sum_y.p, wh, s->pos_y, ny, s->win_y, h);
        window_sums(s->sum_x.p, ww, s->pos_x, nx, s->win_x, w);
        for (int y = 0; y < wh; y++) {
            float sy = s->sum_y.p[y];
            for (int x = 0; x < ww; x++) {
                float inv = 1.0f / (sy * s->sum_x.p[x]);
                size_t i = (size_t)y * ww + x;
                acc[i] *= inv;
                if (accr) accr[3 * i] *= inv, accr[3 * i + 1] *= inv, accr[3 * i + 2] *= inv;
            }
        }
        out->ms_stitch += now_ms() - ts;
    }
    /* the model's smoothing of the stitched map (before the ROI, so pixels just inside it
     * average with their true neighbours, not with the zeros outside) */
    if (c->map_sigma > 0) {
        double ts = now_ms();
        if ((rc = dd_gaussian_blur(acc, acc, wh, ww, c->map_sigma, s->blur.p, err))) return rc;
        out->ms_stitch += now_ms() - ts;
    }
    double t2 = now_ms();
    /* back to the input size */
    float *map = acc;
    const float *recon = accr;
    if (wh != ih || ww != iw) {
        if ((rc = dd_resize(acc, wh, ww, 1, s->out_map.p, ih, iw, err))) return rc;
        map = s->out_map.p;
        if (accr) {
            if ((rc = dd_resize(accr, wh, ww, 3, s->out_rec.p, ih, iw, err))) return rc;
            recon = s->out_rec.p;
        }
    }
    /* the region of interest: both maps 0 where it ignores the image, before anything
     * reads them (the input-size map was resized from the unmasked one above) */
    out->roi_pixels = (long)ih * iw;
    if (s->roi.mask) {
        if ((rc = roi_for(s, ih, iw, wh, ww, err))) return rc;
        out->work_roi = s->roi_work;
        out->roi = map == acc ? s->roi_work : s->roi_in;
        out->roi_pixels = map == acc ? s->roi_work_n : s->roi_in_n;
        zero_outside(acc, s->roi_work, whw);
        if (map != acc) zero_outside(map, s->roi_in, (size_t)ih * iw);
    }
    /* the image score: the model's k, scaled by the working area */
    long k = dd_model_topk(c);
    if (whw != hw) k = lround((double)k * (double)whw / (double)hw);
    if (k < 1) k = 1;
    if ((rc = dd_topk_mean(acc, (long)whw, k, &out->score, err))) return rc;
    out->ms_resample += now_ms() - t2;
    out->k = k;
    out->h = ih, out->w = iw;
    out->map = map, out->recon = recon;
    out->work_h = wh, out->work_w = ww, out->work_map = acc;
    out->tiles_y = ny, out->tiles_x = nx;
    return DD_OK;
}
