/* cache.c - the program cache `run` and `train` share: the key (a hash of the model's bytes, what the
 * command adds, the onnxtune version and the onnxtune binary, runtime library, $CC and the other
 * environment switches of codegen_env_vars it builds with),
 * the folder, building a program aside and renaming it in, and running it. It never edits a cached
 * program in place, and it knows nothing of what a command compiles: a callback builds. */
#include "tools.h"

#include "codegen.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void cache_key_bytes(CacheKey *k, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        k->a = (k->a ^ s[i]) * 1099511628211ull;
        k->b = (k->b ^ s[i]) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
}

void cache_key_str(CacheKey *k, const char *s)
{
    cache_key_bytes(k, s, strlen(s) + 1);
}

bool cache_key_start(const char *cmd, CacheKey *k, const char *model)
{
    *k = (CacheKey){14695981039346656037ull, 0x6a09e667f3bcc908ull};
    FILE *f = fopen(model, "rb");
    bool ok = f != NULL;
    if (f) {
        unsigned char buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            cache_key_bytes(k, buf, n);
        ok = !ferror(f);
        fclose(f);
    }
    if (!ok)
        fprintf(stderr, "onnxtune %s: %s: cannot read the model: %s\n", cmd, model, strerror(errno));
    return ok;
}

void cache_key_shapes(CacheKey *k, const struct InputShape *s, int n)
{
    for (int i = 0; i < n; i++) {
        cache_key_str(k, s[i].name);
        cache_key_bytes(k, &s[i].dtype, sizeof s[i].dtype);
        cache_key_bytes(k, &s[i].shape.rank, sizeof s[i].shape.rank);
        cache_key_bytes(k, s[i].shape.dim, sizeof s[i].shape.dim[0] * (size_t)s[i].shape.rank);
    }
}

/* Size and mtime identify a build of a file cheaply (a rebuilt onnxtune invalidates its programs). */
static void key_stamp(CacheKey *k, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        cache_key_bytes(k, &sb.st_size, sizeof sb.st_size);
        cache_key_bytes(k, &sb.st_mtim, sizeof sb.st_mtim);
    }
    cache_key_str(k, path);
}

static bool mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return false;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return false;
            *p = '/';
        }
    return mkdir(buf, 0777) == 0 || errno == EEXIST;
}

/* $ONNXTUNE_CACHE, else $XDG_CACHE_HOME/onnxtune, ~/.cache/onnxtune or /tmp/onnxtune-cache-UID; created. */
static bool cache_dir(char *out, size_t size)
{
    const char *env = getenv("ONNXTUNE_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (env && *env)
        n = snprintf(out, size, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(out, size, "%s/onnxtune", xdg);
    else if (home && *home)
        n = snprintf(out, size, "%s/.cache/onnxtune", home);
    else
        n = snprintf(out, size, "/tmp/onnxtune-cache-%ld", (long)getuid());
    return n > 0 && (size_t)n < size && mkdir_p(out);
}

int cache_program(const char *cmd, CacheKey *k, const char *prefix, bool rebuild, CacheBuild build, void *ctx,
                  Diag *d, char *prog, size_t size)
{
    char exe[PATH_MAX] = "", dir[PATH_MAX];
    RuntimePaths rp;
    cache_key_str(k, ONNXTUNE_VERSION);
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0)
        exe[len] = '\0';
    key_stamp(k, exe);
    /* a runtime that cannot be found stays recorded in d: the build that follows reports it */
    if (codegen_runtime_paths(&rp, d) == ST_OK)
        for (int i = 0; i < RT_PARTS; i++)
            key_stamp(k, rp.lib[i]);
    /* the switches that change what is built; unset differs from empty */
    for (size_t i = 0; codegen_env_vars[i]; i++) {
        const char *v = getenv(codegen_env_vars[i]);
        cache_key_str(k, codegen_env_vars[i]);
        cache_key_str(k, v ? "=" : "unset");
        if (v)
            cache_key_str(k, v);
    }
    if (!cache_dir(dir, sizeof dir)) {
        fprintf(stderr, "onnxtune %s: cannot create the cache folder %s: %s (set ONNXTUNE_CACHE)\n", cmd, dir,
                strerror(errno));
        return 1;
    }
    snprintf(prog, size, "%s/%s%016llx%016llx", dir, prefix, (unsigned long long)k->a, (unsigned long long)k->b);

    struct stat sb;
    if (!rebuild && stat(prog, &sb) == 0)
        return -1;
    char tmp[PATH_MAX + 96];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", prog, (long)getpid());
    Status st = build(ctx, tmp, d);
    if (st) {
        unlink(tmp);
        fprintf(stderr, "onnxtune %s: ", cmd);
        diag_print(d, stderr);
        return status_exit_code(st);
    }
    if (rename(tmp, prog) != 0) {
        fprintf(stderr, "onnxtune %s: cannot move the program into the cache (%s): %s\n", cmd, prog, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return -1;
}

int cache_run_program(const char *cmd, const char *prog, char **argv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(prog, argv);
        fprintf(stderr, "onnxtune %s: cannot run %s: %s\n", cmd, prog, strerror(errno));
        _exit(127);
    }
    int ws = 0, status = 1;
    if (pid < 0)
        fprintf(stderr, "onnxtune %s: cannot start %s: %s\n", cmd, prog, strerror(errno));
    else if (waitpid(pid, &ws, 0) == pid)
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (pid > 0 && WIFSIGNALED(ws))
        fprintf(stderr, "onnxtune %s: the program %s was killed by signal %d\n", cmd, prog, WTERMSIG(ws));
    return status;
}
