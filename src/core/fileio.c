/* fileio.c — atomic file writes and whole-file reads (see fileio.h). */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

struct dd_afile {
    FILE *fp;
    char *path;  /* the target */
    char *dir;   /* its folder ("." when the path has none), for messages and the folder fsync */
    char *tmp;   /* the temporary file */
    int failed;  /* a write failed; errno_at_failure says why */
    int errno_at_failure;
};

static uint64_t splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Six name characters that differ between processes, threads (f is live and
 * distinct) and tries; O_EXCL makes any collision a retry, never a clash. */
static void draw_suffix(char out[7], const void *f, int attempt) {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = splitmix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                          ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)f ^
                          (uint64_t)attempt * 0x2545F4914F6CDD1Dull);
    for (int i = 0; i < 6; i++) {
        out[i] = chars[x % 62];
        x /= 62;
    }
    out[6] = 0;
}

static void afile_free(dd_afile *f) {
    if (!f) return;
    free(f->path);
    free(f->dir);
    free(f->tmp);
    free(f);
}

dd_afile *dd_afile_open(const char *path, dd_error *err) {
    if (!path || !*path) {
        dd_fail(err, DD_E_INVALID, "write: no file name given");
        return NULL;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0; /* folder prefix, '/' included */
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        dd_fail(err, DD_E_IO, "%s: is a folder, not a file", path);
        return NULL;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        dd_fail(err, DD_E_IO, "%s: is a folder, not a file", path);
        return NULL;
    }
    dd_afile *f = calloc(1, sizeof *f);
    size_t blen = strlen(base);
    size_t tb = blen > 200 ? 200 : blen; /* keep ".<name>.XXXXXX.tmp" under NAME_MAX */
    if (f) {
        f->path = strdup(path);
        f->dir = malloc(dlen + 2);
        f->tmp = malloc(dlen + tb + 16);
    }
    if (!f || !f->path || !f->dir || !f->tmp) {
        afile_free(f);
        dd_fail(err, DD_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (dlen) {
        memcpy(f->dir, path, dlen);
        f->dir[dlen > 1 ? dlen - 1 : 1] = 0; /* "a/b/" -> "a/b"; "/" stays "/" */
    } else {
        strcpy(f->dir, ".");
    }
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        char sfx[7];
        draw_suffix(sfx, f, attempt);
        memcpy(f->tmp, path, dlen);
        snprintf(f->tmp + dlen, tb + 16, ".%.*s.%s.tmp", (int)tb, base, sfx);
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) break;
    }
    if (fd < 0) {
        e = errno;
        dd_fail(err, DD_E_IO, "%s: cannot create a file in folder '%s' (%s)", path, f->dir,
                e == EEXIST ? "no free temporary name" : strerror(e));
        afile_free(f);
        return NULL;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        e = errno;
        close(fd);
        unlink(f->tmp);
        dd_fail(err, DD_E_IO, "%s: cannot open for writing (%s)", path, strerror(e));
        afile_free(f);
        return NULL;
    }
    return f;
}

static void note_failure(dd_afile *f) {
    if (f->failed) return;
    f->failed = 1;
    f->errno_at_failure = errno ? errno : EIO;
}

int dd_afile_write(dd_afile *f, const void *data, size_t n) {
    if (!f || f->failed) return DD_E_IO;
    if (n && fwrite(data, 1, n, f->fp) != n) {
        note_failure(f);
        return DD_E_IO;
    }
    return DD_OK;
}

int dd_afile_printf(dd_afile *f, const char *fmt, ...) {
    if (!f || f->failed) return DD_E_IO;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f->fp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        note_failure(f);
        return DD_E_IO;
    }
    return DD_OK;
}

const char *dd_afile_temp_path(const dd_afile *f) { return f ? f->tmp : NULL; }

void dd_afile_abort(dd_afile *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    unlink(f->tmp);
    afile_free(f);
}

int dd_afile_commit(dd_afile *f, dd_error *err) {
    if (!f) return dd_fail(err, DD_E_INVALID, "write: no open file to commit");
    errno = 0;
    if (!f->failed && fflush(f->fp) != 0) note_failure(f);
    if (!f->failed && fsync(fileno(f->fp)) != 0) note_failure(f);
    if (fclose(f->fp) != 0) note_failure(f);
    f->fp = NULL;
    int rc = DD_OK;
    if (f->failed) {
        rc = dd_fail(err, DD_E_IO, "%s: write failed (%s); the previous file, if any, is untouched",
                     f->path, strerror(f->errno_at_failure));
    } else if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        struct stat st;
        if (e == EISDIR || (lstat(f->path, &st) == 0 && S_ISDIR(st.st_mode)))
            rc = dd_fail(err, DD_E_IO, "%s: is a folder, not a file", f->path);
        else
            rc = dd_fail(err, DD_E_IO, "%s: cannot replace (%s)", f->path, strerror(e));
    }
    if (rc) {
        unlink(f->tmp);
    } else {
        /* Make the rename itself durable; best effort (some file systems refuse). */
        int dfd = open(f->dir, O_RDONLY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    afile_free(f);
    return rc;
}

int dd_write_file_atomic(const char *path, const void *data, size_t n, dd_error *err) {
    if (!data && n) return dd_fail(err, DD_E_INVALID, "%s: no data to write", path ? path : "write");
    dd_afile *f = dd_afile_open(path, err);
    if (!f) return err ? err->code : DD_E_IO;
    dd_afile_write(f, data, n);
    return dd_afile_commit(f, err);
}

int dd_read_file(const char *path, long max_bytes, unsigned char **buf, size_t *len,
                 dd_error *err) {
    *buf = NULL;
    *len = 0;
    if (!path || !*path) return dd_fail(err, DD_E_INVALID, "read: no file name given");
    /* O_NONBLOCK: a FIFO must not hang the open; cleared below for the read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return dd_fail(err, DD_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    memset(&st, 0, sizeof st);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int dir = S_ISDIR(st.st_mode);
        close(fd);
        return dd_fail(err, DD_E_IO, dir ? "%s: is a folder, not a file" : "%s: not a regular file",
                       path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (max_bytes < 0 || st.st_size > max_bytes) {
        close(fd);
        return dd_fail(err, DD_E_RANGE, "%s: file is %lld bytes, above the %ld-byte limit", path,
                       (long long)st.st_size, max_bytes < 0 ? 0 : max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return dd_fail(err, DD_E_NOMEM, "%s: no memory for %zu bytes", path, n);
    }
    size_t got = 0;
    int e = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) e = errno;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return dd_fail(err, DD_E_IO, "%s: read failed after %zu of %zu bytes%s%s", path, got, n,
                       e ? ": " : " (file shrank)", e ? strerror(e) : "");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return DD_OK;
}
