/* segnet.c — the segmentation sub-network (see segnet.h and docs/method.md §5). */
#include "nn/segnet.h"

#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

int dd_segnet_check(int h, int w, int width, dd_error *err) {
    if (h <= 0 || w <= 0 || h % 32 || w % 32)
        return dd_fail(err, DD_E_RANGE, "segmentation net: image size %dx%d must be positive and divisible by 32 (five 2x2 poolings)", h, w);
    if (width < 1 || width > 256)
        return dd_fail(err, DD_E_RANGE, "segmentation net: width %d out of range 1..256", width);
    return DD_OK;
}

static int declare_cbr(dd_cbr *b, dd_params *p, const char *conv_name, const char *bn_name, int cin,
                       int cout, int h, int w, int group, dd_error *err) {
    memset(b, 0, sizeof *b);
    b->h = h, b->w = w;
    int rc = dd_convl_declare(&b->conv, p, conv_name, cin, cout, 3, 1, 0, group, err);
    return rc ? rc : dd_bnl_declare(&b->bn, p, bn_name, cout, group, err);
}

int dd_segnet_declare(dd_segnet *s, int h, int w, int width, int in_ch, dd_params *p,
                      const char *prefix, int group, dd_error *err) {
    memset(s, 0, sizeof *s);
    int rc = dd_segnet_check(h, w, width, err);
    if (rc) return rc;
    s->h = h, s->w = w, s->width = width, s->in_ch = in_ch;
    int W = width;
    int enc_c[6] = {W, 2 * W, 4 * W, 8 * W, 8 * W, 8 * W};
    char cn[DD_NAME_MAX], bn[DD_NAME_MAX];
    int cin = in_ch, hh = h, ww = w;
    for (int b = 0; b < 6; b++) {
        for (int j = 0; j < 2; j++) {
            snprintf(cn, sizeof cn, "%s.encoder_segment.block%d.%d", prefix, b + 1, j ? 3 : 0);
            snprintf(bn, sizeof bn, "%s.encoder_segment.block%d.%d", prefix, b + 1, j ? 4 : 1);
            if ((rc = declare_cbr(&s->cbr[2 * b + j], p, cn, bn, cin, enc_c[b], hh, ww, group, err))) return rc;
            cin = enc_c[b];
        }
        if (b < 5) hh /= 2, ww /= 2;
    }
    const char *up_names[5] = {"up_b", "up1", "up2", "up3", "up4"};
    const char *db_names[5] = {"db_b", "db1", "db2", "db3", "db4"};
    int up_c[5] = {8 * W, 4 * W, 2 * W, W, W};
    for (int st = 0; st < 5; st++) {
        hh *= 2, ww *= 2;
        int skip_c = enc_c[4 - st];
        snprintf(cn, sizeof cn, "%s.decoder_segment.%s.1", prefix, up_names[st]);
        snprintf(bn, sizeof bn, "%s.decoder_segment.%s.2", prefix, up_names[st]);
        if ((rc = declare_cbr(&s->cbr[12 + 3 * st], p, cn, bn, cin, up_c[st], hh, ww, group, err))) return rc;
        cin = up_c[st] + skip_c;
        for (int j = 0; j < 2; j++) {
            snprintf(cn, sizeof cn, "%s.decoder_segment.%s.%d", prefix, db_names[st], j ? 3 : 0);
            snprintf(bn, sizeof bn, "%s.decoder_segment.%s.%d", prefix, db_names[st], j ? 4 : 1);
            if ((rc = declare_cbr(&s->cbr[13 + 3 * st + j], p, cn, bn, cin, up_c[st], hh, ww, group, err))) return rc;
            cin = up_c[st];
        }
    }
    s->ncbr = 27;
    snprintf(cn, sizeof cn, "%s.decoder_segment.fin_out.0", prefix);
    return dd_convl_declare(&s->head, p, cn, W, 1, 3, 1, 0, group, err);
}

void dd_segnet_init(dd_segnet *s, dd_params *p, dd_rng *r) {
    for (int i = 0; i < s->ncbr; i++) {
        dd_convl_init(&s->cbr[i].conv, p, r);
        dd_bnl_init(&s->cbr[i].bn, p);
    }
    dd_convl_init(&s->head, p, r);
}

