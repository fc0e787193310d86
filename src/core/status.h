/* status.h — owns error reporting for the whole library.
 *
 * Every fallible library function returns an int status (DD_OK == 0) and, when
 * given a non-NULL dd_error, fills it with a one-line message that names what
 * failed (op, file, shapes). The library never prints on its own and never
 * calls exit(); the CLI turns a status into a message and a non-zero exit. */
#ifndef DD_STATUS_H
#define DD_STATUS_H

#include <stddef.h>

enum {
    DD_OK = 0,
    DD_E_INVALID = 1,  /* bad argument: shape mismatch, zero size, NULL buffer */
    DD_E_NOMEM = 2,    /* allocation failed */
    DD_E_IO = 3,       /* file could not be opened, read or written */
    DD_E_FORMAT = 4,   /* file content is malformed, truncated or inconsistent */
    DD_E_BACKEND = 5,  /* oneDNN refused a primitive */
    DD_E_RANGE = 6,    /* value out of the allowed range (sizes, caps) */
};

typedef struct dd_error {
    int code;
    char msg[512];
} dd_error;

/* Record an error (printf-style) and return its code; err may be NULL. */
int dd_fail(dd_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Human name of a status code ("invalid argument", ...). */
const char *dd_status_name(int code);

/* Clear an error record. */
void dd_error_clear(dd_error *err);

#endif
