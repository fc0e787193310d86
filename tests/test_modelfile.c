/* test_modelfile.c — the model file (src/model/modelfile.h): save/load is bit-exact
 * (values, config, thresholds), a checkpoint with Adam state and extra metadata
 * round-trips, and every malformed file is refused with a non-zero code and a
 * message naming the file and the problem. Bad files are built byte by byte
 * from a good one: little-endian u64 header length + JSON header + data. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "model/config.h"
#include "model/model.h"
#include "model/modelfile.h"

static char g_dir[256];

static void tiny_config(dd_model_config *c) {
    dd_model_config_paper(c, 32, 32);
    c->unet.base = 8, c->unet.levels = 2, c->unet.mult[0] = 1, c->unet.mult[1] = 2;
    c->unet.res_blocks = 1, c->unet.n_attn = 0, c->unet.heads = 1, c->unet.groups = 8;
    c->seg_width = 4;
    /* thresholds that need all 9 digits to round-trip */
    c->image_threshold = 0.573219597f, c->pixel_threshold = 0.612345681f;
    c->score_lo = 0.31415927f, c->score_hi = 0.573219597f;
}

static dd_model *tiny_model(int training, uint64_t seed) {
    dd_model_config c;
    tiny_config(&c);
    dd_model *m = NULL;
    dd_error err = {0};
    if (dd_model_create(&c, training ? 2 : 1, training, 1, &m, &err)) { /* BatchNorm trains on >= 2 */
        fprintf(stderr, "tiny_model: %s\n", err.msg);
        return NULL;
    }
    dd_model_init_weights(m, seed);
    /* no zero tensors: every value distinct from its neighbours, denormals and -0 included */
    int k = dd_params_find(&m->params, "unet.out.2.weight");
    if (k >= 0) {
        float *v = dd_params_value(&m->params, k);
        v[0] = -0.0f, v[1] = 1e-40f, v[2] = -3.4e38f;
        for (size_t i = 3; i < m->params.items[k].numel; i++) v[i] = (float)i * 1.000001e-3f;
    }
    return m;
}

static void on_hang(int sig) {
    (void)sig;
    static const char m[] = "FAIL test_modelfile: loading a FIFO blocked for 20 s\n";
    if (write(2, m, sizeof m - 1) < 0) _exit(1);
    _exit(1);
}

