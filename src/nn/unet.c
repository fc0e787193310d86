/* unet.c — the denoiser U-Net (see unet.h and docs/method.md §4). */
#include "nn/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

void dd_unet_config_paper(dd_unet_config *c, int h, int w) {
    memset(c, 0, sizeof *c);
    c->h = h, c->w = w, c->in_ch = 3, c->base = 128, c->levels = 6;
    int m[6] = {1, 1, 2, 2, 4, 4};
    memcpy(c->mult, m, sizeof m);
    c->res_blocks = 2;
    c->n_attn = 3;
    c->attn[0] = 32, c->attn[1] = 16, c->attn[2] = 8;
    c->heads = 4;
    c->groups = 32;
}

int dd_unet_config_check(const dd_unet_config *c, dd_error *err) {
    if (c->levels < 1 || c->levels > DD_UNET_MAX_LEVELS)
        return dd_fail(err, DD_E_RANGE, "denoiser: channel_mult must have 1..%d entries (got %d)", DD_UNET_MAX_LEVELS, c->levels);
    int div = 1 << (c->levels - 1);
    if (c->h <= 0 || c->w <= 0 || c->h % div || c->w % div)
        return dd_fail(err, DD_E_RANGE, "denoiser: image size %dx%d must be positive and divisible by %d (2^(levels-1) for %d levels)",
                       c->h, c->w, div, c->levels);
    if (c->base < 1 || c->base > 1024) return dd_fail(err, DD_E_RANGE, "denoiser: base channels %d out of range 1..1024", c->base);
    if (c->base & 1) return dd_fail(err, DD_E_RANGE, "denoiser: base channels %d must be even (timestep embedding)", c->base);
    for (int i = 0; i < c->levels; i++)
        if (c->mult[i] < 1 || c->mult[i] > 16) return dd_fail(err, DD_E_RANGE, "denoiser: channel_mult[%d] = %d out of range 1..16", i, c->mult[i]);
    if (c->res_blocks < 1 || c->res_blocks > 8) return dd_fail(err, DD_E_RANGE, "denoiser: res_blocks %d out of range 1..8", c->res_blocks);
    if (c->heads < 1) return dd_fail(err, DD_E_RANGE, "denoiser: heads must be >= 1");
    if (c->in_ch < 1 || c->in_ch > 4) return dd_fail(err, DD_E_RANGE, "denoiser: in_ch %d out of range 1..4", c->in_ch);
    if (c->groups < 1) return dd_fail(err, DD_E_RANGE, "denoiser: groups must be >= 1");
    for (int i = 0; i < c->levels; i++) {
        int ch = c->base * c->mult[i];
        if (ch % c->heads) return dd_fail(err, DD_E_RANGE, "denoiser: %d channels at level %d not divisible by %d heads", ch, i, c->heads);
    }
    return DD_OK;
}

static int has_attn(const dd_unet_config *c, int h, int w) {
    int s = h < w ? h : w;
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn[i] == s) return 1;
    return 0;
}

int dd_unet_attn_at_level(const dd_unet_config *c, int level) {
    return level >= 0 && level < c->levels && has_attn(c, c->h >> level, c->w >> level);
}

static int declare_res(dd_resblock *rb, dd_params *p, const char *name, int in, int out, int mode,
                       int emb_dim, int groups, int group, dd_error *err) {
    char nm[DD_NAME_MAX];
    memset(rb, 0, sizeof *rb);
    rb->in = in, rb->out = out, rb->mode = mode;
    int rc;
#define NM(s) (snprintf(nm, sizeof nm, "%s.%s", name, s), nm)
    if ((rc = dd_gnl_declare(&rb->gn1, p, NM("in_layers.0"), in, groups, group, err)) ||
        (rc = dd_convl_declare(&rb->conv1, p, NM("in_layers.2"), in, out, 3, 1, 0, group, err)) ||
        (rc = dd_linl_declare(&rb->emb, p, NM("embed_layers.1"), emb_dim, out, group, err)) ||
        (rc = dd_gnl_declare(&rb->gn2, p, NM("out_layers.0"), out, groups, group, err)) ||
        (rc = dd_convl_declare(&rb->conv2, p, NM("out_layers.3"), out, out, 3, 1, 1, group, err)))
        return rc;
    rb->has_skip = in != out;
    if (rb->has_skip && (rc = dd_convl_declare(&rb->skip, p, NM("skip_connection"), in, out, 1, 1, 0, group, err)))
        return rc;
#undef NM
    return DD_OK;
}

/* Conv1d weights are [O, I, 1] in PyTorch; same numbers as a linear layer's [O, I]. */
static void as_conv1d(dd_params *p, int idx) {
    dd_param *t = &p->items[idx];
    t->ndim = 3;
    t->shape[2] = 1;
}

static int declare_attn(dd_attnblock *at, dd_params *p, const char *name, int c, int heads,
                        int groups, int group, dd_error *err) {
    char nm[DD_NAME_MAX];
    memset(at, 0, sizeof *at);
    at->c = c, at->heads = heads;
    int rc;
    snprintf(nm, sizeof nm, "%s.norm", name);
    if ((rc = dd_gnl_declare(&at->norm, p, nm, c, groups, group, err))) return rc;
    snprintf(nm, sizeof nm, "%s.to_qkv", name);
    if ((rc = dd_linl_declare(&at->qkv, p, nm, c, 3 * c, group, err))) return rc;
    snprintf(nm, sizeof nm, "%s.proj_out", name);
    if ((rc = dd_linl_declare(&at->proj, p, nm, c, c, group, err))) return rc;
    as_conv1d(p, at->qkv.w);
    as_conv1d(p, at->proj.w);
    return DD_OK;
}

static dd_umod *new_mod(dd_unet *u, int kind, int section, dd_error *err) {
    if (u->nmod >= DD_UNET_MAX_MODULES) {
        dd_fail(err, DD_E_RANGE, "denoiser: more than %d modules", DD_UNET_MAX_MODULES);
        return NULL;
    }
    dd_umod *m = &u->mod[u->nmod++];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->section = section;
    m->skip_src = -1;
    return m;
}

