/* diffad.c — the command-line entry point: dispatches to tools/cmd_<name>.c.
 * Exit status: 0 success, 1 "NG found" where a command documents it, 2 error. */
#include <stdio.h>
#include <string.h>

#include "cli_dist.h"
#include "commands.h"
#include "diffad.h"

static void usage(FILE *f) {
    fprintf(f,
            "diffad — DiffusionAD anomaly detection\n"
            "\n"
            "usage: diffad <command> [options]\n"
            "\n"
            "commands:\n"
            "  train     train a model on the good images of one category\n"
            "  test      score labelled test images: AUROC, AP, AUPRO, F1-max; HTML report\n"
            "  predict   score new images: JSON lines, OK/NG, anomaly maps and overlays\n"
            "  calibrate set a model's thresholds again from new good images (no retraining);\n"
            "            set or remove its region of interest (--roi)\n"
            "  synth     write a grid of synthetic training samples (what the model learns from)\n"
            "\n"
            "Run 'diffad <command> --help' for the options of a command; 'diffad --version'\n"
            "for the version and build features. 'mpirun -np N diffad train ...' trains one\n"
            "model on N processes (a build with MPI; docs/training.md).\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version")) {
        printf("diffad %s (MPI: %s)\n", DIFFAD_VERSION, cli_dist_built() ? "yes" : "no");
        return 0;
    }
    if (!strcmp(cmd, "synth")) return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "test")) return cmd_test(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate")) return cmd_calibrate(argc - 1, argv + 1);
    fprintf(stderr, "diffad: unknown command '%s' (try 'diffad --help')\n", cmd);
    return 2;
}