static void path_in(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static int read_all(const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = *buf ? fread(*buf, 1, (size_t)n, f) : 0;
    fclose(f);
    return *buf && *len == (size_t)n ? 0 : -1;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        if (n) fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* <u64 len><header><data> */
static void write_safetensors(const char *path, const char *header, const void *data, size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t hl = strlen(header);
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
    fwrite(lb, 1, 8, f);
    fwrite(header, 1, hl, f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

/* The good file split into its header (NUL-terminated copy) and data. */
typedef struct parts {
    unsigned char *file;
    size_t len;
    char *header;
    const unsigned char *data;
    size_t data_len;
} parts;

static int split(const char *path, parts *p) {
    memset(p, 0, sizeof *p);
    if (read_all(path, &p->file, &p->len) || p->len < 8) return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | p->file[i];
    if (hl > p->len - 8) return -1;
    p->header = malloc(hl + 1);
    memcpy(p->header, p->file + 8, hl);
    p->header[hl] = 0;
    p->data = p->file + 8 + hl, p->data_len = p->len - 8 - hl;
    return 0;
}

static void parts_free(parts *p) {
    free(p->file);
    free(p->header);
}

/* New malloc'ed string with the first `old` replaced by `new_`; NULL if absent. */
static char *replace_once(const char *s, const char *old, const char *new_) {
    const char *at = strstr(s, old);
    if (!at) return NULL;
    size_t a = (size_t)(at - s), n = strlen(s) - strlen(old) + strlen(new_);
    char *r = malloc(n + 1);
    memcpy(r, s, a);
    strcpy(r + a, new_);
    strcat(r, at + strlen(old));
    return r;
}

/* Header without the entry "name":{...} (tensor entries hold no nested objects). */
static char *remove_entry(const char *s, const char *name) {
    char key[256];
    snprintf(key, sizeof key, ",\"%s\":{", name);
    const char *at = strstr(s, key);
    if (!at) return NULL;
    const char *end = strchr(at + 1, '}');
    if (!end) return NULL;
    size_t a = (size_t)(at - s);
    char *r = malloc(strlen(s) + 1);
    memcpy(r, s, a);
    strcpy(r + a, end + 1);
    return r;
}

/* Header with an extra entry before the closing brace (trailing padding spaces kept after it). */
static char *add_entry(const char *s, const char *entry) {
    const char *close = strrchr(s, '}');
    if (!close) return NULL;
    size_t a = (size_t)(close - s);
    char *r = malloc(strlen(s) + strlen(entry) + 2);
    memcpy(r, s, a);
    r[a] = ',';
    strcpy(r + a + 1, entry);
    strcat(r, close);
    return r;
}

/* Loading `path` must fail with a code and a message containing the path and `what`. */
static void expect_bad(const char *path, const char *what, const char *label) {
    dd_model *m = (dd_model *)1;
    dd_error err = {0};
    int rc = dd_model_load(path, 1, 0, 1, &m, &err);
    CHECK(rc != 0 && m == NULL, "%s: load must fail (code %d)", label, rc);
    CHECK(err.msg[0] && strstr(err.msg, path), "%s: message names the file: '%s'", label, err.msg);
    CHECK(!what || strstr(err.msg, what), "%s: message says '%s': '%s'", label, what, err.msg);
    if (m != (dd_model *)1) dd_model_free(m);
    /* the header-only reader agrees (or fails later, for problems in the data) */
    dd_model_config c;
    dd_error e2 = {0};
    int rc2 = dd_model_file_config(path, &c, NULL, NULL, &e2);
    if (rc2) CHECK(strstr(e2.msg, path) != NULL, "%s: file_config message names the file: '%s'", label, e2.msg);
}

static void check_same_model(const dd_model *a, const dd_model *b, const char *label) {
    CHECK(a->params.total == b->params.total && a->params.count == b->params.count, "%s: same tensor table", label);
    if (a->params.total != b->params.total) return;
    CHECK(!memcmp(a->params.value, b->params.value, a->params.total * sizeof(float)), "%s: values bit-exact", label);
    char *ja = dd_model_config_json(&a->cfg), *jb = dd_model_config_json(&b->cfg);
    CHECK(ja && jb && !strcmp(ja, jb), "%s: config equal:\n%s\n%s", label, ja, jb);
    free(ja), free(jb);
    CHECK(!memcmp(&a->cfg.image_threshold, &b->cfg.image_threshold, sizeof(float)) &&
              !memcmp(&a->cfg.pixel_threshold, &b->cfg.pixel_threshold, sizeof(float)) &&
              !memcmp(&a->cfg.score_lo, &b->cfg.score_lo, sizeof(float)) &&
              !memcmp(&a->cfg.score_hi, &b->cfg.score_hi, sizeof(float)),
          "%s: thresholds bit-exact (%.9g %.9g %.9g %.9g vs %.9g %.9g %.9g %.9g)", label, a->cfg.image_threshold,
          a->cfg.pixel_threshold, a->cfg.score_lo, a->cfg.score_hi, b->cfg.image_threshold, b->cfg.pixel_threshold,
          b->cfg.score_lo, b->cfg.score_hi);
}

static void test_round_trip(const char *good) {
    dd_model *m = tiny_model(0, 99), *l = NULL;
    dd_error err = {0};
    CHECK(m && dd_model_save(m, good, 0, NULL, 0, &err) == 0, "save: %s", err.msg);
    CHECK(dd_model_load(good, 1, 0, 1, &l, &err) == 0 && l, "load: %s", err.msg);
    if (m && l) check_same_model(m, l, "round trip");
    /* saving what was loaded writes the same bytes */
    char again[512];
    path_in(again, sizeof again, "again.safetensors");
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    CHECK(l && dd_model_save(l, again, 0, NULL, 0, &err) == 0, "save again: %s", err.msg);
    CHECK(!read_all(good, &b1, &n1) && !read_all(again, &b2, &n2) && n1 == n2 && !memcmp(b1, b2, n1),
          "save(load(file)) is the same bytes (%zu vs %zu)", n1, n2);
    CHECK(n1 % 1 == 0 && n1 > 8, "file size %zu", n1);
    free(b1), free(b2);
    /* header-only read */
    dd_model_config c;
    CHECK(dd_model_file_config(good, &c, NULL, NULL, &err) == 0 && c.image_threshold == m->cfg.image_threshold &&
              c.unet.base == 8 && c.seg_width == 4, "file_config: %s", err.msg);
    /* load_into an existing model of the same config, with other thresholds in memory */
    dd_model *n = tiny_model(0, 5);
    if (n) {
        n->cfg.image_threshold = 0.1f, n->cfg.score_hi = 0.1f;
        CHECK(dd_model_load_into(n, good, 0, &err) == 0, "load_into: %s", err.msg);
        if (m) check_same_model(m, n, "load_into");
    }
    dd_model_free(n);
    /* a different config is refused */
    dd_model_config other;
    tiny_config(&other);
    other.seg_width = 8;
    dd_model *o = NULL;
    CHECK(dd_model_create(&other, 1, 0, 1, &o, &err) == 0, "create other: %s", err.msg);
    if (o) {
        float first = o->params.value[0];
        int rc = dd_model_load_into(o, good, 0, &err);
        CHECK(rc != 0 && strstr(err.msg, good) && strstr(err.msg, "config"), "load_into another config: %d '%s'", rc, err.msg);
        CHECK(o->params.value[0] == first && o->cfg.seg_width == 8, "a refused load_into leaves the model as it was");
    }
    dd_model_free(o);
    other = m ? m->cfg : other;
    other.t_s = 150; /* inference setting differs too: refused, not silently taken */
    o = NULL;
    if (m && !dd_model_create(&other, 1, 0, 1, &o, &err)) {
        CHECK(dd_model_load_into(o, good, 0, &err) != 0, "load_into with another t_s refused");
        dd_model_free(o);
    }
    dd_model_free(m);
    dd_model_free(l);
}

static void test_checkpoint(void) {
    char ck[512];
    path_in(ck, sizeof ck, "ckpt.safetensors");
    dd_model *m = tiny_model(1, 7), *l = NULL;
    CHECK(m && m->params.adam_m && m->params.adam_v, "training model has Adam state");
    if (!m || !m->params.adam_m) {
        dd_model_free(m);
        return;
    }
    for (size_t i = 0; i < m->params.total; i++) m->params.adam_m[i] = (float)i * 1e-6f, m->params.adam_v[i] = (float)i * 3e-7f + 1e-9f;
    dd_kv extra[2] = {{"step", "1234"}, {"note", "quotes \" and \\ backslashes\nnewline"}};
    dd_error err = {0};
    CHECK(dd_model_save(m, ck, 1, extra, 2, &err) == 0, "save checkpoint: %s", err.msg);
    CHECK(dd_model_load(ck, 2, 1, 1, &l, &err) == 0 && l, "load checkpoint: %s", err.msg);
    if (l) {
        check_same_model(m, l, "checkpoint");
        /* only trainable tensors carry moments; compare those */
        int same = 1;
        for (int i = 0; i < m->params.count; i++) {
            const dd_param *t = &m->params.items[i];
            if (!t->trainable) continue;
            same &= !memcmp(m->params.adam_m + t->offset, l->params.adam_m + t->offset, t->numel * 4) &&
                    !memcmp(m->params.adam_v + t->offset, l->params.adam_v + t->offset, t->numel * 4);
        }
        CHECK(same, "Adam moments bit-exact");
    }
    dd_model_free(l);
    dd_model_config c;
    char *v = NULL;
    CHECK(dd_model_file_config(ck, &c, "step", &v, &err) == 0 && v && !strcmp(v, "1234"), "metadata step = %s", v ? v : "(none)");
    free(v), v = NULL;
    CHECK(dd_model_file_config(ck, &c, "note", &v, &err) == 0 && v && !strcmp(v, extra[1].value), "metadata with escapes round-trips");
    free(v), v = NULL;
    CHECK(dd_model_file_config(ck, &c, "absent", &v, &err) == 0 && v == NULL, "absent metadata key gives NULL");
    /* a checkpoint loads for inference too (moments ignored) */
    l = NULL;
    CHECK(dd_model_load(ck, 1, 0, 1, &l, &err) == 0 && l, "checkpoint for inference: %s", err.msg);
    if (l) check_same_model(m, l, "checkpoint for inference");
    dd_model_free(l);
    /* saving moments from an inference model is refused */
    dd_model *inf = tiny_model(0, 7);
    char p2[512];
    path_in(p2, sizeof p2, "noopt.safetensors");
    CHECK(inf && dd_model_save(inf, p2, 1, NULL, 0, &err) != 0 && strstr(err.msg, p2), "save with_optimizer without state: '%s'", err.msg);
    dd_model_free(inf);
    dd_model_free(m);
}

static void test_bad_files(const char *good) {
    char p[512];
    parts g;
    CHECK(split(good, &g) == 0, "split the good file");
    if (!g.header) return;

    path_in(p, sizeof p, "missing.safetensors");
    expect_bad(p, "cannot open", "missing file");
    expect_bad(g_dir, "folder", "folder");
    /* a FIFO: refused as "not a regular file" without blocking on it (issue 14 item 3) */
    path_in(p, sizeof p, "fifo.safetensors");
    if (mkfifo(p, 0600) == 0) {
        signal(SIGALRM, on_hang);
        alarm(20);
        expect_bad(p, "not a regular file", "a FIFO");
        alarm(0);
        unlink(p);
    } else SKIP("mkfifo: %s", strerror(errno));
    path_in(p, sizeof p, "zero.safetensors");
    write_bytes(p, "", 0);
    expect_bad(p, "not a model file", "zero bytes");
    path_in(p, sizeof p, "seven.safetensors");
    write_bytes(p, "\x10\0\0\0\0\0\0", 7);
    expect_bad(p, "not a model file", "7 bytes");

    unsigned char buf[64] = {0};
    path_in(p, sizeof p, "huge_header.safetensors");
    buf[7] = 0x40; /* 2^62 */
    memcpy(buf + 8, "{}", 2);
    write_bytes(p, buf, 10);
    expect_bad(p, "header length", "huge header length");

    path_in(p, sizeof p, "beyond.safetensors");
    memset(buf, 0, sizeof buf);
    buf[0] = 200; /* 200 bytes of header announced, 10 in the file */
    memcpy(buf + 8, "{\"a\":1}  ", 10);
    write_bytes(p, buf, 18);
    expect_bad(p, "header length", "header beyond the file");

    path_in(p, sizeof p, "zero_header.safetensors");
    memset(buf, 0, sizeof buf);
    write_bytes(p, buf, 16);
    expect_bad(p, "header length 0", "header length 0");

    path_in(p, sizeof p, "notjson.safetensors");
    write_safetensors(p, "{\"__metadata__\": {\"format\": diffad", NULL, 0);
    expect_bad(p, NULL, "header not JSON");
    write_safetensors(p, "\xff\xfe garbage", NULL, 0);
    expect_bad(p, NULL, "header binary garbage");

    path_in(p, sizeof p, "array.safetensors");
    write_safetensors(p, "[1,2,3]", NULL, 0);
    expect_bad(p, "not a JSON object", "JSON array");
    write_safetensors(p, "\"a string\"", NULL, 0);
    expect_bad(p, "not a JSON object", "JSON string");

    path_in(p, sizeof p, "plain.safetensors");
    float one = 1;
    write_safetensors(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &one, 4);
    expect_bad(p, "not a diffad model", "plain safetensors");
    write_safetensors(p, "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &one, 4);
    expect_bad(p, "not a diffad model", "safetensors with other metadata");

    char *h;
    path_in(p, sizeof p, "version.safetensors");
    h = replace_once(g.header, "\"format_version\":\"1\"", "\"format_version\":\"99\"");
    CHECK(h != NULL, "edit format_version");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "version 99", "format_version 99");
    free(h);
    h = replace_once(g.header, "\"format_version\":\"1\",", "");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "version", "no format_version");
    free(h);

    path_in(p, sizeof p, "nocfg.safetensors");
    const char *cs = strstr(g.header, ",\"config\":\"");
    const char *ce = cs ? strstr(cs, "}\"}") : NULL; /* end of the config string and of the metadata */
    if (ce) {
        size_t a = (size_t)(cs - g.header);
        char *r = malloc(strlen(g.header) + 1);
        memcpy(r, g.header, a);
        strcpy(r + a, ce + 2);
        write_safetensors(p, r, g.data, g.data_len);
        expect_bad(p, "config", "metadata without config");
        free(r);
    } else CHECK(0, "find the config in the header");

    path_in(p, sizeof p, "half.safetensors");
    write_bytes(p, g.file, g.len / 2);
    expect_bad(p, "truncated", "cut in half");
    path_in(p, sizeof p, "minus1.safetensors");
    write_bytes(p, g.file, g.len - 1);
    expect_bad(p, "truncated", "one byte short");
    path_in(p, sizeof p, "headeronly.safetensors");
    write_bytes(p, g.file, 8 + strlen(g.header));
    expect_bad(p, "truncated", "header without data");

    /* [3,8,3,3] -> [8,3,3,3]: the same byte count, a different shape */
    path_in(p, sizeof p, "shape.safetensors");
    h = replace_once(g.header, "\"unet.out.2.weight\":{\"dtype\":\"F32\",\"shape\":[3,8,3,3]",
                     "\"unet.out.2.weight\":{\"dtype\":\"F32\",\"shape\":[8,3,3,3]");
    CHECK(h != NULL, "edit a shape");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "shape [8x3x3x3]", "wrong shape");
    free(h);
    h = replace_once(g.header, "\"unet.out.2.weight\":{\"dtype\":\"F32\",\"shape\":[3,8,3,3]",
                     "\"unet.out.2.weight\":{\"dtype\":\"F32\",\"shape\":[3,8,3]");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "shape", "wrong rank");
    free(h);

    path_in(p, sizeof p, "dtype.safetensors");
    h = replace_once(g.header, "\"unet.out.2.weight\":{\"dtype\":\"F32\"", "\"unet.out.2.weight\":{\"dtype\":\"F16\"");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "dtype F16", "wrong dtype");
    free(h);

    path_in(p, sizeof p, "offsets.safetensors");
    h = replace_once(g.header, "\"data_offsets\":[0,1024]", "\"data_offsets\":[4,1028]");
    if (h) {
        /* the offsets shifted inside the data: still a consistent size, so this loads — but
         * offsets pointing past the end do not */
        free(h);
        char big[128];
        snprintf(big, sizeof big, "\"data_offsets\":[%zu,%zu]", g.data_len, g.data_len + 1024);
        h = replace_once(g.header, "\"data_offsets\":[0,1024]", big);
        write_safetensors(p, h, g.data, g.data_len);
        expect_bad(p, "does not fit", "offsets past the end");
    } else CHECK(0, "find the first tensor's offsets");
    free(h);
    h = replace_once(g.header, "\"data_offsets\":[0,1024]", "\"data_offsets\":[-8,1016]");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "does not fit", "negative offset");
    free(h);

    /* a tensor listed twice (the JSON reader keeps both; lookups would see only the first) and two
     * tensors sharing bytes (issue 14 item 11) */
    path_in(p, sizeof p, "duplicate.safetensors");
    {
        const char *at = strstr(g.header, ",\"unet.out.2.weight\":{");
        const char *end = at ? strchr(at, '}') : NULL; /* the entry, its closing brace included */
        char entry[512] = "";
        if (end && end - at < (long)sizeof entry) snprintf(entry, sizeof entry, "%.*s", (int)(end - at), at + 1);
        h = end ? add_entry(g.header, entry) : NULL;
        CHECK(h != NULL, "duplicate an entry");
        if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "'unet.out.2.weight' appears more than once", "duplicate tensor");
        free(h);
    }
    path_in(p, sizeof p, "overlap.safetensors");
    h = replace_once(g.header, "\"data_offsets\":[0,1024]", "\"data_offsets\":[4,1028]");
    CHECK(h != NULL, "shift the first tensor's offsets into the second");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "overlap", "overlapping data_offsets");
    free(h);

    path_in(p, sizeof p, "missing_tensor.safetensors");
    h = remove_entry(g.header, "unet.out.2.weight");
    CHECK(h != NULL, "remove a tensor");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "'unet.out.2.weight' is missing", "missing tensor");
    free(h);

    path_in(p, sizeof p, "extra_tensor.safetensors");
    h = add_entry(g.header, "\"unet.extra.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "unexpected tensor 'unet.extra.weight'", "extra tensor");
    free(h);

    /* the stored config says seg_width 8, the tensors are for 4 */
    path_in(p, sizeof p, "othercfg.safetensors");
    h = replace_once(g.header, "\\\"seg_width\\\":\\\"4\\\"", "\\\"seg_width\\\":\\\"8\\\"");
    CHECK(h != NULL, "edit seg_width in the stored config");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, "shape", "config of a different model");
    free(h);
    /* a stored config that is itself invalid */
    h = replace_once(g.header, "\\\"size\\\":\\\"32x32\\\"", "\\\"size\\\":\\\"33x32\\\"");
    if (h) write_safetensors(p, h, g.data, g.data_len), expect_bad(p, NULL, "invalid stored config");
    free(h);

    /* NaN and infinity in a tensor, written through the saver */
    dd_model *m = tiny_model(0, 3);
    dd_error err = {0};
    for (int k = 0; m && k < 2; k++) {
        int i = dd_params_find(&m->params, "seg.decoder_segment.fin_out.0.weight");
        float *v = dd_params_value(&m->params, i);
        float keep = v[1];
        v[1] = k ? INFINITY : NAN;
        path_in(p, sizeof p, k ? "inf.safetensors" : "nan.safetensors");
        CHECK(dd_model_save(m, p, 0, NULL, 0, &err) == 0, "save with %s: %s", k ? "inf" : "NaN", err.msg);
        expect_bad(p, "NaN or infinity", k ? "infinity in a tensor" : "NaN in a tensor");
        v[1] = keep;
    }
    dd_model_free(m);
    parts_free(&g);
}

