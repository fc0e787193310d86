/* dataset.c — the MVTec and good-folder layouts, the listing helpers every layout shares
 * (dataset_internal.h), item loading and the train/validation split (see dataset.h). */
#include "data/dataset.h"
#include "data/dataset_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/image.h"
#include "core/rng.h"

/* ---- small string and folder helpers ------------------------------------- */

char *dd_ds_dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *dd_ds_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *d = malloc(na + nb + 2);
    if (!d) return NULL;
    memcpy(d, a, na);
    if (slash) d[na++] = '/';
    memcpy(d + na, b, nb + 1);
    return d;
}

int dd_ds_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int dd_ds_is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The one image-name rule of the project (dataset listing, texture folders,
 * `diffad predict` folders); keep dd_image_extensions() in step with ext[]. */
const char *dd_image_extensions(void) { return "png, jpg, jpeg, bmp, pgm, ppm, pnm"; }

int dd_is_image_name(const char *name) {
    static const char *ext[] = {"png", "jpg", "jpeg", "bmp", "pgm", "ppm", "pnm"};
    if (!name || name[0] == '.') return 0;
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0) return 1;
    return 0;
}

void dd_ds_names_free(dd_ds_names *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int sl_push(dd_ds_names *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, sizeof(char *) * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = dd_ds_dup(s))) return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dd_ds_list_dir(const char *dir, int want_dirs, dd_ds_names *out, dd_error *err) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return dd_fail(err, DD_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = DD_OK;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !dd_is_image_name(e->d_name)) continue;
        char *p = dd_ds_join(dir, e->d_name);
        if (!p) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory while listing", dir);
            break;
        }
        int keep = want_dirs ? dd_ds_is_dir(p) : dd_ds_is_file(p);
        free(p);
        if (keep && sl_push(out, e->d_name)) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory while listing", dir);
            break;
        }
    }
    closedir(d);
    if (rc) {
        dd_ds_names_free(out);
        return rc;
    }
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return DD_OK;
}

char *dd_ds_stem_of(const char *name) {
    char *s = dd_ds_dup(name);
    if (!s) return NULL;
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = '\0';
    return s;
}

const char *dd_ds_find_stem(const dd_ds_names *l, const char *stem, const char *suffix) {
    size_t ns = strlen(stem), nx = strlen(suffix);
    for (int i = 0; i < l->n; i++) {
        const char *nm = l->v[i];
        const char *dot = strrchr(nm, '.');
        if (!dot || (size_t)(dot - nm) != ns + nx) continue;
        if (strncmp(nm, stem, ns) == 0 && strncmp(nm + ns, suffix, nx) == 0) return nm;
    }
    return NULL;
}

/* ---- dataset construction ------------------------------------------------ */

static void item_clear(dd_item *it) {
    free(it->path);
    free(it->stem);
    free(it->defect);
    free(it->mask_path);
    free(it->fg_path);
    memset(it, 0, sizeof *it);
}

dd_item *dd_ds_item_add(dd_ds_items *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        dd_item *v = realloc(l->v, sizeof(dd_item) * (size_t)cap);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    dd_item *it = &l->v[l->n++];
    memset(it, 0, sizeof *it);
    return it;
}

void dd_ds_items_free(dd_ds_items *l) {
    for (int i = 0; i < l->n; i++) item_clear(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void dd_dataset_free(dd_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_train; i++) item_clear(&ds->train[i]);
    for (int i = 0; i < ds->n_test; i++) item_clear(&ds->test[i]);
    free(ds->train);
    free(ds->test);
    free(ds->root);
    free(ds->name);
    free(ds);
}

int dd_ds_add_folder(dd_ds_items *l, const char *dir, const char *defect, int label,
                     const char *mask_dir, int mask_rule, const char *fg_dir, dd_error *err) {
    dd_ds_names imgs, masks = {0}, fgs = {0};
    int rc = dd_ds_list_dir(dir, 0, &imgs, err);
    if (rc) return rc;
    if (mask_dir && mask_rule == DD_MASK_OPTIONAL && !dd_ds_is_dir(mask_dir)) mask_dir = NULL;
    if (mask_dir && (rc = dd_ds_list_dir(mask_dir, 0, &masks, err))) goto done;
    if (fg_dir && dd_ds_is_dir(fg_dir) && (rc = dd_ds_list_dir(fg_dir, 0, &fgs, err))) goto done;
    for (int i = 0; i < imgs.n; i++) {
        dd_item *it = dd_ds_item_add(l);
        if (!it) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
            goto done;
        }
        it->path = dd_ds_join(dir, imgs.v[i]);
        it->stem = dd_ds_stem_of(imgs.v[i]);
        it->defect = dd_ds_dup(defect);
        it->label = label;
        if (!it->path || !it->stem || !it->defect) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
            goto done;
        }
        if (mask_dir) {
            const char *m = dd_ds_find_stem(&masks, it->stem, "_mask");
            if (!m) m = dd_ds_find_stem(&masks, it->stem, "");
            if (!m && mask_rule == DD_MASK_REQUIRED) {
                rc = dd_fail(err, DD_E_FORMAT,
                             "%s: no ground-truth mask (expected %s/%s_mask.png)", it->path,
                             mask_dir, it->stem);
                goto done;
            }
            if (m && !(it->mask_path = dd_ds_join(mask_dir, m))) {
                rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
                goto done;
            }
        }
        if (fgs.n) {
            const char *f = dd_ds_find_stem(&fgs, it->stem, "");
            if (f && !(it->fg_path = dd_ds_join(fg_dir, f))) {
                rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", dir);
                goto done;
            }
        }
    }
