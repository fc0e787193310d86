/* cli_util.h — small helpers shared by the subcommands: option parsing of
 * "--key value", progress output, calibrated scoring of a dataset split. */
#ifndef DD_CLI_UTIL_H
#define DD_CLI_UTIL_H

#include <stdio.h>

#include "data/dataset.h"
#include "diffad.h"
#include "core/status.h"

/* Score one dataset image through the public API (the same path as predict). */
int cli_score_file(diffad_ctx *ctx, const char *path, diffad_result *res, dd_error *err);
double cli_now(void);
/* "12m05s" */
void cli_fmt_duration(double seconds, char *buf, size_t cap);
/* Peak resident memory of this process in MiB (VmHWM). */
double cli_peak_rss_mib(void);
/* --min_area / --max_regions / --mm_per_pixel / --review_band over the model's stored values
 * (only the options given, flagged by have_*; review_band NULL when not given: "LO,HI" raw
 * scores or "off"), as predict and test apply them; the library checks the ranges and its
 * message (copied to msg) names the key. Returns 0, or 1 with msg set. */
int cli_region_options(diffad_ctx *ctx, const diffad_region_params *given, int have_area, int have_max, int have_mm,
                       const char *review_band, char *msg, size_t cap);
#define CLI_REVIEW_BAND_HELP                                                                         \
    "three-way decision: images scoring in (LO, HI] are REVIEW (a person decides);\n"                \
    "'off' for OK / NG only (default: the model's band, set by --review at calibration)"

/* The ignored part of a picture (roi 0 there; hw pixels of RGB) dimmed to a third, so an
 * overlay shows what was inspected (predict's overlays, test's report). */
void cli_dim_ignored(unsigned char *rgb, const unsigned char *roi, size_t hw);
/* The decision as predict and test print it. */
const char *cli_decision_name(const diffad_result *r);

/* The values of predict's and test's --precision, indexed by DIFFAD_PRECISION_*, and its help. */
extern const char *const cli_precision_names[];
#define CLI_PRECISION_HELP                                                                    \
    "convolution arithmetic: model (the file's setting, default), auto (bf16 where\n"          \
    "the CPU has AVX512-BF16), f32, or bf16 (exit 2 without the instructions)"

/* --threads, --seed and --precision, the same for every command that scores images through
 * the API (predict, test): entries of a cli_opt table over the command's own variables. */
#define CLI_SCORING_OPTIONS(threads, seed, have_seed, precision)                                      \
    {"threads", "N", CLI_INT, &(threads), 0, 4096,                                                    \
     .help = "compute threads (default: all cores; above 4 x the cores:\ncapped, with a warning)"},   \
    {"seed", "S", CLI_U64, &(seed), .given = &(have_seed),                                            \
     .help = "noise seed of the denoiser passes (default: the library's)"},                           \
    {"precision", "P", CLI_CHOICE, &(precision), .choices = cli_precision_names, .help = CLI_PRECISION_HELP}

#endif
