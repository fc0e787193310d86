/* replay_main.c — replays the fuzz seed corpora without libFuzzer (make test):
 * every file in tests/fuzz/corpus/<name>/ goes once through that harness's
 * LLVMFuzzerTestOneInput (the three harnesses are compiled in with their entry
 * renamed: -DLLVMFuzzerTestOneInput=fuzz_<name>_one). A file passes when the
 * harness returns; a crash or a sanitizer report ends the program, which
 * run_tests.sh counts as a failure. Argument: the corpus root (default
 * tests/fuzz/corpus). Prints "fuzz_replay: N passed, N failed". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fuzz_image_one(const uint8_t *data, size_t size);
int fuzz_modelfile_one(const uint8_t *data, size_t size);
int fuzz_json_one(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
} harness[] = {{"image", fuzz_image_one}, {"modelfile", fuzz_modelfile_one}, {"json", fuzz_json_one}};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
    int pass = 0, fail = 0;
    for (size_t h = 0; h < sizeof harness / sizeof harness[0]; h++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", root, harness[h].name);
        DIR *d = opendir(dir);
        if (!d) {
            printf("FAIL %s: no corpus folder\n", dir);
            fail++;
            continue;
        }
        char **names = NULL;
        int n = 0, cap = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                char **nn = realloc(names, (size_t)cap * sizeof *names);
                if (!nn) return 2;
                names = nn;
            }
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        int here = 0;
        for (int i = 0; i < n; i++) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            FILE *f = fopen(path, "rb");
            unsigned char *buf = NULL;
            long len = -1;
            if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
                buf = malloc((size_t)len + 1);
                if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) len = -1;
            }
            if (f) fclose(f);
            if (!buf || len < 0) {
                printf("FAIL %s: cannot read\n", path);
                fail++;
            } else {
                harness[h].one(buf, (size_t)len);
                pass++, here++;
            }
            free(buf);
            free(names[i]);
        }
        free(names);
        if (!here) {
            printf("FAIL %s: empty corpus\n", dir);
            fail++;
        }
    }
    printf("fuzz_replay: %d passed, %d failed\n", pass, fail);
    return fail != 0;
}
