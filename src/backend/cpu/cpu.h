/* cpu.h — owns the cpu backend's table: dd_backend_cpu fills every entry of
 * dd_backend (backend/backend.h) with the oneDNN glue (dnn.h) and the OpenMP ops
 * (ops.h). Selected by dd_backend_get("cpu"). */
#ifndef DD_CPU_H
#define DD_CPU_H

#include "backend/backend.h"

extern const dd_backend dd_backend_cpu;

#endif
