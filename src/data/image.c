/* image.c — image decoding, PNG writing and resampling (see image.h). */
#include "data/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

/* Exported by libstb (stb_image_write's deflate) but not declared in its
 * header; used for 16-bit PNGs, which stbi_write_png cannot produce. */
extern unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len,
                                         int quality);

int dd_image_alloc(dd_image *img, int h, int w, int c, dd_error *err) {
    img->data = NULL;
    img->h = img->w = img->c = 0;
    if (h <= 0 || w <= 0 || (c != 1 && c != 3))
        return dd_fail(err, DD_E_INVALID, "image alloc: bad shape %dx%dx%d", h, w, c);
    size_t n = (size_t)h * (size_t)w * (size_t)c;
    img->data = calloc(n, sizeof(float));
    if (!img->data)
        return dd_fail(err, DD_E_NOMEM, "image alloc: no memory for %dx%dx%d floats", h, w, c);
    img->h = h;
    img->w = w;
    img->c = c;
    return DD_OK;
}

void dd_image_free(dd_image *img) {
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->h = img->w = img->c = 0;
}

/* ---- format sniffing and structural checks ------------------------------ */

enum { FMT_NONE, FMT_PNG, FMT_JPEG, FMT_BMP, FMT_PNM };

static int sniff(const unsigned char *b, size_t n) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= 8 && memcmp(b, png, 8) == 0) return FMT_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return FMT_PNM;
    return FMT_NONE;
}

/* stb_image decodes a JPEG cut short as if the missing data were zeros, so a
 * truncated file would load as a half-grey image. The main image ends with an
 * EOI marker (FF D9) after its last scan header (FF DA); entropy-coded data
 * cannot contain either (0xFF is byte-stuffed there), so "no EOI after the
 * last SOS" means truncated. An EXIF thumbnail's EOI comes before the main
 * image's SOS and does not fool the check. */
static int jpeg_complete(const unsigned char *b, size_t n) {
    size_t last_sos = 0, last_eoi = 0;
    for (size_t i = 2; i + 1 < n; i++) {
        if (b[i] != 0xFF) continue;
        if (b[i + 1] == 0xDA) last_sos = i;
        else if (b[i + 1] == 0xD9) last_eoi = i;
    }
    return last_sos > 0 && last_eoi > last_sos;
}

/* stb_image grows its IDAT buffer to the chunk length a PNG declares before
 * reading the data, so a 100-byte file can demand gigabytes (found by
 * fuzzing). Every chunk must fit in the file; a file that ends before IEND is
 * truncated. */
static int png_chunks_ok(const unsigned char *b, size_t n) {
    size_t i = 8;
    while (i + 12 <= n) {
        uint32_t len = (uint32_t)b[i] << 24 | (uint32_t)b[i + 1] << 16 |
                       (uint32_t)b[i + 2] << 8 | (uint32_t)b[i + 3];
        if (len > 0x7FFFFFFFu || (size_t)len > n - i - 12) return 0;
        if (memcmp(b + i + 4, "IEND", 4) == 0) return 1;
        i += 12 + (size_t)len;
    }
    return 0;
}

/* stb_image 2.27 (Debian's) trusts two things in a JPEG that a hostile file
 * controls, and the fuzzer crashed it through both: a DHT table with more
 * than 256 symbols overruns its arrays, and a scan may use a Huffman table
 * that was never defined (the decoder state is malloc'ed, not zeroed). Walk
 * the marker segments and refuse such files before stb sees them. */
