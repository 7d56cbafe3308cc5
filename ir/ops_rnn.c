/* ops_rnn.c - shape, canonicalisation and folding rules of the rnn op family. */
#include "ir.h"

const OpRule rnn_rules[] = {
    {0},
};
