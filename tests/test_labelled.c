/* test_labelled.c — `diffad test` end to end on a user's own labelled test sets (issue 13
 * item 1), on the bundled sample (data/sample/pcb: 10 good, 10 defective test images):
 *  - the sample as an MVTec category, as labelled folders (OK/, defect/, ground_truth/defect/)
 *    and as a CSV list (shuffled rows, a header, a quoted name with a comma, absolute and
 *    relative paths) give the same metrics, and scores.csv the same scores;
 *  - with the masks of 4 defective images missing (folders and CSV), the image metrics are those
 *    of the whole set and the pixel metrics those of an MVTec category holding only the 6 masked
 *    defective images and every good one; metrics.json, metrics.csv, the printed table and the
 *    report say "6 of 10"; without any mask the pixel metrics are undefined with the reason;
 *  - bad input (missing folder, no good folder, empty good folder, unlabelled images, CSV rows
 *    with a bad label, too few fields, a missing image or mask, a file that is not .csv): exit 2
 *    and one line on stderr naming the file (and the CSV line).
 * Runs the built CLI next to this program (BUILD/diffad) on a tiny random model.
 * DD_LABELLED_KEEP=1 keeps the temporary folder (its path is printed). */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "live_model.h"
#include "core/json.h"
#include "core/fileio.h"
#include "model/model.h"
#include "model/modelfile.h"

static char g_dir[256], g_model[512], g_cli[PATH_MAX + 16], g_sample[1024];

/* A tiny model with a non-flat map (the recipe of test_api.c). */
static int make_model(const char *path) { return live_model_save(path, 32, 1234, NULL); }

static const char *T(const char *rel) { /* a path under the temporary folder */
    static char buf[8][1024];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 1024, "%s/%s", g_dir, rel);
    return b;
}

static char *slurp(const char *path) { /* the library's whole-file reader; NULL when unreadable */
    unsigned char *b = NULL;
    size_t n;
    dd_error e = {0};
    return dd_read_file(path, 1L << 30, &b, &n, &e) ? NULL : (char *)b;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) fputs(text, f), fclose(f);
}

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* The sorted image names of a sample folder. */
static int names(const char *dir, char out[][64], int cap) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && strlen(e->d_name) < 64 && n < cap) snprintf(out[n++], 64, "%.63s", e->d_name);
    if (d) closedir(d);
    qsort(out, (size_t)n, 64, cmp_name);
    return n;
}

