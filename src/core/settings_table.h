/* settings_table.h — owns the generic named-settings engine: a table of typed
 * keys (name, type, offset of the field in the structure the table describes,
 * range, help) drives setting a key from text ("--key value", config files,
 * stored metadata), applying a JSON object, writing the values as JSON members
 * and printing the help. The model keys (model/config.c) and the training keys
 * (train/settings.c) are two such tables.
 *
 * Types: INT (int), LONG (long), U64 (uint64_t), FLOAT (float), STRING (char
 * array of `cap` bytes), ENUM (int holding the index into `names`), CUSTOM
 * (parse/print callbacks, for values such as "128x128" or "1,2,2,4" that fill
 * several fields). Numbers must be finite and within [lo, hi] (NaN and
 * infinities are refused naming the key); whole-number types refuse
 * fractions. Every error names the origin (file, "command line") and the key. */
#ifndef DD_SETTINGS_TABLE_H
#define DD_SETTINGS_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "core/json.h"
#include "core/status.h"
#include "core/text.h"

typedef enum {
    DD_KEY_INT,
    DD_KEY_LONG,
    DD_KEY_U64,
    DD_KEY_FLOAT,
    DD_KEY_STRING,
    DD_KEY_ENUM,
    DD_KEY_CUSTOM,
} dd_key_type;

typedef struct dd_key dd_key;
struct dd_key {
    const char *name;
    dd_key_type type;
    size_t off;                /* offset of the field in the described structure */
    double lo, hi;             /* INT, LONG, U64, FLOAT: inclusive range; CUSTOM: free for the callbacks */
    size_t cap;                /* STRING: size of the char array (text up to cap - 1 bytes) */
    const char *const *names;  /* ENUM: names indexed by value, NULL-terminated */
    /* CUSTOM: set the structure from text; 0, or nonzero with `why` filled (one
     * phrase, without key or origin, e.g. "needs HxW (e.g. 128x128)"). */
    int (*parse)(const dd_key *k, void *obj, const char *text, char *why, size_t why_cap);
    /* CUSTOM: the value as text that parse accepts back. */
    void (*print)(const dd_key *k, const void *obj, char *buf, size_t cap);
    const char *help;
};

typedef struct dd_key_table {
    const dd_key *keys;
    int n;
    const char *unknown_hint; /* appended to "unknown setting" errors, e.g. " (see 'diffad train --help')" */
} dd_key_table;

/* A table bound to the structure it describes; several groups form one
 * namespace of keys (a key is looked up in the groups in order). */
typedef struct dd_key_group {
    const dd_key_table *table;
    void *obj;
} dd_key_group;

const dd_key *dd_keys_find(const dd_key_table *t, const char *name);

/* Set one key of obj from text; errors name origin and key. */
int dd_key_set(const dd_key *k, void *obj, const char *text, const char *origin, dd_error *err);
/* The value as text: exact (round-trip precision, for stored metadata) or short (help). */
void dd_key_format(const dd_key *k, const void *obj, char *buf, size_t cap, int exact);

/* Set `name` in the first group that has it; unknown names are errors naming
 * the key, the origin and the first table's hint. */
int dd_keys_set(const dd_key_group *g, int n_groups, const char *name, const char *text,
                const char *origin, dd_error *err);
/* Apply every member of a JSON object: strings as they are, numbers, and arrays
 * of numbers as "a,b,c" ([] as "none"). Stops at the first error. */
int dd_keys_apply_json(const dd_key_group *g, int n_groups, const dd_json *obj,
                       const char *origin, dd_error *err);
/* Append every key of the table as a JSON member "name":"exact value" to b
 * (comma-separated; *first is 1 before the first member and 0 after). */
void dd_keys_json_members(const dd_key_table *t, const void *obj, dd_textbuf *b, int *first);
/* One help line per key: "  --name  current-value  help". */
void dd_keys_print_help(const dd_key_group *g, int n_groups, FILE *f);

#endif