done:
    dd_ds_names_free(&imgs);
    dd_ds_names_free(&masks);
    dd_ds_names_free(&fgs);
    return rc;
}

int dd_ds_finish(const char *root, dd_ds_items *train, dd_ds_items *test, dd_dataset **out,
                  dd_error *err) {
    dd_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
    ds->root = dd_ds_dup(root);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--; /* "a/b/" names "b" */
    const char *end = root + n, *start = end;
    while (start > root && start[-1] != '/') start--;
    ds->name = malloc((size_t)(end - start) + 1);
    if (!ds->root || !ds->name) {
        dd_dataset_free(ds);
        return dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
    }
    memcpy(ds->name, start, (size_t)(end - start));
    ds->name[end - start] = '\0';
    ds->train = train->v;
    ds->n_train = train->n;
    ds->test = test->v;
    ds->n_test = test->n;
    for (int i = 0; i < test->n; i++) ds->n_test_defective += test->v[i].label;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    *out = ds;
    return DD_OK;
}

int dd_dataset_open_mvtec(const char *root, dd_dataset **out, dd_error *err) {
    *out = NULL;
    if (!root) return dd_fail(err, DD_E_INVALID, "dataset: no folder given");
    if (!dd_ds_is_dir(root)) return dd_fail(err, DD_E_IO, "%s: not a folder", root);
    dd_ds_items train = {0}, test = {0};
    dd_ds_names types = {0};
    char *good = dd_ds_join(root, "train/good"), *fg = dd_ds_join(root, "foreground");
    char *testdir = dd_ds_join(root, "test"), *gt = dd_ds_join(root, "ground_truth");
    int rc = DD_OK;
    if (!good || !fg || !testdir || !gt) {
        rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
        goto done;
    }
    if (!dd_ds_is_dir(good)) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: missing folder (MVTec layout needs train/good)",
                     good);
        goto done;
    }
    if ((rc = dd_ds_add_folder(&train, good, "good", 0, NULL, DD_MASK_REQUIRED, fg, err))) goto done;
    if (train.n == 0) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: no images (png, jpg, bmp, pgm, ppm) in folder",
                     good);
        goto done;
    }
    if (dd_ds_is_dir(testdir)) {
        if ((rc = dd_ds_list_dir(testdir, 1, &types, err))) goto done;
        /* test/good first, then the defect types in name order. */
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < types.n; i++) {
                int isgood = strcmp(types.v[i], "good") == 0;
                if (isgood != (pass == 0)) continue;
                char *dir = dd_ds_join(testdir, types.v[i]), *mdir = dd_ds_join(gt, types.v[i]);
                if (!dir || !mdir) {
                    free(dir);
                    free(mdir);
                    rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
                    goto done;
                }
                if (!isgood) {
                    dd_ds_names probe;
                    rc = dd_ds_list_dir(dir, 0, &probe, err);
                    int nimg = probe.n;
                    dd_ds_names_free(&probe);
                    if (!rc && nimg > 0 && !dd_ds_is_dir(mdir))
                        rc = dd_fail(err, DD_E_FORMAT,
                                     "%s: missing ground-truth folder for the %d images in %s",
                                     mdir, nimg, dir);
                    if (!rc && nimg > 0)
                        rc = dd_ds_add_folder(&test, dir, types.v[i], 1, mdir, DD_MASK_REQUIRED, NULL, err);
                } else {
                    rc = dd_ds_add_folder(&test, dir, "good", 0, NULL, DD_MASK_REQUIRED, NULL, err);
                }
                free(dir);
                free(mdir);
                if (rc) goto done;
            }
        }
    }
    rc = dd_ds_finish(root, &train, &test, out, err);
done:
    dd_ds_items_free(&train);
    dd_ds_items_free(&test);
    dd_ds_names_free(&types);
    free(good);
    free(fg);
    free(testdir);
    free(gt);
    return rc;
}