/* `diffad test` on data into out/ (under the temporary folder); stdout and stderr kept. */
static int run_test(const char *data, const char *out, const char *extra, char **so, char **se) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' test --model '%s' --data '%s' --out '%s' --threads 1 %s > '%s.stdout' 2> '%s.stderr'",
             g_cli, g_model, data, T(out), extra ? extra : "", T(out), T(out));
    int st = system(cmd);
    char p[1100];
    snprintf(p, sizeof p, "%s.stdout", T(out));
    if (so) *so = slurp(p);
    snprintf(p, sizeof p, "%s.stderr", T(out));
    if (se) *se = slurp(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- metrics.json, read back ---- */

static const char *const KEYS[] = {"image_auroc", "image_ap", "image_f1max", "pixel_auroc", "pixel_ap", "pixel_f1max", "aupro"};
enum { NK = 7, MAXSETS = 8 };

typedef struct {
    char name[64];
    long n_good, n_def, n_masked, n_pixels;
    int defined[NK];
    double v[NK];
    char why[NK][96];
} mset;

typedef struct {
    int n;
    mset s[MAXSETS];
    char note[400];
} mres;

static int load_metrics(const char *out, mres *r) {
    memset(r, 0, sizeof *r);
    char p[1100];
    snprintf(p, sizeof p, "%s/metrics.json", T(out));
    char *txt = slurp(p);
    dd_json *j = NULL;
    dd_error e = {0};
    if (!txt || dd_json_parse(txt, strlen(txt), p, &j, &e)) {
        free(txt);
        CHECK(0, "%s: %s", p, e.msg);
        return -1;
    }
    const dd_json *note = dd_json_get(j, "pixel_truth_note"), *sets = dd_json_get(j, "sets");
    if (note && note->type == DD_JSTR) snprintf(r->note, sizeof r->note, "%s", note->str);
    for (const dd_json *s = sets ? sets->child : NULL; s && r->n < MAXSETS; s = s->next) {
        mset *m = &r->s[r->n++];
        const dd_json *nm = dd_json_get(s, "name"), *g = dd_json_get(s, "n_good"), *d = dd_json_get(s, "n_defective"),
                      *k = dd_json_get(s, "n_defective_masked"), *px = dd_json_get(s, "n_pixels"),
                      *mm = dd_json_get(s, "metrics");
        snprintf(m->name, sizeof m->name, "%s", nm && nm->type == DD_JSTR ? nm->str : "?");
        m->n_good = g ? (long)g->num : -1, m->n_def = d ? (long)d->num : -1, m->n_masked = k ? (long)k->num : -1;
        m->n_pixels = px ? (long)px->num : -1;
        for (int q = 0; q < NK; q++) {
            const dd_json *o = mm ? dd_json_get(mm, KEYS[q]) : NULL, *v = o ? dd_json_get(o, "value") : NULL,
                          *w = o ? dd_json_get(o, "undefined") : NULL;
            m->defined[q] = v && v->type == DD_JNUM;
            m->v[q] = m->defined[q] ? v->num : NAN;
            snprintf(m->why[q], sizeof m->why[q], "%s", w && w->type == DD_JSTR ? w->str : "");
        }
    }
    dd_json_free(j);
    free(txt);
    return 0;
}

/* Compare metrics q0 <= q < q1 of every set of a and b (same set names and image counts). */
static void same_metrics(const mres *a, const mres *b, int q0, int q1, double tol, const char *what) {
    CHECK(a->n == b->n && a->n >= 2, "%s: %d vs %d sets", what, a->n, b->n);
    for (int i = 0; i < a->n && i < b->n; i++) {
        const mset *x = &a->s[i], *y = &b->s[i];
        CHECK(!strcmp(x->name, y->name) && x->n_good == y->n_good, "%s: set %s/%s, good %ld/%ld", what, x->name, y->name,
              x->n_good, y->n_good);
        for (int q = q0; q < q1; q++)
            CHECK(x->defined[q] == y->defined[q] && (!x->defined[q] || fabs(x->v[q] - y->v[q]) <= tol),
                  "%s: %s %s: %.12g vs %.12g", what, x->name, KEYS[q], x->v[q], y->v[q]);
    }
}

/* scores.csv as (file name, score) pairs, in file order. */
typedef struct {
    char name[64];
    char score[32];
} srow;

static int load_scores(const char *out, srow *rows, int cap) {
    char p[1100];
    snprintf(p, sizeof p, "%s/scores.csv", T(out));
    FILE *f = fopen(p, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f) && n < cap) {
        if (!strncmp(line, "path,", 5)) continue;
        /* "...path...",label,type,score,...: the path is quoted; its last component is the name */
        char *endq = strrchr(line, '"');
        if (!endq) continue;
        *endq = 0;
        char *slash = strrchr(line, '/');
        const char *nm = slash ? slash + 1 : line + 1;
        char *c = endq + 1; /* ,label,type,score */
        int commas = 0;
        while (*c && commas < 3) commas += *c++ == ',';
        char *e = strchr(c, ',');
        if (e) *e = 0;
        snprintf(rows[n].name, sizeof rows[n].name, "%.63s", nm);
        snprintf(rows[n].score, sizeof rows[n].score, "%s", c);
        n++;
    }
    if (f) fclose(f);
    return n;
}

static char g_good[10][64], g_bad[10][64];
static int g_ng, g_nb;

/* The sample's name of an image (the CSV lists the first defective one as 'odd, "name".png'). */
static const char *sample_name(const char *n) { return !strncmp(n, "odd, ", 5) ? g_bad[0] : n; }

static void same_scores(const char *a, const char *b, const char *what) {
    static srow x[64], y[64];
    int nx = load_scores(a, x, 64), ny = load_scores(b, y, 64), matched = 0;
    CHECK(nx == 20 && ny == 20, "%s: scores.csv rows %d and %d (20 expected)", what, nx, ny);
    for (int i = 0; i < nx; i++)
        for (int k = 0; k < ny; k++)
            if (!strcmp(x[i].name, sample_name(y[k].name))) {
                matched++;
                CHECK(!strcmp(x[i].score, y[k].score), "%s: %s scored %s and %s", what, x[i].name, x[i].score, y[k].score);
                break;
            }
    CHECK(matched == nx, "%s: %d of %d images matched by name", what, matched, nx);
}

/* Labelled folders from the sample: good images in OK/, defective in defect/, masks in
 * ground_truth/defect/ for the images whose index is not in skip (a mask named <stem>_mask.png or,
 * for odd indices, <stem>.png). Links to the sample's files. */