static int jpeg_tables_ok(const unsigned char *b, size_t n) {
    int defined[2][4] = {{0}};
    int progressive = 0;
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) { /* entropy-coded data: skip to the next real marker */
            i++;
            continue;
        }
        unsigned m = b[i + 1];
        if (m == 0xFF || m == 0x00 || (m >= 0xD0 && m <= 0xD7)) {
            i += (m == 0xFF) ? 1 : 2;
            continue;
        }
        if (m == 0xD9) return 1; /* EOI */
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (len < 2 || i + 2 + len > n) return 0;
        const unsigned char *seg = b + i + 4;
        size_t sl = len - 2;
        if (m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE) progressive = 1;
        if (m == 0xC4) { /* DHT: one or more tables */
            size_t k = 0;
            while (k < sl) {
                if (k + 17 > sl) return 0;
                int tc = seg[k] >> 4, th = seg[k] & 15;
                if (tc > 1 || th > 3) return 0;
                size_t cnt = 0;
                for (int j = 1; j <= 16; j++) cnt += seg[k + j];
                if (cnt > 256 || k + 17 + cnt > sl) return 0;
                defined[tc][th] = 1;
                k += 17 + cnt;
            }
        } else if (m == 0xDA) { /* SOS: the tables it uses must exist */
            if (sl < 1) return 0;
            int ns = seg[0];
            if (sl < (size_t)(1 + 2 * ns + 3)) return 0;
            int ss = seg[1 + 2 * ns], se = seg[2 + 2 * ns], ah = seg[3 + 2 * ns] >> 4;
            for (int c = 0; c < ns; c++) {
                int td = seg[2 + 2 * c] >> 4, ta = seg[2 + 2 * c] & 15;
                if (td > 3 || ta > 3) return 0;
                int need_dc = !progressive || (ss == 0 && ah == 0);
                int need_ac = !progressive || se > 0;
                if (need_dc && !defined[0][td]) return 0;
                if (need_ac && !defined[1][ta]) return 0;
            }
        }
        i += 2 + len;
    }
    return 1;
}

static uint32_t rd_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* stb_image also pads a short BMP with zeros. For the uncompressed layouts it
 * supports, the pixel array size follows from the header: check it is all
 * there. */
static int bmp_complete(const unsigned char *b, size_t n) {
    if (n < 34) return 0;
    uint32_t off = rd_le32(b + 10), hsz = rd_le32(b + 14);
    if (hsz < 40) return 1; /* OS/2 core header: leave it to stb */
    int32_t w = (int32_t)rd_le32(b + 18), h = (int32_t)rd_le32(b + 22);
    unsigned bpp = (unsigned)b[28] | (unsigned)b[29] << 8;
    uint32_t comp = rd_le32(b + 30);
    if (comp != 0 && comp != 3 && comp != 6) return 1; /* stb rejects the rest itself */
    if (w <= 0 || h == 0 || h == INT32_MIN || bpp == 0) return 1;
    uint64_t ah = (uint64_t)(h < 0 ? -(int64_t)h : h);
    uint64_t stride = (((uint64_t)w * bpp + 31) / 32) * 4;
    return (uint64_t)off + stride * ah <= (uint64_t)n;
}

static int jpeg_complete(const unsigned char *b, size_t n);
static int png_chunks_ok(const unsigned char *b, size_t n);
static int jpeg_tables_ok(const unsigned char *b, size_t n);
static int bmp_complete(const unsigned char *b, size_t n);

/* Checks made before any stb function sees the bytes. */
static int structure_ok(const unsigned char *b, size_t len, int fmt, const char *name,
                        dd_error *err) {
    if (fmt == FMT_PNG && !png_chunks_ok(b, len))
        return dd_fail(err, DD_E_FORMAT, "%s: PNG is truncated or has a corrupt chunk length",
                       name);
    if (fmt == FMT_JPEG && !jpeg_complete(b, len))
        return dd_fail(err, DD_E_FORMAT, "%s: JPEG is truncated (no end-of-image marker)",
                       name);
    if (fmt == FMT_JPEG && !jpeg_tables_ok(b, len))
        return dd_fail(err, DD_E_FORMAT, "%s: corrupt JPEG (bad or missing Huffman table)",
                       name);
    if (fmt == FMT_BMP && !bmp_complete(b, len))
        return dd_fail(err, DD_E_FORMAT, "%s: BMP is truncated (pixel data too short)", name);
    return DD_OK;
}

/* Width and height from the header, parsed here rather than by stb: stb
 * refuses very large headers with a generic "unknown image type", and the
 * user deserves "too many pixels" instead. Returns 0 when not found. */