int dd_unet_declare(dd_unet *u, const dd_unet_config *cfg, dd_params *p, const char *prefix,
                    int group, dd_error *err) {
    memset(u, 0, sizeof *u);
    int rc = dd_unet_config_check(cfg, err);
    if (rc) return rc;
    u->cfg = *cfg;
    const dd_unet_config *c = cfg;
    int C = c->base, E = 4 * C, G = c->groups;
    char nm[DD_NAME_MAX];
    snprintf(nm, sizeof nm, "%s.time_embedding.1", prefix);
    if ((rc = dd_linl_declare(&u->temb1, p, nm, C, E, group, err))) return rc;
    snprintf(nm, sizeof nm, "%s.time_embedding.3", prefix);
    if ((rc = dd_linl_declare(&u->temb2, p, nm, E, E, group, err))) return rc;

    int h = c->h, w = c->w, ch = C, k = 0;
    int skip_ch[DD_UNET_MAX_MODULES], skip_mod[DD_UNET_MAX_MODULES], nskip = 0;
    /* Encoder: down.0 is the input conv. */
    dd_umod *m = new_mod(u, DD_MOD_CONV, 0, err);
    if (!m) return err->code;
    snprintf(nm, sizeof nm, "%s.down.0.0", prefix);
    if ((rc = dd_convl_declare(&m->conv, p, nm, c->in_ch, C, 3, 1, 0, group, err))) return rc;
    m->c_out = C, m->ho = h, m->wo = w, m->unit_end = 1;
    skip_ch[nskip] = C, skip_mod[nskip++] = u->nmod - 1;
    k = 1;
    for (int lvl = 0; lvl < c->levels; lvl++) {
        for (int r = 0; r < c->res_blocks; r++, k++) {
            int out = C * c->mult[lvl];
            if (!(m = new_mod(u, DD_MOD_RES, 0, err))) return err->code;
            snprintf(nm, sizeof nm, "%s.down.%d.0", prefix, k);
            if ((rc = declare_res(&m->rb, p, nm, ch, out, 0, E, G, group, err))) return rc;
            m->rb.h = m->rb.ho = h, m->rb.w = m->rb.wo = w;
            m->c_out = out, m->ho = h, m->wo = w;
            ch = out;
            if (has_attn(c, h, w)) {
                if (!(m = new_mod(u, DD_MOD_ATTN, 0, err))) return err->code;
                snprintf(nm, sizeof nm, "%s.down.%d.1", prefix, k);
                if ((rc = declare_attn(&m->at, p, nm, ch, c->heads, G, group, err))) return rc;
                m->at.h = h, m->at.w = w;
                m->c_out = ch, m->ho = h, m->wo = w;
            }
            m->unit_end = 1;
            skip_ch[nskip] = ch, skip_mod[nskip++] = u->nmod - 1;
        }
        if (lvl != c->levels - 1) {
            if (!(m = new_mod(u, DD_MOD_RES, 0, err))) return err->code;
            snprintf(nm, sizeof nm, "%s.down.%d.0", prefix, k++);
            if ((rc = declare_res(&m->rb, p, nm, ch, ch, 1, E, G, group, err))) return rc;
            m->rb.h = h, m->rb.w = w, h /= 2, w /= 2;
            m->rb.ho = h, m->rb.wo = w;
            m->c_out = ch, m->ho = h, m->wo = w, m->unit_end = 1;
            skip_ch[nskip] = ch, skip_mod[nskip++] = u->nmod - 1;
        }
    }
    /* Middle: ResBlock, Attention, ResBlock. */
    for (int i = 0; i < 3; i++) {
        if (!(m = new_mod(u, i == 1 ? DD_MOD_ATTN : DD_MOD_RES, 1, err))) return err->code;
        snprintf(nm, sizeof nm, "%s.middle.%d", prefix, i);
        if (i == 1) {
            if ((rc = declare_attn(&m->at, p, nm, ch, c->heads, G, group, err))) return rc;
            m->at.h = h, m->at.w = w;
        } else {
            if ((rc = declare_res(&m->rb, p, nm, ch, ch, 0, E, G, group, err))) return rc;
            m->rb.h = m->rb.ho = h, m->rb.w = m->rb.wo = w;
        }
        m->c_out = ch, m->ho = h, m->wo = w;
    }
    /* Decoder. */
    k = 0;
    for (int lvl = c->levels - 1; lvl >= 0; lvl--) {
        for (int r = 0; r <= c->res_blocks; r++, k++) {
            int out = C * c->mult[lvl];
            int sc = skip_ch[--nskip];
            if (!(m = new_mod(u, DD_MOD_RES, 2, err))) return err->code;
            snprintf(nm, sizeof nm, "%s.up.%d.0", prefix, k);
            if ((rc = declare_res(&m->rb, p, nm, ch + sc, out, 0, E, G, group, err))) return rc;
            m->rb.h = m->rb.ho = h, m->rb.w = m->rb.wo = w;
            m->takes_skip = 1, m->skip_src = skip_mod[nskip];
            m->c_out = out, m->ho = h, m->wo = w;
            ch = out;
            int sub = 1;
            if (has_attn(c, h, w)) {
                if (!(m = new_mod(u, DD_MOD_ATTN, 2, err))) return err->code;
                snprintf(nm, sizeof nm, "%s.up.%d.%d", prefix, k, sub++);
                if ((rc = declare_attn(&m->at, p, nm, ch, c->heads, G, group, err))) return rc;
                m->at.h = h, m->at.w = w;
                m->c_out = ch, m->ho = h, m->wo = w;
            }
            if (lvl != 0 && r == c->res_blocks) {
                if (!(m = new_mod(u, DD_MOD_RES, 2, err))) return err->code;
                snprintf(nm, sizeof nm, "%s.up.%d.%d", prefix, k, sub++);
                if ((rc = declare_res(&m->rb, p, nm, ch, ch, 2, E, G, group, err))) return rc;
                m->rb.h = h, m->rb.w = w, h *= 2, w *= 2;
                m->rb.ho = h, m->rb.wo = w;
                m->c_out = ch, m->ho = h, m->wo = w;
            }
            m->unit_end = 1;
        }
    }
    snprintf(nm, sizeof nm, "%s.out.0", prefix);
    if ((rc = dd_gnl_declare(&u->out_gn, p, nm, ch, G, group, err))) return rc;
    snprintf(nm, sizeof nm, "%s.out.2", prefix);
    return dd_convl_declare(&u->out_conv, p, nm, ch, c->in_ch, 3, 1, 1, group, err);
}