int dd_segnet_build(dd_segnet *s, dd_engine *e, int n, int training, dd_conv_algo algo, dd_error *err) {
    s->eng = e;
    s->n = n, s->training = training;
    int rc;
    for (int i = 0; i < s->ncbr; i++)
        if ((rc = dd_convl_build(&s->cbr[i].conv, e, n, s->cbr[i].h, s->cbr[i].w, algo, training, err))) return rc;
    if ((rc = dd_convl_build(&s->head, e, n, s->h, s->w, algo, training, err))) return rc;
    return dd_engine_commit_scratch(e, err);
}


int dd_segnet_plan(dd_segnet *s, dd_arena *a, dd_error *err) {
    size_t N = (size_t)s->n, mx = N * s->h * s->w * (size_t)s->in_ch;
    for (int i = 0; i < s->ncbr; i++) {
        dd_cbr *b = &s->cbr[i];
        size_t hw = (size_t)b->h * b->w, v = N * hw * (b->conv.cin > b->conv.cout ? b->conv.cin : b->conv.cout);
        if (v > mx) mx = v;
    }
    s->max_act = mx;
    int rc;
    for (int k = 0; k < 3; k++) DD_ARENA_ALLOC(a, err, s->scratch[k], mx);
    for (int i = 0; i < s->ncbr; i++) {
        dd_cbr *b = &s->cbr[i];
        size_t n_out = N * b->h * b->w * b->conv.cout;
        if ((rc = dd_bnl_plan(&b->bn, a, err))) return rc;
        if (s->training) {
            DD_ARENA_ALLOC(a, err, b->c, n_out);
            DD_ARENA_ALLOC(a, err, b->dy, n_out);
        } else {
            b->c = s->scratch[0];
        }
        DD_ARENA_ALLOC(a, err, b->y, n_out);
    }
    for (int k = 0; k < 5; k++) {
        dd_cbr *src = &s->cbr[2 * k + 1];
        DD_ARENA_ALLOC(a, err, s->pool[k], N * (src->h / 2) * (src->w / 2) * src->conv.cout);
        dd_cbr *up = &s->cbr[12 + 3 * k], *db = &s->cbr[13 + 3 * k];
        DD_ARENA_ALLOC(a, err, s->upsampled[k], N * up->h * up->w * up->conv.cin);
        DD_ARENA_ALLOC(a, err, s->cat[k], N * db->h * db->w * db->conv.cin);
    }
    DD_ARENA_ALLOC(a, err, s->logits, N * s->h * s->w);
    DD_ARENA_ALLOC(a, err, s->mask, N * s->h * s->w);
    return DD_OK;
}

/* y = ReLU(BN(conv(x))) */
static int cbr_forward(dd_segnet *s, dd_cbr *b, dd_params *p, const float *x, dd_error *err) {
    dd_engine *e = s->eng;
    size_t pix = (size_t)s->n * b->h * b->w;
    b->x = x;
    int rc;
    if ((rc = dd_convl_forward(e, &b->conv, p, x, b->c, err)) ||
        (rc = dd_bnl_forward(e, &b->bn, p, b->c, b->y, pix, s->training, err)))
        return rc;
    dd_engine_backend(e)->relu_forward(e, b->y, b->y, pix * b->conv.cout);
    return DD_OK;
}

int dd_segnet_forward(dd_segnet *s, dd_params *p, const float *x, dd_error *err) {
    dd_engine *e = s->eng;
    const dd_backend *be = dd_engine_backend(e);
    int rc, n = s->n;
    const float *h = x;
    for (int blk = 0; blk < 6; blk++) {
        dd_cbr *a = &s->cbr[2 * blk], *b = &s->cbr[2 * blk + 1];
        if ((rc = cbr_forward(s, a, p, h, err)) || (rc = cbr_forward(s, b, p, a->y, err))) return rc;
        if (blk < 5) {
            if ((rc = be->maxpool2_forward(e, b->y, s->pool[blk], n, b->h, b->w, b->conv.cout, err))) return rc;
            h = s->pool[blk];
        } else {
            h = b->y;
        }
    }
    for (int st = 0; st < 5; st++) {
        dd_cbr *up = &s->cbr[12 + 3 * st], *d1 = &s->cbr[13 + 3 * st], *d2 = &s->cbr[14 + 3 * st];
        dd_cbr *skip = &s->cbr[2 * (4 - st) + 1];
        /* bilinear 2x (align corners) [N,h/2,w/2,c] -> [N,h,w,c], CBR, concat(up, skip), 2 CBR */
        be->upbilinear2_forward(e, h, s->upsampled[st], n, up->h / 2, up->w / 2, up->conv.cin);
        if ((rc = cbr_forward(s, up, p, s->upsampled[st], err))) return rc;
        be->concat_forward(e, up->y, up->conv.cout, skip->y, skip->conv.cout, s->cat[st], (size_t)n * up->h * up->w);
        if ((rc = cbr_forward(s, d1, p, s->cat[st], err)) || (rc = cbr_forward(s, d2, p, d1->y, err))) return rc;
        h = d2->y;
    }
    if ((rc = dd_convl_forward(e, &s->head, p, h, s->logits, err))) return rc;
    be->sigmoid_forward(e, s->logits, s->mask, (size_t)n * s->h * s->w);
    return DD_OK;
}

