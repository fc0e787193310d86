/* fuzz_json.c — libFuzzer harness for the JSON reader and the model config read
 * from JSON (issue 14): the input goes to dd_json_parse (core/json.h), the tree
 * is walked and its strings re-escaped, and the same text (NUL-terminated) goes to
 * dd_model_config_from_json + dd_model_config_check (model/config.h); a config
 * that is read is written back with dd_model_config_json and must read again; and
 * the same text goes to dd_calib_scores_parse (eval/drift.h, the model file's
 * calibration_scores), whose result must format and parse back to the same values.
 * make fuzz builds it as $(BUILD)/fuzz/fuzz_json; make test replays the seeds in
 * tests/fuzz/corpus/json (tests/fuzz/replay_main.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "eval/drift.h"
#include "model/config.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const dd_json *j, int depth) {
    size_t n = 1;
    char buf[64];
    if (j->str) n += dd_json_escape(buf, sizeof buf, j->str);
    if (j->key) n += dd_json_escape(buf, sizeof buf, j->key);
    int count = 0;
    for (const dd_json *c = j->child; c; c = c->next, count++) n += walk(c, depth + 1);
    if (count != j->count && (j->type == DD_JARR || j->type == DD_JOBJ)) __builtin_trap();
    if (j->type == DD_JOBJ && j->child && j->child->key) (void)dd_json_get(j, j->child->key);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dd_json *j = NULL;
    dd_error err = {0};
    if (dd_json_parse((const char *)data, size, "fuzz", &j, &err) == DD_OK) {
        if (!j) __builtin_trap();
        (void)walk(j, 0);
        dd_json_free(j);
    }
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    dd_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (dd_model_config_from_json(&cfg, text, "fuzz", &err) == DD_OK) {
        (void)dd_model_config_check(&cfg, &err);
        char *back = dd_model_config_json(&cfg);
        if (back) {
            dd_model_config again;
            memset(&again, 0, sizeof again);
            if (dd_model_config_from_json(&again, back, "fuzz (written back)", &err) != DD_OK) __builtin_trap();
            free(back);
        }
    }
    float *v = NULL, *w = NULL;
    size_t n = 0, imgs = 0, n2 = 0, imgs2 = 0;
    if (dd_calib_scores_parse(text, &v, &n, &imgs, &err) == DD_OK) {
        /* ascending and finite, so it formats; all n values survive when n == imgs */
        char *back = NULL;
        if (n == imgs) {
            if (dd_calib_scores_format(v, n, &back, &err) != DD_OK) __builtin_trap();
            if (dd_calib_scores_parse(back, &w, &n2, &imgs2, &err) != DD_OK || n2 != n || memcmp(v, w, n * sizeof *v))
                __builtin_trap();
        }
        free(back), free(w);
    } else if (v) __builtin_trap();
    free(v);
    free(text);
    return 0;
}