void dd_unet_init(dd_unet *u, dd_params *p, dd_rng *r) {
    dd_linl_init(&u->temb1, p, r);
    dd_linl_init(&u->temb2, p, r);
    for (int i = 0; i < u->nmod; i++) {
        dd_umod *m = &u->mod[i];
        if (m->kind == DD_MOD_CONV) dd_convl_init(&m->conv, p, r);
        if (m->kind == DD_MOD_RES) {
            dd_resblock *b = &m->rb;
            dd_gnl_init(&b->gn1, p);
            dd_convl_init(&b->conv1, p, r);
            dd_linl_init(&b->emb, p, r);
            dd_gnl_init(&b->gn2, p);
            dd_convl_init(&b->conv2, p, r);
            if (b->has_skip) dd_convl_init(&b->skip, p, r);
        }
        if (m->kind == DD_MOD_ATTN) {
            dd_gnl_init(&m->at.norm, p);
            dd_linl_init(&m->at.qkv, p, r);
            dd_linl_init(&m->at.proj, p, r);
            /* proj_out is zero-initialised (guided-diffusion zero_module). */
            memset(dd_params_value(p, m->at.proj.w), 0, (size_t)m->at.c * m->at.c * sizeof(float));
            memset(dd_params_value(p, m->at.proj.b), 0, (size_t)m->at.c * sizeof(float));
        }
    }
    dd_gnl_init(&u->out_gn, p);
    dd_convl_init(&u->out_conv, p, r);
}

int dd_unet_build(dd_unet *u, dd_engine *e, int n, int chunk, int training, dd_conv_algo algo,
                  dd_error *err) {
    if (n < 1 || chunk < 1 || n % chunk || (training && chunk != n))
        return dd_fail(err, DD_E_INVALID, "denoiser: %d samples in passes of %d (a divisor of the samples; training: all in one)",
                       n, chunk);
    u->eng = e;
    u->n = n;
    u->chunk = chunk;
    u->training = training;
    int rc;
    /* the convolutions see one pass of chunk samples */
    for (int i = 0; i < u->nmod; i++) {
        dd_umod *m = &u->mod[i];
        if (m->kind == DD_MOD_CONV &&
            (rc = dd_convl_build(&m->conv, e, chunk, m->ho, m->wo, algo, training, err)))
            return rc;
        if (m->kind == DD_MOD_RES) {
            dd_resblock *b = &m->rb;
            b->conv2.accumulate = !training; /* res_forward: conv2 adds onto the residual */
            if ((rc = dd_convl_build(&b->conv1, e, chunk, b->ho, b->wo, algo, training, err)) ||
                (rc = dd_convl_build(&b->conv2, e, chunk, b->ho, b->wo, algo, training, err)) ||
                (b->has_skip && (rc = dd_convl_build(&b->skip, e, chunk, b->ho, b->wo, algo, training, err))))
                return rc;
        }
    }
    if ((rc = dd_convl_build(&u->out_conv, e, chunk, u->cfg.h, u->cfg.w, algo, training, err))) return rc;
    /* Fold the time embedding into conv1's bias (res_forward) only where the convolutions add
     * the bias after the products, as oneDNN's NHWC AVX-512 kernels do (the ones that also take
     * conv2's sum post-op): there conv + (b + e) is one rounding whether e comes in the bias or
     * after a zero-bias conv, so passes stay bit-identical (checked by test_model_torch's
     * passes). oneDNN's blocked AVX2 kernels start the accumulator at the bias instead, which
     * would round the two ways differently: they keep conv + b, then + e. */
    u->fold_emb = 0;
    for (int i = 0; i < u->nmod && !training; i++)
        if (u->mod[i].kind == DD_MOD_RES) {
            u->fold_emb = dd_convl_accumulates(&u->mod[i].rb.conv2);
            break;
        }
    free(u->t);
    u->t = calloc((size_t)n, sizeof *u->t);
    if (!u->t) return dd_fail(err, DD_E_NOMEM, "denoiser: out of memory");
    return dd_engine_commit_scratch(e, err);
}


/* Inference: the most each shared buffer holds in one pass of N samples (floats), by the
 * assignments below and in res_forward / attn_forward: S0 a1, h1 of a resampling block
 * or h2 of another, the attention's hn, the head's activation; S1 a1m, h1 (= a2) of a
 * plain block or h2 of a resampling one, the attention's qkv; S2 xm of a resampling
 * block with a skip convolution, the attention's a; S3 a decoder block's concatenated
 * input; pp each of the two buffers the middle and decoder outputs alternate in. Sized
 * each to its own need rather than all to the largest activation, the touched memory
 * is what the plan hands out, so the seg net, which reuses these bytes, adds none. */
static void infer_sizes(const dd_unet *u, size_t N, size_t s[4], size_t *pp) {
    s[0] = s[1] = s[2] = s[3] = *pp = 0;
#define GROW(k, v) do { size_t v_ = (v); if (v_ > (k)) (k) = v_; } while (0)
    for (int i = 0; i < u->nmod; i++) {
        const dd_umod *m = &u->mod[i];
        size_t hw = (size_t)m->ho * m->wo;
        if (m->takes_skip) GROW(s[3], N * hw * (u->mod[i - 1].c_out + u->mod[m->skip_src].c_out));
        if (m->section != 0) GROW(*pp, N * hw * m->c_out);
        if (m->kind == DD_MOD_RES) {
            const dd_resblock *b = &m->rb;
            size_t ihw = (size_t)b->h * b->w, ohw = (size_t)b->ho * b->wo;
            GROW(s[0], N * ihw * b->in);
            GROW(s[0], N * ohw * b->out);
            GROW(s[1], N * ohw * b->out);
            if (b->mode) GROW(s[1], N * ohw * b->in);
            if (b->mode && b->has_skip) GROW(s[2], N * ohw * b->in);
        }
        if (m->kind == DD_MOD_ATTN) {
            GROW(s[0], N * hw * m->at.c);
            GROW(s[1], N * hw * 3 * m->at.c);
            GROW(s[2], N * hw * m->at.c);
        }
    }
    GROW(s[0], N * u->cfg.h * u->cfg.w * (size_t)u->mod[u->nmod - 1].c_out);
#undef GROW
}