static uint32_t rd_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int header_dims(const unsigned char *b, size_t n, int fmt, double *w, double *h) {
    if (fmt == FMT_PNG) {
        if (n < 24 || memcmp(b + 12, "IHDR", 4) != 0) return 0;
        *w = rd_be32(b + 16);
        *h = rd_be32(b + 20);
        return 1;
    }
    if (fmt == FMT_BMP) {
        if (n < 26 || rd_le32(b + 14) < 40) return 0;
        int32_t x = (int32_t)rd_le32(b + 18), y = (int32_t)rd_le32(b + 22);
        *w = fabs((double)x);
        *h = fabs((double)y);
        return 1;
    }
    if (fmt == FMT_JPEG) { /* walk marker segments up to the frame header */
        size_t i = 2;
        while (i + 9 < n) {
            if (b[i] != 0xFF) return 0;
            unsigned m = b[i + 1];
            if (m == 0xFF) { i++; continue; }
            size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                *h = (double)((unsigned)b[i + 5] << 8 | b[i + 6]);
                *w = (double)((unsigned)b[i + 7] << 8 | b[i + 8]);
                return 1;
            }
            if (len < 2) return 0;
            i += 2 + len;
        }
    }
    return 0;
}

/* ---- PNM (P5/P6) ---------------------------------------------------------
 * Decoded here rather than by stb_image, whose 2022 PNM reader returns 16-bit
 * samples byte-swapped and pads truncated files with zeros. */
static int pnm_num(const unsigned char *b, size_t n, size_t *i, long *v) {
    for (;;) { /* whitespace and # comments */
        while (*i < n && (b[*i] == ' ' || b[*i] == '\t' || b[*i] == '\n' || b[*i] == '\r'))
            (*i)++;
        if (*i < n && b[*i] == '#') {
            while (*i < n && b[*i] != '\n') (*i)++;
            continue;
        }
        break;
    }
    if (*i >= n || b[*i] < '0' || b[*i] > '9') return 0;
    long x = 0;
    while (*i < n && b[*i] >= '0' && b[*i] <= '9') {
        x = x * 10 + (b[*i] - '0');
        if (x > 100000000L) return 0;
        (*i)++;
    }
    *v = x;
    return 1;
}

static int decode_pnm(const unsigned char *b, size_t n, const char *name, int channels,
                      long max_pixels, dd_image *out, dd_error *err) {
    int nc = b[1] == '5' ? 1 : 3;
    size_t i = 2;
    long w, h, maxv;
    if (!pnm_num(b, n, &i, &w) || !pnm_num(b, n, &i, &h) || !pnm_num(b, n, &i, &maxv) ||
        i >= n)
        return dd_fail(err, DD_E_FORMAT, "%s: bad PGM/PPM header", name);
    i++; /* exactly one whitespace byte before the samples */
    if (w <= 0 || h <= 0)
        return dd_fail(err, DD_E_FORMAT, "%s: image has zero size (%ldx%ld)", name, w, h);
    if (maxv <= 0 || maxv > 65535)
        return dd_fail(err, DD_E_FORMAT, "%s: PGM/PPM maxval %ld not in 1..65535", name, maxv);
    if ((double)w * (double)h > (double)max_pixels)
        return dd_fail(err, DD_E_RANGE,
                       "%s: image is %ldx%ld = %.0f pixels, above the cap of %ld pixels", name,
                       w, h, (double)w * (double)h, max_pixels);
    int bps = maxv > 255 ? 2 : 1;
    size_t need = (size_t)w * (size_t)h * (size_t)nc * (size_t)bps;
    if (n - i < need)
        return dd_fail(err, DD_E_FORMAT, "%s: PGM/PPM is truncated (%zu of %zu data bytes)",
                       name, n - i, need);
    int rc = dd_image_alloc(out, (int)h, (int)w, channels, err);
    if (rc) return rc;
    const unsigned char *p = b + i;
    size_t np = (size_t)w * (size_t)h;
    float s[3];
    for (size_t k = 0; k < np; k++) {
        for (int c = 0; c < nc; c++) {
            size_t o = (k * nc + c) * bps;
            unsigned v = bps == 2 ? ((unsigned)p[o] << 8 | p[o + 1]) : p[o];
            if (v > (unsigned)maxv) v = (unsigned)maxv;
            s[c] = (float)v / (float)maxv;
        }
        float *d = out->data + k * channels;
        if (channels == nc) {
            for (int c = 0; c < nc; c++) d[c] = s[c];
        } else if (channels == 3) {
            d[0] = d[1] = d[2] = s[0];
        } else { /* same luminance weights as stb_image */
            d[0] = (77.0f * s[0] + 150.0f * s[1] + 29.0f * s[2]) / 256.0f;
        }
    }
    return DD_OK;
}