static void build_labelled(const char *rel, const int *skip, int n_skip, int with_gt) {
    char p[4096], q[4096];
    mkdir(T(rel), 0755);
    snprintf(p, sizeof p, "%s/OK", T(rel)), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/defect", T(rel)), mkdir(p, 0755);
    if (with_gt) {
        snprintf(p, sizeof p, "%s/ground_truth", T(rel)), mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/ground_truth/defect", T(rel)), mkdir(p, 0755);
    }
    int ok = 1;
    for (int i = 0; i < g_ng; i++) {
        snprintf(p, sizeof p, "%s/test/good/%s", g_sample, g_good[i]);
        snprintf(q, sizeof q, "%s/OK/%s", T(rel), g_good[i]);
        ok &= !symlink(p, q);
    }
    for (int i = 0; i < g_nb; i++) {
        snprintf(p, sizeof p, "%s/test/defect/%s", g_sample, g_bad[i]);
        snprintf(q, sizeof q, "%s/defect/%s", T(rel), g_bad[i]);
        ok &= !symlink(p, q);
        int skipped = 0;
        for (int k = 0; k < n_skip; k++) skipped |= skip[k] == i;
        if (!with_gt || skipped) continue;
        char stem[64];
        snprintf(stem, sizeof stem, "%.63s", g_bad[i]);
        *strrchr(stem, '.') = 0;
        snprintf(p, sizeof p, "%s/ground_truth/defect/%s_mask.png", g_sample, stem);
        snprintf(q, sizeof q, "%s/ground_truth/defect/%s%s.png", T(rel), stem, i % 2 ? "" : "_mask");
        ok &= !symlink(p, q);
    }
    CHECK(ok, "build %s", rel);
}

/* An MVTec category of the sample's good images and the defective images not in skip. */
static void build_mvtec_subset(const char *rel, const int *skip, int n_skip) {
    char p[4096], q[4096];
    const char *dirs[] = {"", "/train", "/train/good", "/test", "/test/good", "/test/defect", "/ground_truth",
                          "/ground_truth/defect"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) snprintf(p, sizeof p, "%s%s", T(rel), dirs[i]), mkdir(p, 0755);
    int ok = 1;
    snprintf(p, sizeof p, "%s/test/good/%s", g_sample, g_good[0]);
    snprintf(q, sizeof q, "%s/train/good/%s", T(rel), g_good[0]);
    ok &= !symlink(p, q);
    for (int i = 0; i < g_ng; i++) {
        snprintf(p, sizeof p, "%s/test/good/%s", g_sample, g_good[i]);
        snprintf(q, sizeof q, "%s/test/good/%s", T(rel), g_good[i]);
        ok &= !symlink(p, q);
    }
    for (int i = 0; i < g_nb; i++) {
        int skipped = 0;
        for (int k = 0; k < n_skip; k++) skipped |= skip[k] == i;
        if (skipped) continue;
        char stem[64];
        snprintf(stem, sizeof stem, "%.63s", g_bad[i]);
        *strrchr(stem, '.') = 0;
        snprintf(p, sizeof p, "%s/test/defect/%s", g_sample, g_bad[i]);
        snprintf(q, sizeof q, "%s/test/defect/%s", T(rel), g_bad[i]);
        ok &= !symlink(p, q);
        snprintf(p, sizeof p, "%s/ground_truth/defect/%s_mask.png", g_sample, stem);
        snprintf(q, sizeof q, "%s/ground_truth/defect/%s_mask.png", T(rel), stem);
        ok &= !symlink(p, q);
    }
    CHECK(ok, "build %s", rel);
}

/* A CSV list of the sample under g_dir, rows in a shuffled order: good rows labelled ok / 0 /
 * good, defective rows "defect" with masks except those in skip; the first defective image under
 * a name with a comma (quoted), some paths absolute. */
