/* helper.c — the C side of tests/py/test_binding.py (compiled by the test with cc).
 *
 *   helper layout         one line per struct of include/diffad.h: "S sizeof", then one
 *                         per field in declaration order: "S.field offsetof sizeof"
 *   helper decode FILE C  the image decoded as examples/embed.c does (stb_image, C = 1 or
 *                         3 channels): "W H C\n" then the W*H*C bytes on stdout */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "diffad.h"

#define S(T) printf(#T " %zu\n", sizeof(T))
#define F(T, f) printf(#T "." #f " %zu %zu\n", offsetof(T, f), sizeof(((T *)0)->f))

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "layout")) {
        S(diffad_params);
        F(diffad_params, threads), F(diffad_params, memory_budget), F(diffad_params, seed);
        F(diffad_params, log), F(diffad_params, log_user), F(diffad_params, skip_recon),
        F(diffad_params, precision);
        S(diffad_image);
        F(diffad_image, data), F(diffad_image, width), F(diffad_image, height);
        F(diffad_image, channels), F(diffad_image, stride), F(diffad_image, format);
        S(diffad_result);
        F(diffad_result, score), F(diffad_result, normalized), F(diffad_result, threshold);
        F(diffad_result, is_ng), F(diffad_result, calibrated), F(diffad_result, map_width);
        F(diffad_result, map_height), F(diffad_result, map), F(diffad_result, recon);
        F(diffad_result, pixel_threshold), F(diffad_result, work_width), F(diffad_result, work_height);
        F(diffad_result, tiles_x), F(diffad_result, tiles_y), F(diffad_result, work_map);
        F(diffad_result, ms_preprocess), F(diffad_result, ms_denoise), F(diffad_result, ms_segment);
        F(diffad_result, ms_postprocess);
#ifdef DIFFAD_MAX_REGIONS /* the defect regions */
        F(diffad_result, n_regions), F(diffad_result, regions), F(diffad_result, regions_found);
        F(diffad_result, decision);
        S(diffad_region);
        F(diffad_region, x), F(diffad_region, y), F(diffad_region, width), F(diffad_region, height);
        F(diffad_region, area), F(diffad_region, area_mm2), F(diffad_region, peak), F(diffad_region, mean);
        S(diffad_region_params);
        F(diffad_region_params, min_area), F(diffad_region_params, max_regions);
        F(diffad_region_params, mm_per_pixel), F(diffad_region_params, review_lo), F(diffad_region_params, review_hi);
#endif
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "decode")) {
        int w, h, n, c = atoi(argv[3]);
        unsigned char *px = stbi_load(argv[2], &w, &h, &n, c);
        if (!px) {
            fprintf(stderr, "helper: %s: %s\n", argv[2], stbi_failure_reason());
            return 1;
        }
        printf("%d %d %d\n", w, h, c);
        size_t len = (size_t)w * h * c;
        int ok = fwrite(px, 1, len, stdout) == len;
        stbi_image_free(px);
        return ok ? 0 : 1;
    }
    fprintf(stderr, "usage: helper layout | helper decode FILE 1|3\n");
    return 2;
}
