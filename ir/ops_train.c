/* ops_train.c - the ops of the "onnxtune" domain that fine-tuning adds: losses and optimizer updates. */
#include "ir.h"

const OpRule train_rules[] = {
    {0},
};
