/* cmd_dump.c - `onnxtune dump MODEL`: placeholder until the dump tool lands. */
#include "tools.h"

#include <stdio.h>

int cmd_dump(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "onnxtune dump: not implemented yet\n");
    return 1;
}
