/* file.c - the one way we replace a file: a temporary in the same folder, fsync, rename over the target,
 * fsync of the folder. Checkpoints, plots, NPY outputs and exported models all go through it, so a
 * crash or a full disk never leaves a half-written file under the real name. It does not lock: two
 * writers of one path race (the last rename wins), as with any rename-based scheme. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FileStatus fail(char *err, size_t errlen, FileStatus st, const char *fmt, ...) COMMON_PRINTF(4, 5);
static FileStatus fail(char *err, size_t errlen, FileStatus st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

static bool split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    *base = strdup(slash ? slash + 1 : path);
    if (*dir && *base)
        return true;
    free(*dir);
    free(*base);
    return false;
}

/* Remove BASE.tmp.PID files in dir left by processes that no longer exist (killed mid-write). Only
 * exact matches of our own naming, and only when kill(PID, 0) says no such process. */
static void clean_stale(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t blen = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0)
            continue;
        const char *digits = n + blen + 5;
        size_t nd = strspn(digits, "0123456789");
        if (nd == 0 || nd > 9 || digits[nd] != '\0')
            continue;
        long pid = strtol(digits, NULL, 10);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
}

FileStatus atomic_file_open(AtomicFile *f, const char *path, char *err, size_t errlen)
{
    *f = (AtomicFile){.fd = -1};
    char *dir = NULL, *base = NULL;
    size_t tlen = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp = malloc(tlen);
    if (!f->path || !f->tmp || !split_path(path, &dir, &base)) {
        atomic_file_abort(f);
        return fail(err, errlen, FILE_ENOMEM, "out of memory");
    }
    snprintf(f->tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    clean_stale(dir, base);
    free(dir);
    free(base);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (f->fd < 0) {
        FileStatus st = fail(err, errlen, FILE_EIO, "cannot create %s: %s", f->tmp, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        atomic_file_abort(f);
        return st;
    }
    return FILE_OK;
}

FileStatus atomic_file_write(AtomicFile *f, const void *data, size_t n, char *err, size_t errlen)
{
    const unsigned char *p = data;
    while (n) {
        ssize_t w = write(f->fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return fail(err, errlen, FILE_EIO, "write to %s failed: %s", f->tmp,
                        w < 0 ? strerror(errno) : "no space written");
        p += w;
        n -= (size_t)w;
    }
    return FILE_OK;
}

FileStatus atomic_file_commit(AtomicFile *f, char *err, size_t errlen)
{
    FileStatus st = FILE_OK;
    if (fsync(f->fd) != 0)
        st = fail(err, errlen, FILE_EIO, "fsync of %s failed: %s", f->tmp, strerror(errno));
    if (close(f->fd) != 0 && st == FILE_OK)
        st = fail(err, errlen, FILE_EIO, "closing %s failed: %s", f->tmp, strerror(errno));
    f->fd = -1;
    if (st == FILE_OK && rename(f->tmp, f->path) != 0)
        st = fail(err, errlen, FILE_EIO, "cannot rename %s over it: %s", f->tmp, strerror(errno));
    if (st != FILE_OK) {
        atomic_file_abort(f);
        return st;
    }
    /* make the rename itself durable; some file systems cannot fsync a directory (EINVAL): fine */
    char *dir = NULL, *base = NULL;
    if (split_path(f->path, &dir, &base)) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)
                st = fail(err, errlen, FILE_EIO, "fsync of directory %s failed: %s", dir, strerror(errno));
            close(dfd);
        }
        free(dir);
        free(base);
    }
    free(f->tmp);
    f->tmp = NULL;
    atomic_file_abort(f);
    return st;
}

void atomic_file_abort(AtomicFile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    *f = (AtomicFile){.fd = -1};
}

FileStatus atomic_write(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
    AtomicFile f;
    FileStatus st = atomic_file_open(&f, path, err, errlen);
    if (st != FILE_OK)
        return st;
    if ((st = atomic_file_write(&f, data, n, err, errlen)) != FILE_OK) {
        atomic_file_abort(&f);
        return st;
    }
    return atomic_file_commit(&f, err, errlen);
}