int dd_image_decode(const void *buf, size_t len, const char *name, int channels,
                    long max_pixels, dd_image *out, dd_error *err) {
    out->data = NULL;
    out->h = out->w = out->c = 0;
    if (!name) name = "<memory>";
    if (!buf && len) return dd_fail(err, DD_E_INVALID, "%s: no buffer", name);
    if (channels != 1 && channels != 3)
        return dd_fail(err, DD_E_INVALID, "%s: channels must be 1 or 3, got %d", name,
                       channels);
    if (max_pixels <= 0) max_pixels = DD_IMAGE_MAX_PIXELS_DEFAULT;
    const unsigned char *b = buf;
    if (len == 0) return dd_fail(err, DD_E_FORMAT, "%s: empty file (0 bytes)", name);
    if (len > (size_t)INT_MAX)
        return dd_fail(err, DD_E_RANGE, "%s: file too large (%zu bytes)", name, len);
    int fmt = sniff(b, len);
    if (fmt == FMT_NONE) {
        if (len >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '4')
            return dd_fail(err, DD_E_FORMAT,
                           "%s: ASCII PBM/PGM/PPM is not supported (use binary P5/P6)", name);
        return dd_fail(err, DD_E_FORMAT,
                       "%s: not an image in a supported format (PNG, JPEG, BMP, PGM/PPM)",
                       name);
    }
    if (fmt == FMT_PNM) return decode_pnm(b, len, name, channels, max_pixels, out, err);
    double hw = 0, hh = 0;
    if (header_dims(b, len, fmt, &hw, &hh) && hw * hh > (double)max_pixels)
        return dd_fail(err, DD_E_RANGE,
                       "%s: image is %.0fx%.0f = %.0f pixels, above the cap of %ld pixels",
                       name, hw, hh, hw * hh, max_pixels);
    /* Structure first: even stbi_info parses JPEG tables, see jpeg_tables_ok. */
    int rc = structure_ok(b, len, fmt, name, err);
    if (rc) return rc;
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(b, (int)len, &w, &h, &comp))
        return dd_fail(err, DD_E_FORMAT, "%s: unreadable image header (%s)", name,
                       stbi_failure_reason() ? stbi_failure_reason() : "unknown");
    if (w <= 0 || h <= 0)
        return dd_fail(err, DD_E_FORMAT, "%s: image has zero size (%dx%d)", name, w, h);
    if ((double)w * (double)h > (double)max_pixels)
        return dd_fail(err, DD_E_RANGE,
                       "%s: image is %dx%d = %.0f pixels, above the cap of %ld pixels", name,
                       w, h, (double)w * (double)h, max_pixels);

    int is16 = stbi_is_16_bit_from_memory(b, (int)len);
    int x = 0, y = 0, nc = 0;
    void *px = is16 ? (void *)stbi_load_16_from_memory(b, (int)len, &x, &y, &nc, channels)
                    : (void *)stbi_load_from_memory(b, (int)len, &x, &y, &nc, channels);
    if (!px)
        return dd_fail(err, DD_E_FORMAT, "%s: cannot decode image (%s)", name,
                       stbi_failure_reason() ? stbi_failure_reason() : "unknown");
    if (x != w || y != h) { /* header and data disagree: distrust both */
        stbi_image_free(px);
        return dd_fail(err, DD_E_FORMAT, "%s: decoded size %dx%d differs from header %dx%d",
                       name, x, y, w, h);
    }
    rc = dd_image_alloc(out, h, w, channels, err);
    if (rc) {
        stbi_image_free(px);
        return rc;
    }
    size_t n = (size_t)h * (size_t)w * (size_t)channels;
    /* Divide rather than multiply by a reciprocal: k/255 is then the float
     * nearest the true value, the same a caller computes. */
    if (is16) {
        const unsigned short *p = px;
        for (size_t i = 0; i < n; i++) out->data[i] = (float)p[i] / 65535.0f;
    } else {
        const unsigned char *p = px;
        for (size_t i = 0; i < n; i++) out->data[i] = (float)p[i] / 255.0f;
    }
    stbi_image_free(px);
    return DD_OK;
}

