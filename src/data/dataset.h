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
 *  - Labelled test sets, for `diffad test` on a user's own images (labelled.c,
 *    below): labelled folders (good/, one folder per defect type, optional
 *    masks) or a CSV list of path,label[,mask] rows.
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
                        items whose pixel truth is unknown: a folder dataset given
                        without masks, a labelled set's images without a mask) */
    char *fg_path;   /* user-supplied foreground mask, or NULL */
} dd_item;

typedef struct dd_dataset {
    char *root;      /* category folder (MVTec), the good folder, the labelled
                        folder or the CSV file */
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

/* ---- labelled test sets (labelled.c) -------------------------------------
 * Test images only (n_train == 0). In both forms a good image's pixels are all
 * normal, and a defective image's mask is optional: without one it has
 * mask_path NULL and counts in the image metrics only. */

/* Labelled folders: every image sub-folder of `root` named good or ok in any
 * case (good/, OK/, Ok/) holds good images (defect "good"); every other
 * image sub-folder is a defect type named after it (ng/, scratch/); the
 * sub-folder ground_truth/ holds masks: ground_truth/<type folder>/<stem>_mask.<ext>
 * or <stem>.<ext> (any image extension; the _mask name wins), matched per image,
 * a missing one meaning "no mask". Items: the good folders first, then the
 * types, each in byte-wise name order. Only images directly inside each folder
 * are read; type folders without images are left out. Errors naming the
 * folder: `root` missing, no good/ok folder, no good image, images directly in
 * `root` (their label is unknown), and — since a misspelt mask would quietly
 * leave its image without pixel truth — a mask in ground_truth/<type>/ that
 * belongs to no image of <type>/, a sub-folder of ground_truth/ named after no
 * folder (ground_truth/<good folder>/ is allowed and not read). */
int dd_dataset_open_labelled(const char *root, dd_dataset **out, dd_error *err);

/* A CSV list (RFC 4180; any line ends; a UTF-8 byte-order mark is skipped):
 * one row per image, `path,label[,mask]`. Paths are relative to the CSV
 * file's folder unless absolute. Labels: good, ok or 0 (any case) = good;
 * anything else = defective with that defect type ("ng" for 1). The first row
 * is a header (skipped) when its label field is "label" (any case). Spaces and
 * tabs around a field are ignored (quote a name that begins or ends with one);
 * quoted fields may hold commas, doubled quotes and line breaks; empty lines
 * are skipped. Items in row order. Errors name the file and the line
 * ("list.csv:7: ..."): too few or too many fields, an empty path or label, a
 * quote in an unquoted field, an unclosed quote, a path that is not an image
 * name, an image or mask that is not a regular file, a mask on a good image, an
 * image file listed twice (under any name), no rows. */
int dd_dataset_open_csv(const char *csv_path, dd_dataset **out, dd_error *err);

/* Which layout dd_dataset_open_test found. */
enum { DD_LAYOUT_MVTEC = 1, DD_LAYOUT_LABELLED = 2, DD_LAYOUT_CSV = 3 };
/* "MVTec category", "labelled folders", "CSV list". */
const char *dd_layout_name(int layout);

/* The test set at `path`, layout detected without ambiguity:
 *  - a file whose name ends in .csv (any case): a CSV list;
 *  - a folder holding train/good/: an MVTec category (dd_dataset_open_mvtec,
 *    exactly as before; its test/ holds the test images);
 *  - any other folder: labelled folders.
 * *layout (may be NULL) receives DD_LAYOUT_*. */
int dd_dataset_open_test(const char *path, dd_dataset **out, int *layout, dd_error *err);

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
