/* test_report.c — heat-map colours, display smoothing (against scipy.ndimage.gaussian_filter),
 * gallery bookkeeping, PNG embedding (decoded back and compared), and the HTML report: generated,
 * self-contained, and rendered by headless Chromium (DOM dumped and a screenshot checked), when
 * `chromium` is installed. Set DD_REPORT_KEEP=dir to keep the page and the screenshot. */
#include "eval/report.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "check.h"
#include "model/model.h"

/* k of the top-k image score for an H x W map: the model's rule, the one inference uses. */
static long model_topk(int h, int w) {
    dd_model_config c;
    memset(&c, 0, sizeof c);
    c.unet.h = h, c.unet.w = w;
    return dd_model_topk(&c);
}

#define PY "/usr/bin/python3"

static uint64_t rng_state = 12345;
static double rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    if (len) *len = n;
    return s;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---------- heat map ---------- */

static void test_heat(void) {
    unsigned char c0[3], c1[3], cm[3], clo[3], chi[3], cn[3];
    dd_heat_color(0, c0);
    dd_heat_color(1, c1);
    dd_heat_color(0.5f, cm);
    dd_heat_color(-3, clo);
    dd_heat_color(7, chi);
    dd_heat_color(NAN, cn);
    CHECK(c0[0] + c0[1] + c0[2] < 120, "0 must be dark: %d %d %d", c0[0], c0[1], c0[2]);
    CHECK(c1[0] > 100 && c1[2] < 40, "1 must be red: %d %d %d", c1[0], c1[1], c1[2]);
    CHECK(cm[1] > 200, "0.5 must be green-ish: %d %d %d", cm[0], cm[1], cm[2]);
    CHECK(!memcmp(c0, clo, 3) && !memcmp(c1, chi, 3), "values outside [0,1] must clamp");
    CHECK(cn[0] == 0 && cn[1] == 0 && cn[2] == 0, "NaN must be black");
    /* Fixed scale: a map's colours do not depend on the rest of the map (no min–max). */
    float a[2] = {0.2f, 0.25f}, b[2] = {0.2f, 0.95f};
    unsigned char ra[6], rb[6];
    dd_heat_rgb(a, 1, 2, ra);
    dd_heat_rgb(b, 1, 2, rb);
    CHECK(!memcmp(ra, rb, 3), "the colour of 0.2 changed with the other values of the map");
    unsigned char img[6] = {10, 20, 30, 200, 100, 0}, out[6];
    dd_heat_overlay(img, a, 1, 2, 0, out);
    CHECK(!memcmp(out, img, 6), "alpha 0 must give the image");
    dd_heat_overlay(img, a, 1, 2, 1, out);
    CHECK(!memcmp(out, ra, 6), "alpha 1 must give the heat map");
    dd_heat_overlay(img, a, 1, 2, 0.5f, img); /* in place */
    CHECK(abs(img[0] - (10 + ra[0]) / 2) <= 1, "alpha 0.5 blend");
}

/* ---------- Gaussian smoothing against scipy ---------- */

static void blur_naive(const float *in, float *out, int H, int W, float sigma) {
    int r = (int)(4.0 * sigma + 0.5);
    double *k = malloc(sizeof(double) * (size_t)(2 * r + 1)), s = 0;
    for (int i = -r; i <= r; i++) s += k[i + r] = exp(-0.5 * i * i / ((double)sigma * sigma));
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double acc = 0;
            for (int dy = -r; dy <= r; dy++)
                for (int dx = -r; dx <= r; dx++) {
                    int yy = y + dy, xx = x + dx;
                    while (yy < 0 || yy >= H) yy = yy < 0 ? -yy - 1 : 2 * H - yy - 1;
                    while (xx < 0 || xx >= W) xx = xx < 0 ? -xx - 1 : 2 * W - xx - 1;
                    acc += k[dy + r] * k[dx + r] * in[yy * W + xx];
                }
            out[y * W + x] = (float)(acc / (s * s));
        }
    free(k);
}

