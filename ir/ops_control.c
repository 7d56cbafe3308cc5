/* ops_control.c - shape, canonicalisation and folding rules of the control op family. */
#include "ir.h"

const OpRule control_rules[] = {
    {0},
};
