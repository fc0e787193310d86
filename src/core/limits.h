/* limits.h — owns the size caps shared by several layers, so that each is one
 * named constant instead of a literal repeated wherever it is checked. */
#ifndef DD_LIMITS_H
#define DD_LIMITS_H

/* Most images in one batch (training step, inference batch, data feeder);
 * also sizes the per-sample stack arrays of the training step. */
#define DD_MAX_BATCH 4096

#endif
