/* test_fileio.c — the atomic writer and the whole-file reader (core/fileio.h):
 * content, no temporary file left after commit or abort or a failed write, the
 * temporary's name and place, symlinks (at old fixed temporary names and at the
 * target) never written through, a folder or an unwritable folder as errors
 * naming it, and dd_read_file's cap, folders, FIFOs and empty files. */
#include "core/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char g_dir[256];

/* g_dir/name in one of 8 rotating buffers: copy a result that must outlive 7 more calls. */
static const char *in_dir(const char *name) {
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Whole file as a string, NULL when it cannot be read. */
static char *slurp(const char *path) {
    unsigned char *b = NULL;
    size_t n = 0;
    if (dd_read_file(path, 1 << 20, &b, &n, NULL)) return NULL;
    return (char *)b;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Entries of a folder that look like the writer's temporaries (hidden, or ending in .tmp). */
static int temps_in(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t l = strlen(e->d_name);
        n += e->d_name[0] == '.' || (l > 4 && !strcmp(e->d_name + l - 4, ".tmp"));
    }
    if (d) closedir(d);
    return n;
}

static void test_write_and_commit(void) {
    dd_error err = {0};
    const char *p = in_dir("a.txt");
    CHECK(dd_write_file_atomic(p, "hello\n", 6, &err) == DD_OK, "write: %s", err.msg);
    char *s = slurp(p);
    CHECK(s && !strcmp(s, "hello\n"), "content: '%s'", s ? s : "(null)");
    free(s);
    struct stat st;
    mode_t um = umask(0);
    umask(um);
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == (0644 & ~um),
          "a regular file, mode 0644 less the umask (mode %o, umask %o)", (unsigned)st.st_mode & 0777, (unsigned)um);
    CHECK(temps_in(g_dir) == 0, "no temporary left after a commit (%d)", temps_in(g_dir));
    /* replacing: new content, new inode (renamed into place, not rewritten) */
    ino_t before = st.st_ino;
    CHECK(dd_write_file_atomic(p, "second", 6, &err) == DD_OK, "rewrite: %s", err.msg);
    s = slurp(p);
    CHECK(s && !strcmp(s, "second"), "rewritten content: '%s'", s ? s : "(null)");
    free(s);
    CHECK(lstat(p, &st) == 0 && st.st_ino != before, "the file was replaced by rename");
    /* zero bytes */
    CHECK(dd_write_file_atomic(in_dir("empty"), NULL, 0, &err) == DD_OK, "empty write: %s", err.msg);
    CHECK(lstat(in_dir("empty"), &st) == 0 && st.st_size == 0, "empty file");
    /* a relative path without a folder works too (the folder is ".") */
    char cwd[1024];
    if (getcwd(cwd, sizeof cwd) && chdir(g_dir) == 0) {
        CHECK(dd_write_file_atomic("rel.txt", "r", 1, &err) == DD_OK, "relative name: %s", err.msg);
        CHECK(chdir(cwd) == 0, "back to %s", cwd);
        s = slurp(in_dir("rel.txt"));
        CHECK(s && !strcmp(s, "r"), "relative name content");
        free(s);
    }
    /* a name at the limit of the file system: the temporary's name still fits */
    char longname[256];
    memset(longname, 'n', 250);
    strcpy(longname + 250, ".png");
    CHECK(dd_write_file_atomic(in_dir(longname), "x", 1, &err) == DD_OK, "254-byte file name: %s", err.msg);
    CHECK(temps_in(g_dir) == 0, "no temporary left (%d)", temps_in(g_dir));
}

