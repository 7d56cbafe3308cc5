/* test_codegen_conform.c - `onnxtune conform` on the small cases of tests/conform_cases/ (made by
 * tests/ref/make_conform_cases.py): the line per case, PASS for data sets of two shapes (two compiled
 * units) and for shape inputs compiled in per data set, exact int64 results, the loss ops in float64
 * with int64 and int32 labels, FAIL with the worst value for a wrong expected output, UNSUPPORTED
 * naming an unknown op, sequences and optionals (test data of SequenceProto, positions known only at
 * run time), the summary line and exit status 1.
 */
#include "test.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>

int main(void)
{
    const char *tool = getenv("ONNXTUNE");
    if (!tool) {
        fprintf(stderr, "test_codegen_conform: set ONNXTUNE to the onnxtune binary (CTest does)\n");
        return 1;
    }
    char cmd[PATH_MAX + 64], out[1 << 14];
    snprintf(cmd, sizeof cmd, "'%s' conform tests/conform_cases 2>/dev/null", tool);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d, expected 1 (one case fails)",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK_MSG(strstr(out, "PASS conform_cases/gelu\n") != NULL, "gelu:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/gelu_tanh\n") != NULL, "gelu_tanh:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/int64_mul\n") != NULL, "int64_mul:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/relu_two_sets\n") != NULL, "relu_two_sets:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/sce_double\n") != NULL, "sce_double:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/nll_double_int32\n") != NULL, "nll_double_int32:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/reshape_by_input (shape-determining inputs compiled in)\n") != NULL,
              "reshape_by_input:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/optional\n") != NULL, "optional:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/loop_carried_sequence\n") != NULL, "loop_carried_sequence:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/sequence_positions\n") != NULL, "sequence_positions:\n%s", out);
    CHECK_MSG(strstr(out, "PASS conform_cases/split_to_sequence_scalar (shape-determining inputs compiled in)\n") !=
              NULL, "split_to_sequence_scalar:\n%s", out);
    CHECK_MSG(strstr(out, "UNSUPPORTED conform_cases/unknown_op ") && strstr(out, "NoSuchOp"), "unknown_op:\n%s", out);
    CHECK_MSG(strstr(out, "FAIL conform_cases/wrong_output output 0 'w': 3 of 3 values differ") != NULL,
              "wrong_output:\n%s", out);
    const char *last = strstr(out, "11 passed, 1 failed, 1 unsupported\n");
    CHECK_MSG(last && last[strlen("11 passed, 1 failed, 1 unsupported\n")] == '\0', "summary line:\n%s", out);
    /* cases are printed in name order, one line each */
    size_t lines = 0;
    for (const char *s = out; *s; s++)
        lines += *s == '\n';
    CHECK_EQ_INT(lines, 14);
    return test_summary("test_codegen_conform");
}
