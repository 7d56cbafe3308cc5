/* ops_shape.c - shape, canonicalisation and folding rules of the shape op family. */
#include "ir.h"

const OpRule shape_rules[] = {
    {0},
};
