/* text.h — owns the one growable text buffer of the library (metrics writers, HTML report,
 * model-file headers): appends never fail loudly, the out-of-memory state is sticky, so a
 * writer checks once, at the end; escaping for JSON, HTML and Base64. Writing the buffer to a
 * file goes through the atomic writer of core/fileio.h. */
#ifndef DD_TEXT_H
#define DD_TEXT_H

#include <stddef.h>

#include "core/status.h"

typedef struct dd_textbuf {
    char *s;    /* NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;    /* an append failed; the content is incomplete */
} dd_textbuf;

void dd_textbuf_init(dd_textbuf *b);
void dd_textbuf_free(dd_textbuf *b);
void dd_textbuf_put(dd_textbuf *b, const void *data, size_t n);
void dd_textbuf_puts(dd_textbuf *b, const char *s);
void dd_textbuf_printf(dd_textbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s as a JSON string literal (quotes included). */
void dd_textbuf_json_string(dd_textbuf *b, const char *s);
/* s with & < > " ' escaped for HTML text and attribute values. */
void dd_textbuf_html(dd_textbuf *b, const char *s);
/* Base64 (RFC 4648, with padding) of data. */
void dd_textbuf_base64(dd_textbuf *b, const unsigned char *data, size_t n);

/* The buffer's content as the new content of path, atomically (dd_write_file_atomic);
 * DD_E_NOMEM if an append had failed. */
int dd_textbuf_write_atomic(const dd_textbuf *b, const char *path, dd_error *err);

#endif
