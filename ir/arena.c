/* arena.c - bump allocation for everything one compilation builds, freed at once. Large requests
 * get a block of their own so they waste nothing; adopted buffers are freed with the arena. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct Block {
    struct Block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} Block;

typedef struct Adopted {
    struct Adopted *next;
    void *p;
} Adopted;

struct Arena {
    Block *head;     /* current small-allocation chunk */
    Block *big;      /* dedicated blocks for large requests */
    Adopted *adopted;
};

bool size_mul(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool size_add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

Arena *arena_new(void)
{
    return calloc(1, sizeof(Arena));
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    for (Block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    for (Block *b = a->big, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    for (Adopted *p = a->adopted, *next; p; p = next) {
        next = p->next;
        free(p->p);
        free(p);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t size)
{
    size_t rounded;
    if (!size_add(size, ARENA_ALIGN - 1, &rounded))
        return NULL;
    rounded &= ~(size_t)(ARENA_ALIGN - 1);
    if (rounded == 0)
        rounded = ARENA_ALIGN;
    if (rounded > ARENA_CHUNK / 4) {
        size_t total;
        if (!size_add(sizeof(Block), rounded, &total))
            return NULL;
        Block *b = calloc(1, total);
        if (!b)
            return NULL;
        b->cap = b->used = rounded;
        b->next = a->big;
        a->big = b;
        return b->data;
    }
    if (!a->head || a->head->cap - a->head->used < rounded) {
        Block *b = malloc(sizeof(Block) + ARENA_CHUNK);
        if (!b)
            return NULL;
        b->cap = ARENA_CHUNK;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += rounded;
    memset(p, 0, rounded);
    return p;
}

void *arena_calloc(Arena *a, size_t n, size_t size)
{
    size_t total;
    if (!size_mul(n, size, &total))
        return NULL;
    return arena_alloc(a, total);
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t total;
    if (!size_add(n, 1, &total))
        return NULL;
    char *p = arena_alloc(a, total);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? arena_alloc(a, (size_t)n + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

bool arena_adopt(Arena *a, void *malloced)
{
    if (!malloced)
        return true;
    Adopted *node = malloc(sizeof *node);
    if (!node)
        return false;
    node->p = malloced;
    node->next = a->adopted;
    a->adopted = node;
    return true;
}
