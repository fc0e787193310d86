/* cmd_test.c — `diffad test`: score every labelled test image (an MVTec category,
 * labelled folders or a CSV list: data/dataset.h) through the public API (the same
 * path as predict) and report the field's metrics, overall and per defect type;
 * optionally an HTML report. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_dist.h"
#include "cli_opts.h"
#include "eval/interval.h"
#include "cli_util.h"
#include "commands.h"
#include "data/dataset.h"
#include "diffad.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "core/fileio.h"
#include "eval/report.h"

static const char USAGE[] =
    "usage: diffad test --model FILE --data DIR|LIST.csv [--out DIR] [--report] [--pixel-res image|work]\n"
    "                   [--min_area PX] [--max_regions N] [--mm_per_pixel MM] [--threads N] [--seed S]\n"
    "\n"
    "Scores labelled test images and writes metrics.json, metrics.csv, metrics.md and\n"
    "scores.csv to the --out folder (default results/); prints the metrics table. --data is:\n"
    "  an MVTec category  a folder with train/good/: the images of DIR/test/<type>/ (test/good/\n"
    "                     = good), every defective image with its mask\n"
    "                     DIR/ground_truth/<type>/<stem>_mask.png;\n"
    "  labelled folders   any other folder: DIR/good/ (or ok/, any case) holds the good images,\n"
    "                     every other image folder of DIR is a defect type (DIR/ng/, DIR/scratch/);\n"
    "                     masks optional, per image: DIR/ground_truth/<type>/<stem>_mask.<ext> or\n"
    "                     <stem>.<ext> (a mask without its image is an error); images directly\n"
    "                     in DIR are an error (no label);\n"
    "  a CSV list         a file ending in .csv, one row per image: path,label[,mask]; paths\n"
    "                     relative to the CSV's folder (or absolute); label good, ok or 0 = good,\n"
    "                     anything else = defective of that type (1 = ng); mask optional; a first\n"
    "                     row whose label is 'label' is a header; RFC 4180 quoting.\n"
    "Defective images without a mask count in the image metrics only: the pixel metrics cover\n"
    "the good images and the defective images with a mask, and every output says how many.\n"
    "Image AUROC/AP/F1-max, pixel AUROC/AP/F1-max and AUPRO (FPR <= 0.3), overall and\n"
    "per defect type. Pixel metrics compare the anomaly map with the ground truth at\n"
    "each image's own resolution (--pixel-res image, the default), or at the working\n"
    "resolution the networks saw (--pixel-res work: for a model that fits whole images\n"
    "this is the model size, the protocol of published DiffusionAD numbers).\n"
    "scores.csv: path,label,defect_type,score,normalized,decision,regions; the decision as\n"
    "diffad predict decides (with min_area > 0: NG only with a region of min_area pixels;\n"
    "REVIEW inside the review band),\n"
    "regions the number of defect regions found (empty for an uncalibrated model).\n"
    "Bad input (a missing folder or file, no good folder, a bad CSV row) exits 2 with one line.\n";

/* "rank R of N: " in the messages of a split run (empty otherwise) */
static char g_rank[48];

static int fail(const char *m) {
    fprintf(stderr, "diffad test: %s%s\n", g_rank, m);
    return 2;
}

static void to_rgb8(const float *v, size_t n, float lo, float hi, unsigned char *o) {
    for (size_t i = 0; i < n; i++) {
        float x = (v[i] - lo) / (hi - lo);
        o[i] = (unsigned char)(x <= 0 ? 0 : x >= 1 ? 255 : lrintf(x * 255.0f));
    }
}

/* One CSV field (RFC 4180): quoted when `always` or when it holds '"', ',', CR or LF,
 * inner quotes doubled. Bytes are written as they are (file names need not be UTF-8). */
static void csv_field(dd_afile *f, const char *s, int always) {
    if (!always && !strpbrk(s, "\",\r\n")) {
        dd_afile_printf(f, "%s", s);
        return;
    }
    dd_afile_write(f, "\"", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
        dd_afile_write(f, s, (size_t)(q - s) + 1);
        dd_afile_write(f, "\"", 1); /* the quote, doubled */
    }
    dd_afile_printf(f, "%s\"", s);
}

/* Per-image buffers, sized for the largest image so far (maps and truth are at each
 * image's own size). */
