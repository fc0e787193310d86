/* test_image.c — image I/O, resampling and bad-input handling (src/data/image.c). */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "check.h"
#include "data/image.h"
#include "core/fileio.h"

static char tmpdir[256];

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n) {
    unsigned char *b = NULL;
    dd_read_file(path, 1 << 26, &b, n, NULL);
    return b;
}

/* An expected failure: non-zero status, the file named in the message. */
static void expect_fail(const char *path, int channels, int want_code) {
    dd_image im = {0};
    dd_error e = {0};
    int rc = dd_image_load(path, channels, 0, &im, &e);
    CHECK(rc != DD_OK, "%s: should fail", path);
    if (want_code) CHECK(rc == want_code, "%s: code %d, want %d (%s)", path, rc, want_code, e.msg);
    CHECK(strstr(e.msg, path) != NULL, "message should name the file: '%s'", e.msg);
    CHECK(im.data == NULL, "no image on failure");
    dd_image_free(&im);
}

static void test_png_roundtrip(void) {
    int h = 5, w = 7;
    float rgb[5 * 7 * 3], g[5 * 7], g16[5 * 7];
    for (int i = 0; i < h * w * 3; i++) rgb[i] = (float)((i * 37) % 256) / 255.0f;
    for (int i = 0; i < h * w; i++) g[i] = (float)((i * 11) % 256) / 255.0f;
    for (int i = 0; i < h * w; i++) g16[i] = (float)((i * 1877 + 3) % 65536) / 65535.0f;
    dd_error e = {0};
    CHECK(dd_write_png_rgb8(tpath("rgb.png"), rgb, h, w, &e) == DD_OK, "write rgb: %s", e.msg);
    CHECK(dd_write_png_gray8(tpath("g8.png"), g, h, w, &e) == DD_OK, "write g8: %s", e.msg);
    CHECK(dd_write_png_gray16(tpath("g16.png"), g16, h, w, &e) == DD_OK, "write g16: %s", e.msg);

    dd_image im;
    CHECK(dd_image_load_rgb(tpath("rgb.png"), &im, &e) == DD_OK, "load rgb: %s", e.msg);
    CHECK(im.h == h && im.w == w && im.c == 3, "rgb shape %dx%dx%d", im.h, im.w, im.c);
    CHECK(im.data && memcmp(im.data, rgb, sizeof rgb) == 0, "rgb 8-bit round trip exact");
    dd_image_free(&im);

    CHECK(dd_image_load_rgb(tpath("g8.png"), &im, &e) == DD_OK, "load g8 as rgb: %s", e.msg);
    int ok = im.data != NULL;
    for (int i = 0; ok && i < h * w; i++)
        for (int c = 0; c < 3; c++) ok &= im.data[i * 3 + c] == g[i];
    CHECK(ok, "gray replicated to 3 channels exactly");
    dd_image_free(&im);

    CHECK(dd_image_load_mask(tpath("g16.png"), &im, &e) == DD_OK, "load g16: %s", e.msg);
    CHECK(im.c == 1 && im.data && memcmp(im.data, g16, sizeof g16) == 0,
          "16-bit round trip keeps all 16 bits");
    dd_image_free(&im);

    int ih, iw, ic;
    CHECK(dd_image_info(tpath("g16.png"), &ih, &iw, &ic, &e) == DD_OK && ih == h && iw == w &&
              ic == 1,
          "info on 16-bit png: %dx%dx%d", ih, iw, ic);

    /* Overwrite an existing file: new content replaces it, no temp left. */
    float z[5 * 7] = {0};
    CHECK(dd_write_png_gray8(tpath("g8.png"), z, h, w, &e) == DD_OK, "overwrite");
    CHECK(dd_image_load_mask(tpath("g8.png"), &im, &e) == DD_OK && im.data[3] == 0.0f,
          "overwritten content read back");
    dd_image_free(&im);
    int tmps = 0;
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while (d && (de = readdir(d))) /* the atomic writer's temporaries are ".<name>.XXXXXX.tmp" */
        tmps += strstr(de->d_name, ".tmp") != NULL || (de->d_name[0] == '.' && strcmp(de->d_name, ".") &&
                                                        strcmp(de->d_name, ".."));
    if (d) closedir(d);
    CHECK(tmps == 0, "no temporary files left (%d)", tmps);
}