int dd_unet_plan(dd_unet *u, dd_arena *a, dd_error *err) {
    const dd_unet_config *c = &u->cfg;
    /* N: the samples of one pass (every image-sized buffer); NE: all samples (the
     * embeddings, each block's projection of them, the output) */
    size_t N = (size_t)u->chunk, NE = (size_t)u->n, C = (size_t)c->base, E = 4 * C;
    int tr = u->training, rc;
    /* the output first: what a caller reads after the forward; the rest is working memory */
    DD_ARENA_ALLOC(a, err, u->eps, NE * c->h * c->w * (size_t)c->in_ch);
    u->work_from = a->used;
    /* Largest temporary: over module inputs/outputs, concat inputs and qkv. */
    size_t mx = N * c->h * c->w * (size_t)c->in_ch;
    for (int i = 0; i < u->nmod; i++) {
        dd_umod *m = &u->mod[i];
        size_t hw = (size_t)m->ho * m->wo, v;
        if (m->kind == DD_MOD_RES) {
            size_t ihw = (size_t)m->rb.h * m->rb.w;
            v = N * ihw * m->rb.in;
            if (v > mx) mx = v;
            v = N * hw * (m->rb.in > m->rb.out ? m->rb.in : m->rb.out);
            if (v > mx) mx = v;
        }
        if (m->kind == DD_MOD_ATTN && (v = N * hw * 3 * m->c_out) > mx) mx = v;
        if ((v = N * hw * m->c_out) > mx) mx = v;
    }
    u->max_act = mx;
    /* training: every scratch buffer of the largest size (backward uses them in turn for
     * activations and gradients of every shape) */
    size_t need[4] = {mx, mx, mx, mx}, pp_need = 0;
    if (!tr) infer_sizes(u, N, need, &pp_need);
    for (int s = 0; s < 4; s++) DD_ARENA_ALLOC(a, err, u->scratch[s], need[s]);
    DD_ARENA_ALLOC(a, err, u->temb, NE * C);
    DD_ARENA_ALLOC(a, err, u->e1, NE * E);
    DD_ARENA_ALLOC(a, err, u->s1, NE * E);
    DD_ARENA_ALLOC(a, err, u->emb, NE * E);
    DD_ARENA_ALLOC(a, err, u->semb, NE * E);
    if (tr) {
        DD_ARENA_ALLOC(a, err, u->dsemb, NE * E);
        DD_ARENA_ALLOC(a, err, u->demb, NE * E);
        DD_ARENA_ALLOC(a, err, u->ds1, NE * E);
        DD_ARENA_ALLOC(a, err, u->de1, NE * E);
    }
    /* Inference: decoder and middle outputs alternate between two buffers; the
     * encoder outputs must all live until the decoder pops them.
     * Training: every output is kept for backward. The output gradient of a skip (an
     * encoder unit's output) collects from its decoder block and from the next encoder
     * module, so it has its own buffer; every other output gradient lives from the
     * backward of the module after it to its own module's backward, so they alternate
     * between two buffers by module index (neighbours differ). */
    float *pingpong[2] = {NULL, NULL}, *dpingpong[2] = {NULL, NULL};
    if (!tr) {
        DD_ARENA_ALLOC(a, err, pingpong[0], pp_need);
        DD_ARENA_ALLOC(a, err, pingpong[1], pp_need);
    } else {
        size_t dpp = 0;
        for (int i = 0; i < u->nmod; i++) {
            const dd_umod *m = &u->mod[i];
            size_t v = N * m->ho * m->wo * m->c_out;
            if (!(m->section == 0 && m->unit_end) && v > dpp) dpp = v;
        }
        DD_ARENA_ALLOC(a, err, dpingpong[0], dpp);
        DD_ARENA_ALLOC(a, err, dpingpong[1], dpp);
    }
    int pp = 0;
    for (int i = 0; i < u->nmod; i++) {
        dd_umod *m = &u->mod[i];
        size_t hw = (size_t)m->ho * m->wo, out_n = N * hw * m->c_out;
        if (tr || m->section == 0) DD_ARENA_ALLOC(a, err, m->out, out_n);
        else {
            m->out = pingpong[pp];
            pp ^= 1;
        }
        if (tr && m->section == 0 && m->unit_end) DD_ARENA_ALLOC(a, err, m->dout, out_n);
        else if (tr) m->dout = dpingpong[i & 1];
        if (m->takes_skip) {
            /* Training: a decoder block's input is built in S2, which a block without
             * resampling does not use otherwise (res_forward); res_backward rebuilds it
             * there (a copy of two stored outputs) once S2's recomputed a2 is spent. */
            m->in_cat = tr ? u->scratch[2] : u->scratch[3];
        }
        if (m->kind == DD_MOD_RES) {
            dd_resblock *b = &m->rb;
            size_t ohw = (size_t)b->ho * b->wo;
            if ((rc = dd_gnl_plan(&b->gn1, a, (int)N, err)) || (rc = dd_gnl_plan(&b->gn2, a, (int)N, err))) return rc;
            DD_ARENA_ALLOC(a, err, b->eproj, NE * b->out);
            if (tr) {
                /* Training keeps x, h1 and the GroupNorm statistics; the activations
                 * a1 = SiLU(GN1(x)), its resampled a1m and a2 = SiLU(GN2(h1)) live in the
                 * shared scratch and res_backward recomputes them (the same calls on the
                 * same inputs: the same bits), which saves about a third of the training
                 * activations for one GroupNorm+SiLU pass per block. */
                b->a1 = u->scratch[1];
                b->a1m = u->scratch[2];
                b->a2 = u->scratch[3];
                /* the resampled input only for a skip convolution's weight gradient;
                 * without one it is built in the output (res_forward) */
                if (b->mode && b->has_skip) DD_ARENA_ALLOC(a, err, b->xm, N * ohw * b->in);
                DD_ARENA_ALLOC(a, err, b->h1, N * ohw * b->out);
                b->h2 = u->scratch[0];
            } else {
                /* Temporaries shared by all blocks. conv1 reads a1 (S0) or a1m (S1) and
                 * writes the other; GN2 runs in place; conv2 writes the remaining one. */
                b->a1 = u->scratch[0];
                b->a1m = u->scratch[1];
                b->xm = b->mode && b->has_skip ? u->scratch[2] : NULL;
                b->h1 = b->mode ? u->scratch[0] : u->scratch[1];
                b->a2 = b->h1;
                b->h2 = b->mode ? u->scratch[1] : u->scratch[0];
            }
        }
        if (m->kind == DD_MOD_ATTN) {
            dd_attnblock *t = &m->at;
            size_t l = hw;
            if ((rc = dd_gnl_plan(&t->norm, a, (int)N, err))) return rc;
            if (tr) {
                DD_ARENA_ALLOC(a, err, t->hn, N * l * t->c);
                DD_ARENA_ALLOC(a, err, t->qkvb, N * l * 3 * t->c);
                DD_ARENA_ALLOC(a, err, t->a, N * l * t->c);
                DD_ARENA_ALLOC(a, err, t->probs, N * t->heads * l * l);
            } else {
                t->hn = u->scratch[0];
                t->qkvb = u->scratch[1];
                t->a = u->scratch[2];
                DD_ARENA_ALLOC(a, err, t->probs, l * l);
            }
        }
    }
    if ((rc = dd_gnl_plan(&u->out_gn, a, (int)N, err))) return rc;
    /* the head's SiLU(GN(x)): a temporary; training rebuilds it in backward */
    u->head_a = tr ? u->scratch[1] : u->scratch[0];
    /* Inference with bf16 convolutions: the GroupNorm+SiLU outputs that a convolution
     * reads next (conv1 of a block without resampling, every conv2, the head) are written
     * in bf16 into one buffer of their largest size instead of float32 that the
     * convolution would convert (measured: bench/README.md "bf16 activations and the
     * inference softmax"). */
    u->act16 = NULL;
    if (!tr && dd_convl_takes_bf16(&u->out_conv)) {
        size_t n16 = N * c->h * c->w * (size_t)u->mod[u->nmod - 1].c_out;
        for (int i = 0; i < u->nmod; i++) {
            const dd_resblock *b = &u->mod[i].rb;
            if (u->mod[i].kind != DD_MOD_RES) continue;
            size_t v1 = b->mode ? 0 : N * b->h * b->w * (size_t)b->in, v2 = N * b->ho * b->wo * (size_t)b->out;
            if (v1 > n16) n16 = v1;
            if (v2 > n16) n16 = v2;
        }
        float *buf;
        DD_ARENA_ALLOC(a, err, buf, (n16 + 1) / 2);
        u->act16 = (uint16_t *)buf;
    }
    int cmax = 0;
    for (int i = 0; i < u->nmod; i++) cmax = u->mod[i].c_out > cmax ? u->mod[i].c_out : cmax;
    if (tr) DD_ARENA_ALLOC(a, err, u->deproj, N * (size_t)cmax);
    else {
        DD_ARENA_ALLOC(a, err, u->zeros, (size_t)cmax);
        u->zeros_n = cmax;
    }
    /* Attention backward needs an [L,L] scratch for the largest attention map. */
    size_t ll = 0;
    for (int i = 0; tr && i < u->nmod; i++)
        if (u->mod[i].kind == DD_MOD_ATTN) {
            size_t l = (size_t)u->mod[i].ho * u->mod[i].wo;
            if (l * l > ll) ll = l * l;
        }
    if (ll) DD_ARENA_ALLOC(a, err, u->lscratch, ll);
    return DD_OK;
}

