/* settings_table.c — the generic key-table engine (see settings_table.h). */
#include "core/settings_table.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const dd_key *dd_keys_find(const dd_key_table *t, const char *name) {
    for (int i = 0; t && i < t->n; i++)
        if (!strcmp(t->keys[i].name, name)) return &t->keys[i];
    return NULL;
}

/* A number with nothing after it but spaces. NaN, infinities and overflow (which
 * strtod turns into an infinity) are parsed, then refused by the caller naming
 * the key; an underflow is the nearest representable value. */
static int parse_num(const char *v, double *out) {
    char *e;
    *out = strtod(v, &e);
    while (*e == ' ') e++;
    return (e == v || *e) ? -1 : 0;
}

/* Digits only: exact conversion for 64-bit values, which a double cannot hold. */
static int all_digits(const char *v) {
    if (!*v) return 0;
    for (; *v; v++)
        if (*v < '0' || *v > '9') return 0;
    return 1;
}

int dd_key_set(const dd_key *k, void *obj, const char *v, const char *origin, dd_error *err) {
    char *field = (char *)obj + k->off;
    const char *name = k->name;
    double x;
    switch (k->type) {
    case DD_KEY_INT:
    case DD_KEY_LONG:
    case DD_KEY_U64:
    case DD_KEY_FLOAT:
        if (k->type == DD_KEY_U64 && all_digits(v)) {
            errno = 0;
            unsigned long long u = strtoull(v, NULL, 10);
            if (errno || (double)u < k->lo || (double)u > k->hi)
                return dd_fail(err, DD_E_RANGE, "%s: setting '%s' = %s is out of range %g..%g", origin, name, v, k->lo, k->hi);
            *(uint64_t *)field = (uint64_t)u;
            return DD_OK;
        }
        if (parse_num(v, &x))
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' needs a number, got '%s'", origin, name, v);
        if (!isfinite(x))
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' needs a finite number, got '%s'", origin, name, v);
        if (x < k->lo || x > k->hi)
            return dd_fail(err, DD_E_RANGE, "%s: setting '%s' = %s is out of range %g..%g", origin, name, v, k->lo, k->hi);
        if (k->type != DD_KEY_FLOAT && x != floor(x))
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' needs a whole number, got '%s'", origin, name, v);
        if (k->type == DD_KEY_INT) *(int *)field = (int)x;
        else if (k->type == DD_KEY_LONG) *(long *)field = (long)x;
        else if (k->type == DD_KEY_U64) *(uint64_t *)field = (uint64_t)x;
        else {
            float f = (float)x;
            if (!isfinite(f))
                return dd_fail(err, DD_E_RANGE, "%s: setting '%s' = %s does not fit a float", origin, name, v);
            *(float *)field = f;
        }
        return DD_OK;
    case DD_KEY_STRING:
        if (strlen(v) >= k->cap)
            return dd_fail(err, DD_E_RANGE, "%s: setting '%s' is too long (%zu bytes, at most %zu)", origin, name,
                           strlen(v), k->cap ? k->cap - 1 : 0);
        memcpy(field, v, strlen(v) + 1);
        return DD_OK;
    case DD_KEY_ENUM: {
        for (int i = 0; k->names && k->names[i]; i++)
            if (!strcmp(v, k->names[i])) {
                *(int *)field = i;
                return DD_OK;
            }
        char list[256] = "";
        for (int i = 0; k->names && k->names[i]; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", k->names[i]);
        }
        return dd_fail(err, DD_E_INVALID, "%s: setting '%s' must be one of %s, got '%s'", origin, name, list, v);
    }
    case DD_KEY_CUSTOM: {
        char why[256] = "bad value";
        if (!k->parse) return dd_fail(err, DD_E_INVALID, "%s: setting '%s' has no parser", origin, name);
        if (k->parse(k, obj, v, why, sizeof why))
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' %s, got '%s'", origin, name, why, v);
        return DD_OK;
    }
    }
    return dd_fail(err, DD_E_INVALID, "%s: setting '%s' has an unknown type", origin, name);
}

