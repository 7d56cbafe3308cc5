/* cmd_run.c - `onnxtune run MODEL --input NAME=FILE.npy ... --output-dir DIR`: compile for exactly the
 * given input shapes and run, in one step. Programs are cached ($ONNXTUNE_CACHE, else
 * $XDG_CACHE_HOME/onnxtune or ~/.cache/onnxtune), keyed by a hash of the model's bytes, the input
 * names/dtypes/shapes, the onnxtune version and the onnxtune binary and runtime library it came from.
 * It never edits a cached program in place: a new one is built aside and renamed into the cache. */
#include "tools.h"

#include "codegen.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct Hash {
    uint64_t a, b;  /* two FNV-1a streams with different seeds: 128 bits */
} Hash;

static void hash_bytes(Hash *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ s[i]) * 1099511628211ull;
        h->b = (h->b ^ s[i]) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
}

static void hash_str(Hash *h, const char *s)
{
    hash_bytes(h, s, strlen(s) + 1);
}

static bool hash_file(Hash *h, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        hash_bytes(h, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    return ok;
}

/* Size and mtime identify a build of a file cheaply (a rebuilt onnxtune invalidates its programs). */
static void hash_stamp(Hash *h, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        hash_bytes(h, &sb.st_size, sizeof sb.st_size);
        hash_bytes(h, &sb.st_mtim, sizeof sb.st_mtim);
    }
    hash_str(h, path);
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

static CliOption run_opts[] = {
    {"--input", NULL, "NAME=FILE.npy", "an input of the model (repeat for each)", false, NULL},
    {"--output-dir", NULL, "DIR", "write each output as DIR/<output name>.npy", false, NULL},
    {"--threads", NULL, "N", "threads for the kernels", false, NULL},
    {"--no-cache", NULL, NULL, "rebuild even when a cached program exists", false, NULL},
    {"--werror", NULL, NULL, "build the generated C with -Werror", false, NULL},
    {0},
};

static CliCommand run_cmd = {
    "run", "MODEL",
    "Compile MODEL for exactly the shapes of the given inputs (cached) and run it.",
    1, 1, run_opts,
};

int cmd_run(int argc, char **argv)
{
    InputArg inputs[64];
    int ninputs = tools_take_inputs("run", &argc, argv, inputs, 64);
    if (ninputs < 0)
        return 2;
    char *args[1];
    int nargs, rc = cli_parse(&run_cmd, argc, argv, args, &nargs);
    int64_t threads = 0;
    const CliOption *t = cli_option(&run_cmd, "--threads"), *od = cli_option(&run_cmd, "--output-dir");
    if (rc < 0 && t->given && !cli_int(&run_cmd, t, 1, 4096, &threads))
        rc = 2;
    if (rc < 0 && !od->given)
        rc = cli_usage_error(&run_cmd, "missing --output-dir DIR");
    InputShape shapes[64];
    if (rc < 0 && !tools_input_shapes("run", inputs, ninputs, shapes))
        rc = 1;
    if (rc >= 0) {
        tools_free_inputs(inputs, ninputs);
        return rc;
    }

    /* the cache key */
    char exe[PATH_MAX] = "", inc[PATH_MAX], lib[PATH_MAX], dir[PATH_MAX], prog[PATH_MAX + 64];
    Hash h = {14695981039346656037ull, 0x6a09e667f3bcc908ull};
    Diag d;
    diag_init(&d, args[0]);
    if (!hash_file(&h, args[0])) {
        fprintf(stderr, "onnxtune run: %s: cannot read the model: %s\n", args[0], strerror(errno));
        tools_free_inputs(inputs, ninputs);
        return 1;
    }
    for (int i = 0; i < ninputs; i++) {
        hash_str(&h, shapes[i].name);
        hash_bytes(&h, &shapes[i].dtype, sizeof shapes[i].dtype);
        hash_bytes(&h, &shapes[i].shape.rank, sizeof shapes[i].shape.rank);
        hash_bytes(&h, shapes[i].shape.dim, sizeof shapes[i].shape.dim[0] * (size_t)shapes[i].shape.rank);
    }
    hash_str(&h, ONNXTUNE_VERSION);
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0)
        exe[len] = '\0';
    hash_stamp(&h, exe);
    if (codegen_runtime_paths(inc, sizeof inc, lib, sizeof lib, &d) == ST_OK)
        hash_stamp(&h, lib);
    const char *cc = getenv("CC");
    hash_str(&h, cc ? cc : "cc");
    if (!cache_dir(dir, sizeof dir)) {
        fprintf(stderr, "onnxtune run: cannot create the cache folder %s: %s (set ONNXTUNE_CACHE)\n", dir,
                strerror(errno));
        tools_free_inputs(inputs, ninputs);
        return 1;
    }
    snprintf(prog, sizeof prog, "%s/%016llx%016llx", dir, (unsigned long long)h.a, (unsigned long long)h.b);

    struct stat sb;
    if (cli_option(&run_cmd, "--no-cache")->given || stat(prog, &sb) != 0) {
        char tmp[PATH_MAX + 96];
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", prog, (long)getpid());
        CompileOptions co = {
            .model = args[0], .output = tmp, .exact = true, .shapes = shapes, .nshapes = (size_t)ninputs,
            .werror = cli_option(&run_cmd, "--werror")->given,
        };
        Status st = codegen_compile_model(&co, NULL, &d);
        if (st) {
            unlink(tmp);
            fprintf(stderr, "onnxtune run: ");
            diag_print(&d, stderr);
            tools_free_inputs(inputs, ninputs);
            return status_exit_code(st);
        }
        if (rename(tmp, prog) != 0) {
            fprintf(stderr, "onnxtune run: cannot move the program into the cache (%s): %s\n", prog, strerror(errno));
            unlink(tmp);
            tools_free_inputs(inputs, ninputs);
            return 1;
        }
    }

    /* PROG --input NAME=FILE ... --output-dir DIR [--threads N] */
    char **pargv = calloc((size_t)(2 * ninputs + 8), sizeof *pargv);
    char **owned = calloc((size_t)ninputs + 1, sizeof *owned);
    int k = 0;
    if (!pargv || !owned) {
        fprintf(stderr, "onnxtune run: out of memory\n");
        return 1;
    }
    pargv[k++] = "onnxtune run"; /* how the program names itself in messages */
    for (int i = 0; i < ninputs; i++) {
        size_t l = strlen(inputs[i].name) + strlen(inputs[i].path) + 2;
        owned[i] = malloc(l);
        if (!owned[i]) {
            fprintf(stderr, "onnxtune run: out of memory\n");
            return 1;
        }
        snprintf(owned[i], l, "%s=%s", inputs[i].name, inputs[i].path);
        pargv[k++] = "--input";
        pargv[k++] = owned[i];
    }
    pargv[k++] = "--output-dir";
    pargv[k++] = (char *)od->value;
    if (t->given) {
        pargv[k++] = "--threads";
        pargv[k++] = (char *)t->value;
    }
    pargv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(prog, pargv);
        fprintf(stderr, "onnxtune run: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    int ws = 0, status = 1;
    if (pid < 0)
        fprintf(stderr, "onnxtune run: cannot start %s: %s\n", prog, strerror(errno));
    else if (waitpid(pid, &ws, 0) == pid)
        status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (pid > 0 && WIFSIGNALED(ws))
        fprintf(stderr, "onnxtune run: the program %s was killed by signal %d\n", prog, WTERMSIG(ws));
    for (int i = 0; i < ninputs; i++)
        free(owned[i]);
    free(owned);
    free(pargv);
    tools_free_inputs(inputs, ninputs);
    return status;
}
