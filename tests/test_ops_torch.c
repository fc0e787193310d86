/* test_ops_torch.c — every op against PyTorch (tests/py/ref_ops.py writes the dump):
 * forward outputs and all gradients, relative error (scale-aware, see check_max_err)
 * below 1e-4 in float32. Skips, with a message, when Debian's python3-torch is absent. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/adam.h"
#include "check.h"
#include "backend/cpu/dnn.h"
#include "backend/cpu/ops.h"
#include "tensorfile.h"

#define TOL 1e-4

static tf_file F;
static float *T(const char *name) {
    tf_tensor *t = tf_get(&F, name);
    if (!t) {
        fprintf(stderr, "missing %s in dump\n", name);
        exit(2);
    }
    return t->data;
}
static size_t NUMEL(const char *name) { return tf_get(&F, name)->numel; }

static void cmp(const char *what, const float *got, const char *ref_name) {
    double e = check_max_err(got, T(ref_name), (long)NUMEL(ref_name));
    CHECK(e < TOL, "%s vs PyTorch %s: max rel err %.3g", what, ref_name, e);
}

static void conv_case(dd_engine *eng, const char *tag, int n, int cin, int cout, int h, int w, int k,
                      int stride, dd_conv_algo algo) {
    char nm[64];
#define N_(s) (snprintf(nm, sizeof nm, "%s.%s", tag, s), nm)
    dd_conv_shape s = {n, h, w, cin, cout, k, stride, k / 2, 0};
    dd_conv *c;
    dd_error err = {0};
    int rc = dd_conv_create(eng, &s, algo, 1, &c, &err);
    CHECK(rc == 0, "%s create: %s", tag, err.msg);
    if (rc) return;
    size_t ny = NUMEL(N_("y")), nx = NUMEL(N_("x")), nw = NUMEL(N_("w"));
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = calloc(nw, 4), *db = calloc(cout, 4);
    rc = dd_conv_forward(c, T(N_("x")), T(N_("w")), T(N_("b")), y, &err);
    CHECK(rc == 0, "%s forward: %s", tag, err.msg);
    snprintf(nm, sizeof nm, "%s.y", tag);
    char what[96];
    snprintf(what, sizeof what, "%s forward (%s, %s)", tag, algo ? "winograd" : "direct", dd_conv_impl(c));
    cmp(what, y, nm);
    rc = dd_conv_backward(c, T(N_("x")), T(N_("w")), T(N_("g")), dx, dw, db, 0, &err);
    CHECK(rc == 0, "%s backward: %s", tag, err.msg);
    cmp(tag, dx, N_("dx"));
    cmp(tag, dw, N_("dw"));
    cmp(tag, db, N_("db"));
    /* Accumulation: a second backward with acc adds the same again. */
    rc = dd_conv_backward(c, T(N_("x")), T(N_("w")), T(N_("g")), dx, dw, db, 1, &err);
    for (size_t i = 0; i < nx; i++) dx[i] *= 0.5f;
    for (size_t i = 0; i < nw; i++) dw[i] *= 0.5f;
    for (int i = 0; i < cout; i++) db[i] *= 0.5f;
    cmp("conv accumulate dx", dx, N_("dx"));
    cmp("conv accumulate dw", dw, N_("dw"));
    cmp("conv accumulate db", db, N_("db"));
    free(y), free(dx), free(dw), free(db);
    dd_conv_free(c);
#undef N_
}

static void gn_case(const char *tag, int silu) {
    char a[64], b[64];
#define N_(s) (snprintf(a, sizeof a, "%s.%s", tag, s), a)
#define M_(s) (snprintf(b, sizeof b, "%s.%s", tag, s), b)
    int n = 2, c = 32, hw = 20, g = 8;
    size_t nx = (size_t)n * hw * c;
    float *y = malloc(nx * 4), *dx = malloc(nx * 4), mean[16], rstd[16], dg[32] = {0}, dbt[32] = {0};
    dd_error err = {0};
    int rc = dd_groupnorm_forward(T(N_("x")), T(M_("gamma")), T(N_("beta")), y, mean, rstd, n, hw, c, g, 1e-5f, silu, &err);
    CHECK(rc == 0, "%s: %s", tag, err.msg);
    cmp(tag, y, N_("y"));
    rc = dd_groupnorm_backward(T(N_("x")), T(M_("gamma")), T(N_("beta")), mean, rstd, T(M_("g")), dx, dg, dbt, n, hw, c, g, silu, 0, &err);
    CHECK(rc == 0, "%s: %s", tag, err.msg);
    cmp(tag, dx, N_("dx"));
    cmp(tag, dg, N_("dgamma"));
    cmp(tag, dbt, N_("dbeta"));
    free(y), free(dx);
#undef N_
#undef M_
}

