/* adam.h — owns the optimiser: Adam exactly as PyTorch's torch.optim.Adam (no
 * weight decay, no amsgrad), with one learning rate per parameter group and
 * optional clipping of the global gradient norm. State lives in dd_params'
 * adam_m / adam_v blocks; the step counter and the scalars here; the numeric loops
 * (squared norm, update) run on the backend of `eng` (backend/backend.h). */
#ifndef DD_ADAM_H
#define DD_ADAM_H

#include "backend/backend.h"
#include "core/arena.h"

#define DD_ADAM_MAX_GROUPS 4

typedef struct dd_adam {
    float lr[DD_ADAM_MAX_GROUPS]; /* per dd_param.group */
    float beta1, beta2, eps;
    float clip_norm; /* <= 0: no clipping */
    long step;       /* number of updates taken */
    dd_engine *eng;  /* engine whose backend runs the loops; NULL (dd_adam_init): the cpu
                        backend's ops on host memory, with no engine */
} dd_adam;

void dd_adam_init(dd_adam *a, float lr);
/* L2 norm of all trainable gradients (double accumulation, index order), on the cpu
 * backend (host gradients). */
double dd_grad_norm(const dd_params *p);
/* One update of every trainable tensor; returns the pre-clipping gradient norm in *norm_out
 * (may be NULL). */
int dd_adam_step(dd_adam *a, dd_params *p, double *norm_out, dd_error *err);

#endif