/* From b->dy: ReLU, BN and conv backward; d(input) into dx (acc as given). */
static int cbr_backward(dd_segnet *s, dd_cbr *b, dd_params *p, float *dx, int acc, dd_error *err) {
    dd_engine *e = s->eng;
    size_t pix = (size_t)s->n * b->h * b->w;
    float *S0 = s->scratch[0], *S1 = s->scratch[1];
    dd_engine_backend(e)->relu_backward(e, b->y, b->dy, S0, pix * b->conv.cout, 0);
    int rc = dd_bnl_backward(e, &b->bn, p, b->c, S0, S1, pix, 0, err);
    return rc ? rc : dd_convl_backward(e, &b->conv, p, b->x, S1, dx, acc, err);
}

int dd_segnet_backward(dd_segnet *s, dd_params *p, const float *dmask, float *dx, dd_error *err) {
    if (!s->training) return dd_fail(err, DD_E_INVALID, "segmentation net: built for inference, no backward");
    dd_engine *e = s->eng;
    const dd_backend *be = dd_engine_backend(e);
    int rc, n = s->n;
    float *S0 = s->scratch[0], *S2 = s->scratch[2];
    be->sigmoid_backward(e, s->mask, dmask, S0, (size_t)n * s->h * s->w, 0);
    dd_cbr *last = &s->cbr[26];
    if ((rc = dd_convl_backward(e, &s->head, p, last->y, S0, last->dy, 0, err))) return rc;
    for (int st = 4; st >= 0; st--) {
        dd_cbr *up = &s->cbr[12 + 3 * st], *d1 = &s->cbr[13 + 3 * st], *d2 = &s->cbr[14 + 3 * st];
        dd_cbr *skip = &s->cbr[2 * (4 - st) + 1];
        dd_cbr *prev = st ? &s->cbr[14 + 3 * (st - 1)] : &s->cbr[11];
        if ((rc = cbr_backward(s, d2, p, d1->dy, 0, err)) || (rc = cbr_backward(s, d1, p, S2, 0, err))) return rc;
        be->concat_backward(e, S2, up->dy, up->conv.cout, skip->dy, skip->conv.cout, (size_t)n * up->h * up->w, 0, 0);
        if ((rc = cbr_backward(s, up, p, S2, 0, err))) return rc;
        be->upbilinear2_backward(e, S2, prev->dy, n, up->h / 2, up->w / 2, up->conv.cin, 0);
    }
    for (int blk = 5; blk >= 0; blk--) {
        dd_cbr *a = &s->cbr[2 * blk], *b = &s->cbr[2 * blk + 1];
        if ((rc = cbr_backward(s, b, p, a->dy, 0, err))) return rc;
        if (blk == 0) return cbr_backward(s, a, p, dx, 0, err);
        if ((rc = cbr_backward(s, a, p, S2, 0, err))) return rc;
        /* into the previous block's output, which the decoder already wrote */
        dd_cbr *pb = &s->cbr[2 * blk - 1];
        if ((rc = be->maxpool2_backward(e, pb->y, S2, pb->dy, n, pb->h, pb->w, pb->conv.cout, 1, err))) return rc;
    }
    return DD_OK;
}

void dd_segnet_free(dd_segnet *s) {
    for (int i = 0; i < s->ncbr; i++) dd_convl_free(&s->cbr[i].conv);
    dd_convl_free(&s->head);
}