int dd_image_load(const char *path, int channels, long max_pixels, dd_image *out,
                  dd_error *err) {
    out->data = NULL;
    out->h = out->w = out->c = 0;
    unsigned char *buf;
    size_t len;
    int rc = dd_read_file(path, DD_IMAGE_MAX_FILE_BYTES, &buf, &len, err);
    if (rc) return rc;
    rc = dd_image_decode(buf, len, path, channels, max_pixels, out, err);
    free(buf);
    return rc;
}

int dd_image_load_rgb(const char *path, dd_image *out, dd_error *err) {
    return dd_image_load(path, 3, 0, out, err);
}

int dd_image_load_mask(const char *path, dd_image *out, dd_error *err) {
    return dd_image_load(path, 1, 0, out, err);
}

int dd_image_info(const char *path, int *h, int *w, int *c, dd_error *err) {
    /* The whole file is read and checked as for decoding: stb's header
     * parsers are not safe on hostile input either (see jpeg_tables_ok). */
    unsigned char *b;
    size_t n;
    int rc = dd_read_file(path, DD_IMAGE_MAX_FILE_BYTES, &b, &n, err);
    if (rc) return rc;
    int fmt = n ? sniff(b, n) : FMT_NONE;
    double dw = 0, dh = 0;
    int x = 0, y = 0, comp = 0;
    if (n == 0) rc = dd_fail(err, DD_E_FORMAT, "%s: empty file (0 bytes)", path);
    else if (n > (size_t)INT_MAX) rc = dd_fail(err, DD_E_RANGE, "%s: file too large", path);
    else if (fmt == FMT_NONE)
        rc = dd_fail(err, DD_E_FORMAT,
                     "%s: not an image in a supported format (PNG, JPEG, BMP, PGM/PPM)", path);
    else if (fmt != FMT_PNM && header_dims(b, n, fmt, &dw, &dh) &&
             dw * dh > (double)DD_IMAGE_MAX_PIXELS_DEFAULT) {
        x = dw > INT_MAX ? INT_MAX : (int)dw; /* stb refuses such headers: report them */
        y = dh > INT_MAX ? INT_MAX : (int)dh;
    } else if (!(rc = structure_ok(b, n, fmt, path, err)) &&
               !stbi_info_from_memory(b, (int)n, &x, &y, &comp)) {
        rc = dd_fail(err, DD_E_FORMAT, "%s: unreadable image header (%s)", path,
                     stbi_failure_reason() ? stbi_failure_reason() : "unknown");
    }
    free(b);
    if (!rc) {
        *h = y;
        *w = x;
        *c = comp;
    }
    return rc;
}

/* ---- resampling ---------------------------------------------------------- */

/* For one axis: output o reads src[start[o] .. start[o]+count[o]) with the
 * weights in wt[off[o] ...]. */
typedef struct {
    int *start, *count, *off;
    float *wt;
} axis_plan;

static void plan_free(axis_plan *p) {
    free(p->start);
    free(p->count);
    free(p->off);
    free(p->wt);
}

