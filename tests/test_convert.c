/* test_convert.c — scripts/convert_checkpoint.py against the PyTorch reference:
 *  - tests/py/make_ref_checkpoint.py builds the reference networks (ref_model.py) at a
 *    small config (32x64, base 16, mult 1,2, one residual block, attention at 16,
 *    2 heads, 8 GroupNorm groups, segmentation width 4), fills random weights,
 *    saves them as the reference does and runs its inference forward;
 *  - the converted file loads with dd_model_load, carries the inferred config
 *    (uncalibrated), and reproduces the denoiser outputs, the reconstruction and
 *    the anomaly mask (relative error < 1e-4); a perturbed weight must show;
 *  - a DataParallel ("module.") checkpoint converts to the same model;
 *  - a wrong shape, a missing or unexpected tensor, a non-dict, a missing
 *    state_dict and a --KEY contradicting the weights fail with a clear message,
 *    and a failed conversion leaves an existing output file untouched.
 * Skips when /usr/bin/python3 (or $PYTHON) has no torch. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "model/config.h"
#include "model/model.h"
#include "model/modelfile.h"
#include "tensorfile.h"

static const char *py(void) {
    const char *p = getenv("PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

static char dir[] = "/tmp/diffad_convert_XXXXXX";
static tf_file F;

static tf_tensor *get(const char *name) {
    tf_tensor *t = tf_get(&F, name);
    if (!t) {
        fprintf(stderr, "reference dump lacks %s\n", name);
        exit(2);
    }
    return t;
}

/* Runs the converter on dir/IN.pth -> dir/OUT.safetensors with extra options;
 * returns its exit status (-1 if it did not exit normally); stderr+stdout go to dir/log. */
static int convert(const char *in, const char *out, const char *opts) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s scripts/convert_checkpoint.py %s/%s.pth %s/%s.safetensors %s >%s/log 2>&1", py(),
             dir, in, dir, out, opts, dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The converter's last output (dir/log), for messages. */
static const char *log_text(void) {
    static char buf[4096];
    char path[256];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    return buf;
}

static int exists(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void cmp(const char *what, const float *got, tf_tensor *ref, double tol) {
    double e = check_max_err(got, ref->data, (long)ref->numel);
    CHECK(e < tol, "%s: max rel err %.3g (tol %.1g)", what, e, tol);
    printf("converted model: %s max rel err %.3g\n", what, e);
}

/* Loads dir/NAME.safetensors, runs inference at the reference's inputs and noise and
 * compares; perturb: one weight changed afterwards must make the outputs differ. */
static void check_model(const char *name, int perturb) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    int B = (int)get("cfg")->data[4];
    dd_model *m = NULL;
    dd_error err = {0};
    int rc = dd_model_load(path, B, 0, 1, &m, &err);
    CHECK(rc == 0, "%s: dd_model_load: %s", name, err.msg);
    if (rc) return;
    const dd_model_config *c = &m->cfg;
    CHECK(c->unet.h == (int)get("cfg")->data[0] && c->unet.w == (int)get("cfg")->data[1], "%s: size %dx%d", name,
          c->unet.h, c->unet.w);
    CHECK(c->unet.base == 16 && c->unet.levels == 2 && c->unet.mult[0] == 1 && c->unet.mult[1] == 2 &&
              c->unet.res_blocks == 1 && c->unet.n_attn == 1 && c->unet.attn[0] == 16 && c->unet.heads == 2 &&
              c->unet.groups == 8 && c->seg_width == 4,
          "%s: stored config differs from the checkpoint's network", name);
    CHECK(c->t_s == (int)get("cfg")->data[2] && c->t_b == (int)get("cfg")->data[3] && c->T == 1000,
          "%s: t_s %d t_b %d T %d", name, c->t_s, c->t_b, c->T);
    CHECK(c->image_threshold == 0 && c->pixel_threshold == 0 && c->score_lo == 0 && c->score_hi == 0,
          "%s: a converted model must be uncalibrated", name);
    int nbt = dd_params_find(&m->params, "seg.encoder_segment.block1.1.num_batches_tracked");
    CHECK(nbt >= 0 && dd_params_value(&m->params, nbt)[0] == 1234.0f, "%s: num_batches_tracked not carried over", name);
    rc = dd_model_infer_with(m, get("in.x0")->data, get("in.eps")->data, NULL, NULL, &err);
    CHECK(rc == 0, "%s: inference: %s", name, err.msg);
    if (!rc && !perturb) {
        cmp("denoiser outputs e_s|e_b", m->unet.eps, get("out.e"), 1e-4);
        cmp("guided reconstruction x0_hat", m->x0_hat, get("out.x0_hat"), 1e-4);
        cmp("anomaly mask", m->seg.mask, get("out.mask"), 1e-4);
    }
    if (!rc && perturb) {
        dd_params_value(&m->params, dd_params_find(&m->params, "unet.down.1.0.in_layers.2.weight"))[5] += 0.05f;
        rc = dd_model_infer_with(m, get("in.x0")->data, get("in.eps")->data, NULL, NULL, &err);
        double e = check_max_err(m->unet.eps, get("out.e")->data, (long)get("out.e")->numel);
        CHECK(rc == 0 && e > 1e-3, "a perturbed weight went unnoticed (denoiser output error %.3g)", e);
    }
    dd_model_free(m);
}

