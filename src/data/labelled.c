/* labelled.c — test sets a user labelled (see dataset.h): labelled folders (good/ or ok/, one
 * folder per defect type, optional masks under ground_truth/), a CSV list of path,label[,mask]
 * rows, and the layout detection of `diffad test --data`. */
#include "data/dataset.h"
#include "data/dataset_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/fileio.h"

/* A CSV list larger than this is refused before it is read (about 5 million rows). */
#define CSV_MAX_BYTES (512L << 20)

const char *dd_layout_name(int layout) {
    return layout == DD_LAYOUT_MVTEC      ? "MVTec category"
           : layout == DD_LAYOUT_LABELLED ? "labelled folders"
           : layout == DD_LAYOUT_CSV      ? "CSV list"
                                          : "?";
}

/* A name as messages show it: one line whatever the name holds (a line break is a legal byte in
 * a file name and in a quoted CSV field), control bytes written \n, \r, \t or \xHH. */
static const char *shown(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    for (; *s && k + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != 0x7f) buf[k++] = (char)c;
        else if (c == '\n' || c == '\r' || c == '\t')
            buf[k++] = '\\', buf[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        else k += (size_t)snprintf(buf + k, cap - k, "\\x%02x", c);
    }
    buf[k] = '\0';
    return buf;
}

/* The folder names (and CSV labels) that mean "good": good, ok, any case. */
static int is_good_name(const char *s) { return !strcasecmp(s, "good") || !strcasecmp(s, "ok"); }

/* ---- labelled folders ------------------------------------------------------ */

/* Does mask file `name` belong to one of items[0..n) (stem, or stem + "_mask")? */
static int mask_has_image(const char *name, const dd_item *items, int n) {
    const char *dot = strrchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : strlen(name), sfx = strlen("_mask");
    for (int i = 0; i < n; i++) {
        size_t ls = strlen(items[i].stem);
        if (!strncmp(name, items[i].stem, ls) && (len == ls || (len == ls + sfx && !strncmp(name + ls, "_mask", sfx))))
            return 1;
    }
    return 0;
}

/* Masks are optional, so a misspelt one would quietly leave its image without pixel truth: every
 * image file in ground_truth/<type>/ must belong to an image of <type>/, and every sub-folder of
 * ground_truth/ to a defect folder (ground_truth/<good folder>/ is allowed and not read). */
static int check_masks(const char *root, const char *gt, const dd_ds_names *sub, const dd_ds_items *test,
                       dd_error *err) {
    if (!dd_ds_is_dir(gt)) return DD_OK;
    dd_ds_names mdirs = {0}, masks = {0};
    char sr[1024], sn[1024], st[1024];
    int rc = dd_ds_list_dir(gt, 1, &mdirs, err);
    for (int i = 0; !rc && i < mdirs.n; i++) {
        const char *type = mdirs.v[i];
        int known = 0;
        for (int k = 0; k < sub->n; k++) known |= !strcmp(sub->v[k], type);
        if (!known || is_good_name(type)) {
            if (!known)
                rc = dd_fail(err, DD_E_FORMAT, "%s/ground_truth/%s: no folder %s/ of images for these masks (mask "
                                               "folders are named as the defect folders, case included)",
                             shown(root, sr, sizeof sr), shown(type, sn, sizeof sn), sn);
            continue;
        }
        int first = -1, n = 0; /* the items of this type: contiguous in test */
        for (int k = 0; k < test->n; k++)
            if (test->v[k].label && !strcmp(test->v[k].defect, type)) {
                if (first < 0) first = k;
                n++;
            }
        char *mdir = dd_ds_join(gt, type);
        if (!mdir) rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
        else if (!(rc = dd_ds_list_dir(mdir, 0, &masks, err)))
            for (int m = 0; !rc && m < masks.n; m++)
                if (!mask_has_image(masks.v[m], first < 0 ? NULL : &test->v[first], n))
                    rc = dd_fail(err, DD_E_FORMAT, "%s/%s: no image of %s/ for this mask (masks are named "
                                                   "<stem>_mask.<ext> or <stem>.<ext> after their image)",
                                 shown(mdir, sr, sizeof sr), shown(masks.v[m], sn, sizeof sn), shown(type, st, sizeof st));
        dd_ds_names_free(&masks);
        free(mdir);
    }
    dd_ds_names_free(&mdirs);
    return rc;
}