static void test_other_formats(void) {
    int h = 4, w = 6;
    unsigned char rgba[4 * 6 * 4], rgb[4 * 6 * 3], ga[4 * 6 * 2];
    for (int i = 0; i < h * w; i++) {
        for (int c = 0; c < 3; c++) rgb[i * 3 + c] = rgba[i * 4 + c] = (unsigned char)(i * 10 + c * 3);
        rgba[i * 4 + 3] = (unsigned char)(i * 7); /* alpha is ignored */
        ga[i * 2] = (unsigned char)(i * 9);
        ga[i * 2 + 1] = 17;
    }
    stbi_write_png(tpath("rgba.png"), w, h, 4, rgba, w * 4);
    stbi_write_png(tpath("ga.png"), w, h, 2, ga, w * 2);
    stbi_write_bmp(tpath("rgb.bmp"), w, h, 3, rgb);
    stbi_write_jpg(tpath("rgb.jpg"), w, h, 3, rgb, 100);
    dd_image im;
    dd_error e = {0};
    CHECK(dd_image_load_rgb(tpath("rgba.png"), &im, &e) == DD_OK, "rgba: %s", e.msg);
    int ok = 1;
    for (int i = 0; i < h * w * 3; i++) ok &= im.data[i] == rgb[i] / 255.0f;
    CHECK(ok, "RGBA -> RGB drops alpha, keeps colour");
    dd_image_free(&im);
    CHECK(dd_image_load_rgb(tpath("ga.png"), &im, &e) == DD_OK, "gray+alpha: %s", e.msg);
    CHECK(im.data[5 * 3 + 1] == ga[10] / 255.0f, "gray+alpha replicated");
    dd_image_free(&im);
    CHECK(dd_image_load_rgb(tpath("rgb.bmp"), &im, &e) == DD_OK, "bmp: %s", e.msg);
    ok = 1;
    for (int i = 0; i < h * w * 3; i++) ok &= im.data[i] == rgb[i] / 255.0f;
    CHECK(ok, "BMP round trip exact");
    dd_image_free(&im);
    CHECK(dd_image_load_rgb(tpath("rgb.jpg"), &im, &e) == DD_OK, "jpeg: %s", e.msg);
    float me = 0;
    for (int i = 0; i < h * w * 3; i++) me = fmaxf(me, fabsf(im.data[i] - rgb[i] / 255.0f));
    CHECK(me < 0.08f, "JPEG q100 close to source (max err %.3f)", me);
    dd_image_free(&im);
    /* Mask loader on a colour file: luminance (stb: (77 r + 150 g + 29 b) >> 8). */
    CHECK(dd_image_load_mask(tpath("rgb.bmp"), &im, &e) == DD_OK && im.c == 1, "mask of rgb");
    int y = (77 * rgb[9] + 150 * rgb[10] + 29 * rgb[11]) >> 8;
    CHECK(im.data[3] == y / 255.0f, "luminance %f vs %f", im.data[3], y / 255.0f);
    dd_image_free(&im);

    /* PGM 8-bit, PGM 16-bit, PPM. */
    unsigned char pgm[64], ppm[64], pgm16[64];
    int n1 = snprintf((char *)pgm, 64, "P5\n3 2\n255\n");
    for (int i = 0; i < 6; i++) pgm[n1 + i] = (unsigned char)(i * 40);
    write_bytes(tpath("a.pgm"), pgm, (size_t)n1 + 6);
    int n2 = snprintf((char *)pgm16, 64, "P5\n2 1\n65535\n");
    pgm16[n2] = 0x12; pgm16[n2 + 1] = 0x34; pgm16[n2 + 2] = 0xFF; pgm16[n2 + 3] = 0xFF;
    write_bytes(tpath("b.pgm"), pgm16, (size_t)n2 + 4);
    int n3 = snprintf((char *)ppm, 64, "P6\n1 2\n255\n");
    for (int i = 0; i < 6; i++) ppm[n3 + i] = (unsigned char)(200 - i);
    write_bytes(tpath("c.ppm"), ppm, (size_t)n3 + 6);
    CHECK(dd_image_load_rgb(tpath("a.pgm"), &im, &e) == DD_OK && im.h == 2 && im.w == 3 &&
              im.data[4 * 3 + 2] == 160 / 255.0f,
          "pgm: %s", e.msg);
    dd_image_free(&im);
    CHECK(dd_image_load_mask(tpath("b.pgm"), &im, &e) == DD_OK &&
              im.data[0] == 0x1234 / 65535.0f && im.data[1] == 1.0f,
          "16-bit pgm keeps precision: %s", e.msg);
    dd_image_free(&im);
    CHECK(dd_image_load_rgb(tpath("c.ppm"), &im, &e) == DD_OK && im.data[5] == 195 / 255.0f,
          "ppm: %s", e.msg);
    dd_image_free(&im);
}

