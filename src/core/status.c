/* status.c — error records (see status.h). */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

int dd_fail(dd_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *dd_status_name(int code) {
    switch (code) {
    case DD_OK: return "ok";
    case DD_E_INVALID: return "invalid argument";
    case DD_E_NOMEM: return "out of memory";
    case DD_E_IO: return "i/o error";
    case DD_E_FORMAT: return "bad file format";
    case DD_E_BACKEND: return "backend error";
    case DD_E_RANGE: return "value out of range";
    default: return "unknown error";
    }
}

void dd_error_clear(dd_error *err) {
    if (err) {
        err->code = DD_OK;
        err->msg[0] = '\0';
    }
}
