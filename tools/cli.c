/* cli.c - the option parser every subcommand shares: --opt VALUE, --opt=VALUE, flags, --help,
 * "--" to end options; the last of repeated options wins. It prints usage errors itself (this is
 * tools/, the only place that prints) but never exits: commands return the status it hands back. */
#include "tools.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_usage(const CliCommand *cmd, FILE *f)
{
    fprintf(f, "usage: onnxtune %s [options]%s%s\n", cmd->name, cmd->args ? " " : "",
            cmd->args ? cmd->args : "");
    if (cmd->summary)
        fprintf(f, "%s\n", cmd->summary);
    fprintf(f, "\noptions:\n");
    for (const CliOption *o = cmd->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                 o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-22s %s\n", left, o->help ? o->help : "");
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "show this help and exit");
}

int cli_usage_error(const CliCommand *cmd, const char *fmt, ...)
{
    fprintf(stderr, "onnxtune %s: ", cmd->name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see onnxtune %s --help)\n", cmd->name);
    return 2;
}

CliOption *cli_option(CliCommand *cmd, const char *name)
{
    for (CliOption *o = cmd->opts; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* The option `arg` names: its long form (up to an '=') or its alias. */
static CliOption *find_option(CliCommand *cmd, const char *arg, size_t len)
{
    for (CliOption *o = cmd->opts; o && o->name; o++) {
        if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0)
            return o;
        if (o->alias && strlen(o->alias) == len && strncmp(o->alias, arg, len) == 0)
            return o;
    }
    return NULL;
}

int cli_parse(CliCommand *cmd, int argc, char **argv, char **args, int *nargs)
{
    *nargs = 0;
    for (CliOption *o = cmd->opts; o && o->name; o++) {
        o->given = false;
        o->value = NULL;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (*nargs >= cmd->max_args)
                return cmd->max_args == 0 ? cli_usage_error(cmd, "unexpected argument '%s'", a)
                                          : cli_usage_error(cmd, "too many arguments ('%s')", a);
            args[(*nargs)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            /* help piped into a reader that stops early (| head) is not an error: no death by SIGPIPE */
            signal(SIGPIPE, SIG_IGN);
            cli_usage(cmd, stdout);
            return 0;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        CliOption *o = find_option(cmd, a, len);
        if (!o)
            return cli_usage_error(cmd, "unknown option '%.*s'", (int)len, a);
        if (!o->arg) {
            if (eq)
                return cli_usage_error(cmd, "option %s takes no value", o->name);
            o->given = true;
            continue;
        }
        if (eq) {
            o->value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "option %s needs a value (%s %s)", o->name, o->name, o->arg);
            o->value = argv[++i];
        }
        o->given = true;
    }
    if (*nargs < cmd->min_args)
        return cli_usage_error(cmd, "missing %s", cmd->args ? cmd->args : "arguments");
    return -1;
}

bool cli_int(const CliCommand *cmd, const CliOption *o, int64_t min, int64_t max, int64_t *out)
{
    const char *s = o->value ? o->value : "";
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max) {
        cli_usage_error(cmd, "option %s wants an integer in [%lld, %lld], not '%s'", o->name,
                        (long long)min, (long long)max, s);
        return false;
    }
    *out = v;
    return true;
}

int cli_take_value(const char *cmd, const char *name, const char *arg, int argc, char **argv, int *i,
                   const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (a[n] == '=')
        *value = a + n + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else {
        fprintf(stderr, "onnxtune %s: option %s needs a value (%s %s)\n", cmd, name, name, arg);
        return -1;
    }
    return 1;
}
