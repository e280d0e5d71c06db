/* prog.c: parameter templates compiled to a tiny stack machine.
 *
 * A model's templates ("{B} * {T}", "{hidden_size}") are evaluated for
 * every analysis, so they are compiled once: config values are folded in,
 * leaving only run variables (B, S, T, L, widths) to read. Most templates
 * become a single constant or variable. Evaluation uses modabi.h's helpers,
 * so it agrees with the interpreter and with generated code.
 */
#include "runtime.h"

#include <string.h>

enum {
  PROG_CONST,
  PROG_VAR,
  PROG_ADD,
  PROG_SUB,
  PROG_MUL,
  PROG_DIV,
  PROG_FLOORDIV,
  PROG_NEG,
  PROG_MIN,
  PROG_MAX,
  PROG_CEIL,
  PROG_FLOOR,
};

typedef struct Compiler {
  const double *values;
  const bool *known;
  Instr *code;
  int len, cap, depth, maxdepth;
} Compiler;

static bool foldable(const Node *n, const bool *known) {
  switch (n->kind) {
  case ND_NUM:
    return true;
  case ND_PARAM:
    return known[n->index];
  case ND_CALL:
    return false;
  case ND_MIN:
  case ND_MAX:
    for (int i = 0; i < n->nargs; i++)
      if (!foldable(n->args[i], known))
        return false;
    return true;
  default:
    return foldable(n->lhs, known) && (!n->rhs || foldable(n->rhs, known));
  }
}

static void push(Compiler *c, Instr in, int delta) {
  if (c->len == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 8;
    c->code = xrealloc(c->code, sizeof(Instr) * (size_t)c->cap);
  }
  c->code[c->len++] = in;
  c->depth += delta;
  if (c->depth > c->maxdepth)
    c->maxdepth = c->depth;
}

static int gen(Compiler *c, const Node *n) {
  if (foldable(n, c->known)) {
    push(c, (Instr){.op = PROG_CONST, .k = node_eval(n, c->values, M_FLOPS)},
         1);
    return 0;
  }
  switch (n->kind) {
  case ND_PARAM:
    push(c, (Instr){.op = PROG_VAR, .idx = n->index}, 1);
    return 0;
  case ND_NEG:
  case ND_CEIL:
  case ND_FLOOR:
    if (gen(c, n->lhs) < 0)
      return -1;
    push(c,
         (Instr){.op = n->kind == ND_NEG    ? PROG_NEG
                       : n->kind == ND_CEIL ? PROG_CEIL
                                            : PROG_FLOOR},
         0);
    return 0;
  case ND_MIN:
  case ND_MAX:
    for (int i = 0; i < n->nargs; i++)
      if (gen(c, n->args[i]) < 0)
        return -1;
    push(c,
         (Instr){.op = n->kind == ND_MIN ? PROG_MIN : PROG_MAX,
                 .n = (unsigned char)n->nargs},
         1 - n->nargs);
    return 0;
  case ND_ADD:
  case ND_SUB:
  case ND_MUL:
  case ND_DIV:
  case ND_FLOORDIV: {
    if (gen(c, n->lhs) < 0 || gen(c, n->rhs) < 0)
      return -1;
    static const unsigned char ops[] = {[ND_ADD] = PROG_ADD,
                                        [ND_SUB] = PROG_SUB,
                                        [ND_MUL] = PROG_MUL,
                                        [ND_DIV] = PROG_DIV,
                                        [ND_FLOORDIV] = PROG_FLOORDIV};
    push(c, (Instr){.op = ops[n->kind]}, -1);
    return 0;
  }
  default:
    return -1; /* ND_NUM is always foldable; ND_CALL is rejected by check */
  }
}

int prog_compile(Arena *a, const Node *n, const double *values,
                 const bool *known, Prog *out, Error *err) {
  Compiler c = {.values = values, .known = known};
  if (gen(&c, n) < 0 || c.maxdepth > PROG_MAX_DEPTH) {
    free(c.code);
    err_set(err, "template too complex (stack depth over %d)", PROG_MAX_DEPTH);
    return -1;
  }
  out->code = arena_alloc(a, sizeof(Instr) * (size_t)c.len);
  memcpy(out->code, c.code, sizeof(Instr) * (size_t)c.len);
  out->len = c.len;
  out->depth = c.maxdepth;
  free(c.code);
  return 0;
}

bool prog_const(const Prog *p, double *v) {
  if (p->len == 1 && p->code[0].op == PROG_CONST) {
    if (v)
      *v = p->code[0].k;
    return true;
  }
  return false;
}

double prog_eval(const Prog *p, const double *vars) {
  double st[PROG_MAX_DEPTH];
  int sp = 0;
  for (int i = 0; i < p->len; i++) {
    const Instr *in = &p->code[i];
    switch (in->op) {
    case PROG_CONST:
      st[sp++] = in->k;
      break;
    case PROG_VAR:
      st[sp++] = vars[in->idx];
      break;
    case PROG_ADD:
      sp--;
      st[sp - 1] = st[sp - 1] + st[sp];
      break;
    case PROG_SUB:
      sp--;
      st[sp - 1] = st[sp - 1] - st[sp];
      break;
    case PROG_MUL:
      sp--;
      st[sp - 1] = st[sp - 1] * st[sp];
      break;
    case PROG_DIV:
      sp--;
      st[sp - 1] = st[sp - 1] / st[sp];
      break;
    case PROG_FLOORDIV:
      sp--;
      st[sp - 1] = lm_floordiv(st[sp - 1], st[sp]);
      break;
    case PROG_NEG:
      st[sp - 1] = -st[sp - 1];
      break;
    case PROG_CEIL:
      st[sp - 1] = lm_ceil(st[sp - 1]);
      break;
    case PROG_FLOOR:
      st[sp - 1] = lm_floor(st[sp - 1]);
      break;
    case PROG_MIN:
    case PROG_MAX: {
      int base = sp - in->n;
      double v = st[base];
      for (int k = base + 1; k < sp; k++)
        v = in->op == PROG_MIN ? lm_min(v, st[k]) : lm_max(v, st[k]);
      sp = base;
      st[sp++] = v;
      break;
    }
    }
  }
  return st[0];
}

bool prog_reads(const Prog *p, int var) {
  for (int i = 0; i < p->len; i++)
    if (p->code[i].op == PROG_VAR && p->code[i].idx == var)
      return true;
  return false;
}

char prog_op_kind(const Instr *in) {
  switch (in->op) {
  case PROG_CONST:
    return 'k';
  case PROG_VAR:
    return 'v';
  case PROG_ADD:
    return '+';
  case PROG_SUB:
    return '-';
  case PROG_MUL:
    return '*';
  case PROG_DIV:
    return '/';
  case PROG_FLOORDIV:
    return '0';
  case PROG_NEG:
    return 'n';
  case PROG_CEIL:
    return 'c';
  case PROG_FLOOR:
    return 'f';
  case PROG_MIN:
    return 'm';
  default:
    return 'M';
  }
}
