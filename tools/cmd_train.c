/* cmd_train.c — `diffad train`: the command-line client of the library's
 * trainer (src/train/trainer.h). It parses the options and settings, creates
 * the trainer, draws the progress bar from its callback, turns Ctrl-C into the
 * trainer's stop flag and reports the result. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_dist.h"
#include "cli_opts.h"
#include "cli_util.h"
#include "commands.h"
#include "train/settings.h"
#include "train/trainer.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* The `steps` key's largest value: no step limit in practice. */
#define DD_UNBOUNDED_STEPS 1000000000000L

static const char USAGE[] =
    "usage: diffad train --data DIR [options] [--KEY VALUE ...]\n"
    "\n"
    "Trains DiffusionAD on the good images of one category (MVTec layout DIR/train/good,\n"
    "or a plain folder of good images), holds out val_fraction of them to calibrate the\n"
    "thresholds, and writes the model file.\n"
    "\n"
    "--roi FILE stores a region of interest in the model file: an image over the camera\n"
    "frame, nonzero (e.g. white) = inspect, 0 (black) = ignore (labels, serial numbers,\n"
    "fixtures). It is resized to each image; predict, test and the calibration zero the\n"
    "anomaly map outside it. Training itself is unchanged (synthetic defects are pasted\n"
    "anywhere). Change it later with 'diffad calibrate --roi'.\n";

static const char EPILOG[] =
    "A step budget (--steps) is bit-reproducible; a time budget (--minutes) is not: the\n"
    "number of steps, and with --lr_schedule cosine or wsd the learning rates, follow the speed.\n"
    "With --minutes and no --steps of your own (command line or --config), the profile's\n"
    "step count does not apply: the budget alone ends the run.\n"
    "\n"
    "settings (--KEY VALUE or --KEY=VALUE, applied after the profile and --config; current\n"
    "values for the chosen profile):\n";

/* Settings given as --KEY VALUE, applied after the profile and the config file
 * whatever their position on the command line. */
typedef struct setting_args {
    char key[256][64];          /* copied: the parser's name text is temporary */
    const char *value[256];     /* argv strings */
    int n;
    const char **profile;       /* for --help: the profile named before it */
} setting_args;

static int collect_setting(void *ctx, const char *name, const char *value, char *msg, size_t cap) {
    setting_args *a = ctx;
    if (a->n >= 256) {
        snprintf(msg, cap, "too many settings on the command line (at most 256)");
        return 1;
    }
    if (strlen(name) >= sizeof a->key[0]) {
        snprintf(msg, cap, "unknown setting '%.60s...' (see --help)", name);
        return 1;
    }
    strcpy(a->key[a->n], name);
    a->value[a->n] = value, a->n++;
    return 0;
}

/* profile, then config file, then the command-line settings. A time budget
 * (`minutes`) without a step count of the user's own lifts the profile's default
 * `steps`, so `--minutes 60` trains for an hour, not until the profile's 1500 steps. */
static int build_settings(dd_settings *s, const char *profile, const char *config, const setting_args *a,
                          dd_error *err) {
    int rc = dd_settings_profile(s, profile, err);
    long profile_steps = s->train.steps;
    if (!rc && config) rc = dd_settings_load_file(s, config, err);
    int steps_given = s->train.steps != profile_steps;
    for (int i = 0; i < a->n && !rc; i++) {
        rc = dd_settings_set(s, a->key[i], a->value[i], "command line", err);
        if (!strcmp(a->key[i], "steps")) steps_given = 1;
    }
    if (!rc && s->train.minutes > 0 && !steps_given) s->train.steps = DD_UNBOUNDED_STEPS;
    return rc;
}

/* --help shows the values of the profile named before it (default cpu). */
static void help_settings(void *ctx, FILE *f) {
    const setting_args *a = ctx;
    dd_settings s;
    dd_error err = {0};
    if (dd_settings_profile(&s, *a->profile, &err)) dd_settings_profile(&s, "cpu", &err);
    dd_settings_print_help(&s, f);
}

/* "rank R of N: " in every message of a data-parallel run (empty otherwise) */
static char g_rank[48];

static int fail(const char *msg) {
    fprintf(stderr, "diffad train: %s%s\n", g_rank, msg);
    return 2;
}

typedef struct progress_state {
    int quiet, tty;
    long log_every;
    double tlast;
} progress_state;

/* The bar on a terminal (redrawn at most twice a second), otherwise one line per
 * log_every steps; validations always get a line of their own. */
