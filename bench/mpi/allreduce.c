/* allreduce.c — the measured input of the communication model in docs/training.md
 * ("Several processes"): seconds per MPI_Allreduce (sum, in place) of a float block of
 * the size of a profile's gradient, over whatever links mpirun gives (loopback on one
 * machine). Built and run by bench/mpi_scaling.sh:
 *   mpirun -np N allreduce BYTES [REPS]
 * Prints one JSON line from rank 0: bytes, processes, median and min seconds. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long bytes = argc > 1 ? atol(argv[1]) : 20561616;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    size_t n = (size_t)bytes / sizeof(float);
    float *v = malloc(n * sizeof *v);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!v || !t) MPI_Abort(MPI_COMM_WORLD, 2);
    for (size_t i = 0; i < n; i++) v[i] = 1e-3f * (float)(i % 1000);
    MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (rank == 0)
        printf("{\"bytes\":%ld,\"processes\":%d,\"reps\":%d,\"median_s\":%.6f,\"min_s\":%.6f}\n", bytes, size, reps,
               t[reps / 2], t[0]);
    free(v);
    free(t);
    MPI_Finalize();
    return 0;
}
