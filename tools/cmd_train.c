/* cmd_train.c — `diffad train`: train a model for one category, calibrate its
 * thresholds on held-out good images, write the model file. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "model/config.h"
#include "data/dataset.h"
#include "diffad.h"
#include "data/feeder.h"
#include "model/modelfile.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f, const dd_settings *s) {
    fprintf(f,
            "usage: diffad train --data DIR [options] [--KEY VALUE ...]\n"
            "\n"
            "Trains DiffusionAD on the good images of one category (MVTec layout DIR/train/good,\n"
            "or a plain folder of good images), holds out val_fraction of them to calibrate the\n"
            "thresholds, and writes the model file.\n"
            "\n"
            "options:\n"
            "  --data DIR          category folder (MVTec layout) or folder of good images\n"
            "  --out FILE          model file to write (default model.safetensors)\n"
            "  --profile NAME      cpu (default) or paper\n"
            "  --config FILE       JSON object of settings (applied after the profile)\n"
            "  --resume FILE       continue from a checkpoint (<out>.ckpt), exactly\n"
            "  --log FILE          CSV of the losses (default <out>.log.csv)\n"
            "  --quiet             no progress bar\n"
            "\n"
            "settings (--KEY VALUE, after --config; current values for the chosen profile):\n");
    dd_settings_print_help(s, f);
}

static int fail(const char *msg) {
    fprintf(stderr, "diffad train: %s\n", msg);
    return 2;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Value at quantile q (nearest rank, upper) of n sorted values. */
static float quantile(const float *v, size_t n, double q) {
    size_t i = (size_t)ceil(q * (double)n);
    if (i > 0) i--;
    if (i >= n) i = n - 1;
    return v[i];
}