static void on_progress(void *ctx, const dd_train_progress *p) {
    progress_state *ps = ctx;
    if (ps->quiet) return;
    double now = cli_now();
    int last = p->step >= p->total;
    if (p->validated)
        fprintf(stderr, "%sdiffad train: step %ld validation: image AUROC %.4f, pixel AP %.4f, AUPRO %.4f%s\n",
                ps->tty ? "\r" : "", p->step, p->val.image_auroc, p->val.pixel_ap, p->val.aupro,
                p->new_best ? " (best so far)" : "");
    if (!(ps->tty || p->step % ps->log_every == 0) || !(now - ps->tlast > 0.5 || last || p->validated)) return;
    char eta[32];
    cli_fmt_duration(p->eta_s, eta, sizeof eta);
    long total = p->total > 0 ? p->total : 1;
    int width = 24, fill = (int)(width * (p->step < total ? p->step : total) / total);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s[%s] %ld/%s%ld loss %.4f (noise %.4f focal %.4f sl1 %.4f) %.1f samples/s %s %s%s",
            ps->tty ? "\r" : "", bar, p->step, p->budgeted ? "~" : "", p->total, p->stats.loss, p->stats.noise,
            p->stats.focal, p->stats.smoothl1, p->samples_per_s, p->budgeted ? "left" : "ETA", eta,
            ps->tty ? "  " : "\n");
    ps->tlast = now;
}

static int train_main(int argc, char **argv, const dd_dist *dist);

int cmd_train(int argc, char **argv) {
    dd_dist dist;
    char m[600];
    if (cli_dist_start(NULL, NULL, &dist, m, sizeof m)) return fail(m);
    if (dist.size > 1) snprintf(g_rank, sizeof g_rank, "rank %d of %d: ", dist.rank, dist.size);
    int rc = train_main(argc, argv, &dist);
    /* an error on one process stops them all (none may wait for it in a sum) */
    cli_dist_end(&dist, rc == 2, rc);
    return rc;
}

