/* modelfile.c — safetensors model files (see modelfile.h). */
#include "model/modelfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/text.h"
#include "model/config.h"

/* ---- writing ---- */

static int is_counter(const dd_param *t) { return t->kind == DD_PK_COUNTER; }

static void tensor_entry(dd_textbuf *b, const char *prefix, const dd_param *t, size_t *off, int *first) {
    size_t bytes = is_counter(t) ? 8 : t->numel * 4;
    dd_textbuf_printf(b, "%s\"%s%s\":{\"dtype\":\"%s\",\"shape\":[", *first ? "" : ",", prefix, t->name,
                      is_counter(t) ? "I64" : "F32");
    if (!is_counter(t)) /* PyTorch stores num_batches_tracked as a 0-d int64 */
        for (int d = 0; d < t->ndim; d++) dd_textbuf_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    dd_textbuf_printf(b, "],\"data_offsets\":[%zu,%zu]}", *off, *off + bytes);
    *off += bytes;
    *first = 0;
}

static int write_tensor(dd_afile *f, const dd_param *t, const float *block) {
    const float *v = block + t->offset;
    if (is_counter(t)) {
        int64_t c = (int64_t)v[0];
        return dd_afile_write(f, &c, 8);
    }
    return dd_afile_write(f, v, t->numel * 4);
}

int dd_model_save(const dd_model *m, const char *path, int with_optimizer, const dd_kv *extra,
                  int n_extra, dd_error *err) {
    dd_save_opts o = {NULL, with_optimizer, NULL, extra, n_extra};
    return dd_model_save_ex(m, path, &o, err);
}

int dd_model_save_ex(const dd_model *m, const char *path, const dd_save_opts *o, dd_error *err) {
    const dd_params *p = &m->params;
    int with_optimizer = o->with_optimizer, n_extra = o->n_extra;
    const dd_kv *extra = o->extra;
    const float *values = o->values ? o->values : p->value;
    if (with_optimizer && !p->adam_m)
        return dd_fail(err, DD_E_INVALID, "%s: model has no optimiser state to save", path);
    dd_textbuf h;
    dd_textbuf_init(&h);
    char *cfg = dd_model_config_json(&m->cfg);
    if (!cfg) return dd_fail(err, DD_E_NOMEM, "%s: out of memory", path);
    dd_textbuf_printf(&h, "{\"__metadata__\":{\"format\":\"" DD_MODEL_FORMAT "\",\"format_version\":\"%d\",\"config\":",
                      DD_FORMAT_VERSION);
    dd_textbuf_json_string(&h, cfg);
    free(cfg);
    for (int i = 0; i < n_extra; i++) {
        dd_textbuf_puts(&h, ",");
        dd_textbuf_json_string(&h, extra[i].key);
        dd_textbuf_puts(&h, ":");
        dd_textbuf_json_string(&h, extra[i].value);
    }
    dd_textbuf_puts(&h, "}");
    size_t off = 0;
    int first = 0;
    for (int i = 0; i < p->count; i++) tensor_entry(&h, "", &p->items[i], &off, &first);
    if (with_optimizer)
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < p->count; i++)
                if (p->items[i].trainable) tensor_entry(&h, pass ? "adam_v." : "adam_m.", &p->items[i], &off, &first);
    if (o->ema)
        for (int i = 0; i < p->count; i++) tensor_entry(&h, DD_EMA_PREFIX, &p->items[i], &off, &first);
    if (m->roi.mask) { /* the region of interest, last: one byte per pixel (model/roi.h) */
        size_t bytes = (size_t)m->roi.h * m->roi.w;
        dd_textbuf_printf(&h, ",\"" DD_ROI_TENSOR "\":{\"dtype\":\"U8\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                          m->roi.h, m->roi.w, off, off + bytes);
        off += bytes;
    }
    dd_textbuf_puts(&h, "}");
    while (!h.oom && h.len % 8) dd_textbuf_puts(&h, " "); /* data starts 8-byte aligned */
    if (h.oom) {
        dd_textbuf_free(&h);
        return dd_fail(err, DD_E_NOMEM, "%s: out of memory building the header", path);
    }
    dd_afile *f = dd_afile_open(path, err);
    if (!f) {
        dd_textbuf_free(&h);
        return err ? err->code : DD_E_IO;
    }
    uint64_t hl = h.len;
    int bad = dd_afile_write(f, &hl, 8) || dd_afile_write(f, h.s, h.len);
    dd_textbuf_free(&h);
    for (int i = 0; i < p->count && !bad; i++) bad = write_tensor(f, &p->items[i], values);
    if (with_optimizer)
        for (int pass = 0; pass < 2 && !bad; pass++)
            for (int i = 0; i < p->count && !bad; i++)
                if (p->items[i].trainable) bad = write_tensor(f, &p->items[i], pass ? p->adam_v : p->adam_m);
    if (o->ema)
        for (int i = 0; i < p->count && !bad; i++) bad = write_tensor(f, &p->items[i], o->ema);
    if (m->roi.mask && !bad) bad = dd_afile_write(f, m->roi.mask, (size_t)m->roi.h * m->roi.w);
    return dd_afile_commit(f, err); /* reports a failed write, keeping the previous file */
}