int dd_dataset_open_labelled(const char *root, dd_dataset **out, dd_error *err) {
    *out = NULL;
    if (!root) return dd_fail(err, DD_E_INVALID, "dataset: no folder given");
    struct stat st;
    char sr[1024], sn[1024];
    if (stat(root, &st) != 0) return dd_fail(err, DD_E_IO, "%s: %s", shown(root, sr, sizeof sr), strerror(errno));
    if (!S_ISDIR(st.st_mode)) return dd_fail(err, DD_E_IO, "%s: not a folder", shown(root, sr, sizeof sr));
    dd_ds_items none = {0}, test = {0};
    dd_ds_names sub = {0}, loose = {0};
    char *gt = dd_ds_join(root, "ground_truth");
    int rc = DD_OK;
    if (!gt) {
        rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
        goto done;
    }
    /* Images directly in root have no label: refuse them rather than guess. */
    if ((rc = dd_ds_list_dir(root, 0, &loose, err))) goto done;
    if (loose.n > 0) {
        rc = dd_fail(err, DD_E_FORMAT,
                     "%s: %d image%s directly in the folder (%s%s) without a label: labelled "
                     "folders hold good/ (or ok/) and one folder per defect type",
                     shown(root, sr, sizeof sr), loose.n, loose.n == 1 ? "" : "s", shown(loose.v[0], sn, sizeof sn),
                     loose.n > 1 ? ", ..." : "");
        goto done;
    }
    if ((rc = dd_ds_list_dir(root, 1, &sub, err))) goto done;
    int n_good_dirs = 0;
    const char *good_dir = NULL; /* the first good folder, for messages */
    /* the good folders first, then the defect types, each in name order */
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (int i = 0; i < sub.n && !rc; i++) {
            const char *name = sub.v[i];
            int good = is_good_name(name);
            if (!strcmp(name, "ground_truth") || good != (pass == 0)) continue;
            char *dir = dd_ds_join(root, name), *mdir = dd_ds_join(gt, name);
            if (!dir || !mdir) rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", root);
            else if (good) rc = dd_ds_add_folder(&test, dir, "good", 0, NULL, DD_MASK_OPTIONAL, NULL, err);
            else rc = dd_ds_add_folder(&test, dir, name, 1, mdir, DD_MASK_OPTIONAL, NULL, err);
            n_good_dirs += good;
            if (good && !good_dir) good_dir = name;
            free(dir);
            free(mdir);
        }
        if (!rc && pass == 0 && n_good_dirs == 0)
            rc = dd_fail(err, DD_E_FORMAT,
                         "%s: no good/ (or ok/) folder: labelled folders hold good/ and one folder "
                         "per defect type (masks optional, in ground_truth/<type>/); an MVTec "
                         "category holds train/good/ and test/", shown(root, sr, sizeof sr));
        if (!rc && pass == 0 && test.n == 0)
            rc = dd_fail(err, DD_E_FORMAT, "%s: no images (%s) in %s/%s", shown(root, sr, sizeof sr),
                         dd_image_extensions(), shown(good_dir, sn, sizeof sn), n_good_dirs > 1 ? " or the other good folders" : "");
    }
    if (!rc) rc = check_masks(root, gt, &sub, &test, err);
    if (!rc) rc = dd_ds_finish(root, &none, &test, out, err);
done:
    dd_ds_items_free(&test);
    dd_ds_names_free(&sub);
    dd_ds_names_free(&loose);
    free(gt);
    return rc;
}

/* ---- CSV list ---------------------------------------------------------------- */

/* One parsed record: up to CSV_FIELDS fields (more are counted, not kept), unquoted and
 * unescaped into buf; the line it starts on. */
