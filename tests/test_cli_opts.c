/* test_cli_opts.c — the table-driven option parser of the CLI (tools/cli_opts.c,
 * compiled in here): "--k v" and "--k=v", flags, "--" ending the options, "-" as
 * an input, unknown options reported together in one line, missing and bad
 * values naming the option, ranges, choices, custom parsers, the `extra` hook
 * for open-ended "--KEY VALUE" settings, the help generated from the table, and
 * the --threads cap (4 x the online cores, one warning line). */
#include "../tools/cli_opts.c"

#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct vals {
    const char *model;
    int flags, threads, choice, given_seed, size[2];
    long n;
    unsigned long long seed;
    float p;
} vals;

static const char *const COLOURS[] = {"red", "green", "blue", NULL};

static int n_extra;
static char extra_seen[256];
static int extra(void *ctx, const char *name, const char *value, char *msg, size_t cap) {
    (void)ctx;
    if (!strcmp(name, "bad")) {
        snprintf(msg, cap, "setting '%s' refused", name);
        return 1;
    }
    n_extra++;
    size_t l = strlen(extra_seen);
    snprintf(extra_seen + l, sizeof extra_seen - l, "%s=%s;", name, value);
    return 0;
}

/* Parse a space-separated command line (no quoting) against the test table. */
static int run(const char *line, vals *v, const char **pos, int *npos, char *msg, size_t cap, int with_pos,
               int with_extra) {
    static char buf[1024];
    char *argv[64];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "cmd";
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    memset(v, 0, sizeof *v);
    v->size[0] = v->size[1] = 256;
    const cli_opt opts[] = {
        {"model", "FILE", CLI_STR, &v->model, .help = "the model"},
        {"a", NULL, CLI_FLAG, &v->flags, .bits = 1, .help = "flag a"},
        {"b", NULL, CLI_FLAG, &v->flags, .bits = 2, .help = "flag b\nsecond line"},
        {"threads", "N", CLI_INT, &v->threads, 0, 64, .help = "threads"},
        {"n", "N", CLI_LONG, &v->n, 1, 1024, .help = "count"},
        {"seed", "S", CLI_U64, &v->seed, .given = &v->given_seed, .help = "seed"},
        {"p", "P", CLI_FLOAT, &v->p, 0, 1, .help = "probability"},
        {"colour", "C", CLI_CHOICE, &v->choice, .choices = COLOURS, .help = "a colour"},
        {"size", "HxW", CLI_CUSTOM, v->size, .parse = cli_parse_size, .help = "size"},
    };
    cli_spec s = {"t", "usage: t [options]\n", opts, (int)(sizeof opts / sizeof *opts), with_pos ? "INPUT" : NULL,
                  "epilog text\n", with_extra ? extra : NULL, NULL, NULL};
    FILE *old = stdout;
    stdout = fopen("/dev/null", "w"); /* --help prints */
    int rc = cli_parse(&s, argc, argv, pos, npos, msg, cap);
    fclose(stdout);
    stdout = old;
    return rc;
}

