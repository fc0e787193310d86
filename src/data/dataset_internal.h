/* dataset_internal.h — owns the listing helpers shared by the dataset layouts: dataset.c (MVTec,
 * folder of good images) and labelled.c (a user's labelled folders, a CSV list). Not public. */
#ifndef DD_DATASET_INTERNAL_H
#define DD_DATASET_INTERNAL_H

#include "data/dataset.h"

/* A growable list of malloc'ed names. */
typedef struct dd_ds_names {
    char **v;
    int n, cap;
} dd_ds_names;

/* A growable list of items (the dataset's train or test array while it is built). */
typedef struct dd_ds_items {
    dd_item *v;
    int n, cap;
} dd_ds_items;

char *dd_ds_dup(const char *s);
/* a + "/" + b (no doubled slash); malloc'ed. */
char *dd_ds_join(const char *a, const char *b);
int dd_ds_is_dir(const char *p);
int dd_ds_is_file(const char *p); /* a regular file (stat follows links) */
/* The file name without its extension; malloc'ed. */
char *dd_ds_stem_of(const char *name);

void dd_ds_names_free(dd_ds_names *l);
/* Names in `dir`, sorted byte-wise: image files (dd_is_image_name) when want_dirs == 0,
 * sub-folders when 1; hidden entries never. */
int dd_ds_list_dir(const char *dir, int want_dirs, dd_ds_names *out, dd_error *err);
/* The first name in a sorted list whose stem is `stem` + `suffix`, or NULL. */
const char *dd_ds_find_stem(const dd_ds_names *l, const char *stem, const char *suffix);

/* A zeroed new item at the end of l, or NULL when out of memory. */
dd_item *dd_ds_item_add(dd_ds_items *l);
void dd_ds_items_free(dd_ds_items *l);

/* How dd_ds_add_folder treats a missing mask (mask_dir given). */
enum { DD_MASK_REQUIRED = 0, DD_MASK_OPTIONAL = 1 };

/* Append every image of `dir` to `l` with the given defect name and label. Masks: when mask_dir
 * is given, <stem>_mask.* then <stem>.* there (any image extension); with DD_MASK_REQUIRED an
 * image without one is an error naming it, with DD_MASK_OPTIONAL it gets mask_path NULL (and a
 * missing mask_dir means no masks). fg_dir (optional, may be absent): foreground masks <stem>.*. */
int dd_ds_add_folder(dd_ds_items *l, const char *dir, const char *defect, int label,
                     const char *mask_dir, int mask_rule, const char *fg_dir, dd_error *err);

/* Move the lists into a new dataset named after root's last component (the lists are emptied). */
int dd_ds_finish(const char *root, dd_ds_items *train, dd_ds_items *test, dd_dataset **out,
                 dd_error *err);

#endif