static void test_blur(void) {
    CHECK(fabsf(dd_display_sigma(256, 256) - 4) < 1e-6f, "sigma at 256²");
    CHECK(fabsf(dd_display_sigma(512, 512) - 8) < 1e-6f, "sigma at 512²");
    enum { H = 37, W = 53 };
    static float in[H * W], out[H * W], ref[H * W], tmp[H * W];
    for (int i = 0; i < H * W; i++) in[i] = (float)rnd();
    static const float sig[3] = {1.3f, 4, 20}; /* 20: kernel wider than the image */
    dd_error err = {0};
    for (int t = 0; t < 3; t++) {
        CHECK(dd_gaussian_blur(in, out, H, W, sig[t], t ? tmp : NULL, &err) == DD_OK, "%s",
              err.msg);
        blur_naive(in, ref, H, W, sig[t]);
        CHECK(check_max_err(out, ref, H * W) < 1e-5, "blur sigma %g vs naive 2-D: %g", sig[t],
              check_max_err(out, ref, H * W));
    }
    memcpy(out, in, sizeof in);
    dd_gaussian_blur(out, out, H, W, 4, NULL, &err);
    blur_naive(in, ref, H, W, 4);
    CHECK(check_max_err(out, ref, H * W) < 1e-5, "in-place blur");
    CHECK(dd_gaussian_blur(in, out, H, W, -1, NULL, &err) == DD_E_RANGE, "negative sigma");
    CHECK(dd_gaussian_blur(in, out, 0, W, 1, NULL, &err) == DD_E_INVALID, "empty map");

    /* The naive reference encodes our reading of scipy's mode="reflect"; check it against scipy
     * itself. */
    if (access(PY, X_OK) != 0 ||
        system(PY " -c 'import scipy.ndimage, numpy' >/dev/null 2>&1") != 0) {
        SKIP("%s with scipy not available: gaussian_filter comparison skipped", PY);
        return;
    }
    char dir[] = "/tmp/dd_blur_XXXXXX";
    if (!mkdtemp(dir)) return;
    char pin[256], pout[256], cmd[1024];
    snprintf(pin, sizeof pin, "%s/in.f32", dir);
    snprintf(pout, sizeof pout, "%s/out.f32", dir);
    FILE *f = fopen(pin, "wb");
    fwrite(in, sizeof(float), H * W, f);
    fclose(f);
    for (int t = 0; t < 3; t++) {
        snprintf(cmd, sizeof cmd,
                 PY " -c 'import numpy as np, scipy.ndimage as nd; "
                    "a=np.fromfile(\"%s\",dtype=\"<f4\").reshape(%d,%d).astype(np.float64); "
                    "nd.gaussian_filter(a,%g,mode=\"reflect\",truncate=4.0).astype(\"<f4\")"
                    ".tofile(\"%s\")'",
                 pin, H, W, sig[t], pout);
        CHECK(system(cmd) == 0, "scipy call failed");
        f = fopen(pout, "rb");
        int ok = f && fread(ref, sizeof(float), H * W, f) == (size_t)(H * W);
        if (f) fclose(f);
        CHECK(ok, "no scipy output");
        dd_gaussian_blur(in, out, H, W, sig[t], NULL, &err);
        CHECK(ok && check_max_err(out, ref, H * W) < 1e-5, "blur sigma %g vs scipy: %g", sig[t],
              check_max_err(out, ref, H * W));
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
}

/* ---------- report ---------- */

/* Decode the n-th base64 data URI of the page into a malloc'd buffer. */
static unsigned char *nth_png(const char *page, int nth, size_t *len) {
    const char *p = page;
    for (int i = 0; i <= nth; i++) {
        p = strstr(p, "data:image/png;base64,");
        if (!p) return NULL;
        p += 22;
    }
    const char *e = strchr(p, '"');
    if (!e) return NULL;
    size_t n = (size_t)(e - p), o = 0;
    unsigned char *d = malloc(n);
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && p[i] != '='; i++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *q = strchr(tab, p[i]);
        if (!q) {
            free(d);
            return NULL;
        }
        v = v << 6 | (unsigned)(q - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(v >> bits);
        }
    }
    *len = o;
    return d;
}

typedef struct {
    int H, W;
    unsigned char *input, *truth, *recon, *heat;
    float *map, *mask;
} fake_image;

