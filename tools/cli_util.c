/* cli_util.c — helpers for the subcommands (see cli_util.h). */
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/image.h"

int cli_score_file(diffad_ctx *ctx, const char *path, diffad_result *res, dd_error *err) {
    dd_image im = {0};
    int rc = dd_image_load_rgb(path, &im, err);
    if (rc) return rc;
    diffad_image di = {im.data, im.w, im.h, 3, (size_t)im.w * 3 * sizeof(float), DIFFAD_F32};
    rc = diffad_predict(ctx, &di, res);
    if (rc) dd_fail(err, rc, "%s: %s", path, diffad_error(ctx));
    dd_image_free(&im);
    return rc;
}

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void cli_fmt_duration(double s, char *buf, size_t cap) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

double cli_peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = atof(line + 6) / 1024.0;
    fclose(f);
    return v;
}

int cli_region_options(diffad_ctx *ctx, const diffad_region_params *given, int have_area, int have_max, int have_mm,
                       const char *review_band, char *msg, size_t cap) {
    diffad_region_params rp;
    if (diffad_get_region_params(ctx, &rp)) return snprintf(msg, cap, "%s", diffad_error(ctx)), 1;
    if (have_area) rp.min_area = given->min_area;
    if (have_max) rp.max_regions = given->max_regions;
    if (have_mm) rp.mm_per_pixel = given->mm_per_pixel;
    if (review_band && !strcmp(review_band, "off")) rp.review_lo = rp.review_hi = 0;
    else if (review_band) {
        char *e1, *e2 = NULL;
        float lo = strtof(review_band, &e1), hi = e1 != review_band && *e1 == ',' ? strtof(e1 + 1, &e2) : 0;
        if (e1 == review_band || *e1 != ',' || !e2 || e2 == e1 + 1 || *e2)
            return snprintf(msg, cap, "--review_band: '%s' is not LO,HI (two raw scores) or off", review_band), 1;
        rp.review_lo = lo, rp.review_hi = hi;
    }
    if (diffad_set_region_params(ctx, &rp)) return snprintf(msg, cap, "%s", diffad_error(ctx)), 1;
    return 0;
}

const char *cli_decision_name(const diffad_result *r) {
    switch (r->decision) {
    case DIFFAD_PART_OK: return "OK";
    case DIFFAD_PART_NG: return "NG";
    case DIFFAD_PART_REVIEW: return "REVIEW";
    default: return "uncalibrated";
    }
}

const char *const cli_precision_names[] = {"model", "auto", "f32", "bf16", NULL};

void cli_dim_ignored(unsigned char *rgb, const unsigned char *roi, size_t hw) {
    for (size_t i = 0; i < hw; i++)
        if (!roi[i]) rgb[3 * i] /= 3, rgb[3 * i + 1] /= 3, rgb[3 * i + 2] /= 3;
}
