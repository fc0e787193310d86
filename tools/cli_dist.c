/* cli_dist.c — the CLI's process group (see cli_dist.h). */
#include "cli_dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DD_HAVE_MPI
#include <mpi.h>
#endif

int cli_dist_launched_size(void) {
    /* Open MPI's mpirun, then the PMI / PMIx launchers (srun, hydra) */
    const char *keys[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", NULL};
    for (int i = 0; keys[i]; i++) {
        const char *v = getenv(keys[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 1;
}

#ifdef DD_HAVE_MPI
int cli_dist_built(void) { return 1; }

/* MPI counts in int: large blocks go in pieces. */
#define CHUNK (INT_MAX / 2)

static int mpi_fail(int code, const char *what, dd_error *err) {
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, s, &len);
    return dd_fail(err, DD_E_IO, "%s: MPI error: %s", what, s);
}

/* An in-place sum of n values of `type` (elem bytes each), in pieces of at most CHUNK. */
static int allreduce(void *v, size_t n, MPI_Datatype type, size_t elem, const char *what, dd_error *err) {
    char *p = v;
    for (size_t i = 0; i < n; i += CHUNK) {
        int k = (int)(n - i < (size_t)CHUNK ? n - i : (size_t)CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + i * elem, k, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what, err);
    }
    return DD_OK;
}

static int sum_f32(void *ctx, float *v, size_t n, dd_error *err) {
    (void)ctx;
    return allreduce(v, n, MPI_FLOAT, sizeof *v, "gradient sum", err);
}

static int sum_f64(void *ctx, double *v, size_t n, dd_error *err) {
    (void)ctx;
    return allreduce(v, n, MPI_DOUBLE, sizeof *v, "statistics sum", err);
}

int cli_dist_start(int *argc, char ***argv, dd_dist *d, char *msg, size_t cap) {
    memset(d, 0, sizeof *d);
    d->size = 1;
    if (cli_dist_launched_size() <= 1) return 0; /* a plain run: no MPI at all */
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        snprintf(msg, cap, "MPI_Init failed");
        return 1;
    }
    /* errors come back as codes (and end in one message), not as a silent abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->sum_f32 = sum_f32, d->sum_f64 = sum_f64;
    return 0;
}

int cli_dist_send(const dd_dist *d, int to, const void *buf, size_t bytes, dd_error *err) {
    (void)d;
    const char *p = buf;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int k = (int)(bytes - i < (size_t)CHUNK ? bytes - i : (size_t)CHUNK);
        int rc = MPI_Send(p + i, k, MPI_BYTE, to, 7, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "send", err);
    }
    return DD_OK;
}

int cli_dist_recv(const dd_dist *d, int from, void *buf, size_t bytes, dd_error *err) {
    (void)d;
    char *p = buf;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        int k = (int)(bytes - i < (size_t)CHUNK ? bytes - i : (size_t)CHUNK);
        int rc = MPI_Recv(p + i, k, MPI_BYTE, from, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "receive", err);
    }
    return DD_OK;
}

void cli_dist_end(const dd_dist *d, int failed, int status) {
    int up = 0;
    MPI_Initialized(&up);
    if (!up) return;
    if (failed && d->size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
}
#else
int cli_dist_built(void) { return 0; }

int cli_dist_start(int *argc, char ***argv, dd_dist *d, char *msg, size_t cap) {
    (void)argc, (void)argv;
    memset(d, 0, sizeof *d);
    d->size = 1;
    int n = cli_dist_launched_size();
    if (n > 1) {
        snprintf(msg, cap, "started as one of %d processes (mpirun), but this diffad was built without MPI: each "
                 "would train alone. Install libopenmpi-dev (scripts/setup.sh) and rebuild", n);
        return 1;
    }
    return 0;
}

void cli_dist_end(const dd_dist *d, int failed, int status) { (void)d, (void)failed, (void)status; }

int cli_dist_send(const dd_dist *d, int to, const void *buf, size_t bytes, dd_error *err) {
    (void)d, (void)to, (void)buf, (void)bytes;
    return dd_fail(err, DD_E_INVALID, "send: this diffad was built without MPI");
}

int cli_dist_recv(const dd_dist *d, int from, void *buf, size_t bytes, dd_error *err) {
    (void)d, (void)from, (void)buf, (void)bytes;
    return dd_fail(err, DD_E_INVALID, "receive: this diffad was built without MPI");
}
#endif
