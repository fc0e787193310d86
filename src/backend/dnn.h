/* dnn.h — transitional: the engine and convolution types moved to backend/backend.h
 * and the oneDNN glue to backend/cpu/dnn.h. Only src/model/model.h still includes
 * this name; once it includes "backend/backend.h", delete this file. */
#ifndef DD_DNN_H
#define DD_DNN_H

#include "backend/backend.h"

#endif