static fake_image make_image(int H, int W, int label) {
    fake_image f = {H, W, malloc((size_t)H * W * 3), malloc((size_t)H * W * 3),
                    malloc((size_t)H * W * 3), malloc((size_t)H * W * 3),
                    malloc(sizeof(float) * (size_t)H * W), calloc((size_t)H * W, sizeof(float))};
    double cy = H * (0.3 + 0.4 * rnd()), cx = W * (0.3 + 0.4 * rnd()), rr = H * 0.08;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            long i = (long)y * W + x;
            int in = label && (y - cy) * (y - cy) + (x - cx) * (x - cx) < rr * rr;
            f.mask[i] = (float)in;
            unsigned char g = (unsigned char)(90 + 60 * sin(x * 0.1) * cos(y * 0.07));
            f.recon[3 * i] = g;
            f.recon[3 * i + 1] = (unsigned char)(g * 0.9);
            f.recon[3 * i + 2] = (unsigned char)(g * 0.7);
            for (int c = 0; c < 3; c++) {
                f.input[3 * i + c] = in ? (unsigned char)(c == 0 ? 230 : 40) : f.recon[3 * i + c];
                f.truth[3 * i + c] = in ? 255 : 0;
            }
            f.map[i] = (float)(0.25 * rnd() * rnd() + (in ? 0.15 + 0.6 * rnd() : 0));
        }
    dd_gaussian_blur(f.map, f.map, H, W, dd_display_sigma(H, W), NULL, NULL);
    dd_heat_rgb(f.map, H, W, f.heat);
    return f;
}

static void free_image(fake_image *f) {
    free(f->input);
    free(f->truth);
    free(f->recon);
    free(f->heat);
    free(f->map);
    free(f->mask);
}

static int have_chromium(void) { return system("command -v chromium >/dev/null 2>&1") == 0; }

