/* dataset.h — owns the listing of image datasets on disk and loading their items.
 *
 * Two layouts:
 *  - MVTec AD: <root>/train/good/, <root>/test/<type>/,
 *    <root>/ground_truth/<type>/<stem>_mask.png (test/good has no masks; a
 *    defective test image without its mask is an error naming the file).
 *    Optional <root>/foreground/<stem>.png: user-supplied object masks for
 *    the synthesiser.
 *  - Folder: a folder of good images, optionally a folder of defective
 *    images, a folder of their masks (matched by stem: <stem>.png or
 *    <stem>_mask.png) and a folder of good test images.
 * Image files are recognised by extension (png, jpg, jpeg, bmp, pgm, ppm,
 * pnm; any case); hidden files and everything else are ignored. Listings are
 * sorted by byte-wise file name, so the order never depends on the file
 * system or the locale. Images may have any size and aspect ratio: items are
 * resized to the H x W the caller asks for. */
#ifndef DD_DATASET_H
#define DD_DATASET_H

#include <stdint.h>

#include "core/status.h"

typedef struct dd_item {
    char *path;      /* image file */
    char *stem;      /* file name without extension */
    char *defect;    /* "good" or the defect type (test folder name) */
    int label;       /* 0 good, 1 defective */
    char *mask_path; /* ground-truth mask, NULL for good items (and for defective
                        items of a folder dataset given without masks) */
    char *fg_path;   /* user-supplied foreground mask, or NULL */
} dd_item;

typedef struct dd_dataset {
    char *root;      /* category folder (MVTec) or the good folder */
    char *name;      /* last path component of root, for reports */
    dd_item *train;  /* train/good, label 0 */
    int n_train;
    dd_item *test;   /* test/good first, then the defect types in name order */
    int n_test;
    int n_test_defective;
} dd_dataset;

/* Open an MVTec AD category folder. Errors: missing/empty train/good, a
 * missing ground_truth/<type> folder or mask file (message names it), an
 * unreadable folder. */
int dd_dataset_open_mvtec(const char *root, dd_dataset **out, dd_error *err);

typedef struct dd_folder_spec {
    const char *good_dir;      /* required: images of good parts (training) */
    const char *defect_dir;    /* optional: defective images (test, label 1) */
    const char *mask_dir;      /* optional: masks of the defective images */
    const char *test_good_dir; /* optional: good images kept for testing */
    const char *fg_dir;        /* optional: foreground masks of good images */
} dd_folder_spec;

/* Open a generic folder layout. When mask_dir is given every defective image
 * must have a mask; without it, defective items have mask_path NULL
 * (image-level labels only). */
int dd_dataset_open_folder(const dd_folder_spec *spec, dd_dataset **out, dd_error *err);

/* MVTec layout when <path>/train/good exists, else `path` is taken as a
 * folder of good images. */
int dd_dataset_open(const char *path, dd_dataset **out, dd_error *err);

void dd_dataset_free(dd_dataset *ds);

/* Load an item resized to h x w: img (h*w*3 floats, [0,1], channels-last) and,
 * if mask is not NULL, mask (h*w floats in {0,1}; all zero when the item has no
 * mask). The ground-truth rule: every pixel whose stored value is nonzero is
 * defect (so masks stored 0/1, 0/255, 16-bit or mixing values such as 1 and 128
 * all mean the same), binarised at the file's size before anything else; the
 * {0,1} mask is then area-resized to h x w and binarised at 0.5 (a working
 * pixel is defect when more than half of its area is). A mask whose size
 * differs from its image's is an error (likely a mismatched pair).
 * Thread-safe. */
int dd_item_load(const dd_item *it, int h, int w, float *img, float *mask, dd_error *err);

/* Deterministic train/validation split of ds->train: shuffles the indices
 * with `seed`, puts round(val_frac * n) of them (at least 1 when val_frac > 0
 * and n >= 2; never all of them) into *val and the rest into *train, both
 * sorted ascending. The arrays are malloc'ed; free() them. */
int dd_dataset_split_train(const dd_dataset *ds, double val_frac, uint64_t seed,
                           int **train, int *n_train, int **val, int *n_val,
                           dd_error *err);

/* Is `name` (a file name, no folders) an image file by its extension? The one
 * rule for every listing: not hidden (no leading '.'), extension one of
 * dd_image_extensions(), any case. */
int dd_is_image_name(const char *name);
/* Those extensions as text for messages: "png, jpg, jpeg, bmp, pgm, ppm, pnm". */
const char *dd_image_extensions(void);

#endif