static int plan_make(axis_plan *p, int sn, int dn) {
    memset(p, 0, sizeof *p);
    /* Each output touches at most ceil(sn/dn) + 2 inputs when shrinking, 2
     * when enlarging. */
    size_t per = (dn < sn) ? (size_t)(sn / dn) + 3 : 2;
    p->start = malloc(sizeof(int) * (size_t)dn);
    p->count = malloc(sizeof(int) * (size_t)dn);
    p->off = malloc(sizeof(int) * (size_t)dn);
    p->wt = malloc(sizeof(float) * per * (size_t)dn);
    if (!p->start || !p->count || !p->off || !p->wt) {
        plan_free(p);
        return -1;
    }
    int k = 0;
    for (int o = 0; o < dn; o++) {
        p->off[o] = k;
        if (dn == sn) {
            p->start[o] = o;
            p->count[o] = 1;
            p->wt[k++] = 1.0f;
        } else if (dn < sn) {
            /* Exact box filter: output o covers source [a, b). */
            double s = (double)sn / dn, a = o * s, b = (o + 1) * s;
            int i0 = (int)floor(a), i1 = (int)ceil(b);
            if (i1 > sn) i1 = sn;
            p->start[o] = i0;
            p->count[o] = i1 - i0;
            for (int i = i0; i < i1; i++) {
                double lo = a > i ? a : i, hi = b < i + 1 ? b : i + 1;
                p->wt[k++] = (float)((hi - lo) / s);
            }
        } else {
            double x = (o + 0.5) * (double)sn / dn - 0.5;
            if (x < 0) x = 0;
            int i0 = (int)floor(x);
            if (i0 > sn - 1) i0 = sn - 1;
            double f = x - i0;
            if (i0 + 1 <= sn - 1 && f > 0) {
                p->start[o] = i0;
                p->count[o] = 2;
                p->wt[k++] = (float)(1.0 - f);
                p->wt[k++] = (float)f;
            } else {
                p->start[o] = i0;
                p->count[o] = 1;
                p->wt[k++] = 1.0f;
            }
        }
    }
    return 0;
}

int dd_resize(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
              dd_error *err) {
    if (!src || !dst || sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || c <= 0)
        return dd_fail(err, DD_E_INVALID, "resize: bad shapes %dx%dx%d -> %dx%d", sh, sw, c,
                       dh, dw);
    if (sh == dh && sw == dw) {
        memcpy(dst, src, sizeof(float) * (size_t)sh * sw * c);
        return DD_OK;
    }
    axis_plan px, py;
    if (plan_make(&px, sw, dw)) return dd_fail(err, DD_E_NOMEM, "resize: no memory");
    if (plan_make(&py, sh, dh)) {
        plan_free(&px);
        return dd_fail(err, DD_E_NOMEM, "resize: no memory");
    }
    float *tmp = malloc(sizeof(float) * (size_t)sh * dw * c); /* rows resampled in x */
    if (!tmp) {
        plan_free(&px);
        plan_free(&py);
        return dd_fail(err, DD_E_NOMEM, "resize: no memory for %dx%dx%d", sh, dw, c);
    }
    for (int y = 0; y < sh; y++) {
        const float *row = src + (size_t)y * sw * c;
        float *trow = tmp + (size_t)y * dw * c;
        for (int o = 0; o < dw; o++) {
            const float *wt = px.wt + px.off[o];
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int j = 0; j < px.count[o]; j++)
                    acc += wt[j] * row[(size_t)(px.start[o] + j) * c + ch];
                trow[(size_t)o * c + ch] = acc;
            }
        }
    }
    size_t rowlen = (size_t)dw * c;
    for (int o = 0; o < dh; o++) {
        float *drow = dst + (size_t)o * rowlen;
        const float *wt = py.wt + py.off[o];
        for (size_t i = 0; i < rowlen; i++) drow[i] = 0;
        for (int j = 0; j < py.count[o]; j++) {
            const float *trow = tmp + (size_t)(py.start[o] + j) * rowlen;
            float wj = wt[j];
            for (size_t i = 0; i < rowlen; i++) drow[i] += wj * trow[i];
        }
    }
    free(tmp);
    plan_free(&px);
    plan_free(&py);
    return DD_OK;
}

int dd_image_resized(const dd_image *src, int h, int w, dd_image *out, dd_error *err) {
    int rc = dd_image_alloc(out, h, w, src->c, err);
    if (rc) return rc;
    rc = dd_resize(src->data, src->h, src->w, src->c, out->data, h, w, err);
    if (rc) dd_image_free(out);
    return rc;
}

void dd_mask_binarize(float *m, size_t n, float thr) {
    for (size_t i = 0; i < n; i++) m[i] = m[i] > thr ? 1.0f : 0.0f;
}

/* ---- PNG writing ----------------------------------------------------------- */

/* Every PNG goes through the atomic writer (core/fileio.h): a temporary file
 * next to the target, renamed over it only when complete. */
