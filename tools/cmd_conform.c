/* cmd_conform.c - `onnxtune conform DIR...` (being written). */
#include "tools.h"

int cmd_conform(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "onnxtune conform: not implemented yet\n");
    return 1;
}
