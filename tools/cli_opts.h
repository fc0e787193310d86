/* cli_opts.h — owns command-line option parsing for the subcommands: one table
 * per command (name, value kind, destination, range, help) drives both the
 * parsing and the options part of --help.
 *
 * Accepted forms: "--name VALUE", "--name=VALUE", "--flag", "-h"/"--help"
 * (prints the help to stdout), and "--" (everything after it is a positional
 * argument, even when it starts with '-'). A lone "-" is a positional argument.
 * Unknown options are reported together in one line naming each of them (or
 * handed to the command's `extra` callback, for open-ended "--KEY VALUE" sets
 * such as training settings). Values are checked against the option's kind and
 * range, and a bad value gives one line naming the option and the value. A
 * repeated option keeps its last value. */
#ifndef DD_CLI_OPTS_H
#define DD_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,   /* no value: *(int *)dest |= bits (bits 0: set to 1) */
    CLI_STR,    /* *(const char **)dest = the argv string (not copied) */
    CLI_INT,    /* *(int *)dest, a whole number in [lo, hi] */
    CLI_LONG,   /* *(long *)dest, a whole number in [lo, hi] */
    CLI_U64,    /* *(unsigned long long *)dest, a non-negative whole number (no range) */
    CLI_FLOAT,  /* *(float *)dest, a finite number in [lo, hi] */
    CLI_CHOICE, /* *(int *)dest = index of the value in choices (NULL-terminated names) */
    CLI_CUSTOM, /* parse(value, dest, msg, cap): 0 ok, else msg says why (without the option name) */
} cli_kind;

typedef struct cli_opt {
    const char *name;    /* without the leading "--", e.g. "model" */
    const char *metavar; /* the value in the help ("FILE"); ignored for flags */
    cli_kind kind;
    void *dest;
    double lo, hi;                /* CLI_INT, CLI_LONG, CLI_FLOAT */
    const char *const *choices;   /* CLI_CHOICE */
    int (*parse)(const char *value, void *dest, char *msg, size_t cap); /* CLI_CUSTOM */
    int bits;                     /* CLI_FLAG */
    int *given;                   /* optional: set to 1 when the option appears */
    const char *help;             /* one line; '\n' starts an indented continuation line */
} cli_opt;

typedef struct cli_spec {
    const char *command;     /* "predict": messages are about "diffad predict" */
    const char *usage;       /* the text before the options (starts with "usage: ...") */
    const cli_opt *opts;
    int n_opts;
    const char *positional;  /* name of the positional arguments in messages, NULL: none allowed */
    const char *epilog;      /* text after the options, or NULL */
    /* Options not in the table, with their value, e.g. "--KEY VALUE" settings. NULL:
     * they are unknown-option errors. Returns 0, or nonzero with msg filled. name
     * comes without "--"; the value is the next argument or the text after '='. */
    int (*extra)(void *ctx, const char *name, const char *value, char *msg, size_t cap);
    void *extra_ctx;
    /* Appended to --help after the epilog (e.g. the settings table), or NULL. */
    void (*help_tail)(void *ctx, FILE *f);
} cli_spec;

enum { CLI_OK = 0, CLI_HELP = 1, CLI_ERROR = 2 };

/* Parse argv[1..argc). Positional arguments go to pos (room for argc entries),
 * their count to *n_pos (pos may be NULL when spec->positional is NULL).
 * Returns CLI_OK, CLI_HELP (the help is printed to stdout) or CLI_ERROR (msg
 * holds one line without the "diffad <command>: " prefix). */
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, int *n_pos,
              char *msg, size_t cap);

/* The help: spec->usage, the option table, spec->epilog, spec->help_tail. */
void cli_print_help(const cli_spec *spec, FILE *f);

/* CLI_CUSTOM parser for "HxW" (or one number for a square) with sides in 8..4096
 * into int[2] = {h, w}. */
int cli_parse_size(const char *value, void *dest, char *msg, size_t cap);

/* --threads above 4 x the online CPUs (oversubscription that only slows the run down):
 * one warning line on `warn` ("diffad <command>: --threads N > 4 x cores (M): capped at
 * 4M") and the capped value is returned; 0 (all cores) and values within the cap come
 * back unchanged. The library itself accepts any count >= 0. */
int cli_cap_threads(const char *command, int threads, FILE *warn);

#endif