static void build_csv(const char *rel, const int *skip, int n_skip) {
    static char body[1 << 16];
    char p[4096], q[4096];
    int len = snprintf(body, sizeof body, "Path,Label,Mask\r\n");
    snprintf(p, sizeof p, "%s/test/defect/%s", g_sample, g_bad[0]);
    snprintf(q, sizeof q, "%s/odd, \"name\".png", g_dir);
    unlink(q);
    CHECK(!symlink(p, q), "link %s", q);
    for (int k = 0; k < 20; k++) {
        int i = (k * 7) % 20; /* 0 7 14 1 8 15 2 ...: goods and defects interleaved */
        if (i < 10) {
            const char *lab[3] = {"ok", "0", "GOOD"};
            if (i % 2) len += snprintf(body + len, sizeof body - (size_t)len, "%s/test/good/%s,%s\n", g_sample, g_good[i], lab[i % 3]);
            else len += snprintf(body + len, sizeof body - (size_t)len, "lab/OK/%s , %s\n", g_good[i], lab[i % 3]);
            continue;
        }
        i -= 10;
        int skipped = 0;
        for (int s = 0; s < n_skip; s++) skipped |= skip[s] == i;
        char stem[64];
        snprintf(stem, sizeof stem, "%.63s", g_bad[i]);
        *strrchr(stem, '.') = 0;
        if (i == 0) len += snprintf(body + len, sizeof body - (size_t)len, "\"odd, \"\"name\"\".png\",defect");
        else len += snprintf(body + len, sizeof body - (size_t)len, "lab/defect/%s,defect", g_bad[i]);
        if (!skipped) len += snprintf(body + len, sizeof body - (size_t)len, ",%s/ground_truth/defect/%s_mask.png", g_sample, stem);
        len += snprintf(body + len, sizeof body - (size_t)len, "\n");
    }
    write_text(T(rel), body);
}

static int one_line(const char *s) { return s && strlen(s) > 0 && strchr(s, '\n') == s + strlen(s) - 1; }

static void test_same_metrics(void) {
    build_labelled("lab", NULL, 0, 1);
    build_csv("list.csv", NULL, 0);
    char *so = NULL, *se = NULL;
    int st = run_test(g_sample, "out_mvtec", NULL, NULL, NULL);
    CHECK(st == 0, "diffad test on the MVTec sample: exit %d", st);
    st = run_test(T("lab"), "out_lab", NULL, &so, &se);
    CHECK(st == 0, "diffad test on labelled folders: exit %d: %s", st, se ? se : "");
    CHECK(se && strstr(se, "(labelled folders): 20 test images (10 defective)"), "stderr names the layout: %s", se ? se : "");
    CHECK(so && !strstr(so, "with mask") && !strstr(so, "Pixel metrics over"), "every mask given: the table as for MVTec:\n%s",
          so ? so : "");
    free(so), free(se);
    st = run_test(T("list.csv"), "out_csv", NULL, NULL, &se);
    CHECK(st == 0, "diffad test on a CSV list: exit %d: %s", st, se ? se : "");
    CHECK(se && strstr(se, "(CSV list): 20 test images (10 defective)"), "stderr names the layout: %s", se ? se : "");
    free(se);
    /* labelled folders list the images in MVTec's order: the same bytes */
    char p1[1100], p2[1100];
    snprintf(p1, sizeof p1, "%s/metrics.json", T("out_mvtec"));
    snprintf(p2, sizeof p2, "%s/metrics.json", T("out_lab"));
    char *a = slurp(p1), *b = slurp(p2);
    CHECK(a && b && !strcmp(a, b), "labelled folders: metrics.json identical to the MVTec category's");
    free(a), free(b);
    mres mv, lab, csv;
    load_metrics("out_mvtec", &mv);
    load_metrics("out_lab", &lab);
    load_metrics("out_csv", &csv);
    CHECK(mv.n == 2 && !strcmp(mv.s[1].name, "defect") && mv.s[0].n_good == 10 && mv.s[0].n_def == 10 &&
              mv.s[0].n_masked == 10 && mv.s[0].defined[3] && mv.s[0].defined[6],
          "MVTec: overall + defect, 10/10/10 masked, pixel metrics defined");
    CHECK(!strcmp(mv.note, "pixel metrics over all 10 good and 10 defective images"), "note: %s", mv.note);
    same_metrics(&mv, &csv, 0, NK, 1e-9, "CSV list vs MVTec");
    CHECK(csv.s[0].n_def == 10 && csv.s[0].n_masked == 10, "CSV: 10 defective, all masked");
    same_scores("out_mvtec", "out_lab", "scores: labelled folders vs MVTec");
    same_scores("out_mvtec", "out_csv", "scores: CSV list vs MVTec");
}

