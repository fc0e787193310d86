/* test_dataset.c — dataset layouts, item loading, splits, real data (src/data/dataset.c), and the
 * labelled test sets of `diffad test` (src/data/labelled.c): labelled folders, CSV lists, the
 * layout detection, their bad inputs. */
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


/* ---- labelled test sets (labelled.c) ---- */

/* Open with dd_dataset_open_test; expect failure whose message holds every string of want[]
 * (NULL-terminated) and is one line. */
static void expect_test_fail(const char *rel, const char *const *want, const char *what) {
    dd_dataset *ds = NULL;
    dd_error e = {0};
    int rc = dd_dataset_open_test(P(rel), &ds, NULL, &e);
    CHECK(rc != DD_OK && ds == NULL, "%s: should fail (rc %d)", what, rc);
    for (int i = 0; want[i]; i++)
        CHECK(strstr(e.msg, want[i]) != NULL, "%s: message '%s' should hold '%s'", what, e.msg, want[i]);
    CHECK(!strchr(e.msg, '\n'), "%s: one line: '%s'", what, e.msg);
    dd_dataset_free(ds);
}

static const dd_item *find_item(const dd_dataset *ds, const char *stem) {
    for (int i = 0; i < ds->n_test; i++)
        if (!strcmp(ds->test[i].stem, stem)) return &ds->test[i];
    return NULL;
}

