/* fuse.c: a whole plan compiled into one C function (libtcc).
 *
 * plan_eval's interpretive path evaluates, per slot, the parameter
 * templates on a stack machine and then calls one JIT-compiled function
 * per row and metric through a pointer. The fused function does the same
 * arithmetic in one straight-line body: the config values are folded in
 * (the templates' constants), each dynamic parameter is a local computed
 * from the run variables, each row's metric is its module formula with
 * the parameters substituted, and a call to another module (${Class} or
 * ${Class.op}) is inlined with its arguments held in locals first, as the
 * generated code passes them. Every operation is the one the generated
 * code and the stack machine perform, in the same order, on the same
 * doubles, so the results are bit-identical (test_fuse checks it on every
 * shipped model); constants that are not small integers are read from a
 * table rather than written as decimal literals, so no literal is ever
 * re-rounded by the compiler.
 *
 * The function checks what plan_eval checks (parameter ranges, whole
 * numbers, every value finite and not negative) and returns -1 on the
 * first failure; plan_eval then runs its interpretive path, which finds
 * the same failure and words the located error. A plan whose formulas use
 * something the fuser does not inline (a call to a composite module's
 * whole-module metric) is simply not fused.
 */
#include "runtime.h"

#include <math.h>
#include <string.h>

struct Fused {
  Jit *jit;
  int (*fn)(const double *run, double *rows, double *state, double *args,
            const double *k);
  int (*kv)(const double *run, double *rows, double *state, double *args,
            const double *k); /* only the rows that depend on L or S */
  double *k;                  /* the constants table */
  int nk;
};

typedef struct Fuser {
  Buf *body; /* statements go here (hoisted call arguments too) */
  double *k; /* constants */
  int nk, capk;
  int tmp; /* temporaries */
  bool fail;
} Fuser;

/* A parameter binding: C expressions, one per callee parameter. */
typedef struct Env {
  char **expr;
  int n;
} Env;

static void konst(Fuser *f, Buf *out, double v) {
  if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
      v == (double)(long long)v && !(v == 0 && signbit(v))) {
    buf_printf(out, "%lld.0", (long long)v);
    return;
  }
  if (f->nk == f->capk) {
    f->capk = f->capk ? 2 * f->capk : 16;
    f->k = xrealloc(f->k, sizeof(double) * (size_t)f->capk);
  }
  f->k[f->nk] = v;
  buf_printf(out, "K[%d]", f->nk++);
}

/* A stack program as a C expression (same operations, same order). */
static void prog_c(Fuser *f, Buf *out, const Prog *p) {
  Buf st[PROG_MAX_DEPTH + 1];
  int sp = 0;
  for (int i = 0; i < p->len && !f->fail; i++) {
    const Instr *in = &p->code[i];
    Buf b;
    buf_init(&b);
    switch (prog_op_kind(in)) {
    case 'k':
      konst(f, &b, in->k);
      st[sp++] = b;
      continue;
    case 'v':
      buf_printf(&b, "run[%d]", in->idx);
      if (in->idx >= V_COUNT)
        f->fail = true; /* config values are always folded */
      st[sp++] = b;
      continue;
    case 'n':
      buf_printf(&b, "(-%s)", buf_str(&st[sp - 1]));
      break;
    case 'c':
    case 'f':
      buf_printf(&b, "%s(%s)", prog_op_kind(in) == 'c' ? "lm_ceil" : "lm_floor",
                 buf_str(&st[sp - 1]));
      break;
    case 'm':
    case 'M': {
      int base = sp - in->n;
      Buf acc;
      buf_init(&acc);
      buf_puts(&acc, buf_str(&st[base]));
      for (int k = base + 1; k < sp; k++) {
        Buf t;
        buf_init(&t);
        buf_printf(&t, "%s(%s, %s)",
                   prog_op_kind(in) == 'm' ? "lm_min" : "lm_max", buf_str(&acc),
                   buf_str(&st[k]));
        buf_free(&acc);
        acc = t;
      }
      for (int k = base; k < sp; k++)
        buf_free(&st[k]);
      sp = base;
      st[sp++] = acc;
      buf_free(&b);
      continue;
    }
    default: { /* binary */
      char op = prog_op_kind(in);
      if (op == '0') /* floordiv */
        buf_printf(&b, "lm_floordiv(%s, %s)", buf_str(&st[sp - 2]),
                   buf_str(&st[sp - 1]));
      else
        buf_printf(&b, "(%s %c %s)", buf_str(&st[sp - 2]), op,
                   buf_str(&st[sp - 1]));
      buf_free(&st[sp - 1]);
      buf_free(&st[sp - 2]);
      sp -= 2;
      st[sp++] = b;
      continue;
    }
    }
    buf_free(&st[sp - 1]);
    st[sp - 1] = b;
  }
  if (sp == 1)
    buf_puts(out, buf_str(&st[0]));
  else
    f->fail = true;
  for (int i = 0; i < sp; i++)
    buf_free(&st[i]);
}