static void test_resize(void) {
    dd_error e = {0};
    /* 4x4 -> 2x2 area average: each output is the mean of a 2x2 block. */
    float s[16], d[16];
    for (int i = 0; i < 16; i++) s[i] = (float)i;
    CHECK(dd_resize(s, 4, 4, 1, d, 2, 2, &e) == DD_OK, "resize");
    CHECK(fabsf(d[0] - 2.5f) < 1e-6 && fabsf(d[1] - 4.5f) < 1e-6 && fabsf(d[2] - 10.5f) < 1e-6 &&
              fabsf(d[3] - 12.5f) < 1e-6,
          "2x2 block means: %g %g %g %g", d[0], d[1], d[2], d[3]);
    /* 1x3 -> 1x2 non-integer factor: output 0 covers [0, 1.5): (s0 + 0.5 s1)/1.5. */
    float r3[3] = {3, 6, 9}, r2[2];
    dd_resize(r3, 1, 3, 1, r2, 1, 2, &e);
    CHECK(fabsf(r2[0] - 4.0f) < 1e-6 && fabsf(r2[1] - 8.0f) < 1e-6, "area 3->2: %g %g", r2[0],
          r2[1]);
    /* 1x2 -> 1x4 bilinear (align_corners=False): [0, .25, .75, 1] x 4. */
    float u2[2] = {0, 4}, u4[4];
    dd_resize(u2, 1, 2, 1, u4, 1, 4, &e);
    CHECK(fabsf(u4[0]) < 1e-6 && fabsf(u4[1] - 1) < 1e-6 && fabsf(u4[2] - 3) < 1e-6 &&
              fabsf(u4[3] - 4) < 1e-6,
          "bilinear 2->4: %g %g %g %g", u4[0], u4[1], u4[2], u4[3]);
    /* 2x2 -> 3x3 bilinear centre = mean of the four. */
    float q[4] = {0, 1, 2, 3}, q9[9];
    dd_resize(q, 2, 2, 1, q9, 3, 3, &e);
    CHECK(fabsf(q9[4] - 1.5f) < 1e-6 && fabsf(q9[0]) < 1e-6 && fabsf(q9[8] - 3) < 1e-6,
          "bilinear 2x2->3x3 centre %g", q9[4]);
    /* Constant image stays constant under both filters, with channels. */
    float cst[5 * 7 * 3], big[11 * 3 * 3];
    for (int i = 0; i < 5 * 7 * 3; i++) cst[i] = (float)(i % 3) * 0.25f;
    dd_resize(cst, 5, 7, 3, big, 11, 3, &e);
    int ok = 1;
    for (int i = 0; i < 11 * 3 * 3; i++) ok &= fabsf(big[i] - (float)(i % 3) * 0.25f) < 1e-6f;
    CHECK(ok, "constant preserved (grow y, shrink x, 3 channels)");
    /* Area average preserves the mean exactly for integer factors. */
    float img[64 * 48], sm[16 * 12];
    double m1 = 0, m2 = 0;
    for (int i = 0; i < 64 * 48; i++) m1 += img[i] = (float)((i * 7919) % 101) / 100.0f;
    dd_resize(img, 64, 48, 1, sm, 16, 12, &e);
    for (int i = 0; i < 16 * 12; i++) m2 += sm[i];
    CHECK(fabs(m1 / (64 * 48) - m2 / (16 * 12)) < 1e-5, "mean preserved");
    /* Mask re-binarisation at 0.5 after shrinking. */
    float m[16] = {1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1}, mo[4];
    dd_resize(m, 4, 4, 1, mo, 2, 2, &e);
    dd_mask_binarize(mo, 4, 0.5f);
    CHECK(mo[0] == 0 && mo[1] == 1 && mo[2] == 0 && mo[3] == 1,
          "binarised: %g %g %g %g (block means .25 .75 0 1)", mo[0], mo[1], mo[2], mo[3]);
    CHECK(dd_resize(s, 0, 4, 1, d, 2, 2, &e) == DD_E_INVALID, "zero size rejected");
}