static void sink_write(void *ctx, void *data, int size) {
    if (size > 0) dd_afile_write(ctx, data, (size_t)size);
}

static unsigned char to_u8(float v) {
    if (!(v > 0)) return 0; /* NaN -> 0 */
    if (v >= 1) return 255;
    return (unsigned char)(v * 255.0f + 0.5f);
}

static unsigned short to_u16(float v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 65535;
    return (unsigned short)(v * 65535.0f + 0.5f);
}

static int write_png8(const char *path, const float *v, int h, int w, int comp,
                      dd_error *err) {
    if (!path || !v || h <= 0 || w <= 0)
        return dd_fail(err, DD_E_INVALID, "%s: cannot write a %dx%d image", path ? path : "?",
                       h, w);
    size_t n = (size_t)h * w * comp;
    unsigned char *px = malloc(n);
    if (!px) return dd_fail(err, DD_E_NOMEM, "%s: no memory", path);
    for (size_t i = 0; i < n; i++) px[i] = to_u8(v[i]);
    dd_afile *f = dd_afile_open(path, err);
    int rc = f ? DD_OK : err ? err->code : DD_E_IO;
    if (f) {
        if (stbi_write_png_to_func(sink_write, f, w, h, comp, px, w * comp)) {
            rc = dd_afile_commit(f, err);
        } else {
            dd_afile_abort(f);
            rc = dd_fail(err, DD_E_IO, "%s: PNG encoding failed", path);
        }
    }
    free(px);
    return rc;
}

int dd_write_png_gray8(const char *path, const float *v, int h, int w, dd_error *err) {
    return write_png8(path, v, h, w, 1, err);
}

int dd_write_png_rgb8(const char *path, const float *rgb, int h, int w, dd_error *err) {
    return write_png8(path, rgb, h, w, 3, err);
}

int dd_image_write_png(const char *path, const dd_image *img, dd_error *err) {
    if (!img || (img->c != 1 && img->c != 3))
        return dd_fail(err, DD_E_INVALID, "%s: can only write 1- or 3-channel images",
                       path ? path : "?");
    return write_png8(path, img->data, img->h, img->w, img->c, err);
}

static uint32_t crc_table[256];
static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const unsigned char *a, size_t na, const unsigned char *b,
                         size_t nb) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < na; i++) c = crc_table[(c ^ a[i]) & 0xFF] ^ (c >> 8);
    for (size_t i = 0; i < nb; i++) c = crc_table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void png_chunk(dd_afile *s, const char *type, const unsigned char *data, size_t n) {
    unsigned char hdr[8], crc[4];
    put_be32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    put_be32(crc, crc32_of(hdr + 4, 4, data, n));
    dd_afile_write(s, hdr, 8);
    dd_afile_write(s, data, n);
    dd_afile_write(s, crc, 4);
}

int dd_write_png_gray16(const char *path, const float *v, int h, int w, dd_error *err) {
    if (!path || !v || h <= 0 || w <= 0)
        return dd_fail(err, DD_E_INVALID, "%s: cannot write a %dx%d image", path ? path : "?",
                       h, w);
    size_t stride = (size_t)w * 2 + 1, n = stride * (size_t)h;
    if (n > (size_t)INT_MAX / 2) return dd_fail(err, DD_E_RANGE, "%s: image too large", path);
    unsigned char *raw = malloc(n);
    if (!raw) return dd_fail(err, DD_E_NOMEM, "%s: no memory", path);
    for (int y = 0; y < h; y++) {
        unsigned char *r = raw + (size_t)y * stride;
        r[0] = 0; /* filter: none */
        for (int x = 0; x < w; x++) {
            unsigned short q = to_u16(v[(size_t)y * w + x]);
            r[1 + 2 * x] = (unsigned char)(q >> 8); /* PNG is big-endian */
            r[2 + 2 * x] = (unsigned char)q;
        }
    }
    int zlen = 0;
    unsigned char *z = stbi_zlib_compress(raw, (int)n, &zlen, 8);
    free(raw);
    if (!z) return dd_fail(err, DD_E_NOMEM, "%s: compression failed", path);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 16; /* bit depth */
    ihdr[9] = 0;  /* grayscale */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
    pthread_once(&crc_once, crc_init);
    dd_afile *f = dd_afile_open(path, err);
    int rc = f ? DD_OK : err ? err->code : DD_E_IO;
    if (f) {
        dd_afile_write(f, sig, 8);
        png_chunk(f, "IHDR", ihdr, 13);
        png_chunk(f, "IDAT", z, (size_t)zlen);
        png_chunk(f, "IEND", NULL, 0);
        rc = dd_afile_commit(f, err);
    }
    free(z);
    return rc;
}

