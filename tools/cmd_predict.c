/* cmd_predict.c — `diffad predict`: score new images one by one through the
 * public API (include/diffad.h), on the same path as `diffad test` (the file is
 * decoded to float RGB and handed over as DIFFAD_F32), so both commands print
 * bit-identical scores. Owns: the input list (files, folders, stdin), one JSON
 * line per image on stdout, the optional picture outputs (raw map, heat-map
 * overlay, mask, reconstruction), the run's score statistics and drift check
 * (--stats, --drift_window; eval/drift.h) and the exit status (0 all OK, 1 some NG,
 * 3 some REVIEW and no NG, 2 some error). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_opts.h"
#include "cli_util.h"
#include "commands.h"
#include "diffad.h"
#include "data/dataset.h"
#include "data/image.h"
#include "core/json.h"
#include "core/text.h"
#include "eval/drift.h"
#include "eval/report.h"

static const char USAGE[] =
    "usage: diffad predict --model FILE [options] [--] [INPUT...]\n"
    "\n"
    "Scores images with a trained model. INPUT is an image file or a folder (every\n"
    "image inside, sorted by name; not recursive). '-' or no INPUT reads a list of\n"
    "paths from stdin, one per line.\n"
    "\n"
    "Prints one JSON line per image on stdout:\n"
    "  {\"path\":...,\"score\":...,\"normalized\":...,\"decision\":\"OK\"|\"NG\"|\"REVIEW\"|\"uncalibrated\",\n"
    "   \"threshold\":...,\"regions\":[{\"x\":...,\"y\":...,\"w\":...,\"h\":...,\"area\":...,\"peak\":...,\n"
    "   \"mean\":...[,\"area_mm2\":...]},...],\"regions_found\":N,\"ms\":{\"load\":...,\"preprocess\":...,\n"
    "   \"denoise\":...,\"segment\":...,\"postprocess\":...,\"save\":...}}\n"
    "regions: the 8-connected groups of map pixels above the model's pixel threshold\n"
    "(calibrated models), in input pixels, highest peak first, at most max_regions;\n"
    "regions_found counts them all. With min_area > 0 smaller regions are ignored and\n"
    "an image is NG only if its score is over the threshold and a region is left.\n"
    "REVIEW: the score is inside the model's review band (--review_band), whatever the\n"
    "rule above says: a person decides.\n"
    "\n"
    "Watching production: good-part scores (those at or below the threshold) are compared\n"
    "with the good calibration images' scores the model file keeps (two-sample\n"
    "Kolmogorov-Smirnov test); drift is reported when p < 0.01 and the median moved at\n"
    "least 10% of the way from the calibration median to the threshold (either way).\n"
    "The check runs at the end of every run with 20 or more good-part scores (a warning\n"
    "line on stderr when it finds drift), over each window of --drift_window good-part\n"
    "scores, and --stats writes it with the run's score distribution as JSON.\n"
    "an image that cannot be scored gives {\"path\":...,\"error\":...} and a line on stderr;\n"
    "a scored image whose --save-* picture cannot be written keeps its line, with\n"
    "\"save_error\":... added, and a line on stderr. Non-finite numbers print as null.\n"
    "With --save-*, \"pictures\":\"DIR/NAME\" says where the image's pictures are\n"
    "(NAME_map.png, ...): NAME is the file name without extension, or NAME~2, ~3, ...\n"
    "when an earlier image of the run had that name (a/001.png and b/001.png), so no\n"
    "picture of a run overwrites another (a line on stderr says so).\n";

static const char EPILOG[] =
    "Exit status: 0 every image OK (or the model is uncalibrated), 1 at least one NG,\n"
    "3 at least one REVIEW and no NG, 2 an error (a bad image is reported and skipped, a picture not saved is reported;\n"
    "a bad model stops at once).\n";

static int fail(const char *m) {
    fprintf(stderr, "diffad predict: %s\n", m);
    return 2;
}

enum { SAVE_MAP = 1, SAVE_OVERLAY = 2, SAVE_MASK = 4, SAVE_RECON = 8 };

/* Everything one run needs. The picture buffers are sized for the largest image seen
 * so far (outputs are at each image's own size) and grow only when a larger one comes. */