/* ---- reading ---- */

typedef struct sfile {
    FILE *f;
    const char *path;
    uint64_t size, header_len;
    dd_json *header;
    const dd_json *meta;
} sfile;

static void sfile_close(sfile *s) {
    if (s->f) fclose(s->f);
    dd_json_free(s->header);
    memset(s, 0, sizeof *s);
}

typedef struct span {
    const char *name;
    double b0, b1;
} span;

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const span *)a)->name, ((const span *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    return (x->b0 > y->b0) - (x->b0 < y->b0);
}

/* Every header key at most once (the JSON reader keeps duplicates and lookups
 * would see only the first), and no two tensors' data_offsets overlapping
 * (two names sharing bytes). Entries whose offsets are malformed are left to
 * sfile_read, which names them when they are read. Empty ranges overlap nothing. */
static int sfile_check_entries(sfile *s, dd_error *err) {
    int n = s->header->count, k = 0, rc = DD_OK;
    span *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) return dd_fail(err, DD_E_NOMEM, "%s: out of memory checking the header", s->path);
    for (const dd_json *e = s->header->child; e; e = e->next) v[k++] = (span){e->key, 0, 0};
    qsort(v, (size_t)k, sizeof *v, cmp_name);
    for (int i = 1; i < k && !rc; i++)
        if (!strcmp(v[i].name, v[i - 1].name))
            rc = dd_fail(err, DD_E_FORMAT, "%s: header entry '%s' appears more than once", s->path, v[i].name);
    k = 0;
    for (const dd_json *e = s->header->child; e && !rc; e = e->next) {
        const dd_json *of = e->type == DD_JOBJ ? dd_json_get(e, "data_offsets") : NULL;
        if (!of || of->type != DD_JARR || of->count != 2 || of->child->type != DD_JNUM ||
            of->child->next->type != DD_JNUM)
            continue;
        double b0 = of->child->num, b1 = of->child->next->num;
        if (b1 > b0) v[k++] = (span){e->key, b0, b1};
    }
    if (!rc) qsort(v, (size_t)k, sizeof *v, cmp_begin);
    int last = 0; /* the span reaching furthest so far */
    for (int i = 1; i < k && !rc; i++) {
        if (v[i].b0 < v[last].b1)
            rc = dd_fail(err, DD_E_FORMAT, "%s: tensors '%s' [%.0f, %.0f) and '%s' [%.0f, %.0f) overlap in the data",
                         s->path, v[last].name, v[last].b0, v[last].b1, v[i].name, v[i].b0, v[i].b1);
        if (v[i].b1 > v[last].b1) last = i;
    }
    free(v);
    return rc;
}

