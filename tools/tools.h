/* tools.h - the subcommands of the `onnxtune` command. Each lives in tools/cmd_<name>.c and
 * returns the process exit status (0 ok, 1 error, 2 usage). */
#ifndef ONNXTUNE_TOOLS_H
#define ONNXTUNE_TOOLS_H

int cmd_dump(int argc, char **argv);

#endif
