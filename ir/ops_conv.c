/* ops_conv.c - shape, canonicalisation and folding rules of the conv op family. */
#include "ir.h"

const OpRule conv_rules[] = {
    {0},
};