/* Score the held-out good images with the saved model and store the thresholds. */
static int calibrate(const char *model_path, const dd_dataset *ds, const int *val, int n_val,
                     const dd_settings *s, dd_model_config *cfg, dd_error *err) {
    diffad_params p;
    diffad_params_init(&p);
    p.threads = s->train.threads;
    diffad_ctx *ctx;
    char msg[512];
    int rc = diffad_create(model_path, &p, &ctx, msg, sizeof msg);
    if (rc) return dd_fail(err, rc, "%s", msg);
    int h, w;
    diffad_model_size(ctx, &h, &w);
    size_t hw = (size_t)h * w;
    float *scores = malloc(sizeof(float) * (size_t)n_val), *pix = malloc(sizeof(float) * hw * (size_t)n_val);
    if (!scores || !pix) {
        free(scores), free(pix), diffad_free(ctx);
        return dd_fail(err, DD_E_NOMEM, "calibration: out of memory");
    }
    for (int i = 0; i < n_val && !rc; i++) {
        diffad_result r;
        rc = cli_score_file(ctx, ds->train[val[i]].path, &r, err);
        if (rc) break;
        scores[i] = r.score;
        memcpy(pix + hw * (size_t)i, r.map, hw * sizeof(float));
    }
    if (!rc) {
        qsort(scores, (size_t)n_val, sizeof(float), cmp_float);
        qsort(pix, hw * (size_t)n_val, sizeof(float), cmp_float);
        float fr = s->train.false_reject;
        cfg->image_threshold = quantile(scores, (size_t)n_val, 1.0 - fr);
        cfg->pixel_threshold = quantile(pix, hw * (size_t)n_val, 1.0 - fr / 10.0);
        cfg->score_lo = quantile(scores, (size_t)n_val, 0.5);
        /* keep normalisation well defined when all good scores coincide */
        if (cfg->image_threshold <= cfg->score_lo) cfg->image_threshold = cfg->score_lo + 1e-6f;
        cfg->score_hi = cfg->image_threshold;
    }
    free(scores);
    free(pix);
    diffad_free(ctx);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *data = NULL, *out = "model.safetensors", *config = NULL, *resume = NULL, *log_path = NULL;
    const char *profile = "cpu";
    int quiet = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--profile") && i + 1 < argc) profile = argv[i + 1];
    dd_settings s;
    dd_error err = {0};
    if (dd_settings_profile(&s, profile, &err)) return fail(err.msg);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[i + 1];
    if (config && dd_settings_load_file(&s, config, &err)) return fail(err.msg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, &s);
            return 0;
        }
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (strncmp(a, "--", 2) || i + 1 >= argc) {
            char m[600];
            snprintf(m, sizeof m, "unexpected argument '%s' (options are --KEY VALUE; see --help)", a);
            return fail(m);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--resume")) resume = v;
        else if (!strcmp(a, "--log")) log_path = v;
        else if (!strcmp(a, "--profile") || !strcmp(a, "--config")) continue;
        else if (dd_settings_set(&s, a + 2, v, "command line", &err)) return fail(err.msg);
    }
    if (!data) return fail("--data DIR is required (see --help)");
    if (dd_model_config_check(&s.model, &err)) return fail(err.msg);
    char ckpt[4096], logbuf[4096];
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", out);
    if (!log_path) {
        snprintf(logbuf, sizeof logbuf, "%s.log.csv", out);
        log_path = logbuf;
    }

    dd_dataset *ds = NULL;
    if (dd_dataset_open(data, &ds, &err)) return fail(err.msg);
    int *tr = NULL, *val = NULL, ntr = 0, nval = 0;
    if (dd_dataset_split_train(ds, s.train.val_fraction, s.train.seed, &tr, &ntr, &val, &nval, &err)) {
        dd_dataset_free(ds);
        return fail(err.msg);
    }
    dd_model *m = NULL;
    dd_feeder *feeder = NULL;
    FILE *logf = NULL;
    int rc = 0;
    long start = 0;
    if ((rc = dd_model_create(&s.model, s.train.batch, 1, s.train.threads, &m, &err))) goto done;
    if (resume) {
        char *st = NULL;
        dd_model_config rcfg;
        if ((rc = dd_model_file_config(resume, &rcfg, "train_step", &st, &err))) goto done;
        if (!st) {
            rc = dd_fail(&err, DD_E_FORMAT, "%s: not a checkpoint (no training state; it may be a final model)", resume);
            goto done;
        }
        start = atol(st);
        free(st);
        if ((rc = dd_model_load_into(m, resume, 1, &err))) goto done;
        m->adam.step = start;
    } else {
        dd_model_init_weights(m, s.train.seed);
    }
    dd_synth_config sc;
    dd_synth_config_init(&sc);
    sc.h = s.model.unet.h, sc.w = s.model.unet.w;
    sc.mode = s.train.synth_mode;
    sc.fg_mode = s.train.fg_mode;
    sc.texture_dir = s.train.textures[0] ? s.train.textures : NULL;
    sc.normal_prob = s.train.normal_prob;
    sc.large_mask_prob = s.train.large_mask_prob;
    if ((rc = dd_feeder_create_at(ds, tr, ntr, &sc, s.train.batch, s.train.workers, s.train.seed, start, &feeder, &err)))
        goto done;
    logf = fopen(log_path, resume ? "a" : "w");
    if (!logf) {
        rc = dd_fail(&err, DD_E_IO, "%s: cannot write the log (%s)", log_path, strerror(errno));
        goto done;
    }
    if (!resume) fprintf(logf, "step,loss,noise,focal,smoothl1,grad_norm,normal,samples_per_s,elapsed_s\n");
    fprintf(stderr,
            "diffad train: %s: %d training + %d validation good images; model %dx%d, %.2f M + %.2f M parameters, "
            "%.0f MiB; batch %d, %ld steps%s\n",
            data, ntr, nval, s.model.unet.h, s.model.unet.w, dd_model_param_count(m, 0) / 1e6,
            dd_model_param_count(m, 1) / 1e6, dd_model_memory(m) / 1048576.0, s.train.batch, s.train.steps,
            resume ? " (resumed)" : "");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double t0 = cli_now(), tlast = t0;
    long done_steps = 0;
    dd_step_stats st = {0};
    int tty = isatty(2) && !quiet;
    for (long step = start; step < s.train.steps && !g_stop; step++) {
        dd_batch b;
        if ((rc = dd_feeder_next(feeder, &b, &err))) goto done;
        int labels[4096];
        for (int i = 0; i < b.n; i++) labels[i] = b.labels[i] > 0.5f;
        /* Warm-up scales both learning rates linearly over the first lr_warmup steps. */
        float f = s.train.lr_warmup > 0 && step < s.train.lr_warmup ? (float)(step + 1) / s.train.lr_warmup : 1.0f;
        m->adam.lr[0] = s.model.lr_unet * f;
        m->adam.lr[1] = s.model.lr_seg * f;
        dd_rng r;
        dd_rng_seed2(&r, s.train.seed ^ 0x747261696eULL, (uint64_t)step); /* a pure function of (seed, step) */
        if ((rc = dd_model_train_step(m, b.images, b.masks, labels, &r, &st, &err))) {
            char m2[600];
            snprintf(m2, sizeof m2, "step %ld: %s", step, err.msg);
            rc = dd_fail(&err, rc, "%s", m2);
            goto done;
        }
        done_steps++;
        double now = cli_now();
        double sps = done_steps * s.train.batch / (now - t0);
        if ((step + 1) % s.train.log_every == 0 || step + 1 == s.train.steps) {
            fprintf(logf, "%ld,%.6f,%.6f,%.6f,%.6f,%.4f,%d,%.2f,%.1f\n", step + 1, st.loss, st.noise, st.focal,
                    st.smoothl1, st.grad_norm, st.normal_count, sps, now - t0);
            fflush(logf);
        }
        if (!quiet && (tty || (step + 1) % s.train.log_every == 0) && (now - tlast > 0.5 || step + 1 == s.train.steps)) {
            char eta[32];
            cli_fmt_duration((s.train.steps - step - 1) * s.train.batch / (sps > 0 ? sps : 1), eta, sizeof eta);
            int width = 24, fill = (int)(width * (step + 1) / s.train.steps);
            char bar[32];
            for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
            bar[width] = 0;
            fprintf(stderr, "%s[%s] %ld/%ld loss %.4f (noise %.4f focal %.4f sl1 %.4f) %.1f samples/s ETA %s%s",
                    tty ? "\r" : "", bar, step + 1, s.train.steps, st.loss, st.noise, st.focal, st.smoothl1, sps, eta,
                    tty ? "  " : "\n");
            tlast = now;
        }
        if (s.train.checkpoint_every > 0 && (step + 1) % s.train.checkpoint_every == 0 && step + 1 < s.train.steps) {
            char sv[32];
            snprintf(sv, sizeof sv, "%ld", step + 1);
            dd_kv kv[1] = {{"train_step", sv}};
            if ((rc = dd_model_save(m, ckpt, 1, kv, 1, &err))) goto done;
        }
    }
    if (tty) fputc('\n', stderr);
    long reached = start + done_steps;
    if (g_stop) {
        char sv[32];
        snprintf(sv, sizeof sv, "%ld", reached);
        dd_kv kv[1] = {{"train_step", sv}};
        if ((rc = dd_model_save(m, ckpt, 1, kv, 1, &err))) goto done;
        fprintf(stderr, "diffad train: interrupted at step %ld; checkpoint %s (continue with --resume %s)\n", reached, ckpt, ckpt);
        rc = 130;
        goto done;
    }
    /* Final model, then thresholds from the held-out good images, then the model again. */
    if ((rc = dd_model_save(m, out, 0, NULL, 0, &err))) goto done;
    double train_s = cli_now() - t0;
    if (nval > 0) {
        dd_model_config cfg = m->cfg;
        if ((rc = calibrate(out, ds, val, nval, &s, &cfg, &err))) goto done;
        m->cfg = cfg;
        if ((rc = dd_model_save(m, out, 0, NULL, 0, &err))) goto done;
        fprintf(stderr, "diffad train: thresholds from %d good validation images: image %.5f (false-reject %.1f%%), pixel %.5f\n",
                nval, cfg.image_threshold, 100 * s.train.false_reject, cfg.pixel_threshold);
    } else {
        fprintf(stderr, "diffad train: val_fraction is 0: the model is not calibrated (no OK/NG decision)\n");
    }
    remove(ckpt);
    char dur[32];
    cli_fmt_duration(train_s, dur, sizeof dur);
    fprintf(stderr, "diffad train: wrote %s after %ld steps in %s (%.1f samples/s, peak memory %.0f MiB); log %s\n", out,
            reached, dur, done_steps * s.train.batch / train_s, cli_peak_rss_mib(), log_path);
done:
    if (rc && rc != 130) fprintf(stderr, "diffad train: %s\n", err.msg);
    if (logf) fclose(logf);
    dd_feeder_free(feeder);
    dd_model_free(m);
    free(tr);
    free(val);
    dd_dataset_free(ds);
    return rc == 130 ? 130 : rc ? 2 : 0;
}