/* The conversion must fail with exit status 1, a message containing `want`, and no
 * output file. */
static void expect_fail(const char *in, const char *opts, const char *want) {
    char out[64];
    snprintf(out, sizeof out, "fail_%s", in);
    int rc = convert(in, out, opts);
    const char *msg = log_text();
    CHECK(rc == 1, "%s.pth %s: converter exit status %d, expected 1 (output: %s)", in, opts, rc, msg);
    CHECK(strstr(msg, want) != NULL, "%s.pth %s: message lacks \"%s\": %s", in, opts, want, msg);
    char file[96];
    snprintf(file, sizeof file, "%s.safetensors", out);
    CHECK(!exists(file), "%s.pth: a failed conversion left %s behind", in, file);
    printf("%s.pth %s-> %s", in, opts, msg);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = tf_run_python("tests/py/make_ref_checkpoint.py", dir, NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/ref.ddt", dir);
    if (rc == 1) {
        SKIP("PyTorch (Debian python3-torch) not available: checkpoint conversion test skipped");
    } else {
        CHECK(rc == 0, "tests/py/make_ref_checkpoint.py failed");
        if (rc == 0 && tf_read(path, &F) == 0) {
            const char *opts = "--size 32x64 --heads 2 --groups 8";
            rc = convert("good", "good", opts);
            CHECK(rc == 0, "converting good.pth: exit status %d: %s", rc, log_text());
            if (rc == 0) {
                printf("%s", log_text());
                check_model("good", 0);
                check_model("good", 1);
            }
            rc = convert("module", "module", opts);
            CHECK(rc == 0, "converting a DataParallel checkpoint: exit status %d: %s", rc, log_text());
            if (rc == 0) check_model("module", 0);

            expect_fail("badshape", opts, "'middle.0.out_layers.3.weight' is [32, 32, 1, 1], expected [32, 32, 3, 3]");
            expect_fail("missing", opts, "missing tensor 'decoder_segment.db2.4.running_var'");
            expect_fail("extra", opts, "unexpected tensor 'middle.1.bogus.weight'");
            expect_fail("notdict", opts, "not a dict");
            expect_fail("noseg", opts, "missing key 'seg_model_state_dict'");
            expect_fail("good", "--size 32x64 --heads 2 --attention 8", "--attention 8 does not match");
            expect_fail("good", "--size 32x64 --heads 2 --base_channels 32", "--base_channels 32 does not match");
            expect_fail("good", "--size 32x64 --heads 3", "not divisible by 3 attention heads");
            expect_fail("good", "--size 48x64 --heads 2", "divisible by 32");
            expect_fail("good", "--size 32x64 --heads 2 --bogus 1", "unknown model setting '--bogus'");
            expect_fail("nosuchfile", opts, "no such file");

            /* A failed conversion onto an existing model leaves it as it was. */
            rc = convert("badshape", "good", opts);
            CHECK(rc == 1, "badshape.pth onto good.safetensors: exit status %d", rc);
            check_model("good", 0);
            tf_free(&F);
        }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_convert");
}