static void crc_fix(unsigned char *chunk, size_t n) { /* chunk = len|type|data, n = data len */
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 4; i < 8 + n; i++) {
        c ^= chunk[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    c ^= 0xFFFFFFFFu;
    unsigned char *p = chunk + 8 + n;
    p[0] = (unsigned char)(c >> 24); p[1] = (unsigned char)(c >> 16);
    p[2] = (unsigned char)(c >> 8); p[3] = (unsigned char)c;
}

static void test_bad_input(void) {
    /* Zero-byte file. */
    write_bytes(tpath("empty.png"), "", 0);
    expect_fail(tpath("empty.png"), 3, DD_E_FORMAT);
    /* A text file named .png. */
    const char *txt = "this is not an image, just some text\n";
    write_bytes(tpath("text.png"), txt, strlen(txt));
    expect_fail(tpath("text.png"), 3, DD_E_FORMAT);
    /* Missing file and a folder. */
    expect_fail(tpath("does-not-exist.png"), 3, DD_E_IO);
    expect_fail(tmpdir, 3, DD_E_IO);
    /* Truncated and corrupt PNG (made from a valid noisy one). */
    int h = 32, w = 32;
    float v[32 * 32 * 3];
    for (int i = 0; i < h * w * 3; i++) v[i] = (float)((i * 7919) % 255) / 255.0f;
    dd_write_png_rgb8(tpath("ok.png"), v, h, w, NULL);
    size_t n;
    unsigned char *b = slurp(tpath("ok.png"), &n);
    if (b) {
        write_bytes(tpath("trunc.png"), b, n / 2);
        expect_fail(tpath("trunc.png"), 3, DD_E_FORMAT);
        write_bytes(tpath("trunc2.png"), b, 30);
        expect_fail(tpath("trunc2.png"), 3, DD_E_FORMAT);
        for (size_t i = 60; i < n - 20; i += 3) b[i] ^= 0x5A; /* garble the deflate stream */
        write_bytes(tpath("corrupt.png"), b, n);
        expect_fail(tpath("corrupt.png"), 3, DD_E_FORMAT);
        free(b);
    }
    /* Truncated JPEG and BMP: stb would pad them with zeros; we refuse. */
    unsigned char px[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++) px[i] = (unsigned char)((i * 31) % 256);
    stbi_write_jpg(tpath("ok.jpg"), 32, 32, 3, px, 90);
    stbi_write_bmp(tpath("ok.bmp"), 32, 32, 3, px);
    if ((b = slurp(tpath("ok.jpg"), &n))) {
        write_bytes(tpath("trunc.jpg"), b, n * 2 / 3);
        expect_fail(tpath("trunc.jpg"), 3, DD_E_FORMAT);
        free(b);
    }
    if ((b = slurp(tpath("ok.bmp"), &n))) {
        write_bytes(tpath("trunc.bmp"), b, n - 100);
        expect_fail(tpath("trunc.bmp"), 3, DD_E_FORMAT);
        free(b);
    }
    /* Truncated PGM. */
    const char *pg = "P5\n10 10\n255\nabc";
    write_bytes(tpath("trunc.pgm"), pg, strlen(pg));
    expect_fail(tpath("trunc.pgm"), 3, DD_E_FORMAT);
    /* ASCII PGM (P2) is named as unsupported. */
    const char *p2 = "P2\n1 1\n255\n7\n";
    write_bytes(tpath("ascii.pgm"), p2, strlen(p2));
    expect_fail(tpath("ascii.pgm"), 3, DD_E_FORMAT);
    /* A 100000 x 100000 PNG header: refused by the pixel cap before decoding. */
    unsigned char huge[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    unsigned char *ih = huge + 8;
    ih[3] = 13; memcpy(ih + 4, "IHDR", 4);
    uint32_t dim = 100000;
    for (int k = 0; k < 2; k++) {
        ih[8 + 4 * k] = (unsigned char)(dim >> 24); ih[9 + 4 * k] = (unsigned char)(dim >> 16);
        ih[10 + 4 * k] = (unsigned char)(dim >> 8); ih[11 + 4 * k] = (unsigned char)dim;
    }
    ih[16] = 8; ih[17] = 2; /* 8-bit RGB */
    crc_fix(ih, 13);
    unsigned char *idat = ih + 25; /* empty IDAT, then IEND */
    memcpy(idat + 4, "IDAT", 4); crc_fix(idat, 0);
    unsigned char *iend = idat + 12;
    memcpy(iend + 4, "IEND", 4); crc_fix(iend, 0);
    write_bytes(tpath("huge.png"), huge, sizeof huge);
    expect_fail(tpath("huge.png"), 3, DD_E_RANGE);
    dd_image im = {0};
    dd_error e = {0};
    dd_image_load(tpath("huge.png"), 3, 0, &im, &e);
    CHECK(strstr(e.msg, "100000x100000") && strstr(e.msg, "cap"), "huge message: %s", e.msg);
    /* A custom, lower cap applies to ordinary files too. */
    CHECK(dd_image_load(tpath("ok.png"), 3, 100, &im, &e) == DD_E_RANGE, "custom cap");
    /* Unreadable permissions: root reads anyway, so only meaningful as non-root. */
    if (geteuid() == 0) {
        SKIP("running as root: chmod 000 does not stop reads, permission case not testable");
    } else {
        chmod(tpath("ok.png"), 0);
        expect_fail(tpath("ok.png"), 3, DD_E_IO);
        chmod(tpath("ok.png"), 0644);
    }
    /* Writing where it cannot: into a missing folder, and over a folder. */
    float z[4] = {0};
    CHECK(dd_write_png_gray8(tpath("no/such/dir/x.png"), z, 2, 2, &e) == DD_E_IO &&
              strstr(e.msg, "x.png"),
          "write into missing folder: %s", e.msg);
    mkdir(tpath("adir"), 0755);
    CHECK(dd_write_png_gray8(tpath("adir"), z, 2, 2, &e) == DD_E_IO, "write over a folder");
    struct stat st;
    CHECK(stat(tpath("adir"), &st) == 0 && S_ISDIR(st.st_mode), "folder survives");
}

/* Every file of the fuzz corpus goes through the decoder: statuses only, no
 * crash (this is the regression net for what the fuzzer found). */
static void test_corpus(void) {
    const char *dir = getenv("DIFFAD_FUZZ_CORPUS");
    if (!dir) dir = "tests/data/fuzz/corpus";
    DIR *d = opendir(dir);
    if (!d) {
        SKIP("no fuzz corpus at %s (run from the repository root)", dir);
        return;
    }
    struct dirent *de;
    int files = 0, decoded = 0, named = 1;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        for (int ch = 1; ch <= 3; ch += 2) {
            dd_image im;
            dd_error e = {0};
            int rc = dd_image_load(p, ch, 1 << 22, &im, &e);
            if (rc == DD_OK) {
                decoded++;
                dd_image_free(&im);
            } else if (!strstr(e.msg, p)) {
                named = 0;
                fprintf(stderr, "unnamed message for %s: %s\n", p, e.msg);
            }
        }
        files++;
    }
    closedir(d);
    CHECK(files > 10, "corpus has %d files", files);
    CHECK(named, "every failure names its file");
    printf("corpus: %d files, %d decodes succeeded\n", files, decoded);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dd_test_image_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return check_summary("test_image");
    }
    test_png_roundtrip();
    test_other_formats();
    test_resize();
    test_bad_input();
    test_corpus();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_image");
}