enum { CSV_FIELDS = 3 };
typedef struct csv_reader {
    const char *name;      /* the CSV path, for messages */
    const char *p, *end;   /* the unread text */
    int line;              /* line of p (1-based) */
    char *buf;             /* field text, NUL-separated */
    size_t cap;
} csv_reader;

typedef struct csv_record {
    int line, n_fields;
    size_t off[CSV_FIELDS]; /* offsets into reader.buf */
} csv_record;

static int put_byte(csv_reader *r, size_t *len, char c, dd_error *err) {
    if (*len + 1 >= r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        char *b = realloc(r->buf, cap);
        if (!b) return dd_fail(err, DD_E_NOMEM, "%s: no memory", r->name);
        r->buf = b, r->cap = cap;
    }
    r->buf[(*len)++] = c;
    return DD_OK;
}

static int is_eol(const csv_reader *r) { return r->p < r->end && (*r->p == '\n' || *r->p == '\r'); }

static void skip_eol(csv_reader *r) {
    if (r->p < r->end && *r->p == '\r') r->p++;
    if (r->p < r->end && *r->p == '\n') r->p++;
    r->line++;
}

static void skip_blanks(csv_reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t')) r->p++;
}

/* The next record; returns DD_OK with rec->n_fields == 0 at the end of the text. A line of
 * blanks is a record of one empty field (the caller skips it). */
static int csv_next(csv_reader *r, csv_record *rec, dd_error *err) {
    memset(rec, 0, sizeof *rec);
    rec->line = r->line;
    if (r->p >= r->end) return DD_OK;
    size_t len = 0;
    for (;;) {
        size_t start = len;
        skip_blanks(r);
        if (r->p < r->end && *r->p == '"') {
            int open_line = r->line;
            for (r->p++;; r->p++) {
                if (r->p >= r->end)
                    return dd_fail(err, DD_E_FORMAT, "%s:%d: a quoted field is not closed", r->name, open_line);
                char c = *r->p;
                if (c == '"' && r->p + 1 < r->end && r->p[1] == '"') r->p++; /* "" is one quote */
                else if (c == '"') break;
                else if (c == '\n' || (c == '\r' && !(r->p + 1 < r->end && r->p[1] == '\n'))) r->line++;
                int rc = put_byte(r, &len, c, err);
                if (rc) return rc;
            }
            r->p++; /* the closing quote */
            skip_blanks(r);
            if (r->p < r->end && *r->p != ',' && !is_eol(r))
                return dd_fail(err, DD_E_FORMAT, "%s:%d: text after a closing quote (a quote inside a quoted "
                                                 "field is written \"\")", r->name, r->line);
        } else {
            while (r->p < r->end && *r->p != ',' && !is_eol(r)) {
                if (*r->p == '"')
                    return dd_fail(err, DD_E_FORMAT, "%s:%d: a quote inside an unquoted field (quote the whole "
                                                     "field and double the quotes in it)", r->name, r->line);
                int rc = put_byte(r, &len, *r->p++, err);
                if (rc) return rc;
            }
            while (len > start && (r->buf[len - 1] == ' ' || r->buf[len - 1] == '\t')) len--;
        }
        int rc = put_byte(r, &len, '\0', err);
        if (rc) return rc;
        if (rec->n_fields < CSV_FIELDS) rec->off[rec->n_fields] = start;
        rec->n_fields++;
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end) skip_eol(r);
        return DD_OK;
    }
}

/* The path of a CSV entry: absolute as it is, else relative to the CSV file's folder. */
static char *csv_resolve(const char *csv_dir, const char *entry) {
    if (entry[0] == '/' || !csv_dir[0]) return dd_ds_dup(entry);
    return dd_ds_join(csv_dir, entry);
}