static void node_c(Fuser *f, Buf *out, const Node *n, const Env *env, Metric m);

/* ${Class}(args) or ${Class.op}(args): the arguments into locals, then
 * the callee's formula over them. */
static void call_c(Fuser *f, Buf *out, const Node *n, const Env *env,
                   Metric m) {
  const ModuleDef *cm = n->callee;
  const Node *ast;
  if (n->callee_op)
    ast = n->callee_op->ast[m];
  else if (cm->nops > 0 && m < M_TRAFFIC) {
    f->fail = true; /* a composite's whole-module sum: not inlined */
    return;
  } else
    ast = cm->ast[m];
  Env sub = {xcalloc((size_t)n->nargs + 1, sizeof(char *)), n->nargs};
  for (int i = 0; i < n->nargs; i++) {
    Buf a;
    buf_init(&a);
    node_c(f, &a, n->args[i], env, m);
    int t = f->tmp++;
    buf_printf(f->body, "  double t%d = %s;\n", t, buf_str(&a));
    buf_free(&a);
    char name[32];
    snprintf(name, sizeof(name), "t%d", t);
    sub.expr[i] = xstrdup(name);
  }
  if (ast)
    node_c(f, out, ast, &sub, m);
  else
    buf_puts(out, "0.0");
  for (int i = 0; i < sub.n; i++)
    free(sub.expr[i]);
  free(sub.expr);
}

static void fold_c(Fuser *f, Buf *out, const Node *n, int k, const Env *env,
                   Metric m) {
  if (k == 0) {
    node_c(f, out, n->args[0], env, m);
    return;
  }
  buf_puts(out, n->kind == ND_MIN ? "lm_min(" : "lm_max(");
  fold_c(f, out, n, k - 1, env, m);
  buf_puts(out, ", ");
  node_c(f, out, n->args[k], env, m);
  buf_putc(out, ')');
}

static void node_c(Fuser *f, Buf *out, const Node *n, const Env *env,
                   Metric m) {
  if (f->fail)
    return;
  switch (n->kind) {
  case ND_NUM:
    konst(f, out, n->val);
    return;
  case ND_PARAM:
    if (n->index < 0 || n->index >= env->n) {
      f->fail = true;
      return;
    }
    buf_puts(out, env->expr[n->index]);
    return;
  case ND_NEG:
    buf_puts(out, "(-");
    node_c(f, out, n->lhs, env, m);
    buf_putc(out, ')');
    return;
  case ND_ADD:
  case ND_SUB:
  case ND_MUL:
  case ND_DIV: {
    static const char *op[] = {
        [ND_ADD] = " + ", [ND_SUB] = " - ", [ND_MUL] = " * ", [ND_DIV] = " / "};
    buf_putc(out, '(');
    node_c(f, out, n->lhs, env, m);
    buf_puts(out, op[n->kind]);
    node_c(f, out, n->rhs, env, m);
    buf_putc(out, ')');
    return;
  }
  case ND_FLOORDIV:
    buf_puts(out, "lm_floordiv(");
    node_c(f, out, n->lhs, env, m);
    buf_puts(out, ", ");
    node_c(f, out, n->rhs, env, m);
    buf_putc(out, ')');
    return;
  case ND_CEIL:
  case ND_FLOOR:
    buf_puts(out, n->kind == ND_CEIL ? "lm_ceil(" : "lm_floor(");
    node_c(f, out, n->lhs, env, m);
    buf_putc(out, ')');
    return;
  case ND_MIN:
  case ND_MAX:
    fold_c(f, out, n, n->nargs - 1, env, m);
    return;
  case ND_CALL:
    call_c(f, out, n, env, m);
    return;
  }
  f->fail = true;
}