static void test_labelled_folders(void) {
    /* good/ and OK/ are both good; scratch/ and ng/ defect types; masks for some images only,
     * under both names; an empty type folder; a folder of notes without images */
    mkdirs(P("lab/good"));
    mkdirs(P("lab/OK"));
    mkdirs(P("lab/scratch"));
    mkdirs(P("lab/ng"));
    mkdirs(P("lab/empty_type"));
    mkdirs(P("lab/ground_truth/scratch"));
    mkdirs(P("lab/ground_truth/good"));
    img("lab/good/g2.png", 10, 20, 0.1f);
    img("lab/good/g1.png", 10, 20, 0.1f);
    img("lab/OK/k1.png", 10, 20, 0.1f);
    touch("lab/good/notes.txt", "ignored");
    img("lab/scratch/s1.png", 10, 20, 0.5f);
    img("lab/scratch/s2.png", 10, 20, 0.5f);
    img("lab/scratch/s3.png", 10, 20, 0.5f);
    mask("lab/ground_truth/scratch/s1_mask.png", 10, 20);
    mask("lab/ground_truth/scratch/s2.png", 10, 20); /* MVTec's <stem>_mask or the plain stem */
    mask("lab/ground_truth/good/g1_mask.png", 10, 20); /* masks of good images are not read */
    img("lab/ng/n1.png", 10, 20, 0.5f);
    dd_dataset *ds = NULL;
    dd_error e = {0};
    int layout = 0;
    CHECK(dd_dataset_open_test(P("lab"), &ds, &layout, &e) == DD_OK, "labelled folders: %s", e.msg);
    CHECK(layout == DD_LAYOUT_LABELLED && !strcmp(dd_layout_name(layout), "labelled folders"), "layout %d", layout);
    if (ds) {
        CHECK(ds->n_train == 0 && ds->n_test == 7 && ds->n_test_defective == 4, "counts %d/%d/%d", ds->n_train,
              ds->n_test, ds->n_test_defective);
        /* the good folders first (OK before good: byte order), then the types in name order */
        static const char *order[] = {"k1", "g1", "g2", "n1", "s1", "s2", "s3"};
        int ok = ds->n_test == 7;
        for (int i = 0; ok && i < 7; i++) ok = !strcmp(ds->test[i].stem, order[i]);
        CHECK(ok, "order: good folders, then types, by name");
        const dd_item *k1 = find_item(ds, "k1"), *g1 = find_item(ds, "g1"), *s1 = find_item(ds, "s1"),
                      *s2 = find_item(ds, "s2"), *s3 = find_item(ds, "s3"), *n1 = find_item(ds, "n1");
        CHECK(k1 && k1->label == 0 && !strcmp(k1->defect, "good"), "OK/ holds good images");
        CHECK(g1 && g1->label == 0 && !g1->mask_path, "good images get no mask");
        CHECK(s1 && s1->label == 1 && !strcmp(s1->defect, "scratch") && s1->mask_path &&
                  strstr(s1->mask_path, "ground_truth/scratch/s1_mask.png"),
              "s1 with its _mask");
        CHECK(s2 && s2->mask_path && strstr(s2->mask_path, "ground_truth/scratch/s2.png"), "s2 with its plain-stem mask");
        CHECK(s3 && s3->label == 1 && !s3->mask_path, "s3 without a mask: mask_path NULL");
        CHECK(n1 && !strcmp(n1->defect, "ng") && !n1->mask_path, "ng/ without ground_truth/ng: no masks");
        float im[10 * 20 * 3], mk[10 * 20];
        CHECK(s1 && dd_item_load(s1, 10, 20, im, mk, &e) == DD_OK && mk[0] == 1 && mk[19] == 0, "s1 mask loads: %s",
              e.msg);
        CHECK(strcmp(ds->name, "lab") == 0, "name %s", ds->name);
        dd_dataset_free(ds);
    }
    /* the _mask name wins when both exist */
    mask("lab/ground_truth/scratch/s1.png", 10, 20);
    if (dd_dataset_open_labelled(P("lab"), &ds, &e) == DD_OK) {
        const dd_item *s1 = find_item(ds, "s1");
        CHECK(s1 && s1->mask_path && strstr(s1->mask_path, "s1_mask.png"), "s1_mask.png before s1.png");
        dd_dataset_free(ds);
    } else CHECK(0, "reopen: %s", e.msg);

    /* a misspelt mask or mask folder would quietly leave images without pixel truth: refused */
    mask("lab/ground_truth/scratch/s9_mask.png", 10, 20);
    expect_test_fail("lab", (const char *[]){"ground_truth/scratch/s9_mask.png", "no image of scratch/", NULL},
                     "a mask without its image");
    unlink(P("lab/ground_truth/scratch/s9_mask.png"));
    mkdirs(P("lab/ground_truth/Scratch"));
    expect_test_fail("lab", (const char *[]){"lab/ground_truth/Scratch", "no folder Scratch/", NULL},
                     "a mask folder named after no defect folder");
    rmdir(P("lab/ground_truth/Scratch"));
    mkdirs(P("lab/ground_truth/empty_type"));
    mask("lab/ground_truth/empty_type/x.png", 10, 20);
    expect_test_fail("lab", (const char *[]){"empty_type/x.png", "no image of empty_type/", NULL},
                     "masks for a folder without images");
    unlink(P("lab/ground_truth/empty_type/x.png"));
    CHECK(dd_dataset_open_labelled(P("lab"), &ds, &e) == DD_OK, "an empty mask folder is fine: %s", e.msg);
    dd_dataset_free(ds);

    /* bad layouts, each one line naming the folder */
    expect_test_fail("lab-missing", (const char *[]){"lab-missing", NULL}, "missing folder");
    mkdirs(P("lab-nogood/scratch"));
    img("lab-nogood/scratch/s.png", 8, 8, 0.5f);
    expect_test_fail("lab-nogood", (const char *[]){"lab-nogood", "no good/", "train/good", NULL}, "no good folder");
    mkdirs(P("lab-empty/good"));
    mkdirs(P("lab-empty/ng"));
    img("lab-empty/ng/x.png", 8, 8, 0.5f);
    expect_test_fail("lab-empty", (const char *[]){"lab-empty", "no images", "in good/", NULL}, "empty good folder");
    mkdirs(P("lab-bare"));
    expect_test_fail("lab-bare", (const char *[]){"lab-bare", "no good/", NULL}, "empty folder");
    mkdirs(P("lab-loose/good"));
    img("lab-loose/good/g.png", 8, 8, 0.1f);
    img("lab-loose/stray.png", 8, 8, 0.1f);
    expect_test_fail("lab-loose", (const char *[]){"lab-loose", "stray.png", "without a label", NULL},
                     "images directly in the folder");
    /* a folder with test/ but no train/good is not MVTec: the message says what each layout needs */
    mkdirs(P("lab-halfmvtec/test/good"));
    img("lab-halfmvtec/test/good/g.png", 8, 8, 0.1f);
    expect_test_fail("lab-halfmvtec", (const char *[]){"train/good", NULL}, "test/ without train/good");
    /* MVTec is detected by train/good and behaves exactly as dd_dataset_open_mvtec */
    build_mvtec("lab-mvtec");
    dd_dataset *a = NULL, *b = NULL;
    CHECK(dd_dataset_open_test(P("lab-mvtec"), &a, &layout, &e) == DD_OK && layout == DD_LAYOUT_MVTEC,
          "MVTec detected: %s", e.msg);
    CHECK(dd_dataset_open_mvtec(P("lab-mvtec"), &b, &e) == DD_OK, "mvtec: %s", e.msg);
    if (a && b) {
        int same = a->n_test == b->n_test && a->n_train == b->n_train;
        for (int i = 0; same && i < a->n_test; i++)
            same = !strcmp(a->test[i].path, b->test[i].path) && !strcmp(a->test[i].defect, b->test[i].defect) &&
                   a->test[i].label == b->test[i].label &&
                   !strcmp(a->test[i].mask_path ? a->test[i].mask_path : "", b->test[i].mask_path ? b->test[i].mask_path : "");
        CHECK(same, "dd_dataset_open_test on MVTec lists what dd_dataset_open_mvtec lists");
    }
    dd_dataset_free(a);
    dd_dataset_free(b);
    /* and keeps requiring a mask per defective image */
    build_mvtec("lab-mvtec-nomask");
    unlink(P("lab-mvtec-nomask/ground_truth/crack/c2_mask.png"));
    expect_test_fail("lab-mvtec-nomask", (const char *[]){"c2.png", "no ground-truth mask", NULL}, "MVTec missing mask");
}