static int sfile_open(sfile *s, const char *path, dd_error *err) {
    memset(s, 0, sizeof *s);
    s->path = path;
    /* O_NONBLOCK, then fstat: a FIFO (or a device) is refused without ever
     * blocking on it; the flag is cleared again for the reads of a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return dd_fail(err, DD_E_IO, "%s: cannot open model file (%s)", path, strerror(errno));
    struct stat st;
    memset(&st, 0, sizeof st);
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        close(fd);
        return dd_fail(err, DD_E_IO, dir ? "%s: is a folder, not a model file"
                                         : "%s: not a regular file, cannot be a model file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    s->f = fdopen(fd, "rb");
    if (!s->f) {
        int e = errno;
        close(fd);
        return dd_fail(err, DD_E_IO, "%s: cannot open model file (%s)", path, strerror(e));
    }
    s->size = (uint64_t)st.st_size;
    unsigned char lb[8];
    if (s->size < 8 || fread(lb, 1, 8, s->f) != 8) {
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: not a model file (shorter than a safetensors header)", path);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | lb[i];
    if (hl == 0 || hl > DD_HEADER_MAX || hl > s->size - 8) {
        unsigned long long size = s->size; /* sfile_close clears s */
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: not a model file or truncated (header length %llu, file %llu bytes)",
                       path, (unsigned long long)hl, size);
    }
    char *hb = malloc(hl);
    if (!hb) {
        sfile_close(s);
        return dd_fail(err, DD_E_NOMEM, "%s: header of %llu bytes does not fit in memory", path, (unsigned long long)hl);
    }
    if (fread(hb, 1, hl, s->f) != hl) {
        free(hb);
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: truncated header", path);
    }
    s->header_len = hl;
    int rc = dd_json_parse(hb, hl, path, &s->header, err);
    free(hb);
    if (rc) {
        sfile_close(s);
        return rc;
    }
    if (s->header->type != DD_JOBJ) {
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: safetensors header is not a JSON object", path);
    }
    s->meta = dd_json_get(s->header, "__metadata__");
    const dd_json *fmt = dd_json_get(s->meta, "format"), *ver = dd_json_get(s->meta, "format_version");
    if (!fmt || fmt->type != DD_JSTR || strcmp(fmt->str, DD_MODEL_FORMAT)) {
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: a safetensors file but not a diffad model (no \"format\": \"diffad\" in its metadata; convert PyTorch checkpoints with scripts/convert_checkpoint.py)", path);
    }
    char verbuf[16];
    snprintf(verbuf, sizeof verbuf, "%d", DD_FORMAT_VERSION);
    if (!ver || ver->type != DD_JSTR || strcmp(ver->str, verbuf)) {
        char v[32]; /* copied: sfile_close frees the header that ver points into */
        snprintf(v, sizeof v, "%s", ver && ver->type == DD_JSTR ? ver->str : "?");
        sfile_close(s);
        return dd_fail(err, DD_E_FORMAT, "%s: model format version %s, this diffad reads version %d", path, v, DD_FORMAT_VERSION);
    }
    int rc2 = sfile_check_entries(s, err);
    if (rc2) sfile_close(s);
    return rc2;
}

static int sfile_config(sfile *s, dd_model_config *cfg, dd_error *err) {
    const dd_json *c = dd_json_get(s->meta, "config");
    if (!c || c->type != DD_JSTR) return dd_fail(err, DD_E_FORMAT, "%s: metadata has no model config", s->path);
    char origin[600];
    snprintf(origin, sizeof origin, "%s (stored config)", s->path);
    int rc = dd_model_config_from_json(cfg, c->str, origin, err);
    if (rc) return rc;
    dd_error e = {0};
    if ((rc = dd_model_config_check(cfg, &e))) return dd_fail(err, rc, "%s: %s", origin, e.msg);
    return DD_OK;
}