static void test_partial_masks(void) {
    const int skip[4] = {1, 4, 6, 9};
    build_labelled("lab_part", skip, 4, 1);
    build_mvtec_subset("mv_sub", skip, 4);
    build_csv("part.csv", skip, 4);
    char *so = NULL, *se = NULL;
    int st = run_test(T("lab_part"), "out_lab_part", "--report", &so, &se);
    CHECK(st == 0, "labelled folders, 4 masks missing: exit %d: %s", st, se ? se : "");
    CHECK(se && strstr(se, "20 test images (10 defective, 4 without a mask)"), "stderr counts the unmasked: %s", se ? se : "");
    const char *sentence = "Pixel metrics over 6 of 10 defective images (4 have no mask) and the 10 good images; "
                           "images without a mask count in the image metrics only.";
    CHECK(so && strstr(so, "| overall | 10 | 10 (6 with mask) |") && strstr(so, sentence), "printed table:\n%s", so ? so : "");
    free(so), free(se);
    st = run_test(T("mv_sub"), "out_mv_sub", NULL, NULL, NULL);
    CHECK(st == 0, "MVTec subset: exit %d", st);
    st = run_test(T("part.csv"), "out_csv_part", NULL, &so, NULL);
    CHECK(st == 0, "CSV list, 4 masks missing: exit %d", st);
    CHECK(so && strstr(so, sentence), "CSV: printed note:\n%s", so ? so : "");
    free(so);
    mres mv, sub, part, cpart;
    load_metrics("out_mvtec", &mv);
    load_metrics("out_mv_sub", &sub);
    load_metrics("out_lab_part", &part);
    load_metrics("out_csv_part", &cpart);
    /* image metrics: every image; pixel metrics: the good images and the masked defective ones */
    same_metrics(&mv, &part, 0, 3, 1e-12, "partial masks: image metrics vs the whole MVTec set");
    same_metrics(&sub, &part, 3, NK, 1e-12, "partial masks: pixel metrics vs the MVTec subset");
    same_metrics(&part, &cpart, 0, NK, 1e-9, "partial masks: CSV list vs labelled folders");
    CHECK(part.s[0].n_def == 10 && part.s[0].n_masked == 6 && part.s[1].n_masked == 6 && cpart.s[0].n_masked == 6,
          "metrics.json: n_defective 10, n_defective_masked 6 (got %ld / %ld)", part.s[0].n_def, part.s[0].n_masked);
    CHECK(part.s[0].n_pixels == sub.s[0].n_pixels, "pixel counts: %ld vs the subset's %ld", part.s[0].n_pixels, sub.s[0].n_pixels);
    CHECK(strstr(part.note, "pixel metrics over 6 of 10 defective images (4 have no mask)"), "metrics.json note: %s", part.note);
    char p[1100];
    snprintf(p, sizeof p, "%s/metrics.csv", T("out_lab_part"));
    char *csv = slurp(p);
    CHECK(csv && strstr(csv, "n_defective_masked\noverall,10,10,") && strstr(csv, ",6\ndefect,10,10,"), "metrics.csv:\n%s",
          csv ? csv : "");
    free(csv);
    snprintf(p, sizeof p, "%s/report.html", T("out_lab_part"));
    char *html = slurp(p);
    CHECK(html && strstr(html, "<td>10 (6 with mask)</td>") && strstr(html, "id=\"pixel-truth\"") &&
              strstr(html, "Pixel metrics over 6 of 10 defective images"),
          "report.html says which images the pixel metrics cover");
    free(html);

    /* no masks at all: image metrics as before, pixel metrics undefined with the reason */
    build_labelled("lab_nogt", NULL, 0, 0);
    st = run_test(T("lab_nogt"), "out_nogt", NULL, &so, NULL);
    CHECK(st == 0, "labelled folders without ground_truth/: exit %d", st);
    mres none;
    load_metrics("out_nogt", &none);
    same_metrics(&mv, &none, 0, 3, 1e-12, "no masks: image metrics");
    int undefined = none.n == 2;
    for (int s = 0; s < none.n; s++)
        for (int q = 3; q < NK; q++)
            undefined &= !none.s[s].defined[q] && !strcmp(none.s[s].why[q], "no defective image has a ground-truth mask");
    CHECK(undefined, "no masks: every pixel metric undefined with the reason");
    CHECK(so && strstr(so, "Pixel metrics undefined: none of the 10 defective images has a mask") &&
              strstr(so, "n/a: no defective image has a ground-truth mask."),
          "no masks: printed:\n%s", so ? so : "");
    free(so);
}

