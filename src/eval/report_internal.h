/* report_internal.h — owns the pieces report.c assembles, kept out of the public header:
 * PNG encoding into memory, reading PNG files to embed, and the inline SVG charts. */
#ifndef DD_REPORT_INTERNAL_H
#define DD_REPORT_INTERNAL_H

#include "eval/metrics.h"
#include "core/text.h"
#include "core/status.h"

/* PNG bytes of an h×w RGB8 image, box-downscaled by an integer factor first if its longer side
 * exceeds max_side. *png is malloc'd. */
int dd_png_encode_rgb(const unsigned char *rgb, int h, int w, int max_side, unsigned char **png,
                      size_t *len, dd_error *err);
/* The bytes of a PNG file (signature checked, at most 64 MiB). *png is malloc'd. */
int dd_png_read_file(const char *path, unsigned char **png, size_t *len, dd_error *err);

/* One series of a line chart. */
typedef struct dd_svg_series {
    const dd_curve *c;
    const char *name;
    const char *color;
} dd_svg_series;

/* Line chart over [0,xmax]×[0,1] with a grid, axis labels, a legend and the diagonal (if
 * diagonal); id becomes the <svg> element's id. */
void dd_svg_lines(dd_textbuf *b, const char *id, const char *title, const char *xlabel,
                  const char *ylabel, double xmax, int diagonal, const dd_svg_series *s, int ns);
/* Two overlaid histograms (good, defective) over [lo, hi] with a vertical threshold line
 * (thr NaN: none). */
void dd_svg_histogram(dd_textbuf *b, const char *id, const char *title, double lo, double hi,
                      const long *good, const long *bad, int bins, double thr);
/* Horizontal colour bar of the heat-map scale, 0 to 1. */
void dd_svg_colorbar(dd_textbuf *b);

#endif
