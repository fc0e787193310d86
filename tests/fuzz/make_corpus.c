/* make_corpus.c — writes the valid seeds of tests/fuzz/corpus that the library
 * itself produces (run from the repository root; the crafted bad cases are made
 * from them by hand, see tests/fuzz/README.md):
 *   image/gray8.png rgb8.png gray16.png   tiny PNGs from the PNG writers
 *   modelfile/tiny.safetensors            a tiny random model (dd_model_save)
 *   json/model_config.json                that model's config (dd_model_config_json)
 * Build: cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fopenmp -Iinclude -Isrc
 *   tests/fuzz/make_corpus.c build/libdiffad.a -ldnnl -lstb -lm -lpthread */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "model/config.h"
#include "model/model.h"
#include "model/modelfile.h"

int main(void) {
    dd_error err = {0};
    float v[6 * 5 * 3];
    for (int i = 0; i < 6 * 5 * 3; i++) v[i] = (float)((i * 37) % 101) / 100.0f;
    if (dd_write_png_gray8("tests/fuzz/corpus/image/gray8.png", v, 6, 5, &err) ||
        dd_write_png_gray16("tests/fuzz/corpus/image/gray16.png", v, 5, 4, &err) ||
        dd_write_png_rgb8("tests/fuzz/corpus/image/rgb8.png", v, 5, 6, &err)) {
        fprintf(stderr, "make_corpus: %s\n", err.msg);
        return 1;
    }
    dd_model_config c;
    dd_model_config_paper(&c, 32, 32);
    c.unet.base = 4, c.unet.levels = 1, c.unet.mult[0] = 1;
    c.unet.res_blocks = 1, c.unet.n_attn = 0, c.unet.heads = 1, c.unet.groups = 4;
    c.seg_width = 1;
    dd_model *m = NULL;
    if (dd_model_create(&c, 1, 0, 1, &m, &err)) {
        fprintf(stderr, "make_corpus: %s\n", err.msg);
        return 1;
    }
    dd_model_init_weights(m, 1);
    if (dd_model_save(m, "tests/fuzz/corpus/modelfile/tiny.safetensors", 0, NULL, 0, &err)) {
        fprintf(stderr, "make_corpus: %s\n", err.msg);
        return 1;
    }
    dd_model_free(m);
    char *j = dd_model_config_json(&c);
    FILE *f = fopen("tests/fuzz/corpus/json/model_config.json", "wb");
    if (!j || !f) return 1;
    fputs(j, f);
    fclose(f);
    free(j);
    return 0;
}