/* ---- forward ---- */

/* y = conv(SiLU(GN(x))) [N,hw,...]: the activation in bf16 (act16) where the inference
 * plan has that buffer and the convolution reads bf16 (the same bits, without oneDNN's
 * conversion; see dd_unet_plan), else in float32 at a. */
static int gn_silu_conv(dd_engine *e, const dd_gnl *gn, const dd_convl *conv, dd_params *p, const float *x,
                        float *a, uint16_t *act16, const float *bias, float *y, int n, int hw, dd_error *err) {
    int rc;
    if (act16 && dd_convl_takes_bf16(conv)) {
        if ((rc = dd_gnl_forward_bf16(e, gn, p, x, act16, n, hw, 1, err))) return rc;
        return dd_convl_forward_bf16_b(e, conv, p, act16, bias, y, err);
    }
    if ((rc = dd_gnl_forward(e, gn, p, x, a, n, hw, 1, err))) return rc;
    return dd_convl_forward_b(e, conv, p, a, bias, y, err);
}

/* eproj: this pass's rows of the block's embedding projection [n,out] (dd_unet_forward
 * computes it for all samples before the passes). zeros: NULL in training (and where the
 * embedding is not folded, dd_unet_build's fold_emb); else
 * [out] zeros, and eproj already holds conv1's bias (dd_unet_forward adds it), so that a
 * pass of one sample hands its row to conv1 as the bias: conv1 + b + emb as one addition
 * to the accumulator, without a pass over h1. A pass of several samples runs conv1 with
 * the zero bias and adds the rows after it: the same single f32 addition, so passes of
 * one and of several samples give the same bits (unet.h, Passes). */