/* Read one tensor named `name` into dst (numel floats), checking dtype and shape. */
static int sfile_read(sfile *s, const char *name, const dd_param *t, float *dst, dd_error *err) {
    const dd_json *e = dd_json_get(s->header, name);
    if (!e || e->type != DD_JOBJ)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' is missing (file from a different model config?)", s->path, name);
    const dd_json *dt = dd_json_get(e, "dtype"), *sh = dd_json_get(e, "shape"), *of = dd_json_get(e, "data_offsets");
    int counter = is_counter(t);
    const char *want = counter ? "I64" : "F32";
    if (!dt || dt->type != DD_JSTR || strcmp(dt->str, want))
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", s->path, name,
                       dt && dt->type == DD_JSTR ? dt->str : "?", want);
    if (!sh || sh->type != DD_JARR || !of || of->type != DD_JARR || of->count != 2)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' has a malformed entry", s->path, name);
    int nd = counter ? 0 : t->ndim, i = 0, shape_ok = sh->count == nd;
    for (const dd_json *d = sh->child; d && shape_ok; d = d->next, i++)
        shape_ok = d->type == DD_JNUM && d->num == (double)t->shape[i];
    if (!shape_ok) {
        char got[128] = "", exp[128] = "";
        for (const dd_json *d = sh->child; d; d = d->next) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.0f", got[0] ? "x" : "", d->num);
        for (int k = 0; k < nd; k++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", k ? "x" : "", (long long)t->shape[k]);
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' has shape [%s], this model expects [%s]", s->path, name, got, exp);
    }
    double b0 = of->child->num, b1 = of->child->next->num;
    size_t bytes = counter ? 8 : t->numel * 4;
    uint64_t data_len = s->size - 8 - s->header_len;
    if (b0 < 0 || b1 < b0 || b1 - b0 != (double)bytes || b1 > (double)data_len)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' data [%.0f, %.0f) does not fit the %llu data bytes (truncated file?)",
                       s->path, name, b0, b1, (unsigned long long)data_len);
    if (fseeko(s->f, (off_t)(8 + s->header_len + (uint64_t)b0), SEEK_SET))
        return dd_fail(err, DD_E_IO, "%s: seek failed", s->path);
    if (counter) {
        int64_t c;
        if (fread(&c, 8, 1, s->f) != 1) return dd_fail(err, DD_E_FORMAT, "%s: truncated at '%s'", s->path, name);
        dst[0] = (float)c;
        return DD_OK;
    }
    if (fread(dst, 4, t->numel, s->f) != t->numel) return dd_fail(err, DD_E_FORMAT, "%s: truncated at '%s'", s->path, name);
    for (size_t k = 0; k < t->numel; k++)
        if (!(dst[k] == dst[k]) || dst[k] - dst[k] != 0)
            return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' holds NaN or infinity", s->path, name);
    return DD_OK;
}

int dd_model_file_config(const char *path, dd_model_config *cfg, const char *meta_key,
                         char **meta_value, dd_error *err) {
    sfile s;
    int rc = sfile_open(&s, path, err);
    if (rc) return rc;
    rc = sfile_config(&s, cfg, err);
    if (!rc && meta_key && meta_value) {
        const dd_json *v = dd_json_get(s.meta, meta_key);
        *meta_value = v && v->type == DD_JSTR ? strdup(v->str) : NULL;
    }
    sfile_close(&s);
    return rc;
}

static int cfg_equal(const dd_model_config *a, const dd_model_config *b) {
    char *ja = dd_model_config_json(a), *jb = dd_model_config_json(b);
    int same = ja && jb && !strcmp(ja, jb);
    free(ja);
    free(jb);
    return same;
}

/* The region of interest "roi.mask" (model/roi.h) into *out; a file without one clears *out.
 * Anything but a U8 [h, w] tensor of 0/1 values with at least one 1 is refused (DD_E_FORMAT). */
