/* cc.c - the C compiler driver: finds the runtime (header and static library) and runs the system
 * compiler ($CC, default cc) on generated files, capturing its output so a failure can be shown.
 * It does not write C (emit.c does) and never runs a shell: arguments go straight to execvp. */
#include "codegen.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A sanitizer build's runtime library needs the sanitizers at link time; generated code then gets
 * them too (so the tests check it as well). */
#if defined(__SANITIZE_ADDRESS__)
#define CC_SANITIZE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC_SANITIZE 1
#endif
#endif

#ifndef ONNXTUNE_SOURCE_DIR
#define ONNXTUNE_SOURCE_DIR ""
#endif
#ifndef ONNXTUNE_BINARY_DIR
#define ONNXTUNE_BINARY_DIR ""
#endif
#ifndef ONNXTUNE_OPENBLAS_LIB
#define ONNXTUNE_OPENBLAS_LIB "-lopenblas"
#define ONNXTUNE_OPENBLAS_DIR ""
#endif
/* oneDNN, when the runtime was built with it (kernels/conv_dnnl.c): its full path, or "" */
#ifndef ONNXTUNE_DNNL_LIB
#define ONNXTUNE_DNNL_LIB ""
#endif
/* A sanitizer build's runtime library needs the sanitizers in every program linked with it. */
#ifndef ONNXTUNE_RT_SANITIZE
#define ONNXTUNE_RT_SANITIZE 0
#endif

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The folders generated code is built against, in link order (program needs data needs kernels;
 * program and data need common, which needs nothing of ours). */
static const char *const rt_parts[RT_PARTS] = {"program", "data", "kernels", "common"};

/* Try one layout: the headers in inc[k] (inc[k]/<part>.h) and the archives in lib_dir. */
static bool try_paths(RuntimePaths *rp, char inc[RT_PARTS][PATH_MAX + 64], const char *lib_dir)
{
    for (int k = 0; k < RT_PARTS; k++) {
        char hdr[PATH_MAX + 96], lib[PATH_MAX + 96];
        snprintf(hdr, sizeof hdr, "%s/%s.h", inc[k], rt_parts[k]);
        snprintf(lib, sizeof lib, "%s/libonnxtune_%s.a", lib_dir, rt_parts[k]);
        if (!file_exists(hdr) || !file_exists(lib) || strlen(inc[k]) >= sizeof rp->inc[k] ||
            strlen(lib) >= sizeof rp->lib[k])
            return false;
    }
    for (int k = 0; k < RT_PARTS; k++) {
        strcpy(rp->inc[k], inc[k]);
        snprintf(rp->lib[k], sizeof rp->lib[k], "%s/libonnxtune_%s.a", lib_dir, rt_parts[k]);
    }
    return true;
}

/* Headers in the source tree (kernels/, data/, program/), archives in lib_dir. */
static bool try_source_tree(RuntimePaths *rp, const char *lib_dir)
{
    char inc[RT_PARTS][PATH_MAX + 64];
    for (int k = 0; k < RT_PARTS; k++)
        snprintf(inc[k], sizeof inc[k], "%s/%s", ONNXTUNE_SOURCE_DIR, rt_parts[k]);
    return try_paths(rp, inc, lib_dir);
}

Status codegen_runtime_paths(RuntimePaths *rp, Diag *d)
{
    char exe[PATH_MAX], lib_dir[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        /* an installed prefix: bin/onnxtune, include/onnxtune/{program,data,kernels,common}.h,
         * lib/onnxtune/libonnxtune_{program,data,kernels,common}.a */
        char inc[RT_PARTS][PATH_MAX + 64];
        for (int k = 0; k < RT_PARTS; k++)
            snprintf(inc[k], sizeof inc[k], "%s/../include/onnxtune", exe);
        snprintf(lib_dir, sizeof lib_dir, "%s/../lib/onnxtune", exe);
        if (try_paths(rp, inc, lib_dir))
            return ST_OK;
        /* a build tree: the archives next to the executable, the headers in the sources */
        if (try_source_tree(rp, exe))
            return ST_OK;
    }
    if (try_source_tree(rp, ONNXTUNE_BINARY_DIR))
        return ST_OK;
    return diag_error(d, ST_IO, "cannot find the onnxtune runtime (kernels.h, data.h, program.h, common.h "
                      "and their libonnxtune_*.a): looked next to the onnxtune executable and in %s", ONNXTUNE_BINARY_DIR);
}

static char *concat(const char *a, const char *b);