/* Temporary files of the atomic writer (hidden ".<name>.XXXXXX.tmp") left in g_dir. */
static int temps_left(void) {
    int n = 0;
    DIR *d = opendir(g_dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    return n;
}

static void test_save_failures(const char *good) {
    dd_model *m = tiny_model(0, 11);
    if (!m) return;
    dd_error err = {0};
    char p[512];
    path_in(p, sizeof p, "no_such_folder/m.safetensors");
    int rc = dd_model_save(m, p, 0, NULL, 0, &err);
    CHECK(rc == DD_E_IO && strstr(err.msg, "no_such_folder"), "save into a missing folder: %d '%s'", rc, err.msg);
    path_in(p, sizeof p, "no_such_folder");
    CHECK(access(p, F_OK) != 0, "nothing created");

    /* a save that fails half-way (file size limit: the disk is "full" after 4 KiB):
     * the old file stays as it was and no temporary file is left */
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    read_all(good, &b1, &n1);
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "set a file size limit");
    rc = dd_model_save(m, good, 0, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old_lim);
    signal(SIGXFSZ, old_handler);
    CHECK(rc == DD_E_IO && strstr(err.msg, good) && strstr(err.msg, "untouched"), "save cut short: %d '%s'", rc, err.msg);
    read_all(good, &b2, &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1), "the existing file is untouched");
    CHECK(temps_left() == 0, "no temporary file left after a failed save (%d)", temps_left());
    /* saving over a folder fails, naming it, and leaves no temp file */
    char tmp[600];
    path_in(p, sizeof p, "a_folder");
    mkdir(p, 0777);
    mkdir(strcat(strcpy(tmp, p), "/inner"), 0777);
    rc = dd_model_save(m, p, 0, NULL, 0, &err);
    CHECK(rc != 0 && strstr(err.msg, p) && strstr(err.msg, "folder") && temps_left() == 0,
          "save over a non-empty folder: %d '%s', %d temp files left", rc, err.msg, temps_left());
    /* a symlink planted at the old fixed temporary name "<out>.tmp" is not written
     * through (it used to be: fopen followed it and truncated its target) */
    char victim[600], lnk[600];
    path_in(victim, sizeof victim, "victim.txt");
    write_bytes(victim, "precious", 8);
    snprintf(lnk, sizeof lnk, "%s.tmp", good);
    CHECK(symlink(victim, lnk) == 0, "plant %s", lnk);
    rc = dd_model_save(m, good, 0, NULL, 0, &err);
    unsigned char *v = NULL;
    size_t nv = 0;
    read_all(victim, &v, &nv);
    CHECK(rc == DD_OK && v && nv == 8 && !memcmp(v, "precious", 8), "save with a symlink at <out>.tmp: %d '%s', victim %zu bytes",
          rc, err.msg, nv);
    free(v);
    unlink(lnk);
    CHECK(temps_left() == 0, "no temporary left (%d)", temps_left());
    free(b1), free(b2);
    dd_model_free(m);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/diffad_test_modelfile_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char good[512];
    path_in(good, sizeof good, "good.safetensors");
    test_round_trip(good);
    test_checkpoint();
    test_bad_files(good);
    test_save_failures(good);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!check_failed && system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return check_summary("test_modelfile");
}
