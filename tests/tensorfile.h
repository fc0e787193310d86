/* tensorfile.h — reads the named-tensor dumps written by the PyTorch reference
 * scripts in tests/py (test-only; the model format is safetensors, see model files).
 * Layout: "DDT1", u32 count, then per tensor: u32 name length, name bytes,
 * u32 ndim, i64 dims[ndim], f32 data (little-endian). */
#ifndef DD_TENSORFILE_H
#define DD_TENSORFILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tf_tensor {
    char name[128];
    int ndim;
    int64_t dims[8];
    size_t numel;
    float *data;
} tf_tensor;

typedef struct tf_file {
    int count;
    tf_tensor *t;
} tf_file;

static void tf_free(tf_file *f) {
    for (int i = 0; i < f->count; i++) free(f->t[i].data);
    free(f->t);
    f->t = NULL;
    f->count = 0;
}

/* Returns 0 on success; prints the reason and returns -1 otherwise. */
static int tf_read(const char *path, tf_file *f) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "tensorfile: cannot open %s\n", path);
        return -1;
    }
    char magic[4];
    uint32_t count;
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "DDT1", 4) || fread(&count, 4, 1, fp) != 1 ||
        count > 100000) {
        fprintf(stderr, "tensorfile: %s: bad header\n", path);
        fclose(fp);
        return -1;
    }
    f->t = calloc(count, sizeof *f->t);
    for (uint32_t i = 0; i < count; i++) {
        tf_tensor *t = &f->t[i];
        uint32_t len, nd;
        if (fread(&len, 4, 1, fp) != 1 || len >= sizeof t->name || fread(t->name, 1, len, fp) != len ||
            fread(&nd, 4, 1, fp) != 1 || nd > 8 || fread(t->dims, 8, nd, fp) != nd) {
            fprintf(stderr, "tensorfile: %s: truncated at tensor %u\n", path, i);
            fclose(fp);
            tf_free(f);
            return -1;
        }
        t->name[len] = 0;
        t->ndim = (int)nd;
        t->numel = 1;
        for (uint32_t d = 0; d < nd; d++) t->numel *= (size_t)t->dims[d];
        t->data = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (fread(t->data, 4, t->numel, fp) != t->numel) {
            fprintf(stderr, "tensorfile: %s: truncated data of %s\n", path, t->name);
            fclose(fp);
            f->count = (int)i + 1;
            tf_free(f);
            return -1;
        }
        f->count = (int)i + 1;
    }
    fclose(fp);
    return 0;
}

static tf_tensor *tf_get(tf_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    fprintf(stderr, "tensorfile: no tensor '%s'\n", name);
    return NULL;
}

/* Runs `python script out_path [args]` with the Debian interpreter; 0 if it worked,
 * 1 if Python or torch is not available (caller skips), -1 on script failure. */
static int tf_run_python(const char *script, const char *out_path, const char *args) {
    const char *py = getenv("PYTHON");
    if (!py || !*py) py = "/usr/bin/python3";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", py);
    if (system(cmd) != 0) return 1;
    snprintf(cmd, sizeof cmd, "%s %s %s %s", py, script, out_path, args ? args : "");
    return system(cmd) == 0 ? 0 : -1;
}

#endif