/* Whether a generated file has loops of its own. Most have none: every block is a call into the
 * runtime, where the time goes, and -O1 builds such glue in half the time of -O2 with no difference
 * that a kernel call of microseconds to milliseconds would show. Files with loops (some emitters
 * write small ones inline) get -O2. Unreadable: assume loops. */
static bool has_loops(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    char line[512];
    bool loops = false, line_start = true;
    while (!loops && fgets(line, sizeof line, f)) {
        const char *p = line + strspn(line, " ");
        loops = line_start && (!strncmp(p, "for (", 5) || !strncmp(p, "while (", 7) || !strncmp(p, "do {", 4));
        line_start = strchr(line, '\n') != NULL; /* a longer line continues in the next read */
    }
    fclose(f);
    return loops;
}

/* -fuse-ld=NAME: $ONNXTUNE_LD if set (empty: the compiler's default linker), else the fastest linker
 * the build found (CMakeLists.txt), else none. */
static char *linker_option(void)
{
    const char *ld = getenv("ONNXTUNE_LD");
#ifdef ONNXTUNE_CC_LINKER
    if (!ld)
        ld = ONNXTUNE_CC_LINKER;
#endif
    return ld && *ld ? concat("-fuse-ld=", ld) : NULL;
}

/* argv under construction */
typedef struct Argv {
    char *v[CC_MAX_INPUTS + 32];
    int n;
    char *own[8]; /* strings to free */
    int nown;
} Argv;

static void push(Argv *a, const char *s)
{
    if (a->n < CC_MAX_INPUTS + 30)
        a->v[a->n++] = (char *)s;
}

static char *own(Argv *a, char *s)
{
    if (s && a->nown < 8)
        a->own[a->nown++] = s;
    return s;
}

/* The OpenBLAS onnxtune was built with (its OpenMP build), kept at run time by an rpath. */
static void push_openblas(Argv *a)
{
    push(a, ONNXTUNE_OPENBLAS_LIB);
    if (ONNXTUNE_OPENBLAS_DIR[0])
        push(a, "-Wl,-rpath," ONNXTUNE_OPENBLAS_DIR);
}

/* What data/ needs in a training program: libjpeg-turbo, libpng, zlib (.npz and PNG) and pthreads (the
 * prefetch thread). Inference programs and shared objects use only data/npy.c and link none of them. */
static void push_data_libs(Argv *a)
{
    push(a, "-ljpeg");
    push(a, "-lpng");
    push(a, "-lz");
    push(a, "-pthread");
}

/* The archives, oneDNN if the runtime has it, OpenBLAS and libm; data/'s libraries only for a program
 * that reads data sets. */
static void push_runtime_libs(Argv *a, const RuntimePaths *rp, bool data_libs)
{
    for (int k = 0; k < RT_PARTS; k++)
        push(a, rp->lib[k]);
    if (ONNXTUNE_DNNL_LIB[0])
        push(a, ONNXTUNE_DNNL_LIB);
    push_openblas(a);
    if (data_libs)
        push_data_libs(a);
    push(a, "-lm");
}

static char *dup_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

