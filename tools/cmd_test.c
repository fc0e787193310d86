/* cmd_test.c — `diffad test`: score every labelled test image of a category
 * through the public API (the same path as predict) and report the field's
 * metrics, overall and per defect type; optionally an HTML report. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_opts.h"
#include "cli_util.h"
#include "commands.h"
#include "data/dataset.h"
#include "diffad.h"
#include "data/image.h"
#include "eval/metrics.h"
#include "core/fileio.h"
#include "eval/report.h"

static const char USAGE[] =
    "usage: diffad test --model FILE --data DIR [--out DIR] [--report] [--threads N] [--seed S]\n"
    "\n"
    "Scores the test images of a category (MVTec layout: DIR/test/<type>/, masks in\n"
    "DIR/ground_truth/<type>/<stem>_mask.png) and writes metrics.json, metrics.csv,\n"
    "metrics.md and scores.csv to DIR (default results/); prints the metrics table.\n"
    "Image AUROC/AP/F1-max, pixel AUROC/AP/F1-max and AUPRO (FPR <= 0.3), overall and\n"
    "per defect type; pixel metrics at the model's resolution.\n";

static int fail(const char *m) {
    fprintf(stderr, "diffad test: %s\n", m);
    return 2;
}

static void to_rgb8(const float *v, size_t n, float lo, float hi, unsigned char *o) {
    for (size_t i = 0; i < n; i++) {
        float x = (v[i] - lo) / (hi - lo);
        o[i] = (unsigned char)(x <= 0 ? 0 : x >= 1 ? 255 : lrintf(x * 255.0f));
    }
}

int cmd_test(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *outdir = "results";
    int report = 0, threads = 0;
    unsigned long long seed = 0;
    int have_seed = 0;
    const cli_opt opts[] = {
        {"model", "FILE", CLI_STR, &model, .help = "model file written by 'diffad train' (required)"},
        {"data", "DIR", CLI_STR, &data, .help = "category folder in the MVTec layout (required)"},
        {"out", "DIR", CLI_STR, &outdir, .help = "output folder (default results)"},
        {"report", NULL, CLI_FLAG, &report,
         .help = "also write report.html: curves, histograms, gallery of the worst images"},
        {"threads", "N", CLI_INT, &threads, 0, 4096, .help = "compute threads (default: all cores)"},
        {"seed", "S", CLI_U64, &seed, .given = &have_seed,
         .help = "noise seed of the denoiser passes (default: the library's)"},
    };
    const cli_spec spec = {"test", USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, NULL, NULL, NULL, NULL};
    char m[600];
    int pr = cli_parse(&spec, argc, argv, NULL, NULL, m, sizeof m);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : fail(m);
    if (!model || !data) return fail("--model FILE and --data DIR are required (see --help)");
    if (mkdir(outdir, 0777) && errno != EEXIST) {
        char m[600];
        snprintf(m, sizeof m, "%s: cannot create the output folder (%s)", outdir, strerror(errno));
        return fail(m);
    }
    dd_error err = {0};
    dd_dataset *ds = NULL;
    if (dd_dataset_open(data, &ds, &err)) return fail(err.msg);
    if (ds->n_test == 0) {
        dd_dataset_free(ds);
        char m[600];
        snprintf(m, sizeof m, "%s: no test images (expected DIR/test/<type>/)", data);
        return fail(m);
    }
    diffad_params p;
    diffad_params_init(&p);
    p.threads = threads;
    if (have_seed) p.seed = seed;
    diffad_ctx *ctx = NULL;
    char msg[512];
    if (diffad_create(model, &p, &ctx, msg, sizeof msg)) {
        dd_dataset_free(ds);
        return fail(msg);
    }
    int h, w;
    diffad_model_size(ctx, &h, &w);
    size_t hw = (size_t)h * w;
    dd_metrics_params mp;
    dd_metrics_params_init(&mp);
    dd_metrics *acc = NULL;
    dd_report *rep = NULL;
    dd_metrics_result *res = NULL;
    float *mask = malloc(hw * sizeof(float)), *img = malloc(hw * 3 * sizeof(float)), *blur = malloc(hw * 2 * sizeof(float));
    unsigned char *rgb_in = malloc(hw * 3), *rgb_gt = malloc(hw * 3), *rgb_rec = malloc(hw * 3), *rgb_heat = malloc(hw * 3);
    char path[4096];
    snprintf(path, sizeof path, "%s/scores.csv", outdir);
    dd_afile *sc = NULL;
    int rc = 0;
    if (!mask || !img || !blur || !rgb_in || !rgb_gt || !rgb_rec || !rgb_heat) { rc = dd_fail(&err, DD_E_NOMEM, "out of memory"); goto done; }
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
    dd_afile_printf(sc, "path,label,defect_type,score,normalized,decision\n");
    fprintf(stderr, "diffad test: %s: %d test images (%d defective), model %dx%d\n", data, ds->n_test, ds->n_test_defective, h, w);
    double t0 = cli_now();
    float sigma = dd_display_sigma(h, w);
    for (int i = 0; i < ds->n_test; i++) {
        const dd_item *it = &ds->test[i];
        diffad_result r;
        if ((rc = cli_score_file(ctx, it->path, &r, &err))) goto done;
        /* ground truth at the model's size, binarised at 0.5 */
        if ((rc = dd_item_load(it, h, w, img, mask, &err))) goto done;
        if ((rc = dd_metrics_add_image(acc, r.score, it->label, it->label ? it->defect : NULL, r.map, mask, h, w, &err))) goto done;
        dd_afile_printf(sc, "\"%s\",%d,%s,%.9g,%.9g,%s\n", it->path, it->label, it->label ? it->defect : "good", r.score,
                r.normalized, r.calibrated ? (r.is_ng ? "NG" : "OK") : "uncalibrated");
        if (rep && dd_report_wants(rep, it->label, r.score)) {
            to_rgb8(img, hw * 3, 0, 1, rgb_in);
            for (size_t k = 0; k < hw; k++) rgb_gt[3 * k] = rgb_gt[3 * k + 1] = rgb_gt[3 * k + 2] = mask[k] > 0.5f ? 255 : 0;
            to_rgb8(r.recon, hw * 3, 0, 1, rgb_rec);
            if ((rc = dd_gaussian_blur(r.map, blur, h, w, sigma, blur + hw, &err))) goto done;
            dd_heat_overlay(rgb_in, blur, h, w, 0.5f, rgb_heat);
            const char *name = strrchr(it->path, '/');
            char nm[512];
            snprintf(nm, sizeof nm, "%s/%s", it->label ? it->defect : "good", name ? name + 1 : it->path);
            dd_report_entry e = {nm, it->label ? it->defect : NULL, it->label, r.score,
                                 {rgb_in, h, w, NULL}, {rgb_gt, h, w, NULL}, {rgb_rec, h, w, NULL}, {rgb_heat, h, w, NULL}};
            if ((rc = dd_report_add(rep, &e, NULL, &err))) goto done;
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
    if (rep) {
        snprintf(path, sizeof path, "%s/report.html", outdir);
        if ((rc = dd_report_write(rep, res, path, &err))) goto done;
    }
    fprintf(stderr, "diffad test: wrote %s/metrics.{json,csv,md}, %s/scores.csv%s%s%s (%.1f s, peak memory %.0f MiB)\n", outdir,
            outdir, rep ? ", " : "", rep ? outdir : "", rep ? "/report.html" : "", cli_now() - t0, cli_peak_rss_mib());
done:
    if (rc) fprintf(stderr, "diffad test: %s\n", err.msg);
    dd_afile_abort(sc);
    dd_metrics_result_free(res);
    dd_metrics_free(acc);
    dd_report_free(rep);
    diffad_free(ctx);
    dd_dataset_free(ds);
    free(mask), free(img), free(blur), free(rgb_in), free(rgb_gt), free(rgb_rec), free(rgb_heat);
    return rc ? 2 : 0;
}