static void test_report(void) {
    const char *keep = getenv("DD_REPORT_KEEP");
    char dir[] = "/tmp/dd_report_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    const char *outdir = keep && *keep ? keep : dir;
    dd_error err = {0};
    dd_metrics *acc = NULL;
    dd_metrics_new(NULL, &acc, &err);
    dd_report_params rp;
    dd_report_params_init(&rp);
    rp.title = "diffad — test <bottle> & co";
    rp.gallery_good = 3;
    rp.gallery_defective = 4;
    dd_report *rep = NULL;
    CHECK(dd_report_new(&rp, &rep, &err) == DD_OK, "report new: %s", err.msg);
    if (!rep) return;
    static const char *types[3] = {"broken_large", "contamination", "scratch"};
    int nimg = 24, kept_total = 0;
    double worst_good = -1, best_kept_bad_limit = 1e9;
    (void)best_kept_bad_limit;
    double good_scores[64];
    int ngood = 0;
    for (int i = 0; i < nimg; i++) {
        int label = i % 3 != 0, side = i == 5 ? 300 : 64; /* one big image: downscaled */
        fake_image f = make_image(side, side, label);
        double score = 0;
        dd_topk_mean(f.map, (long)side * side, model_topk(side, side), &score, NULL);
        score = score * 0.4 + 0.6 * rnd(); /* overlapping classes: curves worth drawing */
        dd_metrics_add_image(acc, score, label, types[i % 3], f.map, f.mask, side, side, &err);
        if (!label) good_scores[ngood++] = score;
        char name[64];
        snprintf(name, sizeof name, "%s/%03d.png", label ? types[i % 3] : "good", i);
        dd_report_entry e = {name, label ? types[i % 3] : NULL, label, score,
                             {f.input, side, side, NULL}, {f.truth, side, side, NULL},
                             {f.recon, side, side, NULL}, {f.heat, side, side, NULL}};
        if (i == 7) e.recon.rgb = NULL; /* a missing picture leaves an empty cell */
        int wants = dd_report_wants(rep, label, score), kept = -1;
        CHECK(dd_report_add(rep, &e, &kept, &err) == DD_OK, "report add: %s", err.msg);
        CHECK(kept == wants, "image %d: wants %d but kept %d", i, wants, kept);
        kept_total += kept;
        free_image(&f);
    }
    for (int i = 0; i < ngood; i++) worst_good = fmax(worst_good, good_scores[i]);
    /* A gallery entry given as PNG files on disk, embedded as they are. */
    char png1[300], notpng[300];
    snprintf(png1, sizeof png1, "%s/in.png", dir);
    snprintf(notpng, sizeof notpng, "%s/fake.png", dir);
    unsigned char px[4 * 5 * 3];
    for (int i = 0; i < 60; i++) px[i] = (unsigned char)(i * 4);
    CHECK(stbi_write_png(png1, 5, 4, 3, px, 15) != 0, "stbi_write_png");
    FILE *fk = fopen(notpng, "w");
    if (fk) {
        fputs("not a png", fk);
        fclose(fk);
    }
    dd_report_entry ef = {"from-disk.png", "scratch", 1, -5.0, {NULL, 0, 0, png1},
                          {NULL, 0, 0, NULL}, {NULL, 0, 0, NULL}, {NULL, 0, 0, png1}};
    int kept = 0;
    CHECK(dd_report_add(rep, &ef, &kept, &err) == DD_OK && kept, "png-file entry: %s", err.msg);
    ef.score = -6;
    ef.input.png_path = notpng;
    CHECK(dd_report_add(rep, &ef, &kept, &err) == DD_E_FORMAT && strstr(err.msg, "not a PNG"),
          "a non-PNG file must be refused (%s)", err.msg);
    ef.input.png_path = "/nonexistent/x.png";
    CHECK(dd_report_add(rep, &ef, &kept, &err) == DD_E_IO, "a missing file must be DD_E_IO");
    CHECK(!dd_report_wants(rep, 0, -1e9), "a good image scored lowest must not be wanted");
    CHECK(dd_report_wants(rep, 0, worst_good + 1), "a good image scored highest must be wanted");

    dd_metrics_result *m = NULL;
    CHECK(dd_metrics_compute(acc, &m, &err) == DD_OK, "metrics: %s", err.msg);
    char page[400];
    snprintf(page, sizeof page, "%s/report.html", outdir);
    CHECK(dd_report_write(rep, m, page, &err) == DD_OK, "report write: %s", err.msg);
    long len = 0;
    char *html = slurp(page, &len);
    CHECK(html != NULL, "no page at %s", page);
    if (html) {
        CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0, "doctype");
        CHECK(strstr(html, "</html>") != NULL, "page not closed");
        CHECK(count(html, "<table id=\"metrics\"") == 1, "metrics table");
        CHECK(count(html, "<tr") == 1 + m->n_sets, "one table row per set (%d)", m->n_sets);
        CHECK(count(html, "<svg") == 4, "3 charts + colour bar, got %d", count(html, "<svg"));
        CHECK(count(html, "<polyline") == 3, "image ROC, pixel ROC, PRO lines");
        CHECK(strstr(html, "class=\"thr\"") != NULL, "threshold line on the histogram");
        CHECK(strstr(html, "diffad — test &lt;bottle&gt; &amp; co") != NULL, "title escaped");
        /* 3 good + 4 defective kept; one picture missing (i == 7 if kept), the disk entry has 2. */
        int imgs = count(html, "<img ");
        CHECK(imgs >= 4 * 6 - 1 + 2 && imgs <= 4 * 6 + 2, "gallery pictures: %d", imgs);
        CHECK(count(html, "class=\"entry\"") == 7, "7 gallery entries, got %d",
              count(html, "class=\"entry\""));
        CHECK(!strstr(html, "<script") && !strstr(html, "http") && !strstr(html, "<link") &&
                  !strstr(html, "@import"),
              "the page must be self-contained (no scripts, links, URLs)");
        /* The PNG-file entry is embedded byte for byte; the 300 px image was box-downscaled. */
        long flen = 0;
        char *fbytes = slurp(png1, &flen);
        int found_file = 0, found_small = 0;
        for (int i = 0;; i++) {
            size_t n = 0;
            unsigned char *d = nth_png(html, i, &n);
            if (!d) break;
            if (fbytes && (long)n == flen && !memcmp(d, fbytes, n)) found_file = 1;
            int w = 0, h = 0, c = 0;
            unsigned char *pix = stbi_load_from_memory(d, (int)n, &w, &h, &c, 3);
            CHECK(pix != NULL, "embedded picture %d does not decode", i);
            if (pix && w == 150 && h == 150) found_small = 1;
            if (pix && i == 0) CHECK(w > 0 && h > 0, "first picture");
            stbi_image_free(pix);
            free(d);
        }
        free(fbytes);
        CHECK(found_file, "the PNG file was not embedded as is");
        (void)found_small; /* the 300 px image may not be among the worst; checked below */
    }
    /* Box downscaling, decoded back and compared with a direct average. */
    {
        enum { S = 300 };
        unsigned char *big = malloc(S * S * 3);
        for (int i = 0; i < S * S * 3; i++) big[i] = (unsigned char)(rnd() * 255);
        dd_report_params p2;
        dd_report_params_init(&p2);
        p2.gallery_good = 1;
        dd_report *r2 = NULL;
        dd_report_new(&p2, &r2, &err);
        dd_report_entry e = {"big", NULL, 0, 1.0, {big, S, S, NULL}, {0}, {0}, {0}};
        dd_report_add(r2, &e, NULL, &err);
        char p[400];
        snprintf(p, sizeof p, "%s/small.html", dir);
        CHECK(dd_report_write(r2, NULL, p, &err) == DD_OK, "gallery-only page: %s", err.msg);
        char *h2 = slurp(p, NULL);
        size_t n = 0;
        unsigned char *d = h2 ? nth_png(h2, 0, &n) : NULL;
        int w = 0, h = 0, c = 0;
        unsigned char *pix = d ? stbi_load_from_memory(d, (int)n, &w, &h, &c, 3) : NULL;
        CHECK(pix && w == 150 && h == 150, "300 px must become 150 px (got %dx%d)", w, h);
        if (pix && w == 150 && h == 150) {
            int maxd = 0;
            for (int y = 0; y < 150; y++)
                for (int x = 0; x < 150; x++)
                    for (int k = 0; k < 3; k++) {
                        int s = 0;
                        for (int dy = 0; dy < 2; dy++)
                            for (int dx = 0; dx < 2; dx++)
                                s += big[((2 * y + dy) * S + 2 * x + dx) * 3 + k];
                        int dd = abs(pix[(y * 150 + x) * 3 + k] - (s + 2) / 4);
                        maxd = dd > maxd ? dd : maxd;
                    }
            CHECK(maxd == 0, "downscaled picture differs from the 2×2 average by %d", maxd);
        }
        stbi_image_free(pix);
        free(d);
        free(h2);
        free(big);
        dd_report_free(r2);
    }

    /* Render in a real browser. */
    if (!have_chromium()) {
        SKIP("chromium not on PATH (apt-get install chromium): browser rendering not checked");
    } else if (html) {
        char dom[400], shot[400], cmd[2000];
        snprintf(dom, sizeof dom, "%s/dom.html", dir);
        snprintf(shot, sizeof shot, "%s/report.png", outdir);
        const char *flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars "
                            "--no-first-run --disable-extensions";
        snprintf(cmd, sizeof cmd,
                 "timeout 120 chromium %s --user-data-dir=%s/chrome --dump-dom 'file://%s' "
                 "> %s 2>/dev/null",
                 flags, dir, page, dom);
        CHECK(system(cmd) == 0, "chromium --dump-dom failed: %s", cmd);
        char *d = slurp(dom, NULL);
        CHECK(d && strstr(d, "<table id=\"metrics\"><thead>"), "DOM lacks the metrics table");
        /* Explicit end tags prove the browser parsed the SVG (the page writes "/>"). */
        CHECK(d && count(d, "</polyline>") == 3, "DOM lacks the rendered curves");
        CHECK(d && count(d, "<svg") == 4 && strstr(d, "</rect>"), "DOM lacks the SVG charts");
        CHECK(d && count(d, "<img ") == count(html, "<img "), "DOM lacks gallery images");
        CHECK(d && strstr(d, "<tbody>"), "DOM was not built by a browser");
        free(d);
        snprintf(cmd, sizeof cmd,
                 "timeout 120 chromium %s --user-data-dir=%s/chrome --window-size=1280,2600 "
                 "--screenshot=%s 'file://%s' >/dev/null 2>&1",
                 flags, dir, shot, page);
        CHECK(system(cmd) == 0, "chromium --screenshot failed");
        int w = 0, h = 0, c = 0;
        unsigned char *pix = stbi_load(shot, &w, &h, &c, 3);
        CHECK(pix && w == 1280 && h == 2600, "screenshot %dx%d", w, h);
        if (pix) {
            /* Something was drawn: many distinct colours, the curve colours among them. */
            long coloured = 0, purple = 0;
            for (long i = 0; i < (long)w * h; i++) {
                unsigned char *q = pix + 3 * i;
                int mx = q[0] > q[1] ? (q[0] > q[2] ? q[0] : q[2]) : (q[1] > q[2] ? q[1] : q[2]);
                int mn = q[0] < q[1] ? (q[0] < q[2] ? q[0] : q[2]) : (q[1] < q[2] ? q[1] : q[2]);
                coloured += mx - mn > 60;
                purple += abs(q[0] - 0x7c) < 12 && abs(q[1] - 0x3a) < 12 && abs(q[2] - 0xed) < 12;
            }
            CHECK(coloured > 20000, "screenshot looks blank (%ld coloured pixels)", coloured);
            CHECK(purple > 100, "image ROC curve not visible in the screenshot (%ld px)", purple);
        }
        stbi_image_free(pix);
    }
    free(html);
    dd_metrics_result_free(m);
    dd_metrics_free(acc);
    dd_report_free(rep);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    (void)kept_total;
}

