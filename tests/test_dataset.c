/* test_dataset.c — dataset layouts, item loading, splits, real data (src/data/dataset.c). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "check.h"
#include "data/dataset.h"
#include "data/image.h"

static char tmpdir[256];

static const char *P(const char *rel) {
    static char buf[8][600];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 600, "%s/%s", tmpdir, rel);
    return b;
}

static void mkdirs(const char *p) {
    char b[600];
    snprintf(b, sizeof b, "%s", p);
    for (char *q = b + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(b, 0755);
            *q = '/';
        }
    mkdir(b, 0755);
}

static void img(const char *rel, int h, int w, float v) {
    float *d = malloc(sizeof(float) * h * w * 3);
    for (int i = 0; i < h * w * 3; i++) d[i] = v;
    dd_write_png_rgb8(P(rel), d, h, w, NULL);
    free(d);
}

/* Mask: left half set (h x w). */
static void mask(const char *rel, int h, int w) {
    float *d = malloc(sizeof(float) * h * w);
    for (int i = 0; i < h * w; i++) d[i] = (i % w) < w / 2 ? 1.0f : 0.0f;
    dd_write_png_gray8(P(rel), d, h, w, NULL);
    free(d);
}

static void touch(const char *rel, const char *text) {
    FILE *f = fopen(P(rel), "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void build_mvtec(const char *root) {
    char b[300];
#define R(x) (snprintf(b, sizeof b, "%s/%s", root, x), b)
    mkdirs(P(R("train/good")));
    mkdirs(P(R("test/good")));
    mkdirs(P(R("test/crack")));
    mkdirs(P(R("test/scratch")));
    mkdirs(P(R("ground_truth/crack")));
    mkdirs(P(R("ground_truth/scratch")));
    img(R("train/good/b.png"), 20, 30, 0.2f);
    img(R("train/good/a.png"), 24, 24, 0.4f);
    unsigned char px[10 * 12 * 3];
    memset(px, 128, sizeof px);
    stbi_write_jpg(P(R("train/good/c.JPG")), 12, 10, 3, px, 90);
    stbi_write_bmp(P(R("train/good/d.bmp")), 12, 10, 3, px);
    touch(R("train/good/README.txt"), "not an image");
    touch(R("train/good/.hidden.png"), "hidden");
    img(R("test/good/g1.png"), 20, 30, 0.5f);
    img(R("test/crack/c2.png"), 20, 30, 0.6f);
    img(R("test/crack/c1.png"), 20, 30, 0.6f);
    mask(R("ground_truth/crack/c1_mask.png"), 20, 30);
    mask(R("ground_truth/crack/c2_mask.png"), 20, 30);
    img(R("test/scratch/s1.png"), 20, 30, 0.7f);
    mask(R("ground_truth/scratch/s1_mask.png"), 20, 30);
#undef R
}

static void test_mvtec(void) {
    build_mvtec("m");
    dd_dataset *ds;
    dd_error e = {0};
    CHECK(dd_dataset_open(P("m"), &ds, &e) == DD_OK, "open: %s", e.msg);
    if (!ds) return;
    CHECK(ds->n_train == 4, "train count %d (txt and hidden ignored)", ds->n_train);
    CHECK(ds->n_train == 4 && strcmp(ds->train[0].stem, "a") == 0 &&
              strcmp(ds->train[1].stem, "b") == 0 && strcmp(ds->train[2].stem, "c") == 0,
          "train sorted by name");
    CHECK(ds->n_test == 4 && ds->n_test_defective == 3, "test %d / defective %d", ds->n_test,
          ds->n_test_defective);
    if (ds->n_test == 4) {
        CHECK(strcmp(ds->test[0].defect, "good") == 0 && ds->test[0].label == 0 &&
                  !ds->test[0].mask_path,
              "test/good first, no mask");
        CHECK(strcmp(ds->test[1].stem, "c1") == 0 && strcmp(ds->test[1].defect, "crack") == 0 &&
                  ds->test[1].label == 1 && strstr(ds->test[1].mask_path, "c1_mask.png"),
              "crack/c1 with its mask");
        CHECK(strcmp(ds->test[3].defect, "scratch") == 0, "types in name order");
        /* item loading: image resized, mask resized and binarised */
        float im[16 * 8 * 3], mk[16 * 8];
        CHECK(dd_item_load(&ds->test[1], 16, 8, im, mk, &e) == DD_OK, "load: %s", e.msg);
        int ok = 1;
        for (int i = 0; i < 16 * 8; i++) ok &= mk[i] == ((i % 8) < 4 ? 1.0f : 0.0f);
        CHECK(ok, "mask resized to 16x8 and binarised");
        CHECK(fabsf(im[5] - 153 / 255.0f) < 1e-6, "image value kept %g", im[5]);
        CHECK(dd_item_load(&ds->test[0], 16, 8, im, mk, &e) == DD_OK && mk[0] == 0,
              "good item: zero mask");
    }
    /* split */
    int *tr, *va, nt, nv, *tr2, *va2, nt2, nv2;
    CHECK(dd_dataset_split_train(ds, 0.25, 7, &tr, &nt, &va, &nv, &e) == DD_OK, "split");
    CHECK(nt == 3 && nv == 1, "split sizes %d/%d", nt, nv);
    dd_dataset_split_train(ds, 0.25, 7, &tr2, &nt2, &va2, &nv2, &e);
    CHECK(nv == nv2 && va[0] == va2[0], "split deterministic");
    free(tr); free(va); free(tr2); free(va2);
    CHECK(dd_dataset_split_train(ds, 1.0, 7, &tr, &nt, &va, &nv, &e) == DD_E_RANGE,
          "fraction 1 refused");
    dd_dataset_free(ds);
}

static void expect_open_fail(const char *root, const char *must_name, const char *what) {
    dd_dataset *ds = NULL;
    dd_error e = {0};
    int rc = dd_dataset_open(P(root), &ds, &e);
    CHECK(rc != DD_OK && ds == NULL, "%s: should fail", what);
    CHECK(strstr(e.msg, must_name) != NULL, "%s: message '%s' should name %s", what, e.msg,
          must_name);
}

static void test_bad_layouts(void) {
    /* a test image without its mask */
    build_mvtec("nomask");
    unlink(P("nomask/ground_truth/crack/c2_mask.png"));
    expect_open_fail("nomask", "c2.png", "missing mask");
    /* missing ground_truth folder */
    build_mvtec("nogt");
    unlink(P("nogt/ground_truth/scratch/s1_mask.png"));
    rmdir(P("nogt/ground_truth/scratch"));
    expect_open_fail("nogt", "ground_truth/scratch", "missing ground_truth folder");
    /* empty train/good */
    mkdirs(P("empty/train/good"));
    expect_open_fail("empty", "train/good", "empty train/good");
    /* a folder without images at all (folder layout) */
    mkdirs(P("nothing"));
    expect_open_fail("nothing", "nothing", "empty folder");
    expect_open_fail("does-not-exist", "does-not-exist", "missing folder");
    /* mask of the wrong size: found at load time, named */
    build_mvtec("size");
    mask("size/ground_truth/crack/c1_mask.png", 10, 10);
    dd_dataset *ds;
    dd_error e = {0};
    if (dd_dataset_open(P("size"), &ds, &e) == DD_OK) {
        float im[8 * 8 * 3], mk[8 * 8];
        int rc = dd_item_load(&ds->test[1], 8, 8, im, mk, &e);
        CHECK(rc == DD_E_FORMAT && strstr(e.msg, "c1_mask.png"), "mask size mismatch: %s", e.msg);
        dd_dataset_free(ds);
    }
    /* a corrupt image is listed (by name) but fails on load, naming the file */
    build_mvtec("corrupt");
    touch("corrupt/train/good/a.png", "text, not png");
    if (dd_dataset_open(P("corrupt"), &ds, &e) == DD_OK) {
        float im[8 * 8 * 3];
        CHECK(dd_item_load(&ds->train[0], 8, 8, im, NULL, &e) == DD_E_FORMAT &&
                  strstr(e.msg, "a.png"),
              "corrupt train image: %s", e.msg);
        dd_dataset_free(ds);
    }
    if (geteuid() == 0) {
        SKIP("running as root: an unreadable (chmod 000) folder is still readable");
    } else {
        build_mvtec("perm");
        chmod(P("perm/train/good"), 0);
        expect_open_fail("perm", "train/good", "unreadable folder");
        chmod(P("perm/train/good"), 0755);
    }
}

static void test_folder_layout(void) {
    mkdirs(P("f/ok"));
    mkdirs(P("f/bad"));
    mkdirs(P("f/masks"));
    img("f/ok/1.png", 10, 20, 0.1f);
    img("f/ok/2.png", 12, 12, 0.1f);
    img("f/bad/x.png", 10, 20, 0.1f);
    img("f/bad/y.png", 10, 20, 0.1f);
    mask("f/masks/x.png", 10, 20);
    mask("f/masks/y_mask.png", 10, 20);
    dd_folder_spec sp = {.good_dir = P("f/ok"), .defect_dir = P("f/bad"), .mask_dir = P("f/masks")};
    dd_dataset *ds;
    dd_error e = {0};
    CHECK(dd_dataset_open_folder(&sp, &ds, &e) == DD_OK, "folder layout: %s", e.msg);
    if (ds) {
        CHECK(ds->n_train == 2 && ds->n_test == 2 && ds->n_test_defective == 2, "counts");
        CHECK(strstr(ds->test[0].mask_path, "masks/x.png") &&
                  strstr(ds->test[1].mask_path, "y_mask.png"),
              "masks matched by stem (with or without _mask)");
        CHECK(strcmp(ds->name, "ok") == 0, "name %s", ds->name);
        dd_dataset_free(ds);
    }
    unlink(P("f/masks/x.png"));
    CHECK(dd_dataset_open_folder(&sp, &ds, &e) == DD_E_FORMAT && strstr(e.msg, "x.png"),
          "defective without mask named: %s", e.msg);
    sp.mask_dir = NULL;
    CHECK(dd_dataset_open_folder(&sp, &ds, &e) == DD_OK && ds->test[0].mask_path == NULL,
          "no mask folder: image-level labels");
    dd_dataset_free(ds);
    CHECK(dd_dataset_open(P("f/ok"), &ds, &e) == DD_OK && ds->n_train == 2,
          "plain folder opens as good images");
    dd_dataset_free(ds);
}

/* Every MVTec category under the shared data: the counts its README gives. */
static void test_shared(void) {
    const char *root = getenv("DIFFAD_SHARED_DATA");
    if (!root) root = "../shared/data";
    struct { const char *cat; int tr, tg, td; } want[] = {
        {"bsdata/ball_screw", 360, 98, 167}, {"deeppcb/pcb", 1000, 250, 250}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", root, want[k].cat);
        struct stat st;
        if (stat(p, &st) != 0) {
            SKIP("%s not present", p);
            continue;
        }
        dd_dataset *ds;
        dd_error e = {0};
        CHECK(dd_dataset_open_mvtec(p, &ds, &e) == DD_OK, "%s: %s", p, e.msg);
        if (!ds) continue;
        CHECK(ds->n_train == want[k].tr && ds->n_test - ds->n_test_defective == want[k].tg &&
                  ds->n_test_defective == want[k].td,
              "%s: %d/%d/%d, README says %d/%d/%d", want[k].cat, ds->n_train,
              ds->n_test - ds->n_test_defective, ds->n_test_defective, want[k].tr, want[k].tg,
              want[k].td);
        /* a few items load, defect masks are non-empty after resizing */
        float im[64 * 64 * 3], mk[64 * 64];
        int ok = 1, nonempty = 1;
        for (int i = ds->n_test - 3; i < ds->n_test; i++) {
            ok &= dd_item_load(&ds->test[i], 64, 64, im, mk, &e) == DD_OK;
            double s = 0;
            for (int j = 0; j < 64 * 64; j++) s += mk[j];
            nonempty &= s > 0 || ds->test[i].label == 0;
        }
        CHECK(ok && nonempty, "%s: items load (%s)", want[k].cat, e.msg);
        dd_dataset_free(ds);
    }
}

static void test_sample(void) {
    const char *p = getenv("DIFFAD_SAMPLE");
    if (!p) p = "data/sample/pcb";
    struct stat st;
    if (stat(p, &st) != 0) {
        SKIP("%s not found (run from the repository root)", p);
        return;
    }
    dd_dataset *ds;
    dd_error e = {0};
    CHECK(dd_dataset_open(p, &ds, &e) == DD_OK, "sample: %s", e.msg);
    if (!ds) return;
    CHECK(ds->n_train == 60 && ds->n_test == 20 && ds->n_test_defective == 10,
          "sample counts %d/%d/%d", ds->n_train, ds->n_test, ds->n_test_defective);
    float im[32 * 32 * 3], mk[32 * 32];
    int ok = 1;
    for (int i = 0; i < ds->n_test; i++) {
        ok &= dd_item_load(&ds->test[i], 32, 32, im, mk, &e) == DD_OK;
        double s = 0;
        for (int j = 0; j < 32 * 32; j++) s += mk[j];
        ok &= (s > 0) == (ds->test[i].label == 1);
    }
    CHECK(ok, "every sample test item loads with a matching mask (%s)", e.msg);
    dd_dataset_free(ds);
}

/* Ground-truth masks stored 0/1 (not 0/255), or mixing values: any nonzero value of the file is
 * defect, binarised before the area resize, which is then binarised at 0.5 (issue 14 item 9). */
static void test_mask_values(void) {
    enum { S = 8 };
    img("mv_img.png", S, S, 0.5f);
    unsigned char raw[S * S];
    /* columns 0-1 hold 1, columns 2-3 hold 128, the rest 0 */
    for (int i = 0; i < S * S; i++) raw[i] = i % S < 2 ? 1 : i % S < 4 ? 128 : 0;
    stbi_write_png(P("mv_mixed.png"), S, S, 1, raw, S);
    for (int i = 0; i < S * S; i++) raw[i] = i % S < 4;
    stbi_write_png(P("mv_01.png"), S, S, 1, raw, S);
    float g16[S * S];
    for (int i = 0; i < S * S; i++) g16[i] = i % S < 4 ? 1.0f / 65535 : 0;
    dd_write_png_gray16(P("mv_01_16.png"), g16, S, S, NULL);
    const char *masks[] = {"mv_01.png", "mv_mixed.png", "mv_01_16.png"};
    for (int k = 0; k < 3; k++) {
        char ip[600], mp[600];
        snprintf(ip, sizeof ip, "%s", P("mv_img.png"));
        snprintf(mp, sizeof mp, "%s", P(masks[k]));
        dd_item it = {.path = ip, .stem = "mv_img", .defect = "x", .label = 1, .mask_path = mp};
        for (int sz = S; sz >= S / 2; sz /= 2) { /* own size, and area-resized to half */
            float im[S * S * 3], mk[S * S];
            dd_error e = {0};
            int rc = dd_item_load(&it, sz, sz, im, mk, &e), bad = 0;
            for (int i = 0; rc == DD_OK && i < sz * sz; i++) bad += mk[i] != (i % sz < sz / 2 ? 1.0f : 0.0f);
            CHECK(rc == DD_OK && bad == 0, "%s at %dx%d: nonzero pixels are defect (%d pixels wrong; %s)", masks[k], sz, sz,
                  bad, e.msg);
        }
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dd_test_dataset_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return check_summary("test_dataset");
    }
    test_mvtec();
    test_bad_layouts();
    test_folder_layout();
    test_shared();
    test_sample();
    test_mask_values();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_dataset");
}