typedef struct run {
    diffad_ctx *ctx;
    const char *outdir;
    int save;
    int h, w;                 /* model size */
    float pixel_threshold;
    float mm_per_pixel;       /* > 0: regions carry area_mm2 */
    size_t cap;               /* pixels the buffers below hold */
    float *fimg, *tmp, *blur; /* [cap*3], [cap], [cap*2] */
    unsigned char *rgb;       /* [cap*3] */
    int n_ok, n_ng, n_review, n_uncal, n_err;
    /* production watch: every calibrated score of the run, and the window of good-part scores */
    float threshold;
    const float *calib;       /* the model's calibration scores (ascending), or NULL */
    int n_calib, n_calib_images;
    float *scores;            /* [n_scores] in input order, grown by doubling */
    size_t n_scores, cap_scores;
    int window;               /* --drift_window: good-part scores per check (0: off) */
    float *win, *win_sorted;  /* [window] */
    int n_win;
    int windows_checked, windows_drift;
    long first_drift_image;   /* 1-based image number of the first window with drift, 0 none */
    int oom;
    int n_save_err;           /* scored, but a picture output could not be written */
    /* picture names given out in this run (an open-addressing set): a later image with a
     * stem already used (a/001.png and b/001.png; x.bmp and x.png) gets <stem>~2, ~3, ... */
    char **names;
    size_t names_cap, names_n;
} run;

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when name is in the set. */
static int name_used(const run *r, const char *name) {
    if (!r->names_cap) return 0;
    for (size_t i = name_hash(name) & (r->names_cap - 1);; i = (i + 1) & (r->names_cap - 1)) {
        if (!r->names[i]) return 0;
        if (!strcmp(r->names[i], name)) return 1;
    }
}

/* Adds name (not yet in the set); the set stays at most half full. */
static int name_add(run *r, const char *name, dd_error *err) {
    if (2 * (r->names_n + 1) > r->names_cap) {
        size_t cap = r->names_cap ? 2 * r->names_cap : 64;
        char **t = calloc(cap, sizeof *t);
        if (!t) return dd_fail(err, DD_E_NOMEM, "out of memory for the picture names");
        for (size_t k = 0; k < r->names_cap; k++)
            if (r->names[k]) {
                size_t i = name_hash(r->names[k]) & (cap - 1);
                while (t[i]) i = (i + 1) & (cap - 1);
                t[i] = r->names[k];
            }
        free(r->names);
        r->names = t, r->names_cap = cap;
    }
    char *c = strdup(name);
    if (!c) return dd_fail(err, DD_E_NOMEM, "out of memory for the picture names");
    size_t i = name_hash(name) & (r->names_cap - 1);
    while (r->names[i]) i = (i + 1) & (r->names_cap - 1);
    r->names[i] = c;
    r->names_n++;
    return DD_OK;
}

static void names_free(run *r) {
    for (size_t k = 0; k < r->names_cap; k++) free(r->names[k]);
    free(r->names);
    r->names = NULL, r->names_cap = r->names_n = 0;
}

static int grow_buffers(run *r, size_t px, dd_error *err) {
    if (px <= r->cap) return 0;
    float *a = realloc(r->fimg, px * 3 * sizeof(float));
    if (a) r->fimg = a;
    float *b = realloc(r->tmp, px * sizeof(float));
    if (b) r->tmp = b;
    float *c = realloc(r->blur, px * 2 * sizeof(float));
    if (c) r->blur = c;
    unsigned char *d = realloc(r->rgb, px * 3);
    if (d) r->rgb = d;
    if (!a || !b || !c || !d) return dd_fail(err, DD_E_NOMEM, "out of memory for the %zu-pixel output pictures", px);
    r->cap = px;
    return 0;
}

static double ms_since(double t0) { return (cli_now() - t0) * 1e3; }

/* File name without folders and extension. */
static void stem_of(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static void json_error_line(const char *path, const char *msg) {
    fputs("{\"path\":", stdout);
    dd_json_write_string(stdout, path);
    fputs(",\"error\":", stdout);
    dd_json_write_string(stdout, msg);
    fputs("}\n", stdout);
    fflush(stdout);
}

static void image_error(run *r, const char *path, const char *msg) {
    /* dd_error messages from the image loader already start with the path */
    if (!strncmp(msg, path, strlen(path))) fprintf(stderr, "diffad predict: %s\n", msg);
    else fprintf(stderr, "diffad predict: %s: %s\n", path, msg);
    json_error_line(path, msg);
    r->n_err++;
}

/* The colour of the region boxes on the overlay: magenta, which the turbo heat map never shows. */
static const unsigned char BOX_RGB[3] = {255, 0, 255};

static void box_px(unsigned char *rgb, int H, int W, int x, int y) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(rgb + ((size_t)y * W + x) * 3, BOX_RGB, 3);
}

