/* cli_opts.c — table-driven option parsing and help (see cli_opts.h). */
#include "cli_opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_opt *find(const cli_spec *s, const char *name, size_t len) {
    for (int i = 0; i < s->n_opts; i++)
        if (strlen(s->opts[i].name) == len && !strncmp(s->opts[i].name, name, len)) return &s->opts[i];
    return NULL;
}

static int whole(const char *v, double lo, double hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || (double)x < lo || (double)x > hi) return -1;
    *out = x;
    return 0;
}

/* Store one option's value; 0 or -1 with msg filled. */
static int apply(const cli_opt *o, const char *v, char *msg, size_t cap) {
    long long x;
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest |= o->bits ? o->bits : 1; return 0;
    case CLI_STR: *(const char **)o->dest = v; return 0;
    case CLI_INT:
    case CLI_LONG:
        if (whole(v, o->lo, o->hi, &x)) {
            snprintf(msg, cap, "--%s '%s': a whole number from %.0f to %.0f expected", o->name, v, o->lo, o->hi);
            return -1;
        }
        if (o->kind == CLI_INT) *(int *)o->dest = (int)x;
        else *(long *)o->dest = (long)x;
        return 0;
    case CLI_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (end == v || *end || errno || strchr(v, '-')) {
            snprintf(msg, cap, "--%s '%s': a non-negative whole number expected", o->name, v);
            return -1;
        }
        *(unsigned long long *)o->dest = u;
        return 0;
    }
    case CLI_FLOAT: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (end == v || *end || !isfinite(d) || d < o->lo || d > o->hi) {
            snprintf(msg, cap, "--%s '%s': a number from %g to %g expected", o->name, v, o->lo, o->hi);
            return -1;
        }
        *(float *)o->dest = (float)d;
        return 0;
    }
    case CLI_CHOICE: {
        for (int i = 0; o->choices && o->choices[i]; i++)
            if (!strcmp(v, o->choices[i])) {
                *(int *)o->dest = i;
                return 0;
            }
        int n = snprintf(msg, cap, "--%s '%s': one of ", o->name, v);
        for (int i = 0; o->choices && o->choices[i] && n >= 0 && (size_t)n < cap; i++)
            n += snprintf(msg + n, cap - (size_t)n, "%s%s", i ? ", " : "", o->choices[i]);
        if (n >= 0 && (size_t)n < cap) snprintf(msg + n, cap - (size_t)n, " expected");
        return -1;
    }
    case CLI_CUSTOM: {
        char why[256] = "bad value";
        if (o->parse && !o->parse(v, o->dest, why, sizeof why)) return 0;
        snprintf(msg, cap, "--%s '%s': %s", o->name, v, why);
        return -1;
    }
    }
    snprintf(msg, cap, "--%s: unknown option kind", o->name);
    return -1;
}

int cli_parse(const cli_spec *s, int argc, char **argv, const char **pos, int *n_pos, char *msg,
              size_t cap) {
    char unknown[400] = "";
    int n_unknown = 0, np = 0;
    msg[0] = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int positional = a[0] != '-' || !strcmp(a, "-");
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (!s->positional) {
                    snprintf(msg, cap, "unexpected argument '%s' (see --help)", argv[i]);
                    return CLI_ERROR;
                }
                pos[np++] = argv[i];
            }
            break;
        }
        if (positional) {
            if (!s->positional) {
                snprintf(msg, cap, "unexpected argument '%s' (see --help)", a);
                return CLI_ERROR;
            }
            pos[np++] = a;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(s, stdout);
            return CLI_HELP;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = a[1] == '-' ? find(s, name, len) : NULL;
        if (!o && s->extra && a[1] == '-' && len) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(len < sizeof key ? len : sizeof key - 1), name);
            const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!v) {
                snprintf(msg, cap, "option --%s needs a value (see --help)", key);
                return CLI_ERROR;
            }
            if (s->extra(s->extra_ctx, key, v, msg, cap)) return CLI_ERROR;
            continue;
        }
        if (!o) {
            size_t u = strlen(unknown);
            snprintf(unknown + u, sizeof unknown - u, "%s'%.*s'", n_unknown ? ", " : "",
                     (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
            n_unknown++;
            continue;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                snprintf(msg, cap, "option --%s takes no value (see --help)", o->name);
                return CLI_ERROR;
            }
        } else if (!eq && i + 1 >= argc) {
            snprintf(msg, cap, "option --%s needs a value (%s; see --help)", o->name, o->metavar ? o->metavar : "VALUE");
            return CLI_ERROR;
        }
        const char *v = o->kind == CLI_FLAG ? NULL : eq ? eq + 1 : argv[++i];
        if (apply(o, v, msg, cap)) return CLI_ERROR;
        if (o->given) *o->given = 1;
    }
    if (n_unknown) {
        snprintf(msg, cap, "unknown option%s %s (see --help)", n_unknown > 1 ? "s" : "", unknown);
        return CLI_ERROR;
    }
    if (n_pos) *n_pos = np;
    return CLI_OK;
}

void cli_print_help(const cli_spec *s, FILE *f) {
    if (s->usage) fputs(s->usage, f);
    if (s->n_opts) {
        int col = 17;
        for (int i = 0; i < s->n_opts; i++) {
            const cli_opt *o = &s->opts[i];
            int w = 2 + (int)strlen(o->name) + (o->kind != CLI_FLAG && o->metavar ? 1 + (int)strlen(o->metavar) : 0);
            if (w + 2 > col) col = w + 2;
        }
        fputs("\noptions:\n", f);
        for (int i = 0; i < s->n_opts; i++) {
            const cli_opt *o = &s->opts[i];
            char left[160];
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->kind != CLI_FLAG && o->metavar ? " " : "",
                     o->kind != CLI_FLAG && o->metavar ? o->metavar : "");
            fprintf(f, "  %-*s", col, left);
            for (const char *h = o->help ? o->help : ""; *h; h++) {
                fputc(*h, f);
                if (*h == '\n') fprintf(f, "  %-*s", col, "");
            }
            fputc('\n', f);
        }
    }
    if (s->epilog) {
        fputc('\n', f);
        fputs(s->epilog, f);
    }
    if (s->help_tail) s->help_tail(s->extra_ctx, f);
}

int cli_parse_size(const char *v, void *dest, char *msg, size_t cap) {
    int h, w, n = -1;
    if (sscanf(v, "%d%*[xX]%d%n", &h, &w, &n) != 2 || n < 0 || v[n]) {
        n = -1;
        if (sscanf(v, "%d%n", &h, &n) != 1 || n < 0 || v[n]) {
            snprintf(msg, cap, "HxW expected, e.g. 256x256");
            return -1;
        }
        w = h;
    }
    if (h < 8 || w < 8 || h > 4096 || w > 4096) {
        snprintf(msg, cap, "sides must be in 8..4096");
        return -1;
    }
    ((int *)dest)[0] = h;
    ((int *)dest)[1] = w;
    return 0;
}

int cli_cap_threads(const char *command, int threads, FILE *warn) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0 || cores <= 0 || threads <= 4 * cores) return threads;
    long cap = 4 * cores;
    if (warn) fprintf(warn, "diffad %s: --threads %d > 4 x cores (%ld): capped at %ld\n", command, threads, cores, cap);
    return (int)cap;
}