static int res_forward(dd_engine *e, dd_resblock *b, dd_params *p, const float *x,
                       const float *eproj, const float *zeros, float *out, int n, uint16_t *act16, dd_error *err) {
    const dd_backend *be = dd_engine_backend(e);
    int rc;
    size_t ihw = (size_t)b->h * b->w, ohw = (size_t)b->ho * b->wo;
    int co = b->out;
    b->x = x;
    /* Without a skip convolution (every resampling block: in == out) the resampled
     * input is only the residual, so it is built in out and h2 added to it at the end:
     * out = xm + h2 as add_forward computes it, without a buffer of its own. */
    float *xm = b->has_skip ? b->xm : out;
    const float *xs = x;
    const float *bias1 = zeros ? (n == 1 ? eproj : zeros) : NULL;
    if (b->mode == 0) {
        /* h1 = conv1(a1), a1 = SiLU(GN(x)) [N,h,w,in] */
        if ((rc = gn_silu_conv(e, &b->gn1, &b->conv1, p, x, b->a1, act16, bias1, b->h1, n, (int)ihw, err))) return rc;
    } else {
        /* a1 = SiLU(GN(x)), resampled with x, then conv1 */
        if ((rc = dd_gnl_forward(e, &b->gn1, p, x, b->a1, n, (int)ihw, 1, err))) return rc;
        if (b->mode == 1) { /* 2x2 average pooling of both paths -> [N,ho,wo,in] */
            if ((rc = be->avgpool2_forward(e, b->a1, b->a1m, n, b->h, b->w, b->in, err)) ||
                (rc = be->avgpool2_forward(e, x, xm, n, b->h, b->w, b->in, err)))
                return rc;
        } else { /* 2x nearest upsampling -> [N,ho,wo,in] */
            be->upnearest2_forward(e, b->a1, b->a1m, n, b->h, b->w, b->in);
            be->upnearest2_forward(e, x, xm, n, b->h, b->w, b->in);
        }
        xs = xm;
        if ((rc = dd_convl_forward_b(e, &b->conv1, p, b->a1m, bias1, b->h1, err))) return rc;
    }
    /* h1 += Linear(SiLU(emb)) broadcast over pixels [N,ho,wo,out] (folded into conv1's
     * bias for a one-sample inference pass) */
    if (!(zeros && n == 1)) be->add_bcast_forward(e, b->h1, eproj, n, ohw, co);
    /* h2 = conv2(SiLU(GN(h1))); out = skip(xs) + h2 */
    size_t total = (size_t)n * ohw * co;
    if (dd_convl_accumulates(&b->conv2)) {
        /* Inference: the residual goes into out first and conv2 adds h2 to it inside the
         * convolution (a sum post-op): out = residual + h2, the same one addition per value
         * as below, without h2's buffer and the pass that adds it. */
        if (b->has_skip) {
            if ((rc = dd_convl_forward(e, &b->skip, p, xs, out, err))) return rc;
        } else if (xs != out) {
            be->copy_d2d(e, out, xs, total * sizeof(float));
        }
        return gn_silu_conv(e, &b->gn2, &b->conv2, p, b->h1, b->a2, act16, NULL, out, n, (int)ohw, err);
    }
    if ((rc = gn_silu_conv(e, &b->gn2, &b->conv2, p, b->h1, b->a2, act16, NULL, b->h2, n, (int)ohw, err))) return rc;
    if (b->has_skip) {
        if ((rc = dd_convl_forward(e, &b->skip, p, xs, out, err))) return rc;
        be->copy_grad(e, b->h2, out, total, 1); /* out += h2 */
    } else if (xs == out) {
        be->copy_grad(e, b->h2, out, total, 1); /* out = xm + h2 */
    } else {
        be->add_forward(e, xs, b->h2, out, total);
    }
    return DD_OK;
}

/* y[N*L,out] = linear(x[N*L,in]). Inference runs one product per sample (L rows each):
 * sgemm kernels may round a row differently depending on the row count M (measured:
 * oneDNN 2.6's AVX2 sgemm, M 2048 vs 4096, 303 of 393,216 outputs differ; AVX-512 none),
 * and the inference denoiser's result must not depend on how many samples a pass holds
 * (unet.h "Passes"). Training runs one pass of all samples: one product. */
static int linl_rows(dd_engine *e, const dd_linl *lin, const dd_params *p, const float *x, float *y,
                     int n, int l, int training, dd_error *err) {
    if (training) return dd_linl_forward(e, lin, p, x, y, n * l, err);
    for (int s = 0; s < n; s++) {
        int rc = dd_linl_forward(e, lin, p, x + (size_t)s * l * lin->in, y + (size_t)s * l * lin->out, l, err);
        if (rc) return rc;
    }
    return DD_OK;
}

static int attn_forward(dd_engine *e, dd_attnblock *t, dd_params *p, const float *x, float *out,
                        int n, int training, dd_error *err) {
    const dd_backend *be = dd_engine_backend(e);
    int rc;
    int l = t->h * t->w, m = n * l;
    t->x = x;
    /* hn = GN(x) [N,L,C]; qkv = to_qkv(hn) [N,L,3C]; a = attention [N,L,C]; out = x + proj(a) */
    if ((rc = dd_gnl_forward(e, &t->norm, p, x, t->hn, n, l, 0, err)) ||
        (rc = linl_rows(e, &t->qkv, p, t->hn, t->qkvb, n, l, training, err)) ||
        (rc = be->attention_forward(e, t->qkvb, t->a, t->probs, training, n, l, t->c, t->heads, err)) ||
        (rc = linl_rows(e, &t->proj, p, t->a, out, n, l, training, err)))
        return rc;
    be->copy_grad(e, x, out, (size_t)m * t->c, 1); /* out += x */
    return DD_OK;
}

