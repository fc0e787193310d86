/* fuzz_image.c — libFuzzer target for the image decoder (src/data/image.c).
 *
 * Not built by `make`: build and run by hand (clang 14, libclang-rt-14-dev):
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -Isrc tests/data/fuzz/fuzz_image.c \
 *     tests/data/fuzz/stb_impl.c src/data/image.c src/core/status.c -lm -lpthread -o /tmp/fuzz_image
 * (stb_impl.c compiles stb_image itself with instrumentation, so the fuzzer
 * explores the decoders, not only our checks around them.)
 *   /tmp/fuzz_image -max_total_time=300 -max_len=4096 /tmp/fuzz_work tests/data/fuzz/corpus
 * then keep the small, interesting new inputs in tests/data/fuzz/corpus/;
 * tests/test_image.c runs the decoder over every corpus file. The pixel cap is
 * lowered so that the fuzzer explores headers instead of allocating. */
#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int ch = 1; ch <= 3; ch += 2) {
        dd_image im;
        dd_error e;
        if (dd_image_decode(data, size, "fuzz", ch, 1 << 20, &im, &e) == DD_OK) dd_image_free(&im);
    }
    return 0;
}
