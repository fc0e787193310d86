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
/* Write s as a JSON string literal (quotes and escapes). */
void dd_json_write_string(FILE *f, const char *s);
/* Append s as a JSON string literal to buf (size cap, keeps NUL); returns chars needed. */
size_t dd_json_escape(char *buf, size_t cap, const char *s);

#endif
