/* ops_norm.c - shape, canonicalisation and folding rules of the norm op family. */
#include "ir.h"

const OpRule norm_rules[] = {
    {0},
};
