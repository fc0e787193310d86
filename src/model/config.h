/* config.h — owns the model's named settings: the key table of dd_model_config
 * (size, denoiser and segmentation shape, diffusion levels, losses, learning
 * rates, top-k, convolution algorithm, calibrated thresholds) on the engine of
 * core/settings_table.h. This table is what model files store: their metadata
 * "config" is a JSON object of "key":"value" strings in table order
 * (dd_model_config_json), read back strictly (dd_model_config_from_json:
 * unknown keys are errors naming the key and the file). The training keys, the
 * profiles and dd_settings (model + training) are in train/settings.h. */
#ifndef DD_CONFIG_H
#define DD_CONFIG_H

#include "core/settings_table.h"
#include "model/model.h"

/* The model keys; their offsets are into dd_model_config. */
const dd_key_table *dd_model_key_table(void);

/* Set one model key from text; `origin` names the source in messages. */
int dd_model_config_set(dd_model_config *m, const char *key, const char *value, const char *origin,
                        dd_error *err);
/* The model keys as a JSON object text (model-file metadata); malloc'ed, NULL
 * when out of memory. Equal configs give equal text. */
char *dd_model_config_json(const dd_model_config *m);
/* Read model keys from that text over the paper defaults (dd_model_config_paper
 * at 256x256), strictly: unknown keys and bad values are errors naming the key
 * and `origin`. */
int dd_model_config_from_json(dd_model_config *m, const char *text, const char *origin,
                              dd_error *err);

#endif