static void test_bad_input(void) {
    mkdir(T("bad_nogood"), 0755);
    mkdir(T("bad_nogood/ng"), 0755);
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/test/defect/%s", g_sample, g_bad[0]);
    snprintf(q, sizeof q, "%s/ng/a.png", T("bad_nogood"));
    CHECK(!symlink(p, q), "link");
    mkdir(T("bad_emptygood"), 0755);
    mkdir(T("bad_emptygood/good"), 0755);
    mkdir(T("bad_loose"), 0755);
    mkdir(T("bad_loose/good"), 0755);
    snprintf(q, sizeof q, "%s/good/a.png", T("bad_loose"));
    CHECK(!symlink(p, q), "link");
    snprintf(q, sizeof q, "%s/b.png", T("bad_loose"));
    CHECK(!symlink(p, q), "link");
    snprintf(q, sizeof q, "path,label\nlab/OK/%s,good\nlab/OK/%s,\n", g_good[0], g_good[1]);
    write_text(T("bad_label.csv"), q);
    snprintf(q, sizeof q, "path,label\nlab/OK/%s,good\nlab/OK/%s\n", g_good[0], g_good[1]);
    write_text(T("bad_few.csv"), q);
    snprintf(q, sizeof q, "lab/OK/%s,good\nlab/OK/nothere.png,ng\n", g_good[0]);
    write_text(T("bad_missing.csv"), q);
    snprintf(q, sizeof q, "lab/defect/%s,ng,masks/nothere.png\n", g_bad[0]);
    write_text(T("bad_mask.csv"), q);
    write_text(T("list.txt"), "lab/OK/x.png,good\n");
    struct { const char *data, *want1, *want2; } bad[] = {
        {"does-not-exist", "does-not-exist", "No such file"},
        {"bad_nogood", "bad_nogood", "no good/ (or ok/) folder"},
        {"bad_emptygood", "bad_emptygood", "no images"},
        {"bad_loose", "b.png", "without a label"},
        {"bad_label.csv", "bad_label.csv:3:", "label is empty"},
        {"bad_few.csv", "bad_few.csv:3:", "1 field, expected path,label[,mask]"},
        {"bad_missing.csv", "bad_missing.csv:2:", "nothere.png: No such file"},
        {"bad_mask.csv", "bad_mask.csv:1:", "mask"},
        {"list.txt", "list.txt", "not a folder or a .csv file"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char *so = NULL, *se = NULL, out[64];
        snprintf(out, sizeof out, "out_bad%zu", k);
        int st = run_test(T(bad[k].data), out, NULL, &so, &se);
        CHECK(st == 2 && one_line(se) && !strncmp(se, "diffad test: ", 13) && strstr(se, bad[k].want1) &&
                  strstr(se, bad[k].want2) && so && !so[0],
              "%s: exit %d (2 expected), one line naming '%s' and '%s': %s", bad[k].data, st, bad[k].want1, bad[k].want2,
              se ? se : "(none)");
        free(so), free(se);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    char self[PATH_MAX], root[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    const char *dir = dirname(self); /* BUILD/tests */
    snprintf(g_cli, sizeof g_cli, "%s/../diffad", dir);
    char rel[PATH_MAX + 32];
    snprintf(rel, sizeof rel, "%s/../../data/sample/pcb", dir);
    if (!realpath(rel, root) && !realpath("data/sample/pcb", root)) {
        SKIP("data/sample/pcb not found (run from the repository root)");
        return check_summary("test_labelled");
    }
    if (strlen(root) >= sizeof g_sample) {
        SKIP("the repository path is longer than %zu bytes", sizeof g_sample);
        return check_summary("test_labelled");
    }
    memcpy(g_sample, root, strlen(root) + 1);
    if (access(g_cli, X_OK)) {
        SKIP("%s not built: build the diffad CLI next to the tests", g_cli);
        return check_summary("test_labelled");
    }
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/test/good", g_sample);
    g_ng = names(p, g_good, 10);
    snprintf(p, sizeof p, "%s/test/defect", g_sample);
    g_nb = names(p, g_bad, 10);
    CHECK(g_ng == 10 && g_nb == 10, "the sample has 10 good and 10 defective test images (%d, %d)", g_ng, g_nb);
    snprintf(g_dir, sizeof g_dir, "/tmp/diffad_test_labelled_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_model, sizeof g_model, "%s/tiny.safetensors", g_dir);
    CHECK(make_model(g_model) == 0, "tiny model saved");
    if (!check_failed) {
        test_same_metrics();
        test_partial_masks();
        test_bad_input();
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (getenv("DD_LABELLED_KEEP")) fprintf(stderr, "kept %s\n", g_dir);
    else if (!check_failed && system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return check_summary("test_labelled");
}