void dd_image_paste(float *dst, int dh, int dw, const float *src, int sh, int sw, int sc,
                    int y0, int x0) {
    for (int y = 0; y < sh; y++) {
        int ty = y0 + y;
        if (ty < 0 || ty >= dh) continue;
        for (int x = 0; x < sw; x++) {
            int tx = x0 + x;
            if (tx < 0 || tx >= dw) continue;
            float *d = dst + ((size_t)ty * dw + tx) * 3;
            const float *s = src + ((size_t)y * sw + x) * sc;
            for (int k = 0; k < 3; k++) d[k] = s[sc == 1 ? 0 : k];
        }
    }
}

void dd_scaled_size(int ih, int iw, float scale, int min_h, int min_w, int *oh, int *ow) {
    if (!(scale > 0)) {
        *oh = min_h, *ow = min_w;
        return;
    }
    double sh = ih * (double)scale, sw = iw * (double)scale;
    *oh = sh <= min_h ? min_h : (int)lround(sh);
    *ow = sw <= min_w ? min_w : (int)lround(sw);
}

/* scipy's "reflect": half-sample symmetric, repeated for kernels wider than the image. */
static long reflect(long i, long n) {
    long p = 2 * n;
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - 1 - i;
}

#define MAX_RADIUS 400

int dd_gaussian_blur(const float *in, float *out, int H, int W, float sigma, float *tmp,
                     dd_error *err) {
    if (!in || !out || H <= 0 || W <= 0)
        return dd_fail(err, DD_E_INVALID, "gaussian blur: bad arguments (%dx%d)", H, W);
    if (!(sigma >= 0) || sigma > 100)
        return dd_fail(err, DD_E_RANGE, "gaussian blur: sigma %g outside [0, 100]", sigma);
    long n = (long)H * W;
    if (sigma == 0) {
        if (out != in) memmove(out, in, sizeof(float) * (size_t)n);
        return DD_OK;
    }
    int r = (int)(4.0 * sigma + 0.5); /* scipy: int(truncate * sd + 0.5) */
    if (r > MAX_RADIUS) r = MAX_RADIUS;
    double k[2 * MAX_RADIUS + 1], sum = 0;
    for (int i = -r; i <= r; i++) sum += k[i + r] = exp(-0.5 * i * i / ((double)sigma * sigma));
    for (int i = 0; i <= 2 * r; i++) k[i] /= sum;
    float *t = tmp ? tmp : malloc(sizeof(float) * (size_t)n);
    if (!t) return dd_fail(err, DD_E_NOMEM, "gaussian blur: out of memory (%dx%d)", H, W);
    /* Rows into t, then columns into out: out may alias in because in is not read again. */
    for (int y = 0; y < H; y++) {
        const float *row = in + (long)y * W;
        for (int x = 0; x < W; x++) {
            double s = 0;
            if (x >= r && x + r < W)
                for (int j = -r; j <= r; j++) s += k[j + r] * row[x + j];
            else
                for (int j = -r; j <= r; j++) s += k[j + r] * row[reflect(x + j, W)];
            t[(long)y * W + x] = (float)s;
        }
    }
    /* Columns a whole row at a time, so the inner loop runs along memory. */
    for (int y = 0; y < H; y++) {
        float *o = out + (long)y * W;
        for (int x = 0; x < W; x++) o[x] = 0;
        for (int j = -r; j <= r; j++) {
            const float *tr = t + reflect(y + j, H) * W;
            float kj = (float)k[j + r];
            for (int x = 0; x < W; x++) o[x] += kj * tr[x];
        }
    }
    if (!tmp) free(t);
    return DD_OK;
}
