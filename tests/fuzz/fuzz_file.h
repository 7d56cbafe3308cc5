/* fuzz_file.h - for harnesses whose reader takes a path: the input's bytes as a file, an anonymous
 * memfd rewritten on every call and opened again through /proc/self/fd (no disk, no cleanup).
 * It does not pick file names: readers that look at a name's extension need a real temporary. */
#ifndef ONNXTUNE_FUZZ_FILE_H
#define ONNXTUNE_FUZZ_FILE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int memfd_create(const char *name, unsigned int flags);

/* The path of a file holding data[size]; aborts when the file cannot be written (not the reader's fault). */
static const char *fuzz_file(const void *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("onnxtune_fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_file");
        abort();
    }
    return path;
}

#endif
