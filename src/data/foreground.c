/* foreground.c — object silhouette estimate (see foreground.h). */
#include "data/foreground.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float dd_otsu_threshold(const float *v, long n, float lo, float hi) {
    if (!(hi > lo) || n <= 0) return lo;
    double hist[256] = {0};
    double sc = 255.0 / (hi - lo);
    for (long i = 0; i < n; i++) {
        int b = (int)((v[i] - lo) * sc);
        hist[b < 0 ? 0 : (b > 255 ? 255 : b)] += 1;
    }
    double sum = 0;
    for (int i = 0; i < 256; i++) sum += i * hist[i];
    double wb = 0, sb = 0, best = -1;
    int bt = 0;
    for (int t = 0; t < 256; t++) {
        wb += hist[t];
        if (wb == 0) continue;
        double wf = (double)n - wb;
        if (wf == 0) break;
        sb += t * hist[t];
        double mb = sb / wb, mf = (sum - sb) / wf;
        double between = wb * wf * (mb - mf) * (mb - mf);
        if (between > best) {
            best = between;
            bt = t;
        }
    }
    /* values in bins <= bt are background: threshold at the bin's upper edge */
    return lo + (float)((bt + 1) / sc);
}

/* Separable box blur of radius r, clamped edges; tmp: h*w. */
static void box_blur(float *v, int h, int w, int r, float *tmp) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0;
            for (int k = -r; k <= r; k++) {
                int xx = x + k < 0 ? 0 : (x + k >= w ? w - 1 : x + k);
                s += v[(size_t)y * w + xx];
            }
            tmp[(size_t)y * w + x] = s / (2 * r + 1);
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0;
            for (int k = -r; k <= r; k++) {
                int yy = y + k < 0 ? 0 : (y + k >= h ? h - 1 : y + k);
                s += tmp[(size_t)yy * w + x];
            }
            v[(size_t)y * w + x] = s / (2 * r + 1);
        }
}

/* Square min (erode) or max (dilate) filter of radius r; the image edge is
 * extended (clamped), so an object touching the border is not eaten there. */
static void morph(uint8_t *m, int h, int w, int r, int dilate, uint8_t *tmp) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int hit = !dilate;
            for (int k = -r; k <= r; k++) {
                int xx = x + k;
                int v = m[(size_t)y * w + (xx < 0 ? 0 : (xx >= w ? w - 1 : xx))];
                if (dilate ? v : !v) {
                    hit = dilate;
                    break;
                }
            }
            tmp[(size_t)y * w + x] = (uint8_t)hit;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int hit = !dilate;
            for (int k = -r; k <= r; k++) {
                int yy = y + k;
                int v = tmp[(size_t)(yy < 0 ? 0 : (yy >= h ? h - 1 : yy)) * w + x];
                if (dilate ? v : !v) {
                    hit = dilate;
                    break;
                }
            }
            m[(size_t)y * w + x] = (uint8_t)hit;
        }
}

/* Background pixels not 4-connected to the border become foreground. */
static int fill_holes(uint8_t *m, int h, int w) {
    size_t n = (size_t)h * w;
    uint8_t *seen = calloc(n, 1);
    int *stack = malloc(sizeof(int) * n);
    if (!seen || !stack) {
        free(seen);
        free(stack);
        return -1;
    }
    size_t top = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (y != 0 && y != h - 1 && x != 0 && x != w - 1) continue;
            size_t i = (size_t)y * w + x;
            if (!m[i] && !seen[i]) {
                seen[i] = 1;
                stack[top++] = (int)i;
            }
        }
    while (top) {
        int i = stack[--top];
        int y = i / w, x = i % w;
        int nb[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
        for (int k = 0; k < 4; k++) {
            int yy = nb[k][0], xx = nb[k][1];
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            size_t j = (size_t)yy * w + xx;
            if (!m[j] && !seen[j]) {
                seen[j] = 1;
                stack[top++] = (int)j;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!m[i] && !seen[i]) m[i] = 1;
    free(seen);
    free(stack);
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int dd_foreground_estimate(const float *img, int h, int w, uint8_t *fg, float *fraction,
                           dd_error *err) {
    if (!img || !fg || h < 3 || w < 3)
        return dd_fail(err, DD_E_INVALID, "foreground: bad image %dx%d", h, w);
    size_t n = (size_t)h * w;
    long nb = 2L * (w + h) - 4;
    float *d = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * n);
    float *border = malloc(sizeof(float) * (size_t)nb);
    uint8_t *mt = malloc(n);
    if (!d || !tmp || !border || !mt) {
        free(d);
        free(tmp);
        free(border);
        free(mt);
        return dd_fail(err, DD_E_NOMEM, "foreground: no memory for %dx%d", h, w);
    }
    /* Border colour: per-channel median of the outermost ring. */
    float bc[3];
    for (int c = 0; c < 3; c++) {
        long k = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (y == 0 || y == h - 1 || x == 0 || x == w - 1)
                    border[k++] = img[((size_t)y * w + x) * 3 + c];
        qsort(border, (size_t)k, sizeof(float), cmp_float);
        bc[c] = border[k / 2];
    }
    float mx = 0;
    for (size_t i = 0; i < n; i++) {
        float m = 0;
        for (int c = 0; c < 3; c++) m = fmaxf(m, fabsf(img[i * 3 + c] - bc[c]));
        d[i] = m;
    }
    int side = h < w ? h : w;
    int rb = side / 100 > 1 ? side / 100 : 1;
    box_blur(d, h, w, rb, tmp);
    box_blur(d, h, w, rb, tmp);
    for (size_t i = 0; i < n; i++) mx = fmaxf(mx, d[i]);
    float t = dd_otsu_threshold(d, (long)n, 0.0f, mx > 0 ? mx : 1.0f);
    for (size_t i = 0; i < n; i++) fg[i] = d[i] > t;
    int rm = side / 64 > 1 ? side / 64 : 1;
    morph(fg, h, w, rm, 0, mt); /* opening: drop specks */
    morph(fg, h, w, rm, 1, mt);
    morph(fg, h, w, 2 * rm, 1, mt); /* closing: bridge gaps */
    morph(fg, h, w, 2 * rm, 0, mt);
    int rc = DD_OK;
    if (fill_holes(fg, h, w)) rc = dd_fail(err, DD_E_NOMEM, "foreground: no memory");
    long cnt = 0;
    for (size_t i = 0; i < n; i++) cnt += fg[i];
    float frac = (float)cnt / (float)n;
    if (fraction) *fraction = frac;
    if (rc || frac < 0.01f || frac > 0.99f) memset(fg, 1, n);
    free(d);
    free(tmp);
    free(border);
    free(mt);
    return rc;
}
