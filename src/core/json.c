/* json.c — strict recursive-descent JSON reader (see json.h). */
#include "core/json.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct parser {
    const char *s, *end, *what, *start;
    dd_error *err;
    int depth;
} parser;

static int fail_at(parser *p, const char *msg) {
    return dd_fail(p->err, DD_E_FORMAT, "%s: invalid JSON at byte %ld: %s", p->what, (long)(p->s - p->start), msg);
}

static void skip_ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static dd_json *node(parser *p, dd_jtype t) {
    dd_json *j = calloc(1, sizeof *j);
    if (!j) dd_fail(p->err, DD_E_NOMEM, "%s: out of memory parsing JSON", p->what);
    else j->type = t;
    return j;
}

static int put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) { o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F)); return 3; }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

static int parse_string(parser *p, char **out) {
    p->s++; /* opening quote */
    const char *start = p->s;
    size_t n = 0;
    while (p->s < p->end && *p->s != '"') {
        if ((unsigned char)*p->s < 0x20) return fail_at(p, "control character in string");
        if (*p->s == '\\') p->s++;
        p->s++, n++;
    }
    if (p->s >= p->end) return fail_at(p, "unterminated string");
    char *o = malloc(n * 4 + 1), *w = o;
    if (!o) return dd_fail(p->err, DD_E_NOMEM, "%s: out of memory", p->what);
    for (const char *r = start; r < p->s; r++) {
        if (*r != '\\') { *w++ = *r; continue; }
        r++;
        switch (*r) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (p->s - r < 5 || hex4(r + 1, &cp)) { free(o); return fail_at(p, "bad \\u escape"); }
            r += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p->s - r >= 7 && r[1] == '\\' && r[2] == 'u') {
                unsigned lo;
                if (!hex4(r + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
            }
            w += put_utf8(w, cp);
            break;
        }
        default: free(o); return fail_at(p, "bad escape");
        }
    }
    *w = 0;
    p->s++; /* closing quote */
    *out = o;
    return DD_OK;
}

static int parse_value(parser *p, dd_json **out);

static int parse_container(parser *p, dd_json *j, char close) {
    if (++p->depth > MAX_DEPTH) return fail_at(p, "nesting too deep");
    p->s++;
    skip_ws(p);
    dd_json **tail = &j->child;
    if (p->s < p->end && *p->s == close) { p->s++; p->depth--; return DD_OK; }
    for (;;) {
        skip_ws(p);
        char *key = NULL;
        if (close == '}') {
            if (p->s >= p->end || *p->s != '"') return fail_at(p, "expected a member name");
            int rc = parse_string(p, &key);
            if (rc) return rc;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') { free(key); return fail_at(p, "expected ':'"); }
            p->s++;
        }
        dd_json *v = NULL;
        int rc = parse_value(p, &v);
        if (rc) { free(key); return rc; }
        v->key = key;
        *tail = v;
        tail = &v->next;
        j->count++;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') { p->s++; continue; }
        if (p->s < p->end && *p->s == close) { p->s++; p->depth--; return DD_OK; }
        return fail_at(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(parser *p, dd_json **out) {
    skip_ws(p);
    if (p->s >= p->end) return fail_at(p, "unexpected end");
    char c = *p->s;
    dd_json *j = NULL;
    int rc = DD_OK;
    if (c == '{' || c == '[') {
        if (!(j = node(p, c == '{' ? DD_JOBJ : DD_JARR))) return DD_E_NOMEM;
        rc = parse_container(p, j, c == '{' ? '}' : ']');
    } else if (c == '"') {
        if (!(j = node(p, DD_JSTR))) return DD_E_NOMEM;
        rc = parse_string(p, &j->str);
    } else if (c == '-' || isdigit((unsigned char)c)) {
        if (!(j = node(p, DD_JNUM))) return DD_E_NOMEM;
        char buf[64];
        size_t n = 0;
        while (p->s + n < p->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", p->s[n])) n++;
        memcpy(buf, p->s, n);
        buf[n] = 0;
        char *e;
        j->num = strtod(buf, &e);
        if (e != buf + n || n == 0) rc = fail_at(p, "bad number");
        p->s += n;
    } else if (p->end - p->s >= 4 && !memcmp(p->s, "true", 4)) {
        if (!(j = node(p, DD_JBOOL))) return DD_E_NOMEM;
        j->num = 1, p->s += 4;
    } else if (p->end - p->s >= 5 && !memcmp(p->s, "false", 5)) {
        if (!(j = node(p, DD_JBOOL))) return DD_E_NOMEM;
        p->s += 5;
    } else if (p->end - p->s >= 4 && !memcmp(p->s, "null", 4)) {
        if (!(j = node(p, DD_JNULL))) return DD_E_NOMEM;
        p->s += 4;
    } else {
        return fail_at(p, "unexpected character");
    }
    if (rc) { dd_json_free(j); return rc; }
    *out = j;
    return DD_OK;
}

int dd_json_parse(const char *text, size_t len, const char *what, dd_json **out, dd_error *err) {
    *out = NULL;
    parser p = {text, text + len, what ? what : "JSON", text, err, 0};
    dd_json *j = NULL;
    int rc = parse_value(&p, &j);
    if (rc) return rc;
    skip_ws(&p);
    if (p.s != p.end) {
        dd_json_free(j);
        return fail_at(&p, "trailing characters");
    }
    *out = j;
    return DD_OK;
}

void dd_json_free(dd_json *j) {
    while (j) {
        dd_json *next = j->next;
        dd_json_free(j->child);
        free(j->str);
        free(j->key);
        free(j);
        j = next;
    }
}

const dd_json *dd_json_get(const dd_json *obj, const char *key) {
    if (!obj || obj->type != DD_JOBJ) return NULL;
    for (const dd_json *c = obj->child; c; c = c->next)
        if (c->key && !strcmp(c->key, key)) return c;
    return NULL;
}

int dd_utf8_seq(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0; /* a continuation byte, C0/C1 (always overlong) or F5..FF */
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* truncated (the NUL ends it too) */
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* The escaped form of the character at s into out (NUL-terminated); returns the
 * bytes of s consumed. The one escaping rule of every JSON writer here. */
static size_t escape_one(const char *s, char out[8]) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
        out[0] = '\\', out[1] = (char)c, out[2] = 0;
        return 1;
    }
    if (c < 0x20) {
        snprintf(out, 8, "\\u%04x", c);
        return 1;
    }
    int n = dd_utf8_seq(s);
    if (!n) {
        memcpy(out, "\\ufffd", 7); /* U+FFFD REPLACEMENT CHARACTER for each invalid byte */
        return 1;
    }
    memcpy(out, s, (size_t)n);
    out[n] = 0;
    return (size_t)n;
}

size_t dd_json_escape(char *buf, size_t cap, const char *s) {
    size_t n = strlen(buf);
    size_t need = n;
#define PUT(ch) do { if (need + 1 < cap) buf[need] = (ch); need++; } while (0)
    PUT('"');
    for (const char *c = s; *c;) {
        char tmp[8];
        c += escape_one(c, tmp);
        for (char *t = tmp; *t; t++) PUT(*t);
    }
    PUT('"');
#undef PUT
    if (cap) buf[need < cap ? need : cap - 1] = 0;
    return need;
}

void dd_json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const char *c = s; *c;) {
        char tmp[8];
        c += escape_one(c, tmp);
        fputs(tmp, f);
    }
    fputc('"', f);
}

void dd_json_write_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}