int main(void) {
    char path[] = "/tmp/diffad_ops_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        SKIP("cannot create a temporary file");
        return check_summary("test_ops_torch");
    }
    close(fd);
    int rc = tf_run_python("tests/py/ref_ops.py", path, NULL);
    if (rc == 1) {
        SKIP("PyTorch (Debian python3-torch) not available: PyTorch cross-checks skipped");
        remove(path);
        return check_summary("test_ops_torch");
    }
    CHECK(rc == 0, "tests/py/ref_ops.py failed");
    if (rc || tf_read(path, &F)) {
        remove(path);
        return check_summary("test_ops_torch");
    }
    remove(path);
    dd_engine *eng;
    dd_error err = {0};
    CHECK(dd_engine_create(2, &eng, &err) == 0, "engine: %s", err.msg);

    conv_case(eng, "conv3", 2, 8, 16, 6, 5, 3, 1, DD_CONV_DIRECT);
    conv_case(eng, "conv3s2", 2, 8, 12, 8, 6, 3, 2, DD_CONV_DIRECT);
    conv_case(eng, "conv1", 2, 16, 8, 5, 7, 1, 1, DD_CONV_DIRECT);
    conv_case(eng, "conv3", 2, 8, 16, 6, 5, 3, 1, DD_CONV_WINOGRAD);
    gn_case("gn", 0);
    gn_case("gnsilu", 1);

    { /* BatchNorm training + running stats + eval */
        size_t p = 3 * 16, c = 8;
        float *y = malloc(p * c * 4), *dx = malloc(p * c * 4), mean[8], rstd[8], dg[8] = {0}, dbt[8] = {0};
        float rm[8], rv[8];
        memcpy(rm, T("bn.run_mean0"), sizeof rm);
        memcpy(rv, T("bn.run_var0"), sizeof rv);
        rc = dd_batchnorm_forward(T("bn.x"), T("bn.gamma"), T("bn.beta"), rm, rv, y, mean, rstd, p, c, 1e-5f, 0.1f, 1, &err);
        CHECK(rc == 0, "bn: %s", err.msg);
        cmp("batchnorm train", y, "bn.y");
        cmp("batchnorm running mean", rm, "bn.run_mean");
        cmp("batchnorm running var", rv, "bn.run_var");
        dd_batchnorm_backward(T("bn.x"), T("bn.gamma"), mean, rstd, T("bn.g"), dx, dg, dbt, p, c, 0, &err);
        cmp("batchnorm dx", dx, "bn.dx");
        cmp("batchnorm dgamma", dg, "bn.dgamma");
        cmp("batchnorm dbeta", dbt, "bn.dbeta");
        dd_batchnorm_forward(T("bn.x"), T("bn.gamma"), T("bn.beta"), rm, rv, y, NULL, NULL, p, c, 1e-5f, 0.1f, 0, &err);
        cmp("batchnorm eval", y, "bn.y_eval");
        free(y), free(dx);
    }
    { /* activations */
        size_t n = NUMEL("silu.x");
        float *y = malloc(n * 4), *dx = malloc(n * 4);
        dd_silu_forward(T("silu.x"), y, n);
        cmp("silu", y, "silu.y");
        dd_silu_backward(T("silu.x"), T("silu.g"), dx, n, 0);
        cmp("silu dx", dx, "silu.dx");
        dd_relu_forward(T("relu.x"), y, n);
        cmp("relu", y, "relu.y");
        dd_relu_backward(y, T("relu.g"), dx, n, 0);
        cmp("relu dx", dx, "relu.dx");
        dd_sigmoid_forward(T("sigmoid.x"), y, n);
        cmp("sigmoid", y, "sigmoid.y");
        dd_sigmoid_backward(y, T("sigmoid.g"), dx, n, 0);
        cmp("sigmoid dx", dx, "sigmoid.dx");
        free(y), free(dx);
    }
    { /* pooling and upsampling; torch shapes (N,C,H,W) = (2,5,6,8) and (2,5|20,3,4) */
        float *y = malloc(4096 * 4), *dx = malloc(4096 * 4);
        dd_avgpool2_forward(T("avgpool.x"), y, 2, 6, 8, 5, &err);
        cmp("avgpool2", y, "avgpool.y");
        dd_avgpool2_backward(T("avgpool.g"), dx, 2, 6, 8, 5, 0, &err);
        cmp("avgpool2 dx", dx, "avgpool.dx");
        dd_maxpool2_forward(T("maxpool.x"), y, 2, 6, 8, 5, &err);
        cmp("maxpool2", y, "maxpool.y");
        dd_maxpool2_backward(T("maxpool.x"), T("maxpool.g"), dx, 2, 6, 8, 5, 0, &err);
        cmp("maxpool2 dx", dx, "maxpool.dx");
        dd_upnearest2_forward(T("upnearest.x"), y, 2, 3, 4, 5);
        cmp("upnearest2", y, "upnearest.y");
        dd_upnearest2_backward(T("upnearest.g"), dx, 2, 3, 4, 5, 0);
        cmp("upnearest2 dx", dx, "upnearest.dx");
        dd_upbilinear2_forward(T("upbilinear.x"), y, 2, 3, 4, 20);
        cmp("upbilinear2", y, "upbilinear.y");
        dd_upbilinear2_backward(T("upbilinear.g"), dx, 2, 3, 4, 20, 0);
        cmp("upbilinear2 dx", dx, "upbilinear.dx");
        free(y), free(dx);
    }
    { /* linear */
        float y[42], dx[60], dw[70] = {0}, db[7] = {0};
        dd_linear_forward(T("linear.x"), T("linear.w"), T("linear.b"), y, 6, 10, 7, &err);
        cmp("linear", y, "linear.y");
        dd_linear_backward(T("linear.x"), T("linear.w"), T("linear.g"), dx, dw, db, 6, 10, 7, 0, &err);
        cmp("linear dx", dx, "linear.dx");
        cmp("linear dw", dw, "linear.dw");
        cmp("linear db", db, "linear.db");
    }
    { /* attention: N=2, C=16, heads=4, L=12 */
        int n = 2, c = 16, l = 12, heads = 4;
        float *a = malloc((size_t)n * l * c * 4), *probs = malloc((size_t)n * heads * l * l * 4);
        float *dqkv = malloc((size_t)n * l * 3 * c * 4), *scr = malloc((size_t)l * l * 4);
        rc = dd_attention_forward(T("attn.qkv"), a, probs, 1, n, l, c, heads, &err);
        CHECK(rc == 0, "attention: %s", err.msg);
        cmp("attention", a, "attn.a");
        rc = dd_attention_backward(T("attn.qkv"), probs, T("attn.g"), dqkv, scr, n, l, c, heads, 0, &err);
        cmp("attention dqkv", dqkv, "attn.dqkv");
        dd_attention_forward(T("attn.qkv"), a, scr, 0, n, l, c, heads, &err);
        cmp("attention (inference scratch)", a, "attn.a");
        free(a), free(probs), free(dqkv), free(scr);
    }
    { /* timestep embedding */
        int t[5];
        for (int i = 0; i < 5; i++) t[i] = (int)T("temb.t")[i];
        float e[5 * 64];
        dd_timestep_embedding(t, e, 5, 64, &err);
        double m = 0;
        for (int i = 0; i < 5 * 64; i++) m = fmax(m, fabs(e[i] - T("temb.e")[i]));
        CHECK(m < 2e-5, "timestep embedding: max abs err %.3g", m);
    }
    { /* losses */
        float dp[128];
        double l = dd_focal_loss(T("focal.p"), T("focal.y"), dp, 128, 0.5f, 4.0f, 1.0f, 0);
        CHECK(check_rel(l, T("focal.loss")[0], 1e-12) < TOL, "focal loss %g vs %g", l, T("focal.loss")[0]);
        cmp("focal dp", dp, "focal.dp");
        l = dd_smoothl1_loss(T("sl1.a"), T("sl1.b"), dp, 50, 1.0f, 1.0f, 0);
        CHECK(check_rel(l, T("sl1.loss")[0], 1e-12) < TOL, "smoothl1 loss %g vs %g", l, T("sl1.loss")[0]);
        cmp("smoothl1 grad", dp, "sl1.da");
        l = dd_mse_loss(T("mse.a"), T("mse.b"), dp, 40, 1.0f, 0);
        CHECK(check_rel(l, T("mse.loss")[0], 1e-12) < TOL, "mse loss %g vs %g", l, T("mse.loss")[0]);
        cmp("mse grad", dp, "mse.da");
    }
    { /* Adam, two groups, three steps */
        dd_params p;
        dd_params_init(&p);
        int64_t s1 = 33, s2 = 7;
        int i1 = dd_params_add(&p, "p1", 1, &s1, 1, 0, &err), i2 = dd_params_add(&p, "p2", 1, &s2, 1, 1, &err);
        CHECK(dd_params_alloc(&p, 1, &err) == 0, "params alloc: %s", err.msg);
        memcpy(dd_params_value(&p, i1), T("adam.p1_0"), 33 * 4);
        memcpy(dd_params_value(&p, i2), T("adam.p2_0"), 7 * 4);
        dd_adam opt;
        dd_adam_init(&opt, 1e-2f);
        opt.lr[1] = 1e-3f;
        for (int s = 0; s < 3; s++) {
            char n1[32], n2[32];
            snprintf(n1, sizeof n1, "adam.g1_%d", s);
            snprintf(n2, sizeof n2, "adam.g2_%d", s);
            memcpy(dd_params_grad(&p, i1), T(n1), 33 * 4);
            memcpy(dd_params_grad(&p, i2), T(n2), 7 * 4);
            CHECK(dd_adam_step(&opt, &p, NULL, &err) == 0, "adam: %s", err.msg);
        }
        cmp("adam group 0 after 3 steps", dd_params_value(&p, i1), "adam.p1_3");
        cmp("adam group 1 after 3 steps", dd_params_value(&p, i2), "adam.p2_3");
        dd_params_free(&p);
    }
    dd_engine_free(eng);
    tf_free(&F);
    return check_summary("test_ops_torch");
}
