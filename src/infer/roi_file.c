/* roi_file.c — a region of interest from an image file (see roi_file.h). */
#include "infer/roi_file.h"

#include <stdlib.h>

#include "data/image.h"

int dd_roi_load(const char *path, dd_roi *out, dd_error *err) {
    dd_image im = {0};
    int rc = dd_image_load_rgb(path, &im, err); /* its messages name the file */
    if (rc) return rc;
    size_t n = (size_t)im.h * im.w;
    uint8_t *mask = malloc(n ? n : 1);
    if (!mask) {
        dd_image_free(&im);
        return dd_fail(err, DD_E_NOMEM, "%s: out of memory for a %dx%d region of interest", path, im.w, im.h);
    }
    /* decoded values are k / 255 or k / 65535: nonzero exactly when the stored sample is */
    for (size_t i = 0; i < n; i++) {
        const float *p = im.data + 3 * i;
        mask[i] = p[0] != 0 || p[1] != 0 || p[2] != 0;
    }
    dd_error e = {0};
    rc = dd_roi_set(out, mask, im.h, im.w, path, &e);
    if (rc == DD_E_FORMAT) /* the only value problem a 0/1 mask can have: no 1 at all */
        rc = dd_fail(err, rc, "%s: the region of interest is all black: it would ignore every pixel (nonzero = inspect, "
                     "0 = ignore)", path);
    else if (rc) dd_fail(err, rc, "%s", e.msg);
    free(mask);
    dd_image_free(&im);
    return rc;
}