static int train_main(int argc, char **argv, const dd_dist *dist) {
    dd_trainer_opts o;
    dd_trainer_opts_init(&o);
    o.out = "model.safetensors";
    const char *config = NULL, *profile = "cpu";
    int quiet = 0;
    static setting_args sa; /* 16 KiB: not on the stack */
    sa.n = 0, sa.profile = &profile;
    const cli_opt opts[] = {
        {"data", "DIR", CLI_STR, &o.data, .help = "category folder (MVTec layout) or folder of good images (required)"},
        {"out", "FILE", CLI_STR, &o.out, .help = "model file to write (default model.safetensors)"},
        {"profile", "NAME", CLI_STR, &profile, .help = "cpu (default) or paper"},
        {"config", "FILE", CLI_STR, &config, .help = "JSON object of settings (applied after the profile)"},
        {"resume", "FILE", CLI_STR, &o.resume, .help = "continue from a checkpoint (<out>.ckpt), exactly"},
        {"init", "FILE", CLI_STR, &o.init,
         .help = "start from the weights of this model file (fine-tuning;\nsame architecture; the image size may differ if attention\nfalls on the same levels)"},
        {"log", "FILE", CLI_STR, &o.log_path, .help = "CSV of the losses (default <out>.log.csv)"},
        {"roi", "FILE", CLI_STR, &o.roi,
         .help = "region of interest image: nonzero = inspect, 0 = ignore (stored\nin the model; default none, or the --resume checkpoint's)"},
        {"quiet", NULL, CLI_FLAG, &quiet, .help = "no progress bar"},
    };
    const cli_spec spec = {"train", USAGE, opts, (int)(sizeof opts / sizeof *opts), NULL, EPILOG,
                           collect_setting, &sa, help_settings};
    char m[600];
    int pr = cli_parse(&spec, argc, argv, NULL, NULL, m, sizeof m);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : fail(m);
    dd_settings s;
    dd_error err = {0};
    if (build_settings(&s, profile, config, &sa, &err)) return fail(err.msg);
    s.train.threads = cli_cap_threads("train", s.train.threads, stderr);
    if (!o.data) return fail("--data DIR is required (see --help)");

    int lead = dist->rank == 0; /* rank 0 reports; the others only fail loudly */
    if (dist->size > 1) o.dist = dist;
    if (!lead) quiet = 1;
    progress_state ps = {quiet, isatty(2) && !quiet, s.train.log_every, 0};
    o.progress = on_progress, o.progress_ctx = &ps;
    o.stop = &g_stop;
    dd_trainer *t = NULL;
    if (dd_trainer_create(&s, &o, &t, &err)) return fail(err.msg);
    const dd_trainer_info *in = dd_trainer_get_info(t);
    if (dist->size > 1 && lead)
        fprintf(stderr, "diffad train: %d processes x %d threads, global batch %d (%d per process), synchronised "
                "BatchNorm; rank 0 writes\n", in->ranks, s.train.threads, s.train.batch, in->part_batch);
    for (int i = 0; lead && i < in->n_skipped; i++)
        fprintf(stderr, "diffad train: warning: left out (skip_bad 1): %s\n", in->skipped[i]);
    char budget[64] = "";
    if (s.train.minutes > 0) snprintf(budget, sizeof budget, " or %.4g min", s.train.minutes);
    char scale[96];
    if (in->tile_scale > 0) snprintf(scale, sizeof scale, "crops at scale %.4g, tiled inference", in->tile_scale);
    else snprintf(scale, sizeof scale, "whole images fitted");
    if (lead)
        fprintf(stderr,
            "diffad train: %s: %d training + %d validation good images; model %dx%d (%s%s), %.2f M + %.2f M "
            "parameters, %.0f MiB, %s convolutions; batch %d, %ld steps%s%s%s\n",
            o.data, in->n_train, in->n_val, s.model.unet.h, s.model.unet.w, scale,
            in->grey_noise == 1 ? ", grey noise" : "", in->params_unet / 1e6, in->params_seg / 1e6,
            in->memory / 1048576.0, in->precision, s.train.batch, s.train.steps, budget, in->resumed ? " (resumed)" : "",
            in->initialised ? " (from --init)" : "");
    if (lead && in->roi_w)
        fprintf(stderr, "diffad train: region of interest %s: %dx%d, %.1f%% of the frame inspected (used by the "
                "calibration and stored; training pastes defects anywhere)\n", o.roi ? o.roi : "from the checkpoint",
                in->roi_w, in->roi_h, 100.0 * in->roi_share);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    dd_train_result r;
    int rc = dd_trainer_run(t, &r, &err);
    if (ps.tty) fputc('\n', stderr);
    if (rc) {
        fprintf(stderr, "diffad train: %s%s\n", g_rank, err.msg);
        dd_trainer_free(t);
        return 2;
    }
    if (!lead) { /* rank 0 writes and reports */
        dd_trainer_free(t);
        return r.interrupted ? 130 : 0;
    }
    if (r.interrupted) {
        fprintf(stderr, "diffad train: interrupted at step %ld; checkpoint %s (continue with --resume %s)\n", r.step,
                in->ckpt, in->ckpt);
        dd_trainer_free(t);
        return 130;
    }
    if (r.validated)
        fprintf(stderr, "diffad train: %s weights saved: validation score %.4f at step %ld (last %.4f)\n",
                r.used_best ? "best-validated" : "last", r.used_best ? r.best_score : r.final_score,
                r.used_best ? r.best_step : r.step, r.final_score);
    if (r.n_levels > 0) {
        /* the pairs with their validation scores, the kept one marked */
        char list[DD_MAX_LEVEL_PAIRS * 48 + 1] = "";
        size_t len = 0;
        for (int i = 0; i < r.n_levels && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d/%d %.4f%s", i ? ", " : "", r.levels[i][0],
                                    r.levels[i][1], r.level_scores[i],
                                    r.levels[i][0] == r.t_s && r.levels[i][1] == r.t_b ? " *" : "");
        fprintf(stderr, "diffad train: inference levels t_s/t_b %d/%d chosen on the validation in %.0f s (%s)\n", r.t_s,
                r.t_b, r.levels_s, list);
    } else if (in->levels_note[0])
        fprintf(stderr, "diffad train: level_grid not used (%s); inference levels t_s/t_b %d/%d kept\n", in->levels_note,
                r.t_s, r.t_b);
    /* With n held-out images no false-reject rate below 1/n can be set: then the
     * threshold is the highest good score and the line says so. */
    if (r.calibrated && r.threshold_is_max)
        fprintf(stderr,
                "diffad train: thresholds from %d good validation image%s: image %.5f = highest of %d good score%s; a "
                "false-reject rate below 1/%d cannot be set from %d image%s (false_reject %g asked), pixel %.5f\n",
                in->n_val, in->n_val == 1 ? "" : "s", r.image_threshold, in->n_val, in->n_val == 1 ? "" : "s", in->n_val,
                in->n_val, in->n_val == 1 ? "" : "s", s.train.false_reject, r.pixel_threshold);
    else if (r.calibrated)
        fprintf(stderr, "diffad train: thresholds from %d good validation images: image %.5f (false-reject %.1f%%), pixel %.5f\n",
                in->n_val, r.image_threshold, 100 * s.train.false_reject, r.pixel_threshold);
    if (r.calibrated && r.review_lo < r.review_hi)
        fprintf(stderr, "diffad train: review band (%.5f, %.5f]: images scoring there are REVIEW\n", r.review_lo, r.review_hi);
    if (!r.calibrated)
        fprintf(stderr, "diffad train: %s: the model is not calibrated (no OK/NG decision)\n",
                s.train.val_fraction == 0 ? "val_fraction is 0" : "no held-out images");
    char dur[32];
    cli_fmt_duration(r.train_s, dur, sizeof dur);
    char comm[96] = "";
    if (in->ranks > 1)
        snprintf(comm, sizeof comm, ", %.1f ms per step in the sums over %d processes", 1e3 * r.comm_s, in->ranks);
    fprintf(stderr, "diffad train: wrote %s after %ld steps in %s (%.1f samples/s%s, peak memory %.0f MiB%s); log %s\n",
            in->out, r.step, dur, r.samples_per_s, comm, cli_peak_rss_mib(), in->ranks > 1 ? " on rank 0" : "", in->log);
    dd_trainer_free(t);
    return 0;
}