typedef struct test_bufs {
    size_t cap;                 /* pixels */
    float *img, *mask, *disp;   /* [cap*3], [cap], [cap*3] */
    float *blur;                /* [cap*2] */
    unsigned char *rgb_in, *rgb_gt, *rgb_rec, *rgb_heat; /* [cap*3] each */
    unsigned char *roi;         /* [cap]: the region of interest at the display size */
} test_bufs;

static void bufs_free(test_bufs *b) {
    free(b->img), free(b->mask), free(b->disp), free(b->blur);
    free(b->rgb_in), free(b->rgb_gt), free(b->rgb_rec), free(b->rgb_heat), free(b->roi);
    memset(b, 0, sizeof *b);
}

static int grow(test_bufs *b, size_t px, dd_error *err) {
    if (px <= b->cap) return 0;
    bufs_free(b);
    b->img = malloc(px * 3 * sizeof(float)), b->mask = malloc(px * sizeof(float));
    b->disp = malloc(px * 3 * sizeof(float)), b->blur = malloc(px * 2 * sizeof(float));
    b->rgb_in = malloc(px * 3), b->rgb_gt = malloc(px * 3), b->rgb_rec = malloc(px * 3), b->rgb_heat = malloc(px * 3);
    b->roi = malloc(px);
    if (!b->img || !b->mask || !b->disp || !b->blur || !b->rgb_in || !b->rgb_gt || !b->rgb_rec || !b->rgb_heat || !b->roi) {
        bufs_free(b);
        return dd_fail(err, DD_E_NOMEM, "out of memory for a %zu-pixel image", px);
    }
    b->cap = px;
    return 0;
}

/* One gallery entry: image, truth, reconstruction and smoothed heat map, shown at the
 * working size capped at 512 px on the longer side (the model size for fit models); the
 * part outside the model's region of interest dimmed in the heat map, as predict's overlay. */
static int report_entry(dd_report *rep, const diffad_ctx *ctx, const dd_item *it, const diffad_result *r, int mh,
                        int mw, test_bufs *b, dd_error *err) {
    int H = r->map_height, W = r->map_width, dh = r->work_height, dw = r->work_width;
    double cap = 512.0 / (dh > dw ? dh : dw);
    if (cap < 1) dh = (int)lround(dh * cap), dw = (int)lround(dw * cap);
    if (dh < 1) dh = 1;
    if (dw < 1) dw = 1;
    size_t n = (size_t)dh * dw;
    int rc;
    /* image and truth at the display size (the truth binarised there) */
    if ((rc = dd_item_load(it, dh, dw, b->img, b->mask, err))) return rc;
    to_rgb8(b->img, n * 3, 0, 1, b->rgb_in);
    for (size_t k = 0; k < n; k++) b->rgb_gt[3 * k] = b->rgb_gt[3 * k + 1] = b->rgb_gt[3 * k + 2] = b->mask[k] > 0.5f ? 255 : 0;
    if (r->recon) {
        if ((rc = dd_resize(r->recon, H, W, 3, b->disp, dh, dw, err))) return rc;
        to_rgb8(b->disp, n * 3, 0, 1, b->rgb_rec);
    } else memset(b->rgb_rec, 0, n * 3);
    if ((rc = dd_resize(r->map, H, W, 1, b->disp, dh, dw, err))) return rc;
    float sigma = dd_display_sigma(mh, mw) * (float)sqrt((double)n / ((double)r->work_height * r->work_width));
    if ((rc = dd_gaussian_blur(b->disp, b->blur, dh, dw, sigma, b->blur + n, err))) return rc;
    dd_heat_overlay(b->rgb_in, b->blur, dh, dw, 0.5f, b->rgb_heat);
    if (diffad_roi_mask_at(ctx, dw, dh, b->roi) == 1) cli_dim_ignored(b->rgb_heat, b->roi, n);
    const char *name = strrchr(it->path, '/');
    char nm[512];
    snprintf(nm, sizeof nm, "%s/%s", it->label ? it->defect : "good", name ? name + 1 : it->path);
    int truth = !it->label || it->mask_path; /* a defective image without a mask: an empty truth cell */
    dd_report_entry e = {nm, it->label ? it->defect : NULL, it->label, r->score,
                         {b->rgb_in, dh, dw, NULL}, {truth ? b->rgb_gt : NULL, dh, dw, NULL}, {b->rgb_rec, dh, dw, NULL},
                         {b->rgb_heat, dh, dw, NULL}};
    return dd_report_add(rep, &e, NULL, err);
}