static int sfile_read_roi(sfile *s, dd_roi *out, dd_error *err) {
    const char *name = DD_ROI_TENSOR;
    const dd_json *e = dd_json_get(s->header, name);
    if (!e) {
        dd_roi_free(out);
        return DD_OK;
    }
    const dd_json *dt = e->type == DD_JOBJ ? dd_json_get(e, "dtype") : NULL;
    const dd_json *sh = e->type == DD_JOBJ ? dd_json_get(e, "shape") : NULL;
    const dd_json *of = e->type == DD_JOBJ ? dd_json_get(e, "data_offsets") : NULL;
    if (!dt || dt->type != DD_JSTR || strcmp(dt->str, "U8"))
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' (region of interest) has dtype %s, expected U8", s->path, name,
                       dt && dt->type == DD_JSTR ? dt->str : "?");
    double d[2] = {0, 0};
    int shape_ok = sh && sh->type == DD_JARR && sh->count == 2;
    const dd_json *c = shape_ok ? sh->child : NULL;
    for (int i = 0; i < 2 && shape_ok; i++, c = c->next) {
        shape_ok = c->type == DD_JNUM && c->num >= 1 && c->num <= DD_ROI_MAX_SIDE && c->num == (double)(long)c->num;
        d[i] = shape_ok ? c->num : 0;
    }
    if (!shape_ok || d[0] * d[1] > (double)DD_ROI_MAX_PIXELS)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' (region of interest) is not [height, width] with sides 1..%d "
                       "and at most %ld pixels", s->path, name, DD_ROI_MAX_SIDE, DD_ROI_MAX_PIXELS);
    int h = (int)d[0], w = (int)d[1];
    size_t bytes = (size_t)h * w;
    uint64_t data_len = s->size - 8 - s->header_len;
    if (!of || of->type != DD_JARR || of->count != 2 || of->child->type != DD_JNUM || of->child->next->type != DD_JNUM)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' has a malformed entry", s->path, name);
    double b0 = of->child->num, b1 = of->child->next->num;
    if (b1 - b0 != (double)bytes)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' (region of interest) has %.0f data bytes, its shape [%d, %d] needs "
                       "%zu", s->path, name, b1 - b0, h, w, bytes);
    if (b0 < 0 || b1 > (double)data_len)
        return dd_fail(err, DD_E_FORMAT, "%s: tensor '%s' data [%.0f, %.0f) does not fit the %llu data bytes (truncated file?)",
                       s->path, name, b0, b1, (unsigned long long)data_len);
    uint8_t *buf = malloc(bytes);
    if (!buf) return dd_fail(err, DD_E_NOMEM, "%s: out of memory for the %dx%d region of interest", s->path, w, h);
    int rc = DD_OK;
    if (fseeko(s->f, (off_t)(8 + s->header_len + (uint64_t)b0), SEEK_SET))
        rc = dd_fail(err, DD_E_IO, "%s: seek failed", s->path);
    else if (fread(buf, 1, bytes, s->f) != bytes)
        rc = dd_fail(err, DD_E_FORMAT, "%s: truncated at '%s'", s->path, name);
    else {
        char what[600];
        snprintf(what, sizeof what, "%s: tensor '%s'", s->path, name);
        rc = dd_roi_set(out, buf, h, w, what, err);
    }
    free(buf);
    return rc;
}

static int load_tensors(sfile *s, dd_model *m, int with_optimizer, dd_error *err) {
    dd_params *p = &m->params;
    for (int i = 0; i < p->count; i++) {
        int rc = sfile_read(s, p->items[i].name, &p->items[i], p->value + p->items[i].offset, err);
        if (rc) return rc;
    }
    int has_opt = dd_json_get(s->header, "adam_m.unet.out.2.weight") != NULL;
    if (with_optimizer && has_opt && p->adam_m) {
        char nm[DD_NAME_MAX + 16];
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < p->count; i++) {
                if (!p->items[i].trainable) continue;
                snprintf(nm, sizeof nm, "%s%s", pass ? "adam_v." : "adam_m.", p->items[i].name);
                int rc = sfile_read(s, nm, &p->items[i], (pass ? p->adam_v : p->adam_m) + p->items[i].offset, err);
                if (rc) return rc;
                    }
    }
    int rc = sfile_read_roi(s, &m->roi, err);
    if (rc) return rc;
    /* Anything else in the file means it was made for another network. */
    for (const dd_json *e = s->header->child; e; e = e->next) {
        if (!strcmp(e->key, "__metadata__") || !strcmp(e->key, DD_ROI_TENSOR)) continue;
        if (!strncmp(e->key, "adam_", 5) && !(with_optimizer && p->adam_m)) continue;
        /* a checkpoint's EMA copy: read by dd_model_read_block when wanted */
        if (!strncmp(e->key, DD_EMA_PREFIX, strlen(DD_EMA_PREFIX)) &&
            dd_params_find(p, e->key + strlen(DD_EMA_PREFIX)) >= 0) continue;
        if (dd_params_find(p, e->key) < 0 && strncmp(e->key, "adam_", 5))
            return dd_fail(err, DD_E_FORMAT, "%s: unexpected tensor '%s' (file from a different model config?)", s->path, e->key);
    }
    return DD_OK;
}