/* A 2-px rectangle around each region: on the edge of its bounding box and one pixel outside. */
static void draw_boxes(unsigned char *rgb, int H, int W, const diffad_region *g, int n) {
    for (int k = 0; k < n; k++)
        for (int t = 0; t < 2; t++) {
            int x0 = g[k].x - 1 + t, y0 = g[k].y - 1 + t, x1 = g[k].x + g[k].width - t, y1 = g[k].y + g[k].height - t;
            for (int x = x0; x <= x1; x++) box_px(rgb, H, W, x, y0), box_px(rgb, H, W, x, y1);
            for (int y = y0; y <= y1; y++) box_px(rgb, H, W, x0, y), box_px(rgb, H, W, x1, y);
        }
}

/* The optional picture outputs of one scored image (im: the decoded file), all at the
 * image's own size, as the library returns the map. */
static int save_outputs(run *r, const char *path, const dd_image *im, const diffad_result *res, char *stem,
                        size_t stem_cap, dd_error *err) {
    char out[4096], base[1000]; /* room for "~N" in stem */
    stem_of(path, base, sizeof base);
    snprintf(stem, stem_cap, "%s", base);
    for (int k = 2; name_used(r, stem); k++) snprintf(stem, stem_cap, "%s~%d", base, k);
    int rc = name_add(r, stem, err);
    if (rc) return rc;
    if (strcmp(stem, base))
        fprintf(stderr, "diffad predict: %s: pictures named %s_* (%s_* is taken by an earlier image of this run)\n", path,
                stem, base);
    int H = res->map_height, W = res->map_width;
    size_t hw = (size_t)H * W;
    if ((rc = grow_buffers(r, hw, err))) return rc;
    if (r->save & SAVE_MAP) {
        snprintf(out, sizeof out, "%s/%s_map.png", r->outdir, stem);
        if ((rc = dd_write_png_gray16(out, res->map, H, W, err))) return rc;
    }
    if (r->save & SAVE_MASK) {
        for (size_t i = 0; i < hw; i++) r->tmp[i] = res->map[i] > r->pixel_threshold ? 1.0f : 0.0f;
        snprintf(out, sizeof out, "%s/%s_mask.png", r->outdir, stem);
        if ((rc = dd_write_png_gray8(out, r->tmp, H, W, err))) return rc;
    }
    if ((r->save & SAVE_RECON) && res->recon) {
        snprintf(out, sizeof out, "%s/%s_recon.png", r->outdir, stem);
        if ((rc = dd_write_png_rgb8(out, res->recon, H, W, err))) return rc;
    }
    if (r->save & SAVE_OVERLAY) {
        for (size_t i = 0; i < hw * 3; i++) {
            float v = im->data[i];
            r->rgb[i] = (unsigned char)(v <= 0 ? 0 : v >= 1 ? 255 : lrintf(v * 255.0f));
        }
        /* the display smoothing of a model-size map, in input pixels */
        float sigma = dd_display_sigma(r->h, r->w) * (float)sqrt((double)hw / ((double)res->work_height * res->work_width));
        if (sigma > 100) sigma = 100;
        if ((rc = dd_gaussian_blur(res->map, r->blur, H, W, sigma, r->blur + hw, err))) return rc;
        dd_heat_overlay(r->rgb, r->blur, H, W, 0.5f, r->rgb);
        const unsigned char *roi = diffad_roi_mask(r->ctx);
        if (roi) cli_dim_ignored(r->rgb, roi, hw);
        draw_boxes(r->rgb, H, W, res->regions, res->n_regions);
        for (size_t i = 0; i < hw * 3; i++) r->fimg[i] = r->rgb[i] / 255.0f;
        snprintf(out, sizeof out, "%s/%s_overlay.png", r->outdir, stem);
        if ((rc = dd_write_png_rgb8(out, r->fimg, H, W, err))) return rc;
    }
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void print_drift(const char *when, const dd_drift_result *d) {
    fprintf(stderr,
            "diffad predict: %s%s: good-part scores median %.5g vs calibration %.5g (moved %+.0f%% of the way to the "
            "threshold), KS D %.3f p %.2g over %zu vs %zu scores%s\n",
            d->drift ? "DRIFT WARNING " : "drift check ", when, d->median_run, d->median_ref, 100 * d->shift, d->D, d->p,
            d->n_run, d->n_ref,
            d->drift ? ": the images differ from the calibration images (camera, lighting, parts?); check them and "
                       "recalibrate (diffad calibrate) if they are good" : ": in line with calibration");
}

/* Keep a calibrated score for --stats and the drift checks; every --drift_window good-part
 * scores, compare that window with the calibration scores. */
static void watch_score(run *r, float score) {
    if (r->n_scores == r->cap_scores) {
        size_t nc = r->cap_scores ? r->cap_scores * 2 : 256;
        float *q = realloc(r->scores, nc * sizeof *q);
        if (!q) { r->oom = 1; return; }
        r->scores = q, r->cap_scores = nc;
    }
    r->scores[r->n_scores++] = score;
    if (!r->window || !r->calib || !(score <= r->threshold)) return;
    r->win[r->n_win++] = score;
    if (r->n_win < r->window) return;
    memcpy(r->win_sorted, r->win, sizeof(float) * (size_t)r->window);
    qsort(r->win_sorted, (size_t)r->window, sizeof(float), cmp_float);
    r->n_win = 0;
    dd_drift_rule rule;
    dd_drift_rule_init(&rule);
    dd_drift_result d;
    dd_error err = {0};
    if (dd_drift_check(r->calib, (size_t)r->n_calib, r->win_sorted, (size_t)r->window, r->threshold, &rule, &d, &err))
        return;
    r->windows_checked++;
    if (d.drift) {
        r->windows_drift++;
        if (!r->first_drift_image) r->first_drift_image = (long)(r->n_ok + r->n_ng + r->n_review);
        char when[96];
        snprintf(when, sizeof when, "at image %d (window of %d)", r->n_ok + r->n_ng + r->n_review, r->window);
        print_drift(when, &d);
    }
}

static void score_one(run *r, const char *path) {
    dd_error err = {0};
    dd_image im = {0};
    double t0 = cli_now();
    if (dd_image_load_rgb(path, &im, &err)) {
        image_error(r, path, err.msg);
        return;
    }
    double ms_load = ms_since(t0);
    /* the same call as cli_score_file (diffad test) */
    diffad_image di = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
    diffad_result res;
    if (diffad_predict(r->ctx, &di, &res)) {
        image_error(r, path, diffad_error(r->ctx));
        dd_image_free(&im);
        return;
    }
    double t1 = cli_now();
    char stem[1024] = "";
    int rc = r->save ? save_outputs(r, path, &im, &res, stem, sizeof stem, &err) : 0;
    double ms_save = ms_since(t1);
    dd_image_free(&im);
    /* a picture that cannot be written does not lose the score: the line below carries it
     * with "save_error", stderr names the file, and the exit status becomes 2 */
    if (rc) {
        fprintf(stderr, "diffad predict: %s: scored, but a picture was not saved: %s\n", path, err.msg);
        r->n_save_err++;
    }
    const char *decision = cli_decision_name(&res);
    fputs("{\"path\":", stdout);
    dd_json_write_string(stdout, path);
    /* %.9g: enough digits to round-trip a float, so printed scores compare bit for bit;
     * a non-finite value prints as null (JSON has no NaN) */
    fputs(",\"score\":", stdout);
    dd_json_write_number(stdout, res.score);
    fputs(",\"normalized\":", stdout);
    dd_json_write_number(stdout, res.normalized);
    printf(",\"decision\":\"%s\",\"threshold\":", decision);
    dd_json_write_number(stdout, res.threshold);
    fputs(",\"regions\":[", stdout);
    for (int i = 0; i < res.n_regions; i++) {
        const diffad_region *g = &res.regions[i];
        printf("%s{\"x\":%d,\"y\":%d,\"w\":%d,\"h\":%d,\"area\":%ld,\"peak\":", i ? "," : "", g->x, g->y, g->width,
               g->height, g->area);
        dd_json_write_number(stdout, g->peak);
        fputs(",\"mean\":", stdout);
        dd_json_write_number(stdout, g->mean);
        if (r->mm_per_pixel > 0) {
            fputs(",\"area_mm2\":", stdout);
            dd_json_write_number(stdout, g->area_mm2);
        }
        fputc('}', stdout);
    }
    printf("],\"regions_found\":%ld", res.regions_found);
    printf(",\"ms\":{\"load\":%.3f,\"preprocess\":%.3f,\"denoise\":%.3f,\"segment\":%.3f,\"postprocess\":%.3f,"
           "\"save\":%.3f}",
           ms_load, res.ms_preprocess, res.ms_denoise, res.ms_segment, res.ms_postprocess, ms_save);
    if (r->save && stem[0]) { /* where this image's pictures are: <pictures>_map.png, ... */
        char pre[4096];
        snprintf(pre, sizeof pre, "%s/%s", r->outdir, stem);
        fputs(",\"pictures\":", stdout);
        dd_json_write_string(stdout, pre);
    }
    if (rc) {
        fputs(",\"save_error\":", stdout);
        dd_json_write_string(stdout, err.msg);
    }
    fputs("}\n", stdout);
    fflush(stdout); /* one line per image as it is done, for pipes */
    if (!res.calibrated) r->n_uncal++;
    else if (res.decision == DIFFAD_PART_NG) r->n_ng++;
    else if (res.decision == DIFFAD_PART_REVIEW) r->n_review++;
    else r->n_ok++;
    if (res.calibrated) watch_score(r, res.score);
}

/* The end of a run: the drift check over all its good-part scores (a line on stderr when it
 * finds drift, or always when asked for statistics) and the --stats file. */
#define DRIFT_MIN_SCORES 20
static int finish_watch(run *r, const char *model, const char *stats_path, dd_error *err) {
    if (r->oom) return dd_fail(err, DD_E_NOMEM, "out of memory keeping the run's scores");
    size_t n = r->n_scores;
    float *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (n && !sorted) return dd_fail(err, DD_E_NOMEM, "out of memory sorting the run's scores");
    if (n) {
        memcpy(sorted, r->scores, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_float);
    }
    size_t n_good = 0;
    while (n_good < n && sorted[n_good] <= r->threshold) n_good++;
    dd_drift_rule rule;
    dd_drift_rule_init(&rule);
    dd_drift_result d;
    int checked = 0;
    const char *why = NULL;
    if (!r->calib) why = "the model file keeps no calibration scores (calibrated before 2026-11-30, or uncalibrated): "
                         "recalibrate it with diffad calibrate";
    else if (n_good < DRIFT_MIN_SCORES) why = "fewer than 20 good-part scores in this run";
    else {
        dd_error e2 = {0};
        if (dd_drift_check(r->calib, (size_t)r->n_calib, sorted, n, r->threshold, &rule, &d, &e2)) why = "not computable";
        else checked = 1;
    }
    if (checked && (d.drift || stats_path || r->window)) print_drift("over the whole run", &d);
    int rc = DD_OK;
    if (stats_path) {
        dd_textbuf b;
        dd_textbuf_init(&b);
        dd_textbuf_puts(&b, "{\"model\":");
        dd_textbuf_json_string(&b, model);
        dd_textbuf_printf(&b, ",\n \"images\":%d,\"errors\":%d,\"decisions\":{\"OK\":%d,\"NG\":%d,\"REVIEW\":%d,"
                          "\"uncalibrated\":%d},\n \"threshold\":%.9g,",
                          r->n_ok + r->n_ng + r->n_review + r->n_uncal, r->n_err, r->n_ok, r->n_ng, r->n_review, r->n_uncal,
                          r->threshold);
        static const double q[] = {0, 0.05, 0.25, 0.5, 0.75, 0.95, 1};
        static const char *qn[] = {"min", "p05", "p25", "median", "p75", "p95", "max"};
        dd_textbuf_printf(&b, "\n \"scores\":{\"n\":%zu,\"good_part\":%zu", n, n_good);
        if (n) {
            double mean = 0;
            for (size_t i = 0; i < n; i++) mean += sorted[i];
            dd_textbuf_printf(&b, ",\"mean\":%.9g", mean / (double)n);
            for (int k = 0; k < 7; k++) dd_textbuf_printf(&b, ",\"%s\":%.9g", qn[k], dd_quantile_sorted(sorted, n, q[k]));
        }
        dd_textbuf_puts(&b, "},\n \"calibration\":");
        if (r->calib) {
            dd_textbuf_printf(&b, "{\"images\":%d,\"values\":%d", r->n_calib_images, r->n_calib);
            for (int k = 0; k < 7; k++)
                dd_textbuf_printf(&b, ",\"%s\":%.9g", qn[k], dd_quantile_sorted(r->calib, (size_t)r->n_calib, q[k]));
            dd_textbuf_puts(&b, "}");
        } else dd_textbuf_puts(&b, "null");
        dd_textbuf_printf(&b, ",\n \"drift\":{\"rule\":{\"alpha\":%g,\"min_shift\":%g,\"min_scores\":%d},\"checked\":%s",
                          rule.alpha, rule.min_shift, DRIFT_MIN_SCORES, checked ? "true" : "false");
        if (checked)
            dd_textbuf_printf(&b, ",\"warning\":%s,\"n_calibration\":%zu,\"n_run\":%zu,\"ks_d\":%.6g,\"ks_p\":%.6g,"
                              "\"median_calibration\":%.9g,\"median_run\":%.9g,\"median_shift\":%.6g",
                              d.drift ? "true" : "false", d.n_ref, d.n_run, d.D, d.p, d.median_ref, d.median_run, d.shift);
        else {
            dd_textbuf_puts(&b, ",\"warning\":false,\"why_not\":");
            dd_textbuf_json_string(&b, why);
        }
        dd_textbuf_printf(&b, ",\n  \"windows\":{\"size\":%d,\"checked\":%d,\"with_drift\":%d,\"first_drift_image\":%ld}}}\n",
                          r->window, r->windows_checked, r->windows_drift, r->first_drift_image);
        rc = b.oom ? dd_fail(err, DD_E_NOMEM, "%s: out of memory", stats_path) : dd_textbuf_write_atomic(&b, stats_path, err);
        dd_textbuf_free(&b);
    }
    free(sorted);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every image of a folder, in byte-wise name order (independent of locale and file system). */
static void score_folder(run *r, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        char m[600];
        snprintf(m, sizeof m, "cannot read the folder (%s)", strerror(errno));
        image_error(r, dir, m);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int oom = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!dd_is_image_name(e->d_name)) continue; /* the dataset listing's rule */
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **q = realloc(names, nc * sizeof *q);
            if (!q) { oom = 1; break; }
            names = q, cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) { oom = 1; break; }
        n++;
    }
    closedir(d);
    if (oom) image_error(r, dir, "out of memory listing the folder");
    else if (!n) {
        char m[200];
        snprintf(m, sizeof m, "no images in this folder (%s)", dd_image_extensions());
        image_error(r, dir, m);
    }
    else {
        qsort(names, n, sizeof *names, cmp_str);
        char path[4096];
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(dir);
            snprintf(path, sizeof path, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", names[i]);
            score_one(r, path);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void score_input(run *r, const char *path) {
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) score_folder(r, path);
    else score_one(r, path); /* a missing file is reported by the loader, naming it */
}

static void score_stdin(run *r) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len) score_input(r, line);
    }
    free(line);
}

