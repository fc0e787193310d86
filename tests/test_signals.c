/* test_signals.c — signals arriving while oneDNN computes must change nothing.
 *
 * oneDNN's f32 GEMM kernels (up to 3.11.0, Debian's 2.6 included) point the stack
 * pointer into a heap workspace while they run, so a signal handler running on that
 * thread writes its frame into the heap (oneDNN issue #4845): wrong numbers, or glibc's
 * "corrupted size vs. prev_size" abort at a later free(). The cpu backend blocks
 * asynchronous signals on the calling thread around each oneDNN call and in its OpenMP
 * workers for good (backend/cpu/dnn.c "Signal guard"). This test runs dd_sgemm on the
 * shapes attention's backward uses, in a child process (a heap abort must not take the
 * test program down) with a SIGALRM handler and a 30 us interval timer, and checks every
 * product bit-identical to the one computed before the timer started, with the heap
 * exercised between products so glibc's checks see a damaged chunk. Without the guard
 * this fails within the first second (1 and 2 threads); with it the results never move.
 * Run with 1 thread (the signal lands on the calling thread) and 2 (it may land on the
 * OpenMP worker, started before the engine as diffad's own OpenMP loops start it). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "backend/backend.h"
#include "backend/cpu/dnn.h"
#include "hashfill.h"

static volatile sig_atomic_t signals_seen;
static void on_alarm(int sig) {
    (void)sig;
    signals_seen++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
    char ta, tb;
    long m, n, k;
} gemm_shape;

/* C[m,n] = op(A) op(B), row-major, as ops_attn.c calls it (leading dimensions from the shape). */
static int product(const gemm_shape *g, const float *a, const float *b, float *c, dd_error *err) {
    long lda = g->ta == 'N' ? g->k : g->m, ldb = g->tb == 'N' ? g->n : g->k;
    return dd_sgemm(g->ta, g->tb, g->m, g->n, g->k, 1.f, a, lda, b, ldb, 0.f, c, g->n, err);
}

/* The child: exit 0 = every product identical, 1 = a product changed, 2 = setup failed,
 * 3 = too few signals arrived during the run to say anything. */
static int child_run(int threads, double seconds) {
    /* attention's linear backward and its products at 64 x 64 / 32 x 32 (ops_attn.c) */
    const gemm_shape shapes[] = {{'T', 'N', 192, 64, 1024}, {'N', 'N', 1024, 64, 192}, {'T', 'N', 256, 32, 256}};
    enum { NS = sizeof shapes / sizeof shapes[0] };
    /* the pool's threads start outside any oneDNN call, as they do when diffad's own
     * OpenMP loops (normalisation, activations) run first: they are created unguarded */
    volatile int started = 0;
#pragma omp parallel num_threads(threads)
    {
#pragma omp atomic
        started++;
    }
    if (started != threads) return 2;
    dd_engine *e = NULL; /* dd_sgemm takes no engine; creating one activates it (threads, worker block) */
    dd_error err = {0};
    if (dd_engine_create(threads, &e, &err)) return 2;
    float *a[NS], *b[NS], *ref[NS], *c[NS];
    for (int s = 0; s < NS; s++) {
        const gemm_shape *g = &shapes[s];
        a[s] = malloc(sizeof(float) * g->m * g->k);
        b[s] = malloc(sizeof(float) * g->k * g->n);
        ref[s] = malloc(sizeof(float) * g->m * g->n);
        c[s] = malloc(sizeof(float) * g->m * g->n);
        if (!a[s] || !b[s] || !ref[s] || !c[s]) return 2;
        hashfill_uniform("a", a[s], (size_t)(g->m * g->k));
        hashfill_uniform("b", b[s], (size_t)(g->k * g->n));
        if (product(g, a[s], b[s], ref[s], &err)) return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL)) return 2;
    struct itimerval every = {{0, 30}, {0, 30}};
    if (setitimer(ITIMER_REAL, &every, NULL)) return 2;
    int changed = 0;
    double t0 = now_s();
    for (long it = 0; now_s() - t0 < seconds && !changed; it++) {
        int s = (int)(it % NS);
        const gemm_shape *g = &shapes[s];
        memset(c[s], 0, sizeof(float) * g->m * g->n);
        if (product(g, a[s], b[s], c[s], &err)) return 2;
        changed = memcmp(c[s], ref[s], sizeof(float) * g->m * g->n) != 0;
        void *p = malloc(1000 + (size_t)(it % 5000) * 8); /* the heap in use: glibc checks chunks */
        free(p);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (changed) return 1;
    for (int s = 0; s < NS; s++) free(a[s]), free(b[s]), free(ref[s]), free(c[s]);
    dd_engine_free(e);
    fprintf(stderr, "  %d thread(s): %ld signals in %.1f s, every product identical\n", threads, (long)signals_seen, seconds);
    return signals_seen < 100 ? 3 : 0;
}

static void test_gemm_under_signals(int threads) {
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK(0, "fork failed");
        return;
    }
    if (pid == 0) _exit(child_run(threads, 1.5));
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) {
        CHECK(0, "waitpid failed");
        return;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
        SKIP("%d thread(s): fewer than 100 signals arrived during the products", threads);
        return;
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "%d thread(s): sgemm under a signal storm: %s %d (1 = a product changed, 2 = setup failed)", threads,
          WIFSIGNALED(st) ? "child killed by signal" : "child exit status",
          WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

int main(void) {
    /* the parent never runs OpenMP: each child starts its own pool after fork */
    test_gemm_under_signals(1);
    test_gemm_under_signals(2);
    return check_summary("test_signals");
}