int dd_model_load_into(dd_model *m, const char *path, int with_optimizer, dd_error *err) {
    sfile s;
    int rc = sfile_open(&s, path, err);
    if (rc) return rc;
    dd_model_config cfg;
    if (!(rc = sfile_config(&s, &cfg, err))) {
        dd_model_config a = cfg, b = m->cfg;
        /* thresholds may legitimately differ, and the arithmetic is the running model's
         * (its engine is built); everything else must match */
        a.image_threshold = b.image_threshold, a.pixel_threshold = b.pixel_threshold;
        a.score_lo = b.score_lo, a.score_hi = b.score_hi;
        a.precision = cfg.precision = b.precision;
        if (!cfg_equal(&a, &b)) rc = dd_fail(err, DD_E_FORMAT, "%s: model config differs from the one requested", path);
        else rc = load_tensors(&s, m, with_optimizer, err);
        if (!rc) m->cfg = cfg;
    }
    sfile_close(&s);
    return rc;
}

int dd_model_load(const char *path, int batch, int training, int threads, dd_model **out,
                  dd_error *err) {
    return dd_model_load_at(path, batch, training, threads, -1, out, err);
}

int dd_model_load_at(const char *path, int batch, int training, int threads, int precision,
                     dd_model **out, dd_error *err) {
    *out = NULL;
    if (precision > DD_PREC_AUTO) return dd_fail(err, DD_E_INVALID, "%s: unknown precision %d", path, precision);
    sfile s;
    int rc = sfile_open(&s, path, err);
    if (rc) return rc;
    dd_model_config cfg;
    dd_model *m = NULL;
    if (!(rc = sfile_config(&s, &cfg, err))) {
        if (precision >= 0) cfg.precision = (dd_precision)precision;
        rc = dd_model_create(&cfg, batch, training, threads, &m, err);
        if (rc && err) { /* name the file: its stored precision may be what this machine cannot run */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            dd_fail(err, rc, "%s: %s", path, msg);
        }
    }
    if (!rc) rc = load_tensors(&s, m, training, err);
    sfile_close(&s);
    if (rc) {
        dd_model_free(m);
        return rc;
    }
    *out = m;
    return DD_OK;
}

int dd_model_read_block(const char *path, const dd_model *m, const char *prefix, float *dst,
                        int *found, dd_error *err) {
    if (found) *found = 0;
    sfile s;
    int rc = sfile_open(&s, path, err);
    if (rc) return rc;
    const dd_params *p = &m->params;
    char nm[DD_NAME_MAX + 16];
    snprintf(nm, sizeof nm, "%s%s", prefix, p->count ? p->items[0].name : "");
    if (p->count && !dd_json_get(s.header, nm)) { /* absent block: not an error, *found says so */
        sfile_close(&s);
        return found ? DD_OK : dd_fail(err, DD_E_FORMAT, "%s: has no tensors '%s*'", path, prefix);
    }
    for (int i = 0; i < p->count && !rc; i++) {
        snprintf(nm, sizeof nm, "%s%s", prefix, p->items[i].name);
        rc = sfile_read(&s, nm, &p->items[i], dst + p->items[i].offset, err);
    }
    sfile_close(&s);
    if (!rc && found) *found = 1;
    return rc;
}
