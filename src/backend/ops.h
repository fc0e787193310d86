/* ops.h — transitional: the ops moved to backend/cpu/ops.h, and the networks call
 * them through the dd_backend table (backend/backend.h). Only src/model/model.c
 * still includes this name, for its direct cpu calls (concat, losses); once those go
 * through dd_engine_backend(m->eng), delete this file. */
#ifndef DD_OPS_H
#define DD_OPS_H

#include "backend/cpu/ops.h"

#endif