/* An image or mask named in row `line`: an image file name, and a regular file (*st: its stat). */
static int csv_check_file(const char *csv, int line, const char *what, const char *entry, const char *path,
                          struct stat *st, dd_error *err) {
    const char *base = strrchr(entry, '/');
    base = base ? base + 1 : entry;
    char sp[1024];
    if (!dd_is_image_name(base))
        return dd_fail(err, DD_E_FORMAT, "%s:%d: %s '%s' is not an image file name (%s)", csv, line, what,
                       shown(entry, sp, sizeof sp), dd_image_extensions());
    if (stat(path, st) != 0)
        return dd_fail(err, DD_E_IO, "%s:%d: %s %s: %s", csv, line, what, shown(path, sp, sizeof sp), strerror(errno));
    if (!S_ISREG(st->st_mode))
        return dd_fail(err, DD_E_IO, "%s:%d: %s %s: not a regular file", csv, line, what, shown(path, sp, sizeof sp));
    return DD_OK;
}

/* Where an image of the list is: its file (device, inode) and its row. */
typedef struct {
    dev_t dev;
    ino_t ino;
    int line, item;
} file_row;

static int by_file(const void *a, const void *b) {
    const file_row *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* An image listed twice (under any name: ./a.png, a link) would count twice in every metric:
 * refuse it, naming both lines. rows[] is sorted here. */
static int csv_check_duplicates(const char *csv, const dd_ds_items *items, file_row *rows, dd_error *err) {
    qsort(rows, (size_t)items->n, sizeof *rows, by_file);
    char sp[1024];
    for (int i = 1; i < items->n; i++)
        if (rows[i].dev == rows[i - 1].dev && rows[i].ino == rows[i - 1].ino)
            return dd_fail(err, DD_E_FORMAT, "%s:%d: image %s is the file already listed on line %d", csv, rows[i].line,
                           shown(items->v[rows[i].item].path, sp, sizeof sp), rows[i - 1].line);
    return DD_OK;
}

int dd_dataset_open_csv(const char *csv, dd_dataset **out, dd_error *err) {
    *out = NULL;
    if (!csv) return dd_fail(err, DD_E_INVALID, "dataset: no CSV file given");
    unsigned char *text = NULL;
    size_t n = 0;
    int rc = dd_read_file(csv, CSV_MAX_BYTES, &text, &n, err);
    if (rc) return rc;
    char cname[1024]; /* the file as messages name it */
    shown(csv, cname, sizeof cname);
    csv_reader r = {cname, (const char *)text, (const char *)text + n, 1, NULL, 0};
    dd_ds_items none = {0}, test = {0};
    file_row *rows = NULL;
    int cap_rows = 0, seen_row = 0;
    char *dir = dd_ds_dup(csv);
    if (!dir) {
        rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", cname);
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir] = '\0'; /* "/list.csv" → "/" */
    else dir[0] = '\0';
    const char *nul = memchr(text, '\0', n);
    if (nul) {
        int line = 1;
        for (const unsigned char *q = text; q < (const unsigned char *)nul; q++) line += *q == '\n';
        rc = dd_fail(err, DD_E_FORMAT, "%s:%d: a NUL byte: not a text file", cname, line);
        goto done;
    }
    if (n >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF) r.p += 3; /* UTF-8 byte-order mark */
    for (;;) {
        csv_record rec;
        if ((rc = csv_next(&r, &rec, err))) goto done;
        if (rec.n_fields == 0) break;
        const char *f[CSV_FIELDS] = {"", "", ""};
        for (int k = 0; k < rec.n_fields && k < CSV_FIELDS; k++) f[k] = r.buf + rec.off[k];
        if (rec.n_fields == 1 && !f[0][0]) continue; /* an empty line */
        if (!seen_row++ && rec.n_fields >= 2 && !strcasecmp(f[1], "label")) continue; /* the header */
        if (rec.n_fields < 2 || rec.n_fields > 3) {
            rc = dd_fail(err, DD_E_FORMAT, "%s:%d: %d field%s, expected path,label[,mask]", cname, rec.line,
                         rec.n_fields, rec.n_fields == 1 ? "" : "s");
            goto done;
        }
        if (!f[0][0]) {
            rc = dd_fail(err, DD_E_FORMAT, "%s:%d: the image path is empty", cname, rec.line);
            goto done;
        }
        if (!f[1][0]) {
            rc = dd_fail(err, DD_E_FORMAT, "%s:%d: the label is empty (good, ok or 0 for a good image; ng, 1 or "
                                           "a defect type for a defective one)", csv, rec.line);
            goto done;
        }
        for (const char *c = f[1]; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                rc = dd_fail(err, DD_E_FORMAT, "%s:%d: the label holds a control character or line break", cname,
                             rec.line);
                goto done;
            }
        int good = is_good_name(f[1]) || !strcmp(f[1], "0");
        if (good && f[2][0]) {
            rc = dd_fail(err, DD_E_FORMAT, "%s:%d: a mask for a good image (label '%s'): a good image's pixels "
                                           "are all normal; leave the mask empty", csv, rec.line, f[1]);
            goto done;
        }
        dd_item *it = dd_ds_item_add(&test);
        if (!it) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", cname);
            goto done;
        }
        if (test.n > cap_rows) {
            int c = cap_rows ? 2 * cap_rows : 256;
            file_row *l = realloc(rows, sizeof *l * (size_t)c);
            if (!l) {
                rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", cname);
                goto done;
            }
            rows = l, cap_rows = c;
        }
        const char *base = strrchr(f[0], '/');
        it->path = csv_resolve(dir, f[0]);
        it->stem = dd_ds_stem_of(base ? base + 1 : f[0]);
        it->defect = dd_ds_dup(good ? "good" : !strcmp(f[1], "1") ? "ng" : f[1]);
        it->label = !good;
        if (f[2][0]) it->mask_path = csv_resolve(dir, f[2]);
        if (!it->path || !it->stem || !it->defect || (f[2][0] && !it->mask_path)) {
            rc = dd_fail(err, DD_E_NOMEM, "%s: no memory", cname);
            goto done;
        }
        struct stat st;
        if ((rc = csv_check_file(cname, rec.line, "image", f[0], it->path, &st, err))) goto done;
        rows[test.n - 1] = (file_row){st.st_dev, st.st_ino, rec.line, test.n - 1};
        if (it->mask_path && (rc = csv_check_file(cname, rec.line, "mask", f[2], it->mask_path, &st, err))) goto done;
    }
    if (test.n == 0) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: no images listed (one row per image: path,label[,mask])", cname);
        goto done;
    }
    if ((rc = csv_check_duplicates(cname, &test, rows, err))) goto done;
    rc = dd_ds_finish(csv, &none, &test, out, err);
