/* fuzz_image.c — libFuzzer harness for the image decoder (issue 14): the input
 * bytes are one image file given to dd_image_decode (data/image.h), decoded as
 * RGB and as a mask under a 4 Mpixel cap, and each decoded image is resized.
 * make fuzz builds it as $(BUILD)/fuzz/fuzz_image; make test replays the seeds
 * in tests/fuzz/corpus/image (tests/fuzz/replay_main.c). */
#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int channels = 3; channels >= 1; channels -= 2) {
        dd_image img = {0};
        dd_error err = {0};
        if (dd_image_decode(data, size, "fuzz", channels, 4L << 20, &img, &err) == DD_OK) {
            if (img.h <= 0 || img.w <= 0 || img.c != channels || !img.data) __builtin_trap();
            dd_image r = {0};
            if (dd_image_resized(&img, 7, 5, &r, &err) == DD_OK) dd_image_free(&r);
            dd_image_free(&img);
        }
    }
    return 0;
}
