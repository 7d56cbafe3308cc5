/* ops_pool.c - shape, canonicalisation and folding rules of the pool op family. */
#include "ir.h"

const OpRule pool_rules[] = {
    {0},
};