static void write_text(const char *rel, const char *text) { touch(rel, text); }

static void test_csv_list(void) {
    mkdirs(P("csv/imgs/sub"));
    mkdirs(P("csv/masks"));
    img("csv/imgs/a.png", 10, 20, 0.1f);
    img("csv/imgs/b.png", 10, 20, 0.1f);
    img("csv/imgs/c,1.png", 10, 20, 0.5f);     /* a comma in the name */
    img("csv/imgs/d\"q.png", 10, 20, 0.5f);    /* a quote in the name */
    img("csv/imgs/sub/e.png", 10, 20, 0.5f);
    img("csv/imgs/ f .png", 10, 20, 0.5f);     /* spaces at both ends of the name */
    mask("csv/masks/c_mask.png", 10, 20);
    char absimg[700], body[4096];
    snprintf(absimg, sizeof absimg, "%s", P("csv/imgs/b.png"));
    /* BOM, header, CRLF, blank lines, spaces around fields, absolute path, a quoted line break in
     * a label-free position (the mask field of a row is empty), labels in every form */
    snprintf(body, sizeof body,
             "\xEF\xBB\xBFpath , Label, mask\r\n"
             "imgs/a.png,good\r\n"
             "\r\n"
             "  %s ,  OK  ,\n"
             "\"imgs/c,1.png\",scratch,masks/c_mask.png\n"
             "\"imgs/d\"\"q.png\",1\n"
             "imgs/sub/e.png , NG\n"
             "\" imgs/ f .png\"\"\",0\n",
             absimg);
    /* the last row names " imgs/ f .png\"" which does not exist: first check the others */
    char *cut = strstr(body, "\" imgs/");
    *cut = 0;
    strcat(body, "\"imgs/ f .png\",0\n");
    write_text("csv/list.csv", body);
    dd_dataset *ds = NULL;
    dd_error e = {0};
    int layout = 0;
    CHECK(dd_dataset_open_test(P("csv/list.csv"), &ds, &layout, &e) == DD_OK, "CSV list: %s", e.msg);
    CHECK(layout == DD_LAYOUT_CSV, "layout %d", layout);
    if (ds && ds->n_test == 6) {
        CHECK(ds->n_train == 0 && ds->n_test_defective == 3, "counts %d/%d", ds->n_train, ds->n_test_defective);
        const dd_item *t = ds->test;
        CHECK(!strcmp(t[0].path, P("csv/imgs/a.png")) && t[0].label == 0 && !strcmp(t[0].defect, "good"),
              "row 1: relative to the CSV's folder, good: %s", t[0].path);
        CHECK(!strcmp(t[1].path, absimg) && t[1].label == 0 && !t[1].mask_path, "row 2: absolute path, OK = good, trimmed");
        CHECK(!strcmp(t[2].path, P("csv/imgs/c,1.png")) && t[2].label == 1 && !strcmp(t[2].defect, "scratch") &&
                  t[2].mask_path && !strcmp(t[2].mask_path, P("csv/masks/c_mask.png")),
              "row 3: quoted comma, a defect type, its mask");
        CHECK(!strcmp(t[3].path, P("csv/imgs/d\"q.png")) && t[3].label == 1 && !strcmp(t[3].defect, "ng") &&
                  !t[3].mask_path,
              "row 4: doubled quote, label 1 = ng, no mask: %s %s", t[3].path, t[3].defect);
        CHECK(!strcmp(t[4].defect, "NG") && !strcmp(t[4].stem, "e"), "row 5: a defect type as written (NG), stem e");
        CHECK(!strcmp(t[5].path, P("csv/imgs/ f .png")) && t[5].label == 0, "row 6: quoted spaces kept, 0 = good");
        CHECK(!strcmp(ds->name, "list.csv"), "name %s", ds->name);
    } else CHECK(0, "6 items expected, got %d", ds ? ds->n_test : -1);
    dd_dataset_free(ds);

    /* a quoted line break inside a field: the record spans two lines; errors after it count both */
    write_text("csv/multi.csv", "\"imgs/a\n.png\",good\nimgs/b.png\n");
    expect_test_fail("csv/multi.csv", (const char *[]){"multi.csv:1:", "imgs/a\\n.png: No such file", NULL},
                     "a line break inside a quoted path (shown as \\n)");
    write_text("csv/multi2.csv", "imgs/a.png,\"go\nod\"\nimgs/b.png\n");
    expect_test_fail("csv/multi2.csv", (const char *[]){"multi2.csv:1:", "control character", NULL},
                     "a line break inside a label");
    write_text("csv/multi3.csv", "imgs/a.png,\"x\"\r\n\"imgs/c,1.png\",\"sc\"\"r\"\r\nimgs/b.png\r\n");
    expect_test_fail("csv/multi3.csv", (const char *[]){"multi3.csv:3:", "1 field", NULL}, "line count over CRLF");

    /* bad rows: one line naming the file and the line */
    struct { const char *name, *text, *want1, *want2; } bad[] = {
        {"few.csv", "path,label\nimgs/a.png,good\nimgs/b.png\n", "few.csv:3:", "1 field, expected path,label[,mask]"},
        {"many.csv", "imgs/a.png,good,,extra\n", "many.csv:1:", "4 fields"},
        {"nolabel.csv", "imgs/a.png,good\nimgs/b.png,\n", "nolabel.csv:2:", "label is empty"},
        {"nopath.csv", "\"\",good\n", "nopath.csv:1:", "path is empty"},
        {"missing.csv", "imgs/a.png,good\n\nimgs/zz.png,ng\n", "missing.csv:3:", "zz.png"},
        {"missmask.csv", "\"imgs/c,1.png\",scratch,masks/none.png\n", "missmask.csv:1:", "mask"},
        {"goodmask.csv", "imgs/a.png,ok,masks/c_mask.png\n", "goodmask.csv:1:", "a mask for a good image"},
        {"notimg.csv", "list.csv,good\n", "notimg.csv:1:", "not an image file name"},
        {"dir.csv", "imgs/sub.png,good\n", "dir.csv:1:", "sub.png"},
        {"quote.csv", "imgs/a.png,good\nimgs/b\"x.png,good\n", "quote.csv:2:", "quote inside an unquoted field"},
        {"after.csv", "\"imgs/a.png\"x,good\n", "after.csv:1:", "after a closing quote"},
        {"open.csv", "imgs/a.png,good\n\"imgs/b.png,good\n", "open.csv:2:", "not closed"},
        {"twice.csv", "imgs/a.png,good\nimgs/b.png,good\n./imgs/../imgs/a.png,ng\nimgs/a.png,ng\n", "twice.csv:3:",
         "already listed on line 1"},
        {"empty.csv", "path,label,mask\n\n", "empty.csv", "no images listed"},
        {"nul.csv", "imgs/a.png,good\nimgs/b.png\0,good\n", "nul.csv:2:", "NUL"},
    };
    mkdirs(P("csv/imgs/sub.png")); /* a folder with an image name */
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        char rel[300];
        snprintf(rel, sizeof rel, "csv/%s", bad[k].name);
        if (!strcmp(bad[k].name, "nul.csv")) {
            FILE *f = fopen(P(rel), "wb");
            if (f) fwrite(bad[k].text, 1, 29, f), fclose(f);
        } else write_text(rel, bad[k].text);
        expect_test_fail(rel, (const char *[]){bad[k].want1, bad[k].want2, NULL}, bad[k].name);
    }
    /* the file itself: missing, not .csv, empty */
    expect_test_fail("csv/none.csv", (const char *[]){"none.csv", NULL}, "missing CSV");
    expect_test_fail("csv/imgs/a.png", (const char *[]){"a.png", "not a folder or a .csv file", NULL}, "an image as --data");
    write_text("csv/zero.csv", "");
    expect_test_fail("csv/zero.csv", (const char *[]){"zero.csv", "no images listed", NULL}, "empty CSV");
    /* a CSV given by a bare relative name: paths relative to the working folder (its folder) */
    char cwd[700];
    if (getcwd(cwd, sizeof cwd) && chdir(P("csv")) == 0) {
        CHECK(dd_dataset_open_csv("list.csv", &ds, &e) == DD_OK && ds->n_test == 6 && !strcmp(ds->test[0].path, "imgs/a.png"),
              "bare CSV name: %s", e.msg);
        dd_dataset_free(ds);
        CHECK(chdir(cwd) == 0, "chdir back");
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
    test_labelled_folders();
    test_csv_list();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary("test_dataset");
}