int main(void) {
    vals v;
    const char *pos[64];
    int np = 0;
    char msg[600];
    int rc = run("--model m.st --a --threads=4 x.png - --n 7 --seed 18446744073709551615 --p 0.25 --colour=blue "
                 "--size 64x32 y.png",
                 &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_OK, "parse: %s", msg);
    CHECK(v.model && !strcmp(v.model, "m.st") && v.flags == 1 && v.threads == 4 && v.n == 7 &&
              v.seed == 18446744073709551615ull && v.given_seed && v.p == 0.25f && v.choice == 2 && v.size[0] == 64 &&
              v.size[1] == 32,
          "values");
    CHECK(np == 3 && !strcmp(pos[0], "x.png") && !strcmp(pos[1], "-") && !strcmp(pos[2], "y.png"), "positional: %d", np);
    rc = run("--b --a -- --model -x", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_OK && v.flags == 3 && !v.model && np == 2 && !strcmp(pos[0], "--model") && !strcmp(pos[1], "-x"),
          "'--' ends the options: %d %s", rc, msg);
    /* every unknown option in one line */
    rc = run("--model m --bogus --other=3 -z", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_ERROR && strstr(msg, "'--bogus'") && strstr(msg, "'--other'") && strstr(msg, "'-z'") &&
              !strchr(msg, '\n'),
          "unknown options: '%s'", msg);
    rc = run("x", &v, pos, &np, msg, sizeof msg, 0, 0);
    CHECK(rc == CLI_ERROR && strstr(msg, "'x'"), "positional where none is allowed: '%s'", msg);
    /* values */
    rc = run("--model", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_ERROR && strstr(msg, "--model") && strstr(msg, "needs a value"), "missing value: '%s'", msg);
    rc = run("--a=1", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_ERROR && strstr(msg, "--a") && strstr(msg, "no value"), "flag with a value: '%s'", msg);
    const char *bad[] = {"--threads 65", "--threads -1", "--threads 2.5", "--n 0", "--seed -1", "--seed 1x",
                         "--p 1.5", "--p nan", "--p inf", "--colour pink", "--size 7x9", "--size 12x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char opt[32];
        sscanf(bad[i], "%31s", opt);
        rc = run(bad[i], &v, pos, &np, msg, sizeof msg, 1, 0);
        CHECK(rc == CLI_ERROR && strstr(msg, opt), "'%s' refused naming %s: '%s'", bad[i], opt, msg);
    }
    rc = run("--colour pink", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(strstr(msg, "red, green, blue"), "choices listed: '%s'", msg);
    /* the extra hook: open-ended --KEY VALUE and --KEY=VALUE */
    n_extra = 0;
    extra_seen[0] = 0;
    rc = run("--lr 0.1 --model m --steps=5", &v, pos, &np, msg, sizeof msg, 0, 1);
    CHECK(rc == CLI_OK && n_extra == 2 && !strcmp(extra_seen, "lr=0.1;steps=5;") && v.model, "extra: '%s' %s",
          extra_seen, msg);
    rc = run("--bad 1", &v, pos, &np, msg, sizeof msg, 0, 1);
    CHECK(rc == CLI_ERROR && strstr(msg, "refused"), "extra refusal: '%s'", msg);
    rc = run("--lr", &v, pos, &np, msg, sizeof msg, 0, 1);
    CHECK(rc == CLI_ERROR && strstr(msg, "--lr"), "extra without value: '%s'", msg);
    /* help */
    rc = run("--model m --help", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_HELP, "--help: %d", rc);
    rc = run("-h", &v, pos, &np, msg, sizeof msg, 1, 0);
    CHECK(rc == CLI_HELP, "-h: %d", rc);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const cli_opt o[] = {{"model", "FILE", CLI_STR, &v.model, .help = "the model"},
                         {"save-map", NULL, CLI_FLAG, &v.flags, .help = "one\ntwo"}};
    cli_spec s = {"t", "usage: t\n", o, 2, NULL, "bye\n", NULL, NULL, NULL};
    cli_print_help(&s, f);
    fclose(f);
    CHECK(text && !strcmp(text, "usage: t\n\noptions:\n  --model FILE     the model\n  --save-map       one\n"
                                "                   two\n\nbye\n"),
          "help text:\n%s", text ? text : "");
    free(text);
    /* --threads above 4 x cores: capped with one warning line; within the cap, and 0, unchanged (issue 14 item 13) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0) {
        int lim = (int)(4 * cores);
        const int in[] = {0, 1, lim, lim + 1, 4096};
        for (int i = 0; i < 5; i++) {
            text = NULL, len = 0;
            f = open_memstream(&text, &len);
            int got = cli_cap_threads("predict", in[i], f);
            fclose(f);
            char want[200] = "";
            if (in[i] > lim)
                snprintf(want, sizeof want, "diffad predict: --threads %d > 4 x cores (%ld): capped at %d\n", in[i], cores, lim);
            CHECK(got == (in[i] > lim ? lim : in[i]) && text && !strcmp(text, want), "threads %d -> %d, warning '%s'", in[i], got,
                  text ? text : "");
            free(text);
        }
    } else SKIP("sysconf(_SC_NPROCESSORS_ONLN) unknown");
    return check_summary("test_cli_opts");
}
