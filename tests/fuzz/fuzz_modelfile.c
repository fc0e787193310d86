/* fuzz_modelfile.c — libFuzzer harness for the model-file (safetensors) reader
 * (issue 14). The reader only takes a path (model/modelfile.h), so each input is
 * written to a temporary file under /tmp (one per process) and read with
 * dd_model_file_config (header, metadata and stored config); when that config is
 * small (at most 64 x 64 px, base 16, 3 levels) the whole file is also loaded with
 * dd_model_load (batch 1, inference), which reads and checks every tensor.
 * make fuzz builds it as $(BUILD)/fuzz/fuzz_modelfile; make test replays the
 * seeds in tests/fuzz/corpus/modelfile (tests/fuzz/replay_main.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "model/modelfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static void remove_temp(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/dd_fuzz_modelfile_%ld.safetensors", (long)getpid());
        atexit(remove_temp);
    }
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    size_t wrote = fwrite(data, 1, size, f);
    if (fclose(f) || wrote != size) return 0;
    dd_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    dd_error err = {0};
    char *meta = NULL;
    int rc = dd_model_file_config(path, &cfg, "train_step", &meta, &err);
    free(meta);
    static int verbose = -1; /* FUZZ_VERBOSE=1: one line per input, the reader's message */
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (rc == DD_OK && cfg.unet.h <= 64 && cfg.unet.w <= 64 && cfg.unet.base <= 16 &&
        cfg.unet.levels <= 3 && cfg.seg_width <= 16) {
        dd_model *m = NULL;
        if ((rc = dd_model_load(path, 1, 0, 1, &m, &err)) == DD_OK) dd_model_free(m);
    }
    if (verbose) fprintf(stderr, "fuzz_modelfile: %s\n", rc ? err.msg : "loaded");
    return 0;
}
