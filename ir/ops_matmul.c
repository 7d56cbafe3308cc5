/* ops_matmul.c - shape, canonicalisation and folding rules of the matmul op family. */
#include "ir.h"

const OpRule matmul_rules[] = {
    {0},
};