/* A split run (mpirun -np N diffad test): image i is scored by process i mod N, which sends
 * rank 0 what one process would have used of its result, in image order; rank 0 feeds the
 * metrics, scores.csv and the report exactly as alone, so every output is the same. */
enum { H_SCORE, H_NORM, H_CAL, H_NG, H_REGIONS, H_MH, H_MW, H_WH, H_WW, H_RECON, H_THR, H_PTHR, H_DEC, H_N };

typedef struct remote_bufs {
    float *map, *work, *recon;
    size_t cap_map, cap_work, cap_recon;
} remote_bufs;

static int ensure(float **p, size_t *cap, size_t n, dd_error *err) {
    if (n <= *cap) return 0;
    float *q = realloc(*p, n * sizeof(float));
    if (!q) return dd_fail(err, DD_E_NOMEM, "out of memory for a received map of %zu values", n);
    *p = q, *cap = n;
    return 0;
}

static int send_result(const dd_dist *d, const diffad_result *r, int at_work, int report, dd_error *err) {
    int recon = report && r->recon;
    double h[H_N] = {r->score, r->normalized, r->calibrated, r->is_ng, (double)r->regions_found, r->map_height,
                     r->map_width, r->work_height, r->work_width, recon, r->threshold, r->pixel_threshold, r->decision};
    size_t n = (size_t)r->map_height * r->map_width, nw = (size_t)r->work_height * r->work_width;
    int rc = cli_dist_send(d, 0, h, sizeof h, err);
    if (!rc) rc = cli_dist_send(d, 0, r->map, n * sizeof(float), err);
    if (!rc && at_work) rc = cli_dist_send(d, 0, r->work_map, nw * sizeof(float), err);
    if (!rc && recon) rc = cli_dist_send(d, 0, r->recon, 3 * n * sizeof(float), err);
    return rc;
}

static int recv_result(const dd_dist *d, int from, int at_work, remote_bufs *b, diffad_result *r, dd_error *err) {
    double h[H_N];
    int rc = cli_dist_recv(d, from, h, sizeof h, err);
    if (rc) return rc;
    memset(r, 0, sizeof *r);
    r->score = (float)h[H_SCORE], r->normalized = (float)h[H_NORM], r->calibrated = (int)h[H_CAL];
    r->is_ng = (int)h[H_NG], r->regions_found = (long)h[H_REGIONS], r->decision = (int)h[H_DEC];
    r->map_height = (int)h[H_MH], r->map_width = (int)h[H_MW], r->work_height = (int)h[H_WH], r->work_width = (int)h[H_WW];
    r->threshold = (float)h[H_THR], r->pixel_threshold = (float)h[H_PTHR];
    size_t n = (size_t)r->map_height * r->map_width, nw = (size_t)r->work_height * r->work_width;
    if ((rc = ensure(&b->map, &b->cap_map, n, err)) || (rc = cli_dist_recv(d, from, b->map, n * sizeof(float), err)))
        return rc;
    r->map = b->map;
    if (at_work) {
        if ((rc = ensure(&b->work, &b->cap_work, nw, err)) || (rc = cli_dist_recv(d, from, b->work, nw * sizeof(float), err)))
            return rc;
        r->work_map = b->work;
    }
    if (h[H_RECON] != 0) {
        if ((rc = ensure(&b->recon, &b->cap_recon, 3 * n, err)) ||
            (rc = cli_dist_recv(d, from, b->recon, 3 * n * sizeof(float), err)))
            return rc;
        r->recon = b->recon;
    }
    return 0;
}

static int test_main(int argc, char **argv, const dd_dist *dist);

int cmd_test(int argc, char **argv) {
    dd_dist dist;
    char m[600];
    if (cli_dist_start(NULL, NULL, &dist, m, sizeof m)) return fail(m);
    if (dist.size > 1) snprintf(g_rank, sizeof g_rank, "rank %d of %d: ", dist.rank, dist.size);
    int rc = test_main(argc, argv, &dist);
    cli_dist_end(&dist, rc == 2, rc); /* an error on one process stops them all */
    return rc;
}