static void test_streaming(void) {
    dd_error err = {0};
    const char *p = in_dir("stream.csv");
    put(p, "old content\n");
    dd_afile *f = dd_afile_open(p, &err);
    CHECK(f != NULL, "open: %s", err.msg);
    if (!f) return;
    /* the temporary: hidden, same folder, ".<name>.XXXXXX.tmp", a regular file, not the target */
    const char *t = dd_afile_temp_path(f);
    char want_prefix[1100];
    snprintf(want_prefix, sizeof want_prefix, "%s/.stream.csv.", g_dir);
    size_t tl = strlen(t);
    CHECK(!strncmp(t, want_prefix, strlen(want_prefix)) && tl == strlen(want_prefix) + 10 &&
              !strcmp(t + tl - 4, ".tmp"),
          "temporary name '%s'", t);
    struct stat st;
    CHECK(lstat(t, &st) == 0 && S_ISREG(st.st_mode), "temporary is a regular file");
    for (int i = 0; i < 1000; i++) dd_afile_printf(f, "%d,%s\n", i, "row");
    dd_afile_write(f, "end\n", 4);
    char *s = slurp(p);
    CHECK(s && !strcmp(s, "old content\n"), "the target is untouched before the commit");
    free(s);
    CHECK(dd_afile_commit(f, &err) == DD_OK, "commit: %s", err.msg);
    s = slurp(p);
    CHECK(s && !strncmp(s, "0,row\n1,row\n", 12) && strstr(s, "999,row\nend\n") && strlen(s) == 7894,
          "streamed content");
    free(s);
    CHECK(temps_in(g_dir) == 0, "no temporary after commit");

    /* abort: the temporary goes, the target stays as it was */
    f = dd_afile_open(p, &err);
    CHECK(f != NULL, "open again: %s", err.msg);
    if (f) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s", dd_afile_temp_path(f));
        dd_afile_write(f, "discarded", 9);
        dd_afile_abort(f);
        CHECK(access(tmp, F_OK) != 0, "temporary removed by abort");
    }
    s = slurp(p);
    CHECK(s && !strncmp(s, "0,row\n", 6), "target untouched by an abort");
    free(s);
    CHECK(temps_in(g_dir) == 0, "no temporary after abort");
    dd_afile_abort(NULL); /* allowed */

    /* two writers of one target at once: distinct temporaries, the last commit wins */
    dd_afile *a = dd_afile_open(p, &err), *b = dd_afile_open(p, &err);
    CHECK(a && b && strcmp(dd_afile_temp_path(a), dd_afile_temp_path(b)), "distinct temporaries");
    if (a && b) {
        dd_afile_write(a, "A", 1);
        dd_afile_write(b, "B", 1);
        CHECK(dd_afile_commit(a, &err) == DD_OK && dd_afile_commit(b, &err) == DD_OK, "both commit");
        s = slurp(p);
        CHECK(s && !strcmp(s, "B"), "last commit wins: '%s'", s ? s : "(null)");
        free(s);
    } else {
        dd_afile_abort(a);
        dd_afile_abort(b);
    }
    CHECK(temps_in(g_dir) == 0, "no temporary after two writers");
}

/* A symlink planted where the old writers put their fixed temporary names, and a
 * symlink at the target: the file they point to is never written. */
static void test_symlinks(void) {
    dd_error err = {0};
    char victim[1100], link[1100], nowhere[1100];
    snprintf(victim, sizeof victim, "%s", in_dir("victim.txt"));
    put(victim, "precious");
    /* old fixed temporary names of the model, image and metrics writers */
    const char *names[] = {"model.safetensors.tmp", "map.png.tmp-AAAAAA", "metrics.json.tmp.AAAAAA"};
    const char *targets[] = {"model.safetensors", "map.png", "metrics.json"};
    for (int i = 0; i < 3; i++) {
        CHECK(symlink(victim, in_dir(names[i])) == 0, "plant %s", names[i]);
        CHECK(dd_write_file_atomic(in_dir(targets[i]), "new", 3, &err) == DD_OK, "write %s: %s", targets[i], err.msg);
        unlink(in_dir(names[i]));
    }
    char *s = slurp(victim);
    CHECK(s && !strcmp(s, "precious"), "symlinks at temporary-looking paths are not followed: '%s'", s ? s : "(null)");
    free(s);

    /* a symlink at the target itself: rename replaces the link by the new file; the
     * file it pointed to keeps its content */
    snprintf(link, sizeof link, "%s", in_dir("out.safetensors"));
    CHECK(symlink(victim, link) == 0, "plant the target link");
    CHECK(dd_write_file_atomic(link, "model", 5, &err) == DD_OK, "write over a symlink: %s", err.msg);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISREG(st.st_mode), "the link is replaced by a regular file");
    s = slurp(link);
    CHECK(s && !strcmp(s, "model"), "new content at the target");
    free(s);
    s = slurp(victim);
    CHECK(s && !strcmp(s, "precious"), "the link's target is not written through: '%s'", s ? s : "(null)");
    free(s);
    /* a dangling symlink at the target is replaced the same way, creating nothing elsewhere */
    snprintf(nowhere, sizeof nowhere, "%s", in_dir("nowhere.txt"));
    CHECK(symlink(nowhere, in_dir("dangling")) == 0, "plant a dangling link");
    CHECK(dd_write_file_atomic(in_dir("dangling"), "d", 1, &err) == DD_OK, "write over a dangling link: %s", err.msg);
    CHECK(access(nowhere, F_OK) != 0, "nothing created at the dangling link's target");
    CHECK(temps_in(g_dir) == 0, "no temporaries");
}