int cmd_predict(int argc, char **argv) {
    const char *model = NULL, *outdir = NULL;
    int threads = 0, have_seed = 0, save = 0, precision = DIFFAD_PRECISION_MODEL;
    unsigned long long seed = 0;
    diffad_region_params rg = {0};
    int have_area = 0, have_max = 0, have_mm = 0, window = 0;
    const char *review_band = NULL, *stats = NULL;
    const cli_opt opts[] = {
        {"model", "FILE", CLI_STR, &model, .help = "model file written by 'diffad train' (required)"},
        {"out", "DIR", CLI_STR, &outdir, .help = "folder for the picture outputs below (default predict_out)"},
        {"save-map", NULL, CLI_FLAG, &save, .bits = SAVE_MAP,
         .help = "<stem>_map.png: raw anomaly map, 16-bit grey (value*65535), at the image's size"},
        {"save-overlay", NULL, CLI_FLAG, &save, .bits = SAVE_OVERLAY,
         .help = "<stem>_overlay.png: smoothed map over the image, fixed colour scale\n"
                 "(0 always blue, 1 always red; never rescaled per image), at the image's size;\n"
                 "each listed region boxed by a 2-px magenta rectangle; what the model's region\n"
                 "of interest ignores is dimmed"},
        {"save-mask", NULL, CLI_FLAG, &save, .bits = SAVE_MASK,
         .help = "<stem>_mask.png: map > the model's pixel threshold (needs a\ncalibrated model), at the image's size"},
        {"save-recon", NULL, CLI_FLAG, &save, .bits = SAVE_RECON,
         .help = "<stem>_recon.png: the anomaly-free reconstruction, at the image's size"},
        {"min_area", "PX", CLI_LONG, &rg.min_area, -1e15, 1e15, .given = &have_area,
         .help = "regions under PX pixels (input size) are ignored, and an image is NG only\n"
                 "with a region of PX or more (default: the model's min_area; 0 every region)"},
        {"max_regions", "N", CLI_INT, &rg.max_regions, -1e9, 1e9, .given = &have_max,
         .help = "regions listed per image, highest peak first (default: the model's, 16)"},
        {"mm_per_pixel", "MM", CLI_FLOAT, &rg.mm_per_pixel, -1e30, 1e30, .given = &have_mm,
         .help = "input pixel size in mm: regions also get area_mm2 (default: the model's; 0 unknown)"},
        {"review_band", "LO,HI", CLI_STR, &review_band, .help = CLI_REVIEW_BAND_HELP},
        {"stats", "FILE", CLI_STR, &stats,
         .help = "write the run's score distribution, decisions and drift check as JSON"},
        {"drift_window", "N", CLI_INT, &window, 0, 1e6,
         .help = "also check drift over every N good-part scores, as they come (a line on\n"
                 "stderr when a window drifts; default 0: only at the end)"},
        CLI_SCORING_OPTIONS(threads, seed, have_seed, precision),
    };
    const cli_spec spec = {"predict", USAGE, opts, (int)(sizeof opts / sizeof *opts), "INPUT", EPILOG,
                           NULL, NULL, NULL};
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    int n_in = 0;
    if (!inputs) return fail("out of memory");
    char m[600];
    int pr = cli_parse(&spec, argc, argv, inputs, &n_in, m, sizeof m);
    if (pr != CLI_OK) {
        free(inputs);
        return pr == CLI_HELP ? 0 : fail(m);
    }
    if (!model) { free(inputs); return fail("--model FILE is required (see --help)"); }
    if (outdir && !save) { free(inputs); return fail("--out DIR given without any --save-* output (see --help)"); }
    if (!outdir) outdir = "predict_out";
    if (stats) { /* found out now, not after scoring every image */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", stats);
        char *slash = strrchr(dir, '/');
        if (slash) *(slash == dir ? slash + 1 : slash) = 0;
        else snprintf(dir, sizeof dir, ".");
        struct stat st;
        if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK)) {
            char m[4200];
            snprintf(m, sizeof m, "--stats %s: the folder %s does not exist or is not writable", stats, dir);
            free(inputs);
            return fail(m);
        }
    }
    if (save && mkdir(outdir, 0777) && errno != EEXIST) {
        char m[600];
        snprintf(m, sizeof m, "%s: cannot create the output folder (%s)", outdir, strerror(errno));
        free(inputs);
        return fail(m);
    }

    diffad_params p;
    diffad_params_init(&p);
    p.threads = cli_cap_threads("predict", threads, stderr);
    p.precision = precision;
    if (have_seed) p.seed = seed;
    run r = {0};
    r.outdir = outdir, r.save = save;
    char msg[512];
    if (diffad_create(model, &p, &r.ctx, msg, sizeof msg)) {
        free(inputs);
        return fail(msg);
    }
    diffad_model_size(r.ctx, &r.h, &r.w);
    float thr = 0;
    int calibrated = diffad_thresholds(r.ctx, &thr, &r.pixel_threshold);
    int rc = 0;
    if (cli_region_options(r.ctx, &rg, have_area, have_max, have_mm, review_band, msg, sizeof msg)) {
        rc = fail(msg);
        goto done;
    }
    diffad_get_region_params(r.ctx, &rg);
    r.mm_per_pixel = rg.mm_per_pixel;
    r.threshold = thr;
    r.n_calib = diffad_calibration_scores(r.ctx, &r.calib, &r.n_calib_images);
    if (!r.n_calib) r.calib = NULL;
    if (window > 0 && !r.calib) {
        char m[700];
        snprintf(m, sizeof m, "%s: --drift_window needs the calibration scores a model file keeps since 2026-11-30 "
                 "(none here: recalibrate it with diffad calibrate)", model);
        rc = fail(m);
        goto done;
    }
    if (window > 0 && window < DRIFT_MIN_SCORES) {
        char m[200];
        snprintf(m, sizeof m, "--drift_window %d: at least %d scores per window", window, DRIFT_MIN_SCORES);
        rc = fail(m);
        goto done;
    }
    r.window = window;
    if (window && (!(r.win = malloc(sizeof(float) * (size_t)window)) || !(r.win_sorted = malloc(sizeof(float) * (size_t)window)))) {
        rc = fail("out of memory for the drift window");
        goto done;
    }
    if ((save & SAVE_MASK) && (!calibrated || !(r.pixel_threshold > 0))) {
        char m[700];
        snprintf(m, sizeof m, "%s: --save-mask needs a calibrated model (no pixel threshold stored; "
                 "train with validation images to calibrate)", model);
        rc = fail(m);
        goto done;
    }
    fprintf(stderr, "diffad predict: %s: model %dx%d, %s, %s convolutions, context memory %.1f MiB\n", model, r.h, r.w,
            calibrated ? "calibrated" : "uncalibrated (decision \"uncalibrated\", exit 0)", diffad_precision(r.ctx),
            diffad_memory(r.ctx) / 1048576.0);
    if (calibrated && rg.review_lo < rg.review_hi)
        fprintf(stderr, "diffad predict: review band (%.5g, %.5g]: images scoring there are REVIEW\n", rg.review_lo,
                rg.review_hi);
    int roi_w, roi_h;
    if (diffad_roi(r.ctx, &roi_w, &roi_h))
        fprintf(stderr, "diffad predict: the model's %dx%d region of interest is applied (the map is 0 where it ignores "
                "the image)\n", roi_w, roi_h);
    if (calibrated && rg.min_area > 0)
        fprintf(stderr, "diffad predict: min_area %ld: an image is NG only with a region of %ld pixels or more\n", rg.min_area,
                rg.min_area);
    if (!n_in && isatty(STDIN_FILENO)) fprintf(stderr, "diffad predict: reading image paths from stdin, one per line (Ctrl-D ends)\n");
    if (!n_in) score_stdin(&r);
    for (int i = 0; i < n_in; i++) {
        if (!strcmp(inputs[i], "-")) score_stdin(&r);
        else score_input(&r, inputs[i]);
    }
    if (!r.n_ok && !r.n_ng && !r.n_review && !r.n_uncal && !r.n_err) {
        /* nothing at all to score (an empty stdin list): an error, as an empty folder is */
        rc = fail("no input images (no paths on stdin; give image files or folders, or a list on stdin)");
        goto done;
    }
    char saves[80] = "";
    if (r.n_save_err) snprintf(saves, sizeof saves, ", %d with pictures not saved", r.n_save_err);
    if (r.n_uncal) fprintf(stderr, "diffad predict: %d scored (uncalibrated), %d errors%s\n", r.n_uncal, r.n_err, saves);
    else if (r.n_review || (rg.review_lo < rg.review_hi))
        fprintf(stderr, "diffad predict: %d OK, %d NG, %d REVIEW, %d errors%s\n", r.n_ok, r.n_ng, r.n_review, r.n_err, saves);
    else fprintf(stderr, "diffad predict: %d OK, %d NG, %d errors%s\n", r.n_ok, r.n_ng, r.n_err, saves);
    dd_error werr = {0};
    if (finish_watch(&r, model, stats, &werr)) {
        fprintf(stderr, "diffad predict: %s\n", werr.msg);
        rc = 2;
        goto done;
    }
    if (stats) fprintf(stderr, "diffad predict: wrote %s\n", stats);
    rc = r.n_err || r.n_save_err ? 2 : r.n_ng ? 1 : r.n_review ? 3 : 0;
done:
    diffad_free(r.ctx);
    free(r.fimg), free(r.tmp), free(r.blur), free(r.rgb);
    free(r.scores), free(r.win), free(r.win_sorted);
    names_free(&r);
    free(inputs);
    return rc;
}