int dd_unet_forward(dd_unet *u, dd_params *p, const float *x, const int *t, dd_error *err) {
    const dd_unet_config *c = &u->cfg;
    dd_engine *e = u->eng;
    const dd_backend *be = dd_engine_backend(e);
    int n = u->n, ns = u->chunk, C = c->base, rc;
    for (int i = 0; i < n; i++) {
        if (t[i] < 0) return dd_fail(err, DD_E_INVALID, "denoiser: negative timestep %d", t[i]);
        u->t[i] = t[i];
    }
    /* emb = Linear(SiLU(Linear(sinusoid(t)))) [N,4C]; every ResBlock uses SiLU(emb). */
    if ((rc = be->timestep_embedding(e, t, u->temb, n, C, err)) ||
        (rc = dd_linl_forward(e, &u->temb1, p, u->temb, u->e1, n, err)))
        return rc;
    be->silu_forward(e, u->e1, u->s1, (size_t)n * 4 * C);
    if ((rc = dd_linl_forward(e, &u->temb2, p, u->s1, u->emb, n, err))) return rc;
    be->silu_forward(e, u->emb, u->semb, (size_t)n * 4 * C);
    /* each block's projection of it, for all samples at once (see unet.h, Passes) */
    for (int i = 0; i < u->nmod; i++)
        if (u->mod[i].kind == DD_MOD_RES &&
            (rc = dd_linl_forward(e, &u->mod[i].rb.emb, p, u->semb, u->mod[i].rb.eproj, n, err)))
            return rc;
    /* Inference: conv1's bias joins the projection, which then is the bias (res_forward). */
    if (u->fold_emb) {
        for (int i = 0; i < u->nmod; i++) {
            dd_resblock *b = &u->mod[i].rb;
            if (u->mod[i].kind == DD_MOD_RES)
                be->add_bcast_forward(e, b->eproj, dd_params_value(p, b->conv1.b), 1, (size_t)n, b->out);
        }
        memset(u->zeros, 0, (size_t)u->zeros_n * sizeof(float));
    }

    size_t img = (size_t)c->h * c->w * c->in_ch;
    for (int s0 = 0; s0 < n; s0 += ns) { /* one pass of ns samples */
        const float *h = x + (size_t)s0 * img;
        for (int i = 0; i < u->nmod; i++) {
            dd_umod *m = &u->mod[i];
            if (m->takes_skip) {
                const dd_umod *prev = &u->mod[i - 1], *sk = &u->mod[m->skip_src];
                be->concat_forward(e, prev->out, prev->c_out, sk->out, sk->c_out, m->in_cat,
                                  (size_t)ns * m->ho * m->wo);
                h = m->in_cat;
            }
            m->in = h;
            if (m->kind == DD_MOD_CONV) rc = dd_convl_forward(e, &m->conv, p, h, m->out, err);
            else if (m->kind == DD_MOD_RES)
                rc = res_forward(e, &m->rb, p, h, m->rb.eproj + (size_t)s0 * m->rb.out, u->fold_emb ? u->zeros : NULL,
                                 m->out, ns, u->act16, err);
            else rc = attn_forward(e, &m->at, p, h, m->out, ns, u->training, err);
            if (rc) return rc;
            h = m->out;
        }
        /* eps = out.2(SiLU(GN(h))) [N,H,W,in_ch] */
        if ((rc = gn_silu_conv(e, &u->out_gn, &u->out_conv, p, h, u->head_a, u->act16, NULL, u->eps + (size_t)s0 * img, ns,
                               c->h * c->w, err)))
            return rc;
    }
    return DD_OK;
}

/* ---- backward ---- */

/* The concatenation a decoder block takes as input, built again from the two stored
 * outputs into its buffer (the forward's call: the same bits). */
static void rebuild_cat(dd_unet *u, int i) {
    const dd_umod *m = &u->mod[i], *prev = &u->mod[i - 1], *sk = &u->mod[m->skip_src];
    dd_engine_backend(u->eng)->concat_forward(u->eng, prev->out, prev->c_out, sk->out, sk->c_out, m->in_cat,
                                              (size_t)u->n * m->ho * m->wo);
}

/* Module i's backward (a residual block): d out -> parameter gradients and dx. */
static int res_backward(dd_unet *u, int i, dd_params *p, float *dx, int acc, dd_error *err) {
    dd_engine *e = u->eng;
    const dd_backend *be = dd_engine_backend(e);
    dd_umod *m = &u->mod[i];
    dd_resblock *b = &m->rb;
    const float *dout = m->dout;
    int rc, n = u->n;
    size_t ihw = (size_t)b->h * b->w, ohw = (size_t)b->ho * b->wo;
    float *S0 = u->scratch[0], *S1 = u->scratch[1], *S2 = u->scratch[2], *S3 = u->scratch[3];
    const float *xs = b->mode ? b->xm : b->x;
    int co = b->out;
    /* dx is S3 for a block that takes a skip (the concat gradient, dd_unet_backward); S3
     * holds the recomputed a1 and, for a resampling block, d a1 — so only a block
     * without resampling may write its input gradient there (the U-Net's are). */
    if (dx == S3 && b->mode)
        return dd_fail(err, DD_E_INVALID, "denoiser: a resampling block cannot write its input gradient to scratch 3");
    /* likewise a block taking a skip has its input in S2, where a resampling block keeps a1m */
    if (m->takes_skip && b->mode)
        return dd_fail(err, DD_E_INVALID, "denoiser: a resampling block cannot take a skip input");
    /* a2 = SiLU(GN2(h1)) again -> S2 (res_forward's call: the same bits);
     * conv2: d a2 -> S0; GN2+SiLU: d h1 -> S1 */
    if ((rc = dd_gnl_forward(e, &b->gn2, p, b->h1, S2, n, (int)ohw, 1, err)) ||
        (rc = dd_convl_backward(e, &b->conv2, p, S2, dout, S0, 0, err)) ||
        (rc = dd_gnl_backward(e, &b->gn2, p, b->h1, S0, S1, n, (int)ohw, 1, 0, err)))
        return rc;
    /* the broadcast embedding: d eproj[n,c] = sum over pixels of d h1 */
    be->add_bcast_backward(e, S1, u->deproj, n, ohw, co);
    if ((rc = dd_linl_backward(e, &b->emb, p, u->semb, u->deproj, u->dsemb, n, 1, err))) return rc;
    /* S2 is free again: a decoder block's concatenated input x goes back there */
    if (m->takes_skip) rebuild_cat(u, i);
    /* a1 = SiLU(GN1(x)) again -> S3, resampled -> S2 (a1m);
     * conv1: d a1(m) -> S0; resampling back -> S3; GN1+SiLU -> dx */
    if ((rc = dd_gnl_forward(e, &b->gn1, p, b->x, S3, n, (int)ihw, 1, err))) return rc;
    const float *a1 = S3;
    if (b->mode == 1) {
        if ((rc = be->avgpool2_forward(e, S3, S2, n, b->h, b->w, b->in, err))) return rc;
        a1 = S2;
    } else if (b->mode == 2) {
        be->upnearest2_forward(e, S3, S2, n, b->h, b->w, b->in);
        a1 = S2;
    }
    if ((rc = dd_convl_backward(e, &b->conv1, p, a1, S1, S0, 0, err))) return rc;
    const float *da1 = S0;
    if (b->mode == 1) {
        if ((rc = be->avgpool2_backward(e, S0, S3, n, b->h, b->w, b->in, 0, err))) return rc;
        da1 = S3;
    } else if (b->mode == 2) {
        be->upnearest2_backward(e, S0, S3, n, b->h, b->w, b->in, 0);
        da1 = S3;
    }
    if ((rc = dd_gnl_backward(e, &b->gn1, p, b->x, da1, dx, n, (int)ihw, 1, acc, err))) return rc;
    /* skip path: dx += resample^T(skip^T(dout)) */
    const float *dxs = dout;
    if (b->has_skip) {
        if ((rc = dd_convl_backward(e, &b->skip, p, xs, dout, b->mode ? S0 : dx, b->mode ? 0 : 1, err))) return rc;
        if (!b->mode) return DD_OK;
        dxs = S0;
    }
    if (b->mode == 1) return be->avgpool2_backward(e, dxs, dx, n, b->h, b->w, b->in, 1, err);
    if (b->mode == 2) {
        be->upnearest2_backward(e, dxs, dx, n, b->h, b->w, b->in, 1);
        return DD_OK;
    }
    be->copy_grad(e, dxs, dx, (size_t)n * ihw * b->in, 1);
    return DD_OK;
}

