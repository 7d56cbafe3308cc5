/* ops.c - the op table: gathers each family's rules (ir/ops_<family>.c) and looks ops up by name.
 * It holds no rules itself; adding an op means adding a row to its family's table. */
#include "ir.h"

#include <string.h>

extern const OpRule elementwise_rules[];
extern const OpRule matmul_rules[];
extern const OpRule conv_rules[];
extern const OpRule pool_rules[];
extern const OpRule norm_rules[];
extern const OpRule reduce_rules[];
extern const OpRule shape_rules[];
extern const OpRule rnn_rules[];
extern const OpRule control_rules[];
extern const OpRule train_rules[];
extern const OpRule loss_rules[];
extern const OpRule seq_rules[];
extern const OpRule quant_rules[];
extern const OpRule optim_rules[];
extern const OpRule signal_rules[];
extern const OpRule image_rules[];
extern const OpRule misc_rules[];

static const OpRule *const families[] = {
    elementwise_rules, matmul_rules, conv_rules, pool_rules, norm_rules,
    reduce_rules, shape_rules, rnn_rules, control_rules, train_rules, loss_rules, seq_rules,
    quant_rules, optim_rules, signal_rules, image_rules, misc_rules,
};

const OpRule *op_rule_at(size_t i)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        size_t n = 0;
        while (families[f][n].name)
            n++;
        if (i < n)
            return &families[f][i];
        i -= n;
    }
    return NULL;
}

const OpRule *op_lookup(const char *domain, const char *name)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const OpRule *r = families[f]; r->name; r++)
            if (strcmp(r->name, name) == 0 && strcmp(r->domain ? r->domain : "", domain) == 0)
                return r;
    return NULL;
}