done:
    dd_ds_items_free(&test);
    free(rows);
    free(r.buf);
    free(dir);
    free(text);
    return rc;
}

/* ---- layout detection ------------------------------------------------------ */

int dd_dataset_open_test(const char *path, dd_dataset **out, int *layout, dd_error *err) {
    *out = NULL;
    if (layout) *layout = 0;
    if (!path || !*path) return dd_fail(err, DD_E_INVALID, "dataset: no folder or CSV file given");
    struct stat st;
    char sp[1024];
    if (stat(path, &st) != 0) return dd_fail(err, DD_E_IO, "%s: %s", shown(path, sp, sizeof sp), strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        size_t len = strlen(path);
        if (len < 4 || strcasecmp(path + len - 4, ".csv"))
            return dd_fail(err, DD_E_INVALID, "%s: not a folder or a .csv file (a test set is an MVTec "
                                              "category, labelled folders or a CSV list)", shown(path, sp, sizeof sp));
        if (!S_ISREG(st.st_mode)) return dd_fail(err, DD_E_IO, "%s: not a regular file", shown(path, sp, sizeof sp));
        if (layout) *layout = DD_LAYOUT_CSV;
        return dd_dataset_open_csv(path, out, err);
    }
    char *good = dd_ds_join(path, "train/good");
    if (!good) return dd_fail(err, DD_E_NOMEM, "%s: no memory", path);
    int mvtec = dd_ds_is_dir(good);
    free(good);
    if (layout) *layout = mvtec ? DD_LAYOUT_MVTEC : DD_LAYOUT_LABELLED;
    return mvtec ? dd_dataset_open_mvtec(path, out, err) : dd_dataset_open_labelled(path, out, err);
}
