/* json.h — owns a small strict JSON reader (RFC 8259) and a writer helper, used
 * for config files, safetensors headers and metadata. Parsing builds a tree in
 * one allocation-per-node pool; limits on depth and size guard untrusted input. */
#ifndef DD_JSON_H
#define DD_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "core/status.h"

typedef enum { DD_JNULL, DD_JBOOL, DD_JNUM, DD_JSTR, DD_JARR, DD_JOBJ } dd_jtype;

typedef struct dd_json {
    dd_jtype type;
    double num;            /* DD_JNUM, DD_JBOOL (0/1) */
    char *str;             /* DD_JSTR (NUL-terminated, unescaped); key of an object member */
    char *key;             /* set on members of an object */
    struct dd_json *child; /* first element / member */
    struct dd_json *next;  /* next sibling */
    int count;             /* number of children */
} dd_json;

/* Parse `len` bytes; `what` names the source in messages (a file name). */
int dd_json_parse(const char *text, size_t len, const char *what, dd_json **out, dd_error *err);
void dd_json_free(dd_json *j);
/* Member of an object by key, or NULL. */
const dd_json *dd_json_get(const dd_json *obj, const char *key);
/* Write s as a JSON string literal (quotes and escapes). The output is always
 * valid JSON in valid UTF-8: '"', '\\' and control characters are escaped, valid
 * UTF-8 sequences are copied, and each byte that starts no valid sequence
 * (stray continuation bytes, overlong forms, surrogates, above U+10FFFF,
 * truncated sequences — e.g. a Latin-1 file name) becomes \ufffd, the
 * replacement character. dd_json_escape and dd_textbuf_json_string
 * (core/text.h) follow the same rule. */
void dd_json_write_string(FILE *f, const char *s);
/* Append s as a JSON string literal to buf (size cap, keeps NUL); returns chars needed. */
size_t dd_json_escape(char *buf, size_t cap, const char *s);
/* v with %.9g (round-trips a float), or null when v is NaN or infinite: JSON has
 * no NaN. */
void dd_json_write_number(FILE *f, double v);
/* Length (1..4) of the valid UTF-8 sequence that starts at s, 0 when the byte
 * at s starts none. */
int dd_utf8_seq(const char *s);

#endif