int dd_dataset_open_folder(const dd_folder_spec *spec, dd_dataset **out, dd_error *err) {
    *out = NULL;
    if (!spec || !spec->good_dir)
        return dd_fail(err, DD_E_INVALID, "dataset: no folder of good images given");
    const char *dirs[4] = {spec->good_dir, spec->defect_dir, spec->mask_dir,
                           spec->test_good_dir};
    for (int i = 0; i < 4; i++)
        if (dirs[i] && !dd_ds_is_dir(dirs[i]))
            return dd_fail(err, DD_E_IO, "%s: not a folder", dirs[i]);
    if (spec->mask_dir && !spec->defect_dir)
        return dd_fail(err, DD_E_INVALID, "%s: masks given without a folder of defective images",
                       spec->mask_dir);
    dd_ds_items train = {0}, test = {0};
    int rc = dd_ds_add_folder(&train, spec->good_dir, "good", 0, NULL, DD_MASK_REQUIRED, spec->fg_dir, err);
    if (!rc && train.n == 0)
        rc = dd_fail(err, DD_E_FORMAT, "%s: no images (png, jpg, bmp, pgm, ppm) in folder",
                     spec->good_dir);
    if (!rc && spec->test_good_dir)
        rc = dd_ds_add_folder(&test, spec->test_good_dir, "good", 0, NULL, DD_MASK_REQUIRED, NULL, err);
    if (!rc && spec->defect_dir)
        rc = dd_ds_add_folder(&test, spec->defect_dir, "defect", 1, spec->mask_dir, DD_MASK_REQUIRED, NULL, err);
    if (!rc) rc = dd_ds_finish(spec->good_dir, &train, &test, out, err);
    dd_ds_items_free(&train);
    dd_ds_items_free(&test);
    return rc;
}

int dd_dataset_open(const char *path, dd_dataset **out, dd_error *err) {
    *out = NULL;
    if (!path) return dd_fail(err, DD_E_INVALID, "dataset: no folder given");
    char *good = dd_ds_join(path, "train/good");
    if (!good) return dd_fail(err, DD_E_NOMEM, "%s: no memory", path);
    int mvtec = dd_ds_is_dir(good);
    free(good);
    if (mvtec) return dd_dataset_open_mvtec(path, out, err);
    if (!dd_ds_is_dir(path)) return dd_fail(err, DD_E_IO, "%s: not a folder", path);
    dd_folder_spec spec = {.good_dir = path};
    return dd_dataset_open_folder(&spec, out, err);
}

/* ---- loading --------------------------------------------------------------- */

int dd_item_load(const dd_item *it, int h, int w, float *img, float *mask, dd_error *err) {
    if (!it || !img || h <= 0 || w <= 0)
        return dd_fail(err, DD_E_INVALID, "item load: bad arguments (%dx%d)", h, w);
    dd_image im;
    int rc = dd_image_load_rgb(it->path, &im, err);
    if (rc) return rc;
    int ih = im.h, iw = im.w;
    rc = dd_resize(im.data, im.h, im.w, 3, img, h, w, err);
    dd_image_free(&im);
    if (rc || !mask) return rc;
    if (!it->mask_path) {
        memset(mask, 0, sizeof(float) * (size_t)h * w);
        return DD_OK;
    }
    dd_image m;
    if ((rc = dd_image_load_mask(it->mask_path, &m, err))) return rc;
    if (m.h != ih || m.w != iw) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: mask is %dx%d but its image %s is %dx%d (WxH)",
                     it->mask_path, m.w, m.h, it->path, iw, ih);
    } else {
        /* any nonzero value is defect (masks stored 0/1 or mixing values count as 0/255 would) */
        dd_mask_binarize(m.data, (size_t)m.h * m.w, 0.0f);
        rc = dd_resize(m.data, m.h, m.w, 1, mask, h, w, err);
        if (!rc) dd_mask_binarize(mask, (size_t)h * w, 0.5f);
    }
    dd_image_free(&m);
    return rc;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int dd_dataset_split_train(const dd_dataset *ds, double val_frac, uint64_t seed,
                           int **train, int *n_train, int **val, int *n_val,
                           dd_error *err) {
    *train = *val = NULL;
    *n_train = *n_val = 0;
    if (!ds || ds->n_train <= 0)
        return dd_fail(err, DD_E_INVALID, "split: dataset has no training images");
    if (!(val_frac >= 0 && val_frac < 1))
        return dd_fail(err, DD_E_RANGE, "split: validation fraction %g not in [0, 1)",
                       val_frac);
    int n = ds->n_train;
    int nv = (int)(val_frac * n + 0.5);
    if (val_frac > 0 && nv == 0 && n >= 2) nv = 1;
    if (nv >= n) nv = n - 1;
    int *perm = malloc(sizeof(int) * (size_t)n);
    int *tr = malloc(sizeof(int) * (size_t)(n - nv > 0 ? n - nv : 1));
    int *va = malloc(sizeof(int) * (size_t)(nv > 0 ? nv : 1));
    if (!perm || !tr || !va) {
        free(perm);
        free(tr);
        free(va);
        return dd_fail(err, DD_E_NOMEM, "split: no memory for %d indices", n);
    }
    dd_rng r;
    dd_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)dd_rng_int(&r, 0, i);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(va, perm, sizeof(int) * (size_t)nv);
    memcpy(tr, perm + nv, sizeof(int) * (size_t)(n - nv));
    free(perm);
    qsort(va, (size_t)nv, sizeof(int), cmp_int);
    qsort(tr, (size_t)(n - nv), sizeof(int), cmp_int);
    *train = tr;
    *n_train = n - nv;
    *val = va;
    *n_val = nv;
    return DD_OK;
}
