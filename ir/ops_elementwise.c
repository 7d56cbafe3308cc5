/* ops_elementwise.c - shape, canonicalisation and folding rules of the elementwise op family. */
#include "ir.h"

const OpRule elementwise_rules[] = {
    {0},
};