Status codegen_cc_start(CcJob *job, Diag *d)
{
    RuntimePaths rp;
    Status st = codegen_runtime_paths(&rp, d);
    if (st)
        return st;
    if (job->ninputs == 0 || job->ninputs > CC_MAX_INPUTS)
        return diag_error(d, ST_USAGE, "internal: a compiler job takes 1 to %d inputs", CC_MAX_INPUTS);

    /* $CC may carry arguments ("ccache gcc", "gcc -m64"): split on blanks */
    const char *cc_env = getenv("CC");
    char *cc = strdup(cc_env && *cc_env ? cc_env : "cc");
    Argv a = {0};
    if (!cc)
        return diag_error(d, ST_NOMEM, "out of memory");
    own(&a, cc);
    for (char *tok = strtok(cc, " \t"); tok; tok = strtok(NULL, " \t"))
        push(&a, tok);
    if (a.n == 0)
        push(&a, "cc");

#ifdef CC_SANITIZE
    push(&a, "-fsanitize=address,undefined");
    push(&a, "-fno-omit-frame-pointer");
#endif
    push(&a, "-pipe"); /* the assembler copies the .incbin'd weights while cc1 still compiles */
    char *ld = job->mode == CC_OBJECT ? NULL : own(&a, linker_option());
    if (ld)
        push(&a, ld);
    if (job->mode == CC_SHARED) {
        push(&a, "-shared");
        push(&a, "-fopenmp");
        if (ONNXTUNE_RT_SANITIZE)
            push(&a, "-fsanitize=address,undefined"); /* the runtime was built with them */
        push(&a, "-o");
        push(&a, job->output);
        for (size_t i = 0; i < job->ninputs; i++)
            push(&a, job->inputs[i]);
        push_runtime_libs(&a, &rp, false);
    } else {
        push(&a, "-std=c11");
        push(&a, job->opt_level ? job->opt_level : has_loops(job->inputs[0]) ? "-O2" : "-O1");
        push(&a, "-fopenmp");
        if (ONNXTUNE_RT_SANITIZE)
            push(&a, "-fsanitize=address,undefined");
        push(&a, "-Wall");
        push(&a, "-Wextra");
#ifdef CC_SANITIZE
        /* GCC's sanitizer instrumentation makes -Warray-bounds and -Wstringop-overflow see workspace
         * offsets as out of an object of size 0 (copies between sequence elements); the plain build
         * keeps both warnings, and AddressSanitizer checks those copies at run time. */
        push(&a, "-Wno-array-bounds");
        push(&a, "-Wno-stringop-overflow");
#endif
        if (job->werror)
            push(&a, "-Werror");
        if (job->mode == CC_OBJECT)
            push(&a, "-fPIC");
        for (int k = 0; k < RT_PARTS; k++) {
            if (k && !strcmp(rp.inc[k], rp.inc[k - 1]))
                continue; /* an installed prefix has one include folder */
            push(&a, "-I");
            push(&a, rp.inc[k]);
        }
        char *dir = own(&a, dup_dir(job->inputs[0]));
        push(&a, own(&a, dir ? concat("-Wa,-I", dir) : NULL)); /* .incbin finds the weights there */
        if (job->mode == CC_OBJECT)
            push(&a, "-c");
        push(&a, job->inputs[0]);
        push(&a, "-o");
        push(&a, job->output);
        if (job->mode == CC_PROGRAM)
            push_runtime_libs(&a, &rp, job->data_libs);
    }
    a.v[a.n] = NULL;
    for (int i = 0; i < a.n; i++)
        if (!a.v[i]) {
            st = diag_error(d, ST_NOMEM, "out of memory");
            goto out;
        }

    const char *tmp = getenv("TMPDIR");
    snprintf(job->log_path, sizeof job->log_path, "%s/onnxtune-cc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(job->log_path);
    if (fd < 0) {
        st = diag_error(d, ST_IO, "%s: cannot create a temporary file: %s", job->log_path, strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        unlink(job->log_path);
        st = diag_error(d, ST_ERR, "cannot start the C compiler: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execvp(a.v[0], a.v);
        fprintf(stderr, "cannot run the C compiler '%s': %s (set CC to a C compiler)\n", a.v[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    job->pid = (int)pid;
out:
    for (int i = 0; i < a.nown; i++)
        free(a.own[i]);
    return st;
}

Status codegen_cc_finish(CcJob *job, Diag *d)
{
    int ws = 0;
    while (waitpid((pid_t)job->pid, &ws, 0) < 0)
        if (errno != EINTR) {
            unlink(job->log_path);
            return diag_error(d, ST_ERR, "lost the C compiler process: %s", strerror(errno));
        }
    job->pid = 0;
    Status st = ST_OK;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        /* quote the first lines of what it said */
        char text[1200] = "";
        FILE *f = fopen(job->log_path, "r");
        if (f) {
            size_t len = 0;
            char line[400];
            for (int k = 0; k < 12 && fgets(line, sizeof line, f); k++) {
                size_t l = strlen(line);
                if (len + l + 1 >= sizeof text)
                    break;
                memcpy(text + len, line, l + 1);
                len += l;
            }
            fclose(f);
            while (len && text[len - 1] == '\n')
                text[--len] = '\0';
        }
        if (WIFSIGNALED(ws))
            st = diag_error(d, ST_ERR, "the C compiler was killed by signal %d compiling %s", WTERMSIG(ws),
                            job->inputs[0]);
        else
            st = diag_error(d, ST_ERR, "the C compiler failed (exit %d) on the generated file %s:\n%s",
                            WEXITSTATUS(ws), job->inputs[0], text);
    }
    unlink(job->log_path);
    return st;
}

Status codegen_cc(CcJob *job, Diag *d)
{
    Status st = codegen_cc_start(job, d);
    return st ? st : codegen_cc_finish(job, d);
}