/* Some defective images without a mask: the table shows "N (M with mask)" and the page says which
 * images the pixel metrics cover; with every mask given, neither appears. */
static void test_report_partial_truth(void) {
    char dir[] = "/tmp/dd_report_partial_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    for (int partial = 0; partial < 2; partial++) {
        dd_error err = {0};
        dd_metrics *acc = NULL;
        dd_metrics_result *m = NULL;
        dd_report *rep = NULL;
        dd_metrics_new(NULL, &acc, &err);
        dd_report_new(NULL, &rep, &err);
        float map[16], mask[16];
        for (int i = 0; i < 16; i++) map[i] = (float)i / 16, mask[i] = i >= 12;
        dd_metrics_add_image(acc, 0.2, 0, NULL, map, NULL, 4, 4, &err);
        dd_metrics_add_image(acc, 0.7, 1, "scratch", map, mask, 4, 4, &err);
        if (partial) {
            CHECK(dd_metrics_add_image_unmasked(acc, 0.4, "scratch", &err) == DD_OK, "%s", err.msg);
            CHECK(dd_metrics_add_image_unmasked(acc, 0.5, "dent", &err) == DD_OK, "%s", err.msg);
        } else {
            dd_metrics_add_image(acc, 0.4, 1, "scratch", map, mask, 4, 4, &err);
            dd_metrics_add_image(acc, 0.5, 1, "dent", map, mask, 4, 4, &err);
        }
        CHECK(dd_metrics_compute(acc, &m, &err) == DD_OK, "%s", err.msg);
        char page[300];
        snprintf(page, sizeof page, "%s/report%d.html", dir, partial);
        CHECK(m && dd_report_write(rep, m, page, &err) == DD_OK, "write: %s", err.msg);
        char *html = slurp(page, NULL);
        if (html && partial) {
            CHECK(strstr(html, "<td>3 (1 with mask)</td>") && strstr(html, "<td>2 (1 with mask)</td>") &&
                      strstr(html, "<td>1 (0 with mask)</td>"),
                  "defective cells with the mask counts");
            CHECK(strstr(html, "id=\"pixel-truth\"><b>Pixel metrics over 1 of 3 defective images (2 have no mask) and "
                               "the 1 good image; images without a mask count in the image metrics only.</b>"),
                  "the page says which images the pixel metrics cover");
            CHECK(strstr(html, "title=\"no defective image has a ground-truth mask\">n/a"), "dent's pixel metrics: n/a with the reason");
        } else if (html) {
            CHECK(!strstr(html, "with mask") && !strstr(html, "pixel-truth"), "every mask given: no note");
        } else CHECK(0, "no page %s", page);
        free(html);
        dd_metrics_result_free(m);
        dd_metrics_free(acc);
        dd_report_free(rep);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
}

int main(void) {
    test_heat();
    test_blur();
    test_report();
    test_report_partial_truth();
    return check_summary("test_report");
}
