/* cmd_calibrate.c — `diffad calibrate`: new thresholds for a trained model from a folder
 * of good images (after a lighting or camera change), without retraining. It scores the
 * images exactly as the trainer's calibration does (train/calibrate.h), rewrites the model
 * file atomically with the new thresholds and the previous ones kept in its metadata, and
 * prints the expected false-reject rate with its Clopper–Pearson interval. It also sets the
 * three-way decision's review band (--review), keeps the good scores for drift checks, and
 * `--roi FILE` sets or replaces the model's region of interest (`--roi none` removes it) in
 * the same atomic rewrite, calibrated with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_opts.h"
#include "cli_util.h"
#include "commands.h"
#include "data/dataset.h"
#include "eval/drift.h"
#include "eval/interval.h"
#include "infer/roi_file.h"
#include "model/modelfile.h"
#include "train/calibrate.h"

static const char USAGE[] =
    "usage: diffad calibrate --model FILE --good DIR [--false_reject R] [--roi FILE|none] [--out FILE] [options]\n"
    "\n"
    "Sets a trained model's image and pixel thresholds again from the good images in DIR\n"
    "(a folder of good images, or a category whose train/good is used), e.g. after a\n"
    "lighting or camera change, without retraining. The images are scored exactly as\n"
    "training's calibration scores its held-out images; the image threshold is their\n"
    "(1 - R) quantile. The model file is rewritten atomically (--out: written there\n"
    "instead), with the previous thresholds kept in its metadata (previous_*), and the\n"
    "images' scores kept for predict's drift check (calibration_scores).\n"
    "Use good images the model was NOT trained on (new images from the line): images it\n"
    "trained on score lower than new good parts, which sets the threshold too low and\n"
    "makes new good parts look like drift (measured: docs/architecture.md).\n"
    "\n"
    "--roi FILE stores a region of interest in the model (replacing any stored one) and\n"
    "calibrates with it: an image over the camera frame, nonzero (e.g. white) = inspect,\n"
    "0 (black) = ignore (labels, serial numbers, fixtures), resized to each image (a pixel\n"
    "is inspected when at least half of it is). predict and test then zero the anomaly\n"
    "map outside it before the score, the regions and the decision, and the pixel\n"
    "threshold here is a quantile over inspected pixels only. --roi none removes it (a\n"
    "file named none: ./none); without --roi the stored one (if any) is kept and used.\n";

static const char EPILOG[] =
    "The expected false-reject rate is the share of the calibration images above the new\n"
    "threshold, with its exact (Clopper-Pearson) interval for that many images: with n\n"
    "images no rate below 1/n can be set, and the interval says how sure the rate is.\n";

static int fail(const char *msg) {
    fprintf(stderr, "diffad calibrate: %s\n", msg);
    return 2;
}

int cmd_calibrate(int argc, char **argv) {
    const char *model = NULL, *good = NULL, *out = NULL, *roi_path = NULL;
    float false_reject = -1, conf = 0.95f, review = -1, map_sigma = -1;
    int threads = 0;
    const cli_opt opts[] = {
        {"model", "FILE", CLI_STR, &model, .help = "model file written by 'diffad train' (required)"},
        {"good", "DIR", CLI_STR, &good, .help = "good images to calibrate on (required)"},
        {"false_reject", "R", CLI_FLOAT, &false_reject, 1e-6, 0.5,
         .help = "share of good images allowed over the image threshold (default 0.01; pixels\nat a tenth of it)"},
        {"review", "S", CLI_FLOAT, &review, 0, 0.5,
         .help = "three-way decision: a band around the threshold that sends about a share S\n"
                 "of good parts (those just below it) and the parts just above it to REVIEW\n"
                 "(default: the model's review setting; 0: OK / NG only)"},
        {"map_sigma", "S", CLI_FLOAT, &map_sigma, 0, DD_MAX_MAP_SIGMA,
         .help = "smooth the anomaly map by a Gaussian of sigma S working pixels before the score,\n"
                 "the regions and the pixel map, and calibrate with it (0: off; default: the\n"
                 "model's setting)"},
        {"out", "FILE", CLI_STR, &out, .help = "write the recalibrated model here (default: rewrite --model)"},
        {"roi", "FILE|none", CLI_STR, &roi_path,
         .help = "region of interest image to store (nonzero = inspect, 0 = ignore;\nresized to each image); 'none' removes the stored one"},
        {"confidence", "C", CLI_FLOAT, &conf, 0.5, 0.9999, .help = "of the interval (default 0.95)"},
        {"threads", "N", CLI_INT, &threads, 0, 4096,
         .help = "compute threads (default: all cores; above 4 x the cores:\ncapped, with a warning)"},
    };
    const cli_spec spec = {"calibrate", USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, EPILOG, NULL, NULL, NULL};
    char m[700];
    int pr = cli_parse(&spec, argc, argv, NULL, NULL, m, sizeof m);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : fail(m);
    if (!model || !good) return fail("--model FILE and --good DIR are required (see --help)");
    if (false_reject < 0) false_reject = 0.01f;
    if (!out) out = model;
    threads = cli_cap_threads("calibrate", threads, stderr);

    dd_error err = {0};
    dd_model *mdl = NULL;
    dd_dataset *ds = NULL;
    int *idx = NULL, rc;
    float *sorted = NULL;
    char *calib_text = NULL;
    if ((rc = dd_model_load(model, 1, 0, threads, &mdl, &err))) goto done;
    /* the region of interest to calibrate with and store: --roi's, none, or the stored one */
    int had_roi = mdl->roi.mask != NULL;
    if (roi_path && !strcmp(roi_path, "none")) dd_roi_free(&mdl->roi);
    else if (roi_path && (rc = dd_roi_load(roi_path, &mdl->roi, &err))) goto done;
    if (mdl->roi.mask && dd_roi_count_at(&mdl->roi, mdl->cfg.unet.h, mdl->cfg.unet.w) < 1) {
        rc = dd_fail(&err, DD_E_FORMAT, "%s: the %dx%d region of interest covers no pixel at the model size %dx%d (a "
                     "pixel is inspected when at least half of it is)", roi_path ? roi_path : model, mdl->roi.w,
                     mdl->roi.h, mdl->cfg.unet.w, mdl->cfg.unet.h);
        goto done;
    }
    if ((rc = dd_dataset_open(good, &ds, &err))) goto done;
    int n = ds->n_train;
    if (n < 1) {
        rc = dd_fail(&err, DD_E_INVALID, "%s: no good images to calibrate on", good);
        goto done;
    }
    if (!(idx = malloc(sizeof *idx * (size_t)n)) || !(sorted = malloc(sizeof *sorted * (size_t)n))) {
        rc = dd_fail(&err, DD_E_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    dd_model_config before = mdl->cfg, cfg = mdl->cfg;
    if (review >= 0) cfg.review = review;
    if (map_sigma >= 0) cfg.map_sigma = map_sigma;
    double t0 = cli_now();
    if ((rc = dd_calibrate(&cfg, mdl->params.value, mdl->params.total, &mdl->roi, ds, idx, n, false_reject, threads, sorted,
                           &err)) ||
        (rc = dd_calib_scores_format(sorted, (size_t)n, &calib_text, &err)))
        goto done;
    /* the previous thresholds go into the metadata; "none" for a model never calibrated */
    char prev[4][40], when[40], cnt[24];
    const float old[4] = {before.image_threshold, before.pixel_threshold, before.score_lo, before.score_hi};
    int was = before.image_threshold != 0 || before.pixel_threshold != 0;
    for (int i = 0; i < 4; i++) {
        if (was) snprintf(prev[i], sizeof prev[i], "%.9g", old[i]);
        else snprintf(prev[i], sizeof prev[i], "none");
    }
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    snprintf(cnt, sizeof cnt, "%d", n);
    dd_kv kv[8] = {{"previous_image_threshold", prev[0]}, {"previous_pixel_threshold", prev[1]},
                   {"previous_score_lo", prev[2]},        {"previous_score_hi", prev[3]},
                   {"calibrated_from", good},             {"calibrated_images", cnt},
                   {"calibrated_at", when},               {DD_CALIB_SCORES_KEY, calib_text}};
    mdl->cfg = cfg;
    dd_save_opts so = {NULL, 0, NULL, kv, 8};
    if ((rc = dd_model_save_ex(mdl, out, &so, &err))) goto done;
    /* images above the threshold: n - rank of the quantile (calibrate.h) */
    size_t rank = dd_calibrate_rank((size_t)n, 1.0 - false_reject);
    long k = (long)n - (long)rank;
    double lo, hi;
    dd_clopper_pearson(k, n, conf, &lo, &hi);
    fprintf(stderr, "diffad calibrate: %d good images from %s scored in %.1f s\n", n, good, cli_now() - t0);
    if (mdl->roi.mask)
        fprintf(stderr, "diffad calibrate: region of interest %s: %dx%d, %.1f%% of the frame inspected\n",
                roi_path ? roi_path : "kept", mdl->roi.w, mdl->roi.h,
                100.0 * mdl->roi.inspected / ((double)mdl->roi.w * mdl->roi.h));
    else if (had_roi)
        fprintf(stderr, "diffad calibrate: region of interest removed: every pixel is inspected\n");
    if (was)
        fprintf(stderr, "diffad calibrate: image threshold %.5f -> %.5f, pixel threshold %.5f -> %.5f\n",
                before.image_threshold, cfg.image_threshold, before.pixel_threshold, cfg.pixel_threshold);
    else
        fprintf(stderr, "diffad calibrate: image threshold %.5f, pixel threshold %.5f (the model was not calibrated)\n",
                cfg.image_threshold, cfg.pixel_threshold);
    fprintf(stderr,
            "diffad calibrate: expected false-reject rate %.2f%% (%ld of %d calibration images above the threshold; "
            "%.0f%% interval %.2f%%..%.2f%%)%s\n",
            100.0 * k / n, k, n, 100.0 * conf, 100.0 * lo, 100.0 * hi,
            rank >= (size_t)n ? "; the threshold is the highest good score: more images are needed for a lower rate" : "");
    if (cfg.review > 0) {
        /* good calibration images inside the band */
        long in_band = 0;
        for (int i = 0; i < n; i++) in_band += sorted[i] > cfg.review_lo && sorted[i] <= cfg.review_hi;
        fprintf(stderr, "diffad calibrate: review band (%.5f, %.5f]: %ld of %d calibration images (%.2f%%) would go to REVIEW%s\n",
                cfg.review_lo, cfg.review_hi, in_band, n, 100.0 * in_band / n,
                in_band ? "" : " (the band is empty: more calibration images are needed for this review share)");
    }
    fprintf(stderr, "diffad calibrate: wrote %s\n", out);
done:
    if (rc) fprintf(stderr, "diffad calibrate: %s\n", err.msg);
    free(idx);
    free(sorted);
    free(calib_text);
    dd_dataset_free(ds);
    dd_model_free(mdl);
    return rc ? 2 : 0;
}
