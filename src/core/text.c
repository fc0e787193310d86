/* text.c — the growable text buffer (see text.h). */
#include "core/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/json.h"

void dd_textbuf_init(dd_textbuf *b) { memset(b, 0, sizeof *b); }

void dd_textbuf_free(dd_textbuf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* Make room for n more bytes plus the terminating NUL. */
static int reserve(dd_textbuf *b, size_t n) {
    if (b->oom) return 0;
    if (n > (size_t)-1 / 2 - b->len) { b->oom = 1; return 0; }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap += cap / 2 + 64;
    char *s = realloc(b->s, cap);
    if (!s) { b->oom = 1; return 0; }
    b->s = s;
    b->cap = cap;
    return 1;
}

void dd_textbuf_put(dd_textbuf *b, const void *data, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void dd_textbuf_puts(dd_textbuf *b, const char *s) { dd_textbuf_put(b, s, strlen(s)); }

void dd_textbuf_printf(dd_textbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < sizeof small) { dd_textbuf_put(b, small, (size_t)n); return; }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dd_textbuf_json_string(dd_textbuf *b, const char *s) {
    dd_textbuf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int n;
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            dd_textbuf_put(b, e, 2);
        } else if (*p < 0x20) {
            dd_textbuf_printf(b, "\\u%04x", *p);
        } else if ((n = dd_utf8_seq((const char *)p)) > 0) {
            dd_textbuf_put(b, p, (size_t)n);
            p += n - 1;
        } else {
            dd_textbuf_puts(b, "\\ufffd"); /* an invalid UTF-8 byte (core/json.h) */
        }
    }
    dd_textbuf_put(b, "\"", 1);
}

void dd_textbuf_html(dd_textbuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': dd_textbuf_puts(b, "&amp;"); break;
        case '<': dd_textbuf_puts(b, "&lt;"); break;
        case '>': dd_textbuf_puts(b, "&gt;"); break;
        case '"': dd_textbuf_puts(b, "&quot;"); break;
        case '\'': dd_textbuf_puts(b, "&#39;"); break;
        default: dd_textbuf_put(b, p, 1);
        }
    }
}

void dd_textbuf_base64(dd_textbuf *b, const unsigned char *d, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!reserve(b, (n + 2) / 3 * 4)) return;
    char *o = b->s + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0u);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->s);
    b->s[b->len] = '\0';
}

int dd_textbuf_write_atomic(const dd_textbuf *b, const char *path, dd_error *err) {
    if (b->oom) return dd_fail(err, DD_E_NOMEM, "write %s: out of memory building the text", path);
    return dd_write_file_atomic(path, b->s ? b->s : "", b->len, err);
}
