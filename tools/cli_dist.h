/* cli_dist.h — owns the CLI's process group for data-parallel training: MPI (Open MPI)
 * when the build found it (-DDD_HAVE_MPI, Makefile), a single process otherwise. The
 * library never sees MPI: the trainer gets a dd_dist (train/trainer.h) whose sums
 * this file implements with MPI_Allreduce. */
#ifndef DD_CLI_DIST_H
#define DD_CLI_DIST_H

#include <stddef.h>

#include "train/trainer.h"

/* Join the process group when started by mpirun (size > 1), else a group of one.
 * A run started by mpirun with several processes on a build without MPI is refused
 * (each process would train alone). Returns 0, or 1 with msg set. */
int cli_dist_start(int *argc, char ***argv, dd_dist *d, char *msg, size_t cap);
/* Leave the group: after a failure (failed != 0) stop every process of the job
 * with exit status `status`, so that none waits for the failed one. */
void cli_dist_end(const dd_dist *d, int failed, int status);
/* Point to point (the split `diffad test`): bytes from this process to `to` / into buf
 * from `from`, in order. Return 0, or an error status with err filled. */
int cli_dist_send(const dd_dist *d, int to, const void *buf, size_t bytes, dd_error *err);
int cli_dist_recv(const dd_dist *d, int from, void *buf, size_t bytes, dd_error *err);
/* 1 when this build has MPI. */
int cli_dist_built(void);
/* Processes in the job as the launcher's environment says (1 without a launcher). */
int cli_dist_launched_size(void);

#endif
