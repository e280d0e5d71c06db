/* eval.c: the formula interpreter.
 *
 * Used for constant folding, for model parameter templates, to evaluate an
 * agent's answer at sample values before accepting it, and by tests as an
 * oracle for the JIT. It shares modabi.h's helpers with generated code, so
 * both give bit-identical results.
 */
#include "gen.h"
#include "modabi.h"

double node_eval(const Node *n, const double *args, Metric m) {
  switch (n->kind) {
  case ND_NUM:
    return n->val;
  case ND_PARAM:
    return args[n->index];
  case ND_NEG:
    return -node_eval(n->lhs, args, m);
  case ND_ADD:
    return node_eval(n->lhs, args, m) + node_eval(n->rhs, args, m);
  case ND_SUB:
    return node_eval(n->lhs, args, m) - node_eval(n->rhs, args, m);
  case ND_MUL:
    return node_eval(n->lhs, args, m) * node_eval(n->rhs, args, m);
  case ND_DIV:
    return node_eval(n->lhs, args, m) / node_eval(n->rhs, args, m);
  case ND_FLOORDIV:
    return lm_floordiv(node_eval(n->lhs, args, m), node_eval(n->rhs, args, m));
  case ND_POW:
    return lm_pow(node_eval(n->lhs, args, m), node_eval(n->rhs, args, m));
  case ND_CEIL:
    return lm_ceil(node_eval(n->lhs, args, m));
  case ND_FLOOR:
    return lm_floor(node_eval(n->lhs, args, m));
  case ND_MIN:
  case ND_MAX: {
    /* left fold, as the emitter nests lm_min(lm_min(a, b), c) */
    double v = node_eval(n->args[0], args, m);
    for (int i = 1; i < n->nargs; i++) {
      double x = node_eval(n->args[i], args, m);
      v = n->kind == ND_MIN ? lm_min(v, x) : lm_max(v, x);
    }
    return v;
  }
  case ND_CALL: {
    double argv[64];
    for (int i = 0; i < n->nargs; i++)
      argv[i] = node_eval(n->args[i], args, m);
    if (n->callee_op)
      return n->callee_op->ast[m] ? node_eval(n->callee_op->ast[m], argv, m)
                                  : 0.0;
    return module_eval(n->callee, m, argv);
  }
  }
  return 0;
}

double module_eval(const ModuleDef *md, Metric m, const double *args) {
  if (md->nops > 0 && m < M_TRAFFIC) {
    double sum = 0;
    for (int i = 0; i < md->nops; i++) {
      const AtomicOp *op = &md->ops[i];
      if (op->mode != AM_FLASH && op->phase != AP_DECODE && op->ast[m])
        sum = sum + node_eval(op->ast[m], args, m);
    }
    return sum;
  }
  return md->ast[m] ? node_eval(md->ast[m], args, m) : 0.0;
}
