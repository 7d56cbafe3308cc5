/* diag.c - the diagnostic sink every library function reports into. The first error wins, since
 * later ones are usually its consequences; printing is left to the mains. */
#include "ir.h"

#include <string.h>

void diag_init(Diag *d, const char *file)
{
    memset(d, 0, sizeof *d);
    d->file = file;
}

static Status diag_vset(Diag *d, Status st, const char *prefix, const char *fmt, va_list ap)
{
    if (!d || d->status != ST_OK)
        return st;
    d->status = st;
    size_t n = 0;
    if (prefix) {
        snprintf(d->msg, sizeof d->msg, "%s", prefix);
        n = strlen(d->msg);
    }
    vsnprintf(d->msg + n, sizeof d->msg - n, fmt, ap);
    return st;
}

Status diag_error(Diag *d, Status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, st, NULL, fmt, ap);
    va_end(ap);
    return st;
}

Status diag_node(Diag *d, const Node *n, Status st, const char *fmt, ...)
{
    char prefix[384];
    snprintf(prefix, sizeof prefix, "node '%s' (%s): ", n && n->name ? n->name : "?",
             n && n->op_type ? n->op_type : "?");
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, st, prefix, fmt, ap);
    va_end(ap);
    return st;
}

void diag_print(const Diag *d, FILE *f)
{
    const char *msg = d->status != ST_OK ? d->msg : "no error";
    if (d->file)
        fprintf(f, "%s: %s\n", d->file, msg);
    else
        fprintf(f, "%s\n", msg);
}

int status_exit_code(Status st)
{
    return st == ST_OK ? 0 : st == ST_USAGE ? 2 : 1;
}

const char *status_name(Status st)
{
    static const char *const names[] = {
        "ok", "error", "usage", "io", "parse", "invalid", "shape", "unsupported", "nomem",
    };
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}