static void test_errors(void) {
    dd_error err = {0};
    /* a folder as the target: an error naming it, nothing left behind */
    const char *dir = in_dir("a_folder");
    mkdir(dir, 0777);
    int rc = dd_write_file_atomic(dir, "x", 1, &err);
    CHECK(rc == DD_E_IO && strstr(err.msg, dir) && strstr(err.msg, "folder"), "folder target: %d '%s'", rc, err.msg);
    char slash[1100];
    snprintf(slash, sizeof slash, "%s/", dir);
    rc = dd_write_file_atomic(slash, "x", 1, &err);
    CHECK(rc == DD_E_IO && strstr(err.msg, "folder"), "path ending in '/': %d '%s'", rc, err.msg);
    CHECK(dd_afile_open(dir, &err) == NULL && strstr(err.msg, dir), "dd_afile_open on a folder: '%s'", err.msg);
    /* a missing folder: named */
    rc = dd_write_file_atomic(in_dir("no_such_folder/x.json"), "x", 1, &err);
    CHECK(rc == DD_E_IO && strstr(err.msg, "no_such_folder"), "missing folder: %d '%s'", rc, err.msg);
    /* an unwritable folder: named (root ignores permissions, so it uses sysfs) */
    const char *ro = NULL;
    char rodir[1100];
    if (geteuid() != 0) {
        snprintf(rodir, sizeof rodir, "%s/readonly", g_dir);
        mkdir(rodir, 0555);
        chmod(rodir, 0555);
        ro = rodir;
    } else if (access("/sys/kernel", F_OK) == 0) {
        ro = "/sys";
    }
    if (ro) {
        char p[1200];
        snprintf(p, sizeof p, "%s/dd_test_fileio.txt", ro);
        rc = dd_write_file_atomic(p, "x", 1, &err);
        CHECK(rc == DD_E_IO && strstr(err.msg, ro) && strstr(err.msg, "folder"), "unwritable folder %s: %d '%s'", ro, rc,
              err.msg);
        CHECK(access(p, F_OK) != 0, "nothing created in %s", ro);
        if (ro == rodir) chmod(rodir, 0755);
    } else {
        SKIP("running as root without /sys: no unwritable folder to test");
    }
    CHECK(dd_write_file_atomic("", "x", 1, &err) != DD_OK, "empty path refused");
    CHECK(dd_write_file_atomic(in_dir("x"), NULL, 3, &err) == DD_E_INVALID, "NULL data with n > 0 refused");

    /* a write that fails half-way (file size limit = a full disk): the commit reports
     * it, the old file stays, the temporary goes */
    const char *p = in_dir("big.bin");
    put(p, "old");
    size_t n = 1 << 20;
    char *big = calloc(n, 1);
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 65536;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    if (big && setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        rc = dd_write_file_atomic(p, big, n, &err);
        setrlimit(RLIMIT_FSIZE, &old_lim);
        CHECK(rc == DD_E_IO && strstr(err.msg, p) && strstr(err.msg, "untouched"), "cut-short write: %d '%s'", rc, err.msg);
        char *s = slurp(p);
        CHECK(s && !strcmp(s, "old"), "old content kept");
        free(s);
        CHECK(temps_in(g_dir) == 0, "no temporary after a failed write (%d)", temps_in(g_dir));
    } else {
        SKIP("cannot set a file size limit");
    }
    signal(SIGXFSZ, old_handler);
    free(big);
}

static void test_read(void) {
    dd_error err = {0};
    unsigned char *b = NULL;
    size_t n = 0;
    const char *p = in_dir("r.txt");
    put(p, "0123456789");
    CHECK(dd_read_file(p, 10, &b, &n, &err) == DD_OK && n == 10 && !memcmp(b, "0123456789", 10) && b[10] == 0,
          "read at the cap exactly, NUL-terminated: %s", err.msg);
    free(b);
    int rc = dd_read_file(p, 9, &b, &n, &err);
    CHECK(rc == DD_E_RANGE && !b && n == 0 && strstr(err.msg, p) && strstr(err.msg, "limit"), "over the cap: %d '%s'", rc,
          err.msg);
    rc = dd_read_file(p, -1, &b, &n, &err);
    CHECK(rc == DD_E_RANGE && !b, "negative cap refuses everything: %d", rc);
    put(in_dir("zero"), "");
    CHECK(dd_read_file(in_dir("zero"), 0, &b, &n, &err) == DD_OK && b && n == 0 && b[0] == 0, "empty file: %s", err.msg);
    free(b);
    rc = dd_read_file(in_dir("missing"), 100, &b, &n, &err);
    CHECK(rc == DD_E_IO && !b && strstr(err.msg, "missing"), "missing file: %d '%s'", rc, err.msg);
    rc = dd_read_file(g_dir, 100, &b, &n, &err);
    CHECK(rc == DD_E_IO && strstr(err.msg, "folder"), "a folder: %d '%s'", rc, err.msg);
    const char *fifo = in_dir("fifo");
    if (mkfifo(fifo, 0600) == 0) {
        rc = dd_read_file(fifo, 100, &b, &n, &err); /* must not block waiting for a writer */
        CHECK(rc == DD_E_IO && strstr(err.msg, "not a regular file"), "a FIFO: %d '%s'", rc, err.msg);
        unlink(fifo);
    } else {
        SKIP("mkfifo: %s", strerror(errno));
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/dd_test_fileio_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_write_and_commit();
    test_streaming();
    test_symlinks();
    test_errors();
    test_read();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!check_failed && system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    return check_summary("test_fileio");
}