static int test_main(int argc, char **argv, const dd_dist *dist) {
    const char *model = NULL, *data = NULL, *outdir = "results";
    const char *pixel_res = "image";
    int report = 0, threads = 0, precision = DIFFAD_PRECISION_MODEL;
    unsigned long long seed = 0;
    int have_seed = 0;
    diffad_region_params rg = {0};
    int have_area = 0, have_max = 0, have_mm = 0;
    const char *review_band = NULL;
    const cli_opt opts[] = {
        {"model", "FILE", CLI_STR, &model, .help = "model file written by 'diffad train' (required)"},
        {"data", "DIR|LIST.csv", CLI_STR, &data,
         .help = "the test set (required): an MVTec category, labelled folders or a CSV list"},
        {"out", "DIR", CLI_STR, &outdir, .help = "output folder (default results)"},
        {"report", NULL, CLI_FLAG, &report,
         .help = "also write report.html: curves, histograms, gallery of the worst images"},
        {"pixel-res", "image|work", CLI_STR, &pixel_res,
         .help = "resolution of the pixel metrics: image (the ground truth's own, default) or\n"
                 "work (the networks' working size; the model size for fit models)"},
        {"min_area", "PX", CLI_LONG, &rg.min_area, -1e15, 1e15, .given = &have_area,
         .help = "regions under PX pixels are ignored, and an image is NG only with a region\n"
                 "of PX or more (default: the model's min_area; 0 every region)"},
        {"max_regions", "N", CLI_INT, &rg.max_regions, -1e9, 1e9, .given = &have_max,
         .help = "as predict's (default: the model's); scores.csv counts every region"},
        {"mm_per_pixel", "MM", CLI_FLOAT, &rg.mm_per_pixel, -1e30, 1e30, .given = &have_mm,
         .help = "as predict's (default: the model's); scores.csv has no areas"},
        {"review_band", "LO,HI", CLI_STR, &review_band, .help = CLI_REVIEW_BAND_HELP},
        CLI_SCORING_OPTIONS(threads, seed, have_seed, precision),
    };
    const cli_spec spec = {"test", USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, NULL, NULL, NULL, NULL};
    char m[600];
    int pr = cli_parse(&spec, argc, argv, NULL, NULL, m, sizeof m);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : fail(m);
    if (!model || !data) return fail("--model FILE and --data DIR|LIST.csv are required (see --help)");
    int at_work = !strcmp(pixel_res, "work");
    if (!at_work && strcmp(pixel_res, "image")) {
        char m[600];
        snprintf(m, sizeof m, "--pixel-res: '%s' is not image or work", pixel_res);
        return fail(m);
    }
    const int lead = dist->rank == 0, split = dist->size > 1; /* rank 0 writes every output */
    if (lead && mkdir(outdir, 0777) && errno != EEXIST) {
        char m[600];
        snprintf(m, sizeof m, "%s: cannot create the output folder (%s)", outdir, strerror(errno));
        return fail(m);
    }
    dd_error err = {0};
    dd_dataset *ds = NULL;
    int layout = 0;
    if (dd_dataset_open_test(data, &ds, &layout, &err)) return fail(err.msg);
    int n_unmasked = 0; /* defective images without a mask: image metrics only */
    for (int i = 0; i < ds->n_test; i++) n_unmasked += ds->test[i].label && !ds->test[i].mask_path;
    if (ds->n_test == 0) {
        dd_dataset_free(ds);
        char m[600];
        snprintf(m, sizeof m, "%s: no test images (expected DIR/test/<type>/)", data);
        return fail(m);
    }
    diffad_params p;
    diffad_params_init(&p);
    p.threads = cli_cap_threads("test", threads, stderr);
    p.precision = precision;
    if (have_seed) p.seed = seed;
    diffad_ctx *ctx = NULL;
    char msg[512];
    if (diffad_create(model, &p, &ctx, msg, sizeof msg)) {
        dd_dataset_free(ds);
        return fail(msg);
    }
    if (cli_region_options(ctx, &rg, have_area, have_max, have_mm, review_band, msg, sizeof msg)) {
        diffad_free(ctx);
        dd_dataset_free(ds);
        return fail(msg);
    }
    diffad_get_region_params(ctx, &rg); /* the band in force, for the summary */
    int h, w;
    diffad_model_size(ctx, &h, &w);
    dd_metrics_params mp;
    dd_metrics_params_init(&mp);
    dd_metrics *acc = NULL;
    dd_report *rep = NULL;
    dd_metrics_result *res = NULL;
    test_bufs b = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/scores.csv", outdir);
    dd_afile *sc = NULL;
    int rc = 0;
    remote_bufs rb = {0};
    long n_good = 0, n_bad = 0, n_rejected = 0, n_missed = 0; /* calibrated models: decisions at the threshold */
    long n_good_review = 0, n_bad_review = 0;                /* of those, sent to REVIEW */
    if (!lead) { /* score this process's share and send it to rank 0 */
        for (int i = dist->rank; i < ds->n_test && !rc; i += dist->size) {
            diffad_result r;
            if (!(rc = cli_score_file(ctx, ds->test[i].path, &r, &err))) rc = send_result(dist, &r, at_work, report, &err);
        }
        goto done;
    }
    if (!(sc = dd_afile_open(path, &err))) { rc = err.code ? err.code : DD_E_IO; goto done; }
    if ((rc = dd_metrics_new(&mp, &acc, &err))) goto done;
    if (report) {
        dd_report_params rp;
        dd_report_params_init(&rp);
        char title[600];
        snprintf(title, sizeof title, "diffad test report: %s", data);
        rp.title = title;
        float thr, pthr;
        if (diffad_thresholds(ctx, &thr, &pthr)) rp.threshold = thr; /* the model's own OK/NG line */
        if ((rc = dd_report_new(&rp, &rep, &err))) goto done;
    }
    dd_afile_printf(sc, "path,label,defect_type,score,normalized,decision,regions\n");
    char procs[64] = "";
    if (split) snprintf(procs, sizeof procs, ", split over %d processes", dist->size);
    char kind[160] = "";
    if (layout != DD_LAYOUT_MVTEC) snprintf(kind, sizeof kind, " (%s)", dd_layout_name(layout));
    char nomask[96] = "";
    if (n_unmasked) snprintf(nomask, sizeof nomask, ", %d without a mask", n_unmasked);
    fprintf(stderr, "diffad test: %s%s: %d test images (%d defective%s), model %dx%d, %s convolutions, pixel metrics at %s%s\n",
            data, kind, ds->n_test, ds->n_test_defective, nomask, h, w, diffad_precision(ctx),
            at_work ? "the working size" : "each image's own size", procs);
    double t0 = cli_now();
    for (int i = 0; i < ds->n_test; i++) {
        const dd_item *it = &ds->test[i];
        diffad_result r;
        if (i % dist->size == 0) {
            if ((rc = cli_score_file(ctx, it->path, &r, &err))) goto done;
        } else if ((rc = recv_result(dist, i % dist->size, at_work, &rb, &r, &err))) goto done;
        /* ground truth binarised at 0.5, at the image's own size or resized to the working size */
        int ph = at_work ? r.work_height : r.map_height, pw = at_work ? r.work_width : r.map_width;
        const float *pmap = at_work ? r.work_map : r.map;
        size_t px_in = (size_t)r.map_height * r.map_width, px_work = (size_t)r.work_height * r.work_width;
        if ((rc = grow(&b, px_in > px_work ? px_in : px_work, &err))) goto done;
        if (it->label && !it->mask_path) { /* no pixel truth: the image metrics only */
            if ((rc = dd_metrics_add_image_unmasked(acc, r.score, it->defect, &err))) goto done;
        } else {
            if ((rc = dd_item_load(it, ph, pw, b.img, b.mask, &err))) goto done;
            if ((rc = dd_metrics_add_image(acc, r.score, it->label, it->label ? it->defect : NULL, pmap, b.mask, ph, pw, &err)))
                goto done;
        }
        csv_field(sc, it->path, 1);
        dd_afile_printf(sc, ",%d,", it->label);
        csv_field(sc, it->label ? it->defect : "good", 0);
        /* the decision is diffad_predict's (the region rule included), as predict prints it */
        dd_afile_printf(sc, ",%.9g,%.9g,%s,", r.score, r.normalized, cli_decision_name(&r));
        if (r.calibrated) dd_afile_printf(sc, "%ld", r.regions_found);
        dd_afile_printf(sc, "\n");
        if (rep && dd_report_wants(rep, it->label, r.score) && (rc = report_entry(rep, ctx, it, &r, h, w, &b, &err))) goto done;
        if (r.calibrated) { /* the decisions at the model's threshold; REVIEW is neither NG nor OK */
            int review = r.decision == DIFFAD_PART_REVIEW;
            if (it->label) n_bad++, n_missed += !r.is_ng && !review, n_bad_review += review;
            else n_good++, n_rejected += r.is_ng, n_good_review += review;
        }
        if ((i + 1) % 25 == 0 || i + 1 == ds->n_test)
            fprintf(stderr, "\r  %d/%d images, %.1f images/s   ", i + 1, ds->n_test, (i + 1) / (cli_now() - t0));
    }
    fputc('\n', stderr);
    rc = dd_afile_commit(sc, &err);
    sc = NULL;
    if (rc) goto done;
    if ((rc = dd_metrics_compute(acc, &res, &err))) goto done;
    char *md = NULL;
    snprintf(path, sizeof path, "%s/metrics.json", outdir);
    if ((rc = dd_metrics_write_json(res, path, &err))) goto done;
    snprintf(path, sizeof path, "%s/metrics.csv", outdir);
    if ((rc = dd_metrics_write_csv(res, path, &err))) goto done;
    snprintf(path, sizeof path, "%s/metrics.md", outdir);
    if ((rc = dd_metrics_write_markdown(res, path, &err))) goto done;
    if ((rc = dd_metrics_markdown(res, &md, &err))) goto done;
    fputs(md, stdout);
    free(md);
    if (n_good + n_bad > 0) { /* rates at the model's threshold, with exact 95 % intervals */
        double lo1 = 0, hi1 = 1, lo2 = 0, hi2 = 1;
        char fr[160] = "no good images", md_[160] = "no defective images";
        if (n_good && !dd_clopper_pearson(n_rejected, n_good, 0.95, &lo1, &hi1))
            snprintf(fr, sizeof fr, "%.2f%% (%ld of %ld good images NG; 95%% interval %.2f%%..%.2f%%)",
                     100.0 * n_rejected / n_good, n_rejected, n_good, 100 * lo1, 100 * hi1);
        if (n_bad && !dd_clopper_pearson(n_missed, n_bad, 0.95, &lo2, &hi2))
            snprintf(md_, sizeof md_, "%.2f%% (%ld of %ld defective images OK; 95%% interval %.2f%%..%.2f%%)",
                     100.0 * n_missed / n_bad, n_missed, n_bad, 100 * lo2, 100 * hi2);
        printf("\nAt the model's threshold: false-reject rate %s; missed-defect rate %s.\n", fr, md_);
        if (n_good_review + n_bad_review > 0 || (rg.review_lo < rg.review_hi))
            printf("Review band (%.5g, %.5g]: %ld of %ld good images (%.2f%%) and %ld of %ld defective images (%.2f%%) "
                   "went to REVIEW (counted above as neither NG nor OK).\n",
                   rg.review_lo, rg.review_hi, n_good_review, n_good, n_good ? 100.0 * n_good_review / n_good : 0.0,
                   n_bad_review, n_bad, n_bad ? 100.0 * n_bad_review / n_bad : 0.0);
    }
    if (rep) {
        snprintf(path, sizeof path, "%s/report.html", outdir);
        if ((rc = dd_report_write(rep, res, path, &err))) goto done;
    }
    fprintf(stderr, "diffad test: wrote %s/metrics.{json,csv,md}, %s/scores.csv%s%s%s (%.1f s, peak memory %.0f MiB)\n", outdir,
            outdir, rep ? ", " : "", rep ? outdir : "", rep ? "/report.html" : "", cli_now() - t0, cli_peak_rss_mib());
done:
    if (rc) fprintf(stderr, "diffad test: %s%s\n", g_rank, err.msg);
    free(rb.map), free(rb.work), free(rb.recon);
    dd_afile_abort(sc);
    dd_metrics_result_free(res);
    dd_metrics_free(acc);
    dd_report_free(rep);
    diffad_free(ctx);
    dd_dataset_free(ds);
    bufs_free(&b);
    return rc ? 2 : 0;
}
