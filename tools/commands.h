/* commands.h — the `diffad` subcommands; each lives in tools/cmd_<name>.c and
 * returns the process exit status (0 ok, 1 NG/findings where documented, 2 error). */
#ifndef DD_COMMANDS_H
#define DD_COMMANDS_H

/* dd_settings (now in train/settings.h, no longer in model/config.h) for
 * cmd_train.c, until that file includes train/settings.h itself. */
#include "train/settings.h"

int cmd_synth(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_info(int argc, char **argv);
#endif
