/* report_image.c — heat-map colours, the display smoothing's sigma and PNG bytes for the report
 * (see report.h and report_internal.h). */
#include "eval/report.h"
#include "eval/report_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

#include <stb/stb_image_write.h>

/* Turbo colour map, the published polynomial approximation (Google Research, 2019): close to
 * the LUT (~0.05) and needs no table. Chosen over jet for its even brightness steps. */
void dd_heat_color(float v, unsigned char rgb[3]) {
    static const double c[3][6] = {
        {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943},
        {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604},
        {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973}};
    if (isnan(v)) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    double x = v < 0 ? 0 : v > 1 ? 1 : v;
    for (int k = 0; k < 3; k++) {
        const double *a = c[k];
        double y = a[0] + x * (a[1] + x * (a[2] + x * (a[3] + x * (a[4] + x * a[5]))));
        y = y < 0 ? 0 : y > 1 ? 1 : y;
        rgb[k] = (unsigned char)lround(y * 255);
    }
}

void dd_heat_rgb(const float *map, int H, int W, unsigned char *rgb) {
    long n = (long)H * W;
    for (long i = 0; i < n; i++) dd_heat_color(map[i], rgb + 3 * i);
}

void dd_heat_overlay(const unsigned char *img, const float *map, int H, int W, float alpha,
                     unsigned char *out) {
    long n = (long)H * W;
    float a = alpha < 0 ? 0 : alpha > 1 ? 1 : alpha;
    for (long i = 0; i < n; i++) {
        unsigned char c[3];
        dd_heat_color(map[i], c);
        for (int k = 0; k < 3; k++)
            out[3 * i + k] = (unsigned char)lroundf((1 - a) * img[3 * i + k] + a * c[k]);
    }
}

float dd_display_sigma(int H, int W) {
    if (H <= 0 || W <= 0) return 0;
    return (float)(4.0 * sqrt((double)H * W) / 256.0);
}

static void png_sink(void *ctx, void *data, int size) {
    dd_textbuf_put(ctx, data, (size_t)size);
}

int dd_png_encode_rgb(const unsigned char *rgb, int h, int w, int max_side, unsigned char **png,
                      size_t *len, dd_error *err) {
    *png = NULL;
    *len = 0;
    if (!rgb || h <= 0 || w <= 0 || h > 32768 || w > 32768)
        return dd_fail(err, DD_E_INVALID, "png: bad image %dx%d", h, w);
    int f = 1, big = h > w ? h : w;
    if (max_side > 0 && big > max_side) f = (big + max_side - 1) / max_side;
    int oh = h / f, ow = w / f;
    const unsigned char *src = rgb;
    unsigned char *small = NULL;
    if (f > 1) {
        /* Box average of f×f blocks: cheap, and nothing of a defect disappears (unlike
         * nearest-neighbour subsampling). */
        small = malloc((size_t)oh * ow * 3);
        if (!small) return dd_fail(err, DD_E_NOMEM, "png: out of memory (%dx%d)", oh, ow);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int c = 0; c < 3; c++) {
                    unsigned s = 0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++)
                            s += rgb[((size_t)(y * f + dy) * w + (size_t)(x * f + dx)) * 3 + c];
                    small[((size_t)y * ow + x) * 3 + c] = (unsigned char)((s + f * f / 2) / (f * f));
                }
        src = small;
    }
    dd_textbuf b;
    dd_textbuf_init(&b);
    int ok = stbi_write_png_to_func(png_sink, &b, ow, oh, 3, src, ow * 3);
    free(small);
    if (!ok || b.oom) {
        dd_textbuf_free(&b);
        return dd_fail(err, DD_E_NOMEM, "png: encoding a %dx%d image failed", ow, oh);
    }
    *png = (unsigned char *)b.s;
    *len = b.len;
    return DD_OK;
}

#define MAX_PNG_FILE (64L << 20)

int dd_png_read_file(const char *path, unsigned char **png, size_t *len, dd_error *err) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    dd_error e = {0};
    int rc = dd_read_file(path, MAX_PNG_FILE, png, len, &e);
    if (rc) return dd_fail(err, rc, "report: %s", e.msg);
    if (*len < 8 || memcmp(*png, sig, 8) != 0) {
        free(*png);
        *png = NULL;
        *len = 0;
        return dd_fail(err, DD_E_FORMAT, "report: %s is not a PNG file", path);
    }
    return DD_OK;
}
