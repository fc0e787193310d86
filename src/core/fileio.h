/* fileio.h — owns every file the library writes and every whole file it reads.
 *
 * Writing is atomic: dd_afile_open creates a fresh temporary file next to the
 * target, named ".<name>.XXXXXX.tmp" (hidden, unique), with
 * O_CREAT|O_EXCL|O_NOFOLLOW, so it never opens, follows or truncates anything
 * that already exists there (a symlink planted at a temporary-looking path is
 * left alone and another name is drawn). dd_afile_commit flushes, fsyncs and
 * renames the temporary over the target, then fsyncs the folder; until then the
 * previous file, if any, is untouched, and on any failure the temporary is
 * removed. A symlink at the target is replaced by the new file (rename works on
 * the name): the file the link pointed to is never written. A folder at the
 * target is an error naming it.
 *
 * Reading: dd_read_file reads a regular file whole, refusing anything above a
 * caller-given size before allocating. */
#ifndef DD_FILEIO_H
#define DD_FILEIO_H

#include <stddef.h>

#include "core/status.h"

typedef struct dd_afile dd_afile;

/* Start writing `path`. NULL on failure (err says why, naming the path or its
 * folder). Every dd_afile must end in exactly one dd_afile_commit or
 * dd_afile_abort. */
dd_afile *dd_afile_open(const char *path, dd_error *err);
/* Append bytes. A failure is remembered and reported by dd_afile_commit, so a
 * writer may check only there; returns DD_OK or DD_E_IO (a previous failure). */
int dd_afile_write(dd_afile *f, const void *data, size_t n);
int dd_afile_printf(dd_afile *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The temporary file's path (for tests and messages). */
const char *dd_afile_temp_path(const dd_afile *f);
/* Flush, fsync, rename over the target, fsync the folder. Frees f whatever the
 * outcome; on failure the temporary is removed and the target is as before. */
int dd_afile_commit(dd_afile *f, dd_error *err);
/* Discard: close and remove the temporary; the target is untouched. f may be NULL. */
void dd_afile_abort(dd_afile *f);

/* The whole of data[0..n) as the new content of path, atomically. */
int dd_write_file_atomic(const char *path, const void *data, size_t n, dd_error *err);

/* Read a whole regular file into a malloc'ed buffer (NUL-terminated one byte
 * past *len, for text). Errors name the path: DD_E_IO when it cannot be opened
 * or is not a regular file, DD_E_RANGE when it is larger than max_bytes. */
int dd_read_file(const char *path, long max_bytes, unsigned char **buf, size_t *len,
                 dd_error *err);

#endif
