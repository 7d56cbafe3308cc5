/* ops_reduce.c - shape, canonicalisation and folding rules of the reduce op family. */
#include "ir.h"

const OpRule reduce_rules[] = {
    {0},
};