static int attn_backward(dd_unet *u, dd_attnblock *t, dd_params *p, const float *dout, float *dx,
                         int acc, dd_error *err) {
    dd_engine *e = u->eng;
    const dd_backend *be = dd_engine_backend(e);
    int rc, n = u->n, l = t->h * t->w, m = n * l;
    float *S0 = u->scratch[0], *S1 = u->scratch[1], *S2 = u->scratch[2];
    /* proj: d a -> S0; attention: d qkv -> S1; to_qkv: d hn -> S2 */
    if ((rc = dd_linl_backward(e, &t->proj, p, t->a, dout, S0, m, 0, err)) ||
        (rc = be->attention_backward(e, t->qkvb, t->probs, S0, S1, u->lscratch, n, l, t->c, t->heads, 0, err)) ||
        (rc = dd_linl_backward(e, &t->qkv, p, t->hn, S1, S2, m, 0, err)) ||
        (rc = dd_gnl_backward(e, &t->norm, p, t->x, S2, dx, n, l, 0, acc, err)))
        return rc;
    be->copy_grad(e, dout, dx, (size_t)m * t->c, 1); /* the residual */
    return DD_OK;
}

int dd_unet_backward(dd_unet *u, dd_params *p, const float *deps, dd_error *err) {
    if (!u->training) return dd_fail(err, DD_E_INVALID, "denoiser: built for inference, no backward");
    const dd_unet_config *c = &u->cfg;
    dd_engine *e = u->eng;
    const dd_backend *be = dd_engine_backend(e);
    int n = u->n, C = c->base, rc;
    size_t E = (size_t)n * 4 * C;
    be->buf_zero(e, u->dsemb, E * sizeof(float));
    /* head */
    dd_umod *last = &u->mod[u->nmod - 1];
    if ((rc = dd_gnl_forward(e, &u->out_gn, p, last->out, u->head_a, n, c->h * c->w, 1, err)) ||
        (rc = dd_convl_backward(e, &u->out_conv, p, u->head_a, deps, u->scratch[0], 0, err)) ||
        (rc = dd_gnl_backward(e, &u->out_gn, p, last->out, u->scratch[0], last->dout, n, c->h * c->w, 1, 0, err)))
        return rc;
    for (int i = u->nmod - 1; i >= 0; i--) {
        dd_umod *m = &u->mod[i];
        if (m->kind == DD_MOD_CONV) { /* the input conv: only parameter gradients */
            if ((rc = dd_convl_backward(e, &m->conv, p, m->in, m->dout, NULL, 0, err))) return rc;
            continue;
        }
        /* Where d(input) goes: the concat buffer (split below), or the previous
         * module's output gradient, added to when that output is also a skip. */
        float *dx;
        int acc = 0;
        if (m->takes_skip) {
            dx = u->scratch[3];
        } else {
            dd_umod *prev = &u->mod[i - 1];
            dx = prev->dout;
            acc = prev->section == 0 && prev->unit_end;
        }
        if (m->kind == DD_MOD_RES) rc = res_backward(u, i, p, dx, acc, err); /* rebuilds a skip input */
        else if (m->takes_skip) rc = dd_fail(err, DD_E_INVALID, "denoiser: an attention block cannot take a skip input");
        else rc = attn_backward(u, &m->at, p, m->dout, dx, acc, err);
        if (rc) return rc;
        if (m->takes_skip) {
            dd_umod *prev = &u->mod[i - 1], *sk = &u->mod[m->skip_src];
            be->concat_backward(e, dx, prev->dout, prev->c_out, sk->dout, sk->c_out,
                               (size_t)n * m->ho * m->wo, 0, 0);
        }
    }
    /* time embedding: semb = SiLU(emb), emb = temb2(SiLU(temb1(sinusoid))) */
    be->silu_backward(e, u->emb, u->dsemb, u->demb, E, 0);
    if ((rc = dd_linl_backward(e, &u->temb2, p, u->s1, u->demb, u->ds1, n, 0, err))) return rc;
    be->silu_backward(e, u->e1, u->ds1, u->de1, E, 0);
    return dd_linl_backward(e, &u->temb1, p, u->temb, u->de1, NULL, n, 0, err);
}

void dd_unet_free(dd_unet *u) {
    for (int i = 0; i < u->nmod; i++) {
        dd_umod *m = &u->mod[i];
        dd_convl_free(&m->conv);
        dd_convl_free(&m->rb.conv1);
        dd_convl_free(&m->rb.conv2);
        dd_convl_free(&m->rb.skip);
    }
    dd_convl_free(&u->out_conv);
    free(u->t);
    u->t = NULL;
}