/* The AST behind a row's metric k: its module's entry formula, or the
 * atomic op's whose compiled function the row calls. */
static const Node *row_ast(const Row *row, const Slot *s, int k) {
  const RegModule *rm = s->layer->mod;
  const ModuleDef *md = rm->def;
  if (row->fn[k] == rm->fn[k])
    return md->ast[k];
  for (int j = 0; j < md->nops; j++)
    if (rm->opfn && rm->opfn[j][k] == row->fn[k])
      return md->ops[j].ast[k];
  return NULL;
}

/* "x must be finite, not negative": the bad() of plan.c. */
#define CHECK "if (!(%s >= 0 && %s <= 1.79e308)) return -1;\n"

Fused *fused_build(const Plan *p) {
  Fuser f = {0};
  Buf *argc = xcalloc((size_t)p->nslots + 1, sizeof(Buf));
  Buf *rowc = xcalloc((size_t)p->nrows + 1, sizeof(Buf));
  Buf state, src;
  buf_init(&state);
  buf_init(&src);
  Env *envs = xcalloc((size_t)p->nslots + 1, sizeof(Env));
  /* parameters: constants, or locals computed and checked */
  for (int i = 0; i < p->nslots && !f.fail; i++) {
    const Slot *s = &p->slots[i];
    const ModuleDef *md = s->layer->mod->def;
    buf_init(&argc[i]);
    f.body = &argc[i];
    envs[i].n = s->nargs;
    envs[i].expr = xcalloc((size_t)s->nargs + 1, sizeof(char *));
    for (int k = 0; k < s->nargs; k++) {
      Buf e;
      buf_init(&e);
      bool dyn = false;
      for (int d = 0; d < s->ndyn; d++)
        dyn |= s->dyn[d] == k;
      if (dyn) {
        Buf x;
        buf_init(&x);
        prog_c(&f, &x, &s->layer->args[k]);
        buf_printf(f.body, "  double a%d = %s;\n", s->argbase + k, buf_str(&x));
        buf_free(&x);
        char v[32];
        snprintf(v, sizeof(v), "a%d", s->argbase + k);
        Buf lo, hi;
        buf_init(&lo);
        buf_init(&hi);
        konst(&f, &lo, md->pmin[k]);
        konst(&f, &hi, md->pmax[k]);
        buf_printf(f.body,
                   "  if (!(%s >= %s && %s <= %s && %s >= 0 && %s <= 1.79e308",
                   v, buf_str(&lo), v, buf_str(&hi), v, v);
        if (md->pint[k])
          buf_printf(f.body, " && %s == lm_floor(%s)", v, v);
        buf_printf(f.body, ")) return -1;\n  A[%d] = %s;\n", s->argbase + k, v);
        buf_free(&lo);
        buf_free(&hi);
        buf_puts(&e, v);
      } else {
        konst(&f, &e, s->init[k]);
      }
      envs[i].expr[k] = buf_steal(&e);
    }
  }
  /* rows */
  for (int r = 0; r < p->nrows; r++)
    buf_init(&rowc[r]);
  for (int r = 0; r < p->nrows && !f.fail; r++) {
    const Row *row = &p->rows[r];
    const Slot *s = &p->slots[row->slot];
    f.body = &rowc[r];
    for (int k = 0; k < M_TRAFFIC && !f.fail; k++) {
      if (!row->fn[k]) {
        buf_printf(f.body, "  R[%d] = 0.0;\n", r * M_TRAFFIC + k);
        continue;
      }
      const Node *ast = row_ast(row, s, k);
      Buf e;
      buf_init(&e);
      if (ast)
        node_c(&f, &e, ast, &envs[row->slot], (Metric)k);
      else
        f.fail = true;
      buf_printf(f.body, "  { double x = %s;\n    " CHECK "    R[%d] = x; }\n",
                 buf_str(&e), "x", "x", r * M_TRAFFIC + k);
      buf_free(&e);
    }
  }
  /* state: summed over slots in order, count x value */
  f.body = &state;
  for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
    buf_printf(f.body, "  double s%d = 0.0;\n", k);
  for (int i = 0; i < p->nslots && !f.fail; i++) {
    const Slot *s = &p->slots[i];
    for (int k = 0; k < M_COUNT - M_TRAFFIC && !f.fail; k++) {
      if (!s->state[k])
        continue;
      const Node *ast = s->layer->mod->def->ast[M_TRAFFIC + k];
      if (!ast || s->state[k] != s->layer->mod->fn[M_TRAFFIC + k]) {
        f.fail = true;
        break;
      }
      Buf e, c;
      buf_init(&e);
      buf_init(&c);
      node_c(&f, &e, ast, &envs[i], (Metric)(M_TRAFFIC + k));
      konst(&f, &c, s->layer->count);
      buf_printf(f.body,
                 "  { double x = %s;\n    " CHECK "    s%d += %s * x; }\n",
                 buf_str(&e), "x", "x", k, buf_str(&c));
      buf_free(&e);
      buf_free(&c);
    }
  }
  for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
    buf_printf(&state, "  S[%d] = s%d;\n", k, k);
  Fused *fu = NULL;
  if (!f.fail) {
    static const char *const head =
        "(const double *run, double *R, double *S, double *A, "
        "const double *K) {\n";
    static const char *const tail =
        "  (void)K; (void)A; (void)run; (void)S; (void)R;\n  return 0;\n}\n";
    /* the whole plan */
    buf_printf(&src, "int lm_fused%s", head);
    for (int i = 0; i < p->nslots; i++)
      buf_puts(&src, buf_str(&argc[i]));
    for (int r = 0; r < p->nrows; r++)
      buf_puts(&src, buf_str(&rowc[r]));
    buf_puts(&src, buf_str(&state));
    buf_puts(&src, tail);
    /* the rows that depend on the KV length, and their slots' parameters */
    int nkv = 0;
    int *kv = plan_kv_rows(p, &nkv);
    bool *used = xcalloc((size_t)p->nslots + 1, sizeof(bool));
    for (int i = 0; i < nkv; i++)
      used[p->rows[kv[i]].slot] = true;
    buf_printf(&src, "int lm_fused_kv%s", head);
    for (int i = 0; i < p->nslots; i++)
      if (used[i])
        buf_puts(&src, buf_str(&argc[i]));
    for (int i = 0; i < nkv; i++)
      buf_puts(&src, buf_str(&rowc[kv[i]]));
    buf_puts(&src, tail);
    free(used);
    free(kv);
    const char *path = "(fused plan)", *text = buf_str(&src);
    Error e;
    err_clear(&e);
    Jit *j = jit_compile(&path, &text, 1, &e);
    void *sym = j ? jit_symbol(j, "lm_fused") : NULL;
    void *ksym = j ? jit_symbol(j, "lm_fused_kv") : NULL;
    if (sym && ksym) {
      fu = xcalloc(1, sizeof(*fu));
      fu->jit = j;
      *(void **)&fu->fn = sym;
      *(void **)&fu->kv = ksym;
      fu->k = f.k;
      fu->nk = f.nk;
      f.k = NULL;
    } else {
      jit_free(j);
    }
  }
  for (int i = 0; i < p->nslots; i++) {
    for (int k = 0; k < envs[i].n; k++)
      free(envs[i].expr[k]);
    free(envs[i].expr);
    buf_free(&argc[i]);
  }
  for (int r = 0; r < p->nrows; r++)
    buf_free(&rowc[r]);
  free(argc);
  free(rowc);
  free(envs);
  free(f.k);
  buf_free(&state);
  buf_free(&src);
  return fu;
}

int fused_eval(const Fused *fu, const double *run, Values *out) {
  memcpy(out->vars, run, sizeof(double) * V_COUNT);
  return fu->fn(run, out->row[0], out->state, out->args, fu->k);
}

int fused_eval_kv(const Fused *fu, const double *run, Values *out) {
  memcpy(out->vars, run, sizeof(double) * V_COUNT);
  return fu->kv(run, out->row[0], out->state, out->args, fu->k);
}

void fused_free(Fused *fu) {
  if (!fu)
    return;
  jit_free(fu->jit);
  free(fu->k);
  free(fu);
}