void dd_key_format(const dd_key *k, const void *obj, char *buf, size_t cap, int exact) {
    const char *field = (const char *)obj + k->off;
    if (!cap) return;
    buf[0] = 0;
    switch (k->type) {
    case DD_KEY_INT: snprintf(buf, cap, "%d", *(const int *)field); break;
    case DD_KEY_LONG: snprintf(buf, cap, "%ld", *(const long *)field); break;
    case DD_KEY_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case DD_KEY_FLOAT: snprintf(buf, cap, exact ? "%.9g" : "%g", *(const float *)field); break;
    case DD_KEY_STRING: snprintf(buf, cap, "%s", field); break;
    case DD_KEY_ENUM: {
        int v = *(const int *)field, n = 0;
        while (k->names && k->names[n]) n++;
        snprintf(buf, cap, "%s", v >= 0 && v < n ? k->names[v] : "?");
        break;
    }
    case DD_KEY_CUSTOM:
        if (k->print) k->print(k, obj, buf, cap);
        break;
    }
}

int dd_keys_set(const dd_key_group *g, int n, const char *name, const char *text, const char *origin,
                dd_error *err) {
    for (int i = 0; i < n; i++) {
        const dd_key *k = dd_keys_find(g[i].table, name);
        if (k) return dd_key_set(k, g[i].obj, text, origin, err);
    }
    const char *hint = n > 0 && g[0].table->unknown_hint ? g[0].table->unknown_hint : "";
    return dd_fail(err, DD_E_INVALID, "%s: unknown setting '%s'%s", origin, name, hint);
}

int dd_keys_apply_json(const dd_key_group *g, int n, const dd_json *obj, const char *origin,
                       dd_error *err) {
    if (!obj || obj->type != DD_JOBJ) return dd_fail(err, DD_E_FORMAT, "%s: a config must be a JSON object", origin);
    for (const dd_json *c = obj->child; c; c = c->next) {
        char buf[1100];
        const char *text = buf;
        if (c->type == DD_JSTR) {
            text = c->str;
        } else if (c->type == DD_JNUM) {
            snprintf(buf, sizeof buf, "%.17g", c->num);
        } else if (c->type == DD_JARR) {
            buf[0] = 0;
            for (const dd_json *e = c->child; e; e = e->next) {
                if (e->type != DD_JNUM)
                    return dd_fail(err, DD_E_INVALID, "%s: setting '%s' must be a list of numbers", origin, c->key);
                size_t l = strlen(buf);
                snprintf(buf + l, sizeof buf - l, "%s%.17g", l ? "," : "", e->num);
            }
            if (!c->child) snprintf(buf, sizeof buf, "none");
        } else {
            return dd_fail(err, DD_E_INVALID, "%s: setting '%s' has the wrong type (a string, number or list expected)",
                           origin, c->key);
        }
        int rc = dd_keys_set(g, n, c->key, text, origin, err);
        if (rc) return rc;
    }
    return DD_OK;
}

void dd_keys_json_members(const dd_key_table *t, const void *obj, dd_textbuf *b, int *first) {
    for (int i = 0; i < t->n; i++) {
        char v[1100];
        dd_key_format(&t->keys[i], obj, v, sizeof v, 1);
        if (!*first) dd_textbuf_puts(b, ",");
        *first = 0;
        dd_textbuf_json_string(b, t->keys[i].name);
        dd_textbuf_puts(b, ":");
        dd_textbuf_json_string(b, v);
    }
}

void dd_keys_print_help(const dd_key_group *g, int n, FILE *f) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g[i].table->n; j++) {
            const dd_key *k = &g[i].table->keys[j];
            char v[1100];
            dd_key_format(k, g[i].obj, v, sizeof v, 0);
            fprintf(f, "  --%-18s %-14s %s\n", k->name, v, k->help ? k->help : "");
        }
}
