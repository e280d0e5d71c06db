/* fuse.c: a whole plan compiled into one C function (libtcc).
 *
 * plan_eval's interpretive path evaluates, per slot, the parameter
 * templates on a stack machine and then calls one JIT-compiled function
 * per row and metric through a pointer. The fused function does the same
 * arithmetic in one straight-line body: the config values are folded in
 * (the templates' constants), each dynamic parameter is computed from the
 * run variables, each row's metric is its module formula with the
 * parameters substituted, and a call to another module (${Class} or
 * ${Class.op}) is inlined over its arguments.
 *
 * The body is built as single assignments: every operation on two values
 * becomes a local "double tN = a op b;" unless the same operation on the
 * same operands already has one (common subexpressions: the token count
 * B*T every slot's parameters start from is computed once per phase), and
 * an operation whose operands are all constants is done here, once, with
 * the same helper (modabi.h) or the same IEEE double operation the code
 * would run. Every operation is the one the generated code and the stack
 * machine perform, in the same order, on the same doubles, so the results
 * are bit-identical (test_fuse checks it on every shipped model);
 * constants that are not small integers are read from a table rather
 * than written as decimal literals, so no literal is ever re-rounded by
 * the compiler.
 *
 * The function checks what plan_eval checks (parameter ranges, whole
 * numbers, every value finite and not negative; a check repeated on the
 * same value is made once) and returns -1 on the first failure; plan_eval
 * then runs its interpretive path, which finds the same failure and words
 * the located error. The locals are all computed before the checks (they
 * have no side effects, and a failed check discards every result). A plan
 * whose formulas use something the fuser does not inline (a call to a
 * composite module's whole-module metric) is simply not fused.
 */
#include "runtime.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct Fused {
  Jit *jit;
  int (*fn)(const double *run, double *rows, double *state, double *args,
            const double *k);
  int (*kv)(const double *run, double *rows, double *state, double *args,
            const double *k); /* only the rows that depend on L or S */
  int (*kvs)(const double *run, double *rows, double *state, double *args,
             const double *k); /* the same and the state */
  double *k;                  /* the constants table */
  int nk;
};

/* A value in the generated code: a constant (folded) or a name (a local
 * tN or run[i]). */
typedef struct Atom {
  bool is_k;
  double v;
  int id; /* a local tN: N; run[i]: -(i + 1) */
  char s[24];
} Atom;

/* What the checks made so far prove about a value: it lies in [lo, hi]
 * (finite, not NaN), and is a whole number when whole. */
typedef struct Range {
  bool known, whole;
  double lo, hi;
} Range;

typedef struct Fuser {
  Buf defs;  /* the locals, in dependency order */
  Buf work;  /* checks and stores, in the plan's order */
  double *k; /* constants (shared by both functions) */
  int nk, capk;
  int tmp;      /* locals */
  HashMap cse;  /* "a op b" -> local number + 1 */
  HashMap done; /* checks already made unconditionally */
  bool cond;    /* inside a one-phase row's block */
  Range *rng;   /* per local, by number */
  int caprng;
  Range runrng[V_COUNT];
  bool runused[V_COUNT]; /* read: guarded */
  bool fail;
} Fuser;

/* A parameter binding: one atom per callee parameter. */
typedef struct Env {
  Atom *a;
  int n;
} Env;

static Atom kat(double v) {
  Atom a = {.is_k = true, .v = v};
  return a;
}

/* A constant as C text: a small whole number literally, else K[i] (the
 * table holds each bit pattern once). */
static void konst(Fuser *f, Buf *out, double v) {
  if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
      v == (double)(long long)v && !(v == 0 && signbit(v))) {
    buf_printf(out, "%lld.0", (long long)v);
    return;
  }
  for (int i = 0; i < f->nk; i++)
    if (memcmp(&f->k[i], &v, sizeof(v)) == 0) {
      buf_printf(out, "K[%d]", i);
      return;
    }
  if (f->nk == f->capk) {
    f->capk = f->capk ? 2 * f->capk : 16;
    f->k = xrealloc(f->k, sizeof(double) * (size_t)f->capk);
  }
  f->k[f->nk] = v;
  buf_printf(out, "K[%d]", f->nk++);
}

static void atom_c(Fuser *f, Buf *out, const Atom *a) {
  if (a->is_k)
    konst(f, out, a->v);
  else
    buf_puts(out, a->s);
}

/* The local holding the C expression e (made on first use). */
static Atom local(Fuser *f, const char *e) {
  Atom a = {0};
  intptr_t t = (intptr_t)hashmap_get(&f->cse, e);
  if (!t) {
    t = ++f->tmp;
    buf_printf(&f->defs, "  double t%ld = %s;\n", (long)t, e);
    hashmap_add(&f->cse, e, (void *)t);
    if (t >= f->caprng) {
      int n = f->caprng ? 2 * f->caprng : 256;
      f->rng = xrealloc(f->rng, sizeof(Range) * (size_t)n);
      memset(f->rng + f->caprng, 0, sizeof(Range) * (size_t)(n - f->caprng));
      f->caprng = n;
    }
  }
  a.id = (int)t;
  snprintf(a.s, sizeof(a.s), "t%ld", (long)t);
  return a;
}

/* ---- ranges: a check a value provably passes is not made ----
 *
 * Rounding to nearest is monotone, so an operation's result over operands
 * in [lo, hi] lies between its results at the ends (the corners, for * and
 * /); floor, ceil, min and max are monotone too. Sums, differences and
 * products of whole numbers are whole (every double of 2^52 or more is).
 * A range comes only from a check already made on the way (not one inside
 * a one-phase block), and a value that passed its check is in range from
 * there on; the locals computed before the checks do not matter, since a
 * failed check discards them. */
static Range atom_range(const Fuser *f, const Atom *a) {
  if (a->is_k)
    return (Range){isfinite(a->v), a->v == lm_floor(a->v), a->v, a->v};
  if (a->id > 0)
    return f->rng[a->id];
  if (a->id < 0)
    return f->runrng[-a->id - 1];
  return (Range){0};
}

static Range *atom_slot(Fuser *f, const Atom *a) {
  if (a->is_k || a->id == 0)
    return NULL;
  return a->id > 0 ? &f->rng[a->id] : &f->runrng[-a->id - 1];
}

/* The bound every run variable is checked against first (2^32: batch
 * sizes, lengths, widths and SRAM sizes are far below it). */
#define RUN_MAX 4294967296.0

/* Narrow what is known about a to r (both hold). */
static void narrow(Fuser *f, const Atom *a, Range r) {
  Range *s = atom_slot(f, a);
  if (!s || !r.known || !isfinite(r.lo) || !isfinite(r.hi) || r.lo > r.hi)
    return;
  if (s->known) {
    r.lo = r.lo > s->lo ? r.lo : s->lo;
    r.hi = r.hi < s->hi ? r.hi : s->hi;
    r.whole |= s->whole;
  }
  *s = r;
}

static void corners(double a, double b, double c, double d, Range *r) {
  double lo = a, hi = a;
  double x[3] = {b, c, d};
  for (int i = 0; i < 3; i++) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  r->lo = lo;
  r->hi = hi;
}

static Range op_range(char op, Range x, Range y) {
  bool unary = op == 'n' || op == 'c' || op == 'f';
  Range r = {0};
  if (!x.known || (!unary && !y.known))
    return r;
  r.known = true;
  switch (op) {
  case '+': r.lo = x.lo + y.lo; r.hi = x.hi + y.hi; r.whole = x.whole && y.whole; break;
  case '-': r.lo = x.lo - y.hi; r.hi = x.hi - y.lo; r.whole = x.whole && y.whole; break;
  case '*':
    corners(x.lo * y.lo, x.lo * y.hi, x.hi * y.lo, x.hi * y.hi, &r);
    r.whole = x.whole && y.whole;
    break;
  case '/':
    if (!(y.lo > 0 || y.hi < 0))
      return (Range){0};
    corners(x.lo / y.lo, x.lo / y.hi, x.hi / y.lo, x.hi / y.hi, &r);
    break;
  case 'm': r.lo = lm_min(x.lo, y.lo); r.hi = lm_min(x.hi, y.hi); r.whole = x.whole && y.whole; break;
  case 'M': r.lo = lm_max(x.lo, y.lo); r.hi = lm_max(x.hi, y.hi); r.whole = x.whole && y.whole; break;
  case 'n': r.lo = -x.hi; r.hi = -x.lo; r.whole = x.whole; break;
  case 'c': r.lo = lm_ceil(x.lo); r.hi = lm_ceil(x.hi); r.whole = true; break;
  case 'f': r.lo = lm_floor(x.lo); r.hi = lm_floor(x.hi); r.whole = true; break;
  default: /* floor division, power: not followed */
    return (Range){0};
  }
  if (!isfinite(r.lo) || !isfinite(r.hi))
    return (Range){0};
  return r;
}

/* One operation: op is a prog_op_kind character ('+' '-' '*' '/' '0'
 * floor division, 'p' power, 'm' min, 'M' max; unary 'n' 'c' 'f'). */
static Atom op_atom(Fuser *f, char op, Atom x, Atom y) {
  bool unary = op == 'n' || op == 'c' || op == 'f';
  if (x.is_k && (unary || y.is_k)) {
    double a = x.v, b = y.v, r;
    switch (op) {
    case '+': r = a + b; break;
    case '-': r = a - b; break;
    case '*': r = a * b; break;
    case '/': r = a / b; break;
    case '0': r = lm_floordiv(a, b); break;
    case 'p': r = lm_pow(a, b); break;
    case 'm': r = lm_min(a, b); break;
    case 'M': r = lm_max(a, b); break;
    case 'n': r = -a; break;
    case 'c': r = lm_ceil(a); break;
    default: r = lm_floor(a); break;
    }
    return kat(r);
  }
  Buf e, xa, ya;
  buf_init(&e);
  buf_init(&xa);
  buf_init(&ya);
  atom_c(f, &xa, &x);
  if (!unary)
    atom_c(f, &ya, &y);
  const char *xs = buf_str(&xa), *ys = buf_str(&ya);
  switch (op) {
  case '0': buf_printf(&e, "lm_floordiv(%s, %s)", xs, ys); break;
  case 'p': buf_printf(&e, "lm_pow(%s, %s)", xs, ys); break;
  case 'm': buf_printf(&e, "lm_min(%s, %s)", xs, ys); break;
  case 'M': buf_printf(&e, "lm_max(%s, %s)", xs, ys); break;
  case 'n': buf_printf(&e, "-%s", xs); break;
  case 'c': buf_printf(&e, "lm_ceil(%s)", xs); break;
  case 'f': buf_printf(&e, "lm_floor(%s)", xs); break;
  default: buf_printf(&e, "%s %c %s", xs, op, ys); break;
  }
  Atom r = local(f, buf_str(&e));
  narrow(f, &r, op_range(op, atom_range(f, &x), atom_range(f, &y)));
  buf_free(&e);
  buf_free(&xa);
  buf_free(&ya);
  return r;
}

/* A stack program over the atoms (same operations, same order). */
static Atom prog_atom(Fuser *f, const Prog *p) {
  Atom st[PROG_MAX_DEPTH + 1];
  int sp = 0;
  for (int i = 0; i < p->len && !f->fail; i++) {
    const Instr *in = &p->code[i];
    char op = prog_op_kind(in);
    switch (op) {
    case 'k':
      st[sp++] = kat(in->k);
      continue;
    case 'v': {
      Atom a = {.id = -(in->idx + 1)};
      snprintf(a.s, sizeof(a.s), "run[%d]", in->idx);
      if (in->idx >= V_COUNT)
        f->fail = true; /* config values are always folded */
      else
        f->runused[in->idx] = true;
      st[sp++] = a;
      continue;
    }
    case 'n':
    case 'c':
    case 'f':
      st[sp - 1] = op_atom(f, op, st[sp - 1], st[sp - 1]);
      continue;
    case 'm':
    case 'M': {
      int base = sp - in->n;
      Atom acc = st[base];
      for (int k = base + 1; k < sp; k++)
        acc = op_atom(f, op, acc, st[k]);
      sp = base;
      st[sp++] = acc;
      continue;
    }
    default: /* binary */
      st[sp - 2] = op_atom(f, op, st[sp - 2], st[sp - 1]);
      sp--;
      continue;
    }
  }
  if (sp != 1) {
    f->fail = true;
    return kat(0);
  }
  return st[0];
}

static Atom node_atom(Fuser *f, const Node *n, const Env *env, Metric m);

/* ${Class}(args) or ${Class.op}(args): the callee's formula over the
 * arguments' atoms. */
static Atom call_atom(Fuser *f, const Node *n, const Env *env, Metric m) {
  const ModuleDef *cm = n->callee;
  const Node *ast;
  if (n->callee_op)
    ast = n->callee_op->ast[m];
  else if (cm->nops > 0 && m < M_TRAFFIC) {
    f->fail = true; /* a composite's whole-module sum: not inlined */
    return kat(0);
  } else
    ast = cm->ast[m];
  Env sub = {xcalloc((size_t)n->nargs + 1, sizeof(Atom)), n->nargs};
  for (int i = 0; i < n->nargs; i++)
    sub.a[i] = node_atom(f, n->args[i], env, m);
  Atom r = ast ? node_atom(f, ast, &sub, m) : kat(0);
  free(sub.a);
  return r;
}

/* min/max of n->args[0..k], folded left as the generated code does. */
static Atom fold_atom(Fuser *f, const Node *n, int k, const Env *env,
                      Metric m) {
  if (k == 0)
    return node_atom(f, n->args[0], env, m);
  Atom acc = fold_atom(f, n, k - 1, env, m);
  Atom x = node_atom(f, n->args[k], env, m);
  return op_atom(f, n->kind == ND_MIN ? 'm' : 'M', acc, x);
}

static Atom node_atom(Fuser *f, const Node *n, const Env *env, Metric m) {
  if (f->fail)
    return kat(0);
  switch (n->kind) {
  case ND_NUM:
    return kat(n->val);
  case ND_PARAM:
    if (n->index < 0 || n->index >= env->n) {
      f->fail = true;
      return kat(0);
    }
    return env->a[n->index];
  case ND_NEG: {
    Atom x = node_atom(f, n->lhs, env, m);
    return op_atom(f, 'n', x, x);
  }
  case ND_ADD:
  case ND_SUB:
  case ND_MUL:
  case ND_DIV:
  case ND_FLOORDIV:
  case ND_POW: {
    static const char op[] = {[ND_ADD] = '+', [ND_SUB] = '-', [ND_MUL] = '*',
                              [ND_DIV] = '/', [ND_FLOORDIV] = '0',
                              [ND_POW] = 'p'};
    Atom x = node_atom(f, n->lhs, env, m);
    Atom y = node_atom(f, n->rhs, env, m);
    return op_atom(f, op[n->kind], x, y);
  }
  case ND_CEIL:
  case ND_FLOOR: {
    Atom x = node_atom(f, n->lhs, env, m);
    return op_atom(f, n->kind == ND_CEIL ? 'c' : 'f', x, x);
  }
  case ND_MIN:
  case ND_MAX:
    return fold_atom(f, n, n->nargs - 1, env, m);
  case ND_CALL:
    return call_atom(f, n, env, m);
  }
  f->fail = true;
  return kat(0);
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

/* "x is finite and not negative" (the bad() of plan.c), in [lo, hi] and
 * whole when range is set: on a constant decided here, else made once. */
static void check(Fuser *f, const Atom *x, bool range, double lo, double hi,
                  bool whole) {
  if (x->is_k) {
    double v = x->v;
    bool ok = v >= 0 && v <= 1.79e308 &&
              (!range || (v >= lo && v <= hi && (!whole || v == lm_floor(v))));
    if (!ok)
      buf_puts(&f->work, "  return -1;\n");
    return;
  }
  /* what passing it proves; nothing to do when already proven */
  Range need = {true, range && whole, range && lo > 0 ? lo : 0,
                range && hi < 1.79e308 ? hi : 1.79e308};
  Range have = atom_range(f, x);
  if (have.known && have.lo >= need.lo && have.hi <= need.hi &&
      (!need.whole || have.whole))
    return;
  if (!f->cond)
    narrow(f, x, need);
  /* the comparisons what is proven already (have) or the bounds compared
   * imply are left out; the test passes for the same x */
  double plo = have.known ? have.lo : -INFINITY,
         phi = have.known ? have.hi : INFINITY;
  Buf c;
  buf_init(&c);
  const char *sep = "";
  if (range && !(plo >= lo)) {
    buf_printf(&c, "%s >= ", x->s);
    konst(f, &c, lo);
    sep = " && ";
  }
  if (range && !(phi <= hi)) {
    buf_printf(&c, "%s%s <= ", sep, x->s);
    konst(f, &c, hi);
    sep = " && ";
  }
  if (!(plo >= 0) && !(range && lo >= 0)) {
    buf_printf(&c, "%s%s >= 0", sep, x->s);
    sep = " && ";
  }
  if (!(phi <= 1.79e308) && !(range && hi <= 1.79e308)) {
    buf_printf(&c, "%s%s <= 1.79e308", sep, x->s);
    sep = " && ";
  }
  /* whole: once 0 <= x < 2^63 holds (proven, or the comparisons before
   * it), x == floor(x) exactly when x equals its conversion to a whole
   * number, which truncates (one instruction, not a call) */
  double top = range && hi < phi ? hi : phi;
  if (range && whole && top < 9223372036854775808.0)
    buf_printf(&c, "%s%s == (double)(long long)%s", sep, x->s, x->s);
  else if (range && whole)
    buf_printf(&c, "%s%s == lm_floor(%s)", sep, x->s, x->s);
  if (!hashmap_get(&f->done, buf_str(&c))) {
    buf_printf(&f->work, "  if (!(%s)) return -1;\n", buf_str(&c));
    if (!f->cond)
      hashmap_add(&f->done, buf_str(&c), (void *)1);
  }
  buf_free(&c);
}

static void store(Fuser *f, const char *arr, int i, const Atom *x) {
  buf_printf(&f->work, "  %s[%d] = ", arr, i);
  atom_c(f, &f->work, x);
  buf_puts(&f->work, ";\n");
}

static bool has_state(const Slot *s) {
  for (int k = 0; k < M_COUNT - M_TRAFFIC; k++)
    if (s->state[k])
      return true;
  return false;
}

/* One function: the parameters of the slots marked in used (and, with the
 * state, of the slots with state metrics), the rows listed (all when rows
 * is NULL), the state when with_state. */
static void gen(Fuser *f, const Plan *p, const char *name, const bool *used,
                const int *rows, int nrows, bool with_state, Buf *src) {
  buf_reset(&f->defs);
  buf_reset(&f->work);
  hashmap_free(&f->cse);
  hashmap_free(&f->done);
  hashmap_init(&f->cse);
  hashmap_init(&f->done);
  f->tmp = 0;
  /* every run variable read is first checked to lie in [0, RUN_MAX]
   * (beyond it the interpretive path evaluates: same values, just not
   * fused): then most values are provably finite and not negative, and
   * their checks are not made */
  for (int i = 0; i < V_COUNT; i++)
    f->runrng[i] = (Range){true, false, 0, RUN_MAX};
  memset(f->runused, 0, sizeof(f->runused));
  if (f->rng)
    memset(f->rng, 0, sizeof(Range) * (size_t)f->caprng);
  Env *envs = xcalloc((size_t)p->nslots + 1, sizeof(Env));
  /* parameters: constants, or values computed and checked */
  for (int i = 0; i < p->nslots && !f->fail; i++) {
    const Slot *s = &p->slots[i];
    const ModuleDef *md = s->layer->mod->def;
    envs[i].n = s->nargs;
    envs[i].a = xcalloc((size_t)s->nargs + 1, sizeof(Atom));
    for (int k = 0; k < s->nargs; k++) {
      bool dyn = false;
      for (int d = 0; d < s->ndyn; d++)
        dyn |= s->dyn[d] == k;
      if (!dyn) {
        envs[i].a[k] = kat(s->init[k]);
        continue;
      }
      if (used && !used[i] && !(with_state && has_state(s)))
        continue; /* nothing this function computes reads it */
      Atom x = prog_atom(f, &s->layer->args[k]);
      envs[i].a[k] = x;
      check(f, &x, true, md->pmin[k], md->pmax[k], md->pint[k]);
      store(f, "A", s->argbase + k, &x);
    }
  }
  /* rows */
  int n = rows ? nrows : p->nrows;
  for (int j = 0; j < n && !f->fail; j++) {
    int r = rows ? rows[j] : j;
    const Row *row = &p->rows[r];
    const Slot *s = &p->slots[row->slot];
    /* a row of one phase only (MLA, Mamba) is 0 in the other */
    if (row->phase != AP_ANY) {
      buf_printf(&f->work, "  if ((run[%d] != 0) != %d) {\n", V_DECODE,
                 row->phase == AP_DECODE);
      for (int k = 0; k < M_TRAFFIC; k++)
        buf_printf(&f->work, "  R[%d] = 0.0;\n", r * M_TRAFFIC + k);
      buf_puts(&f->work, "  } else {\n");
      f->cond = true;
    }
    for (int k = 0; k < M_TRAFFIC && !f->fail; k++) {
      if (!row->fn[k]) {
        buf_printf(&f->work, "  R[%d] = 0.0;\n", r * M_TRAFFIC + k);
        continue;
      }
      const Node *ast = row_ast(row, s, k);
      if (!ast) {
        f->fail = true;
        break;
      }
      Atom x = node_atom(f, ast, &envs[row->slot], (Metric)k);
      check(f, &x, false, 0, 0, false);
      store(f, "R", r * M_TRAFFIC + k, &x);
    }
    if (row->phase != AP_ANY) {
      buf_puts(&f->work, "  }\n");
      f->cond = false;
    }
  }
  /* state: summed over slots in order, count x value */
  for (int k = 0; with_state && k < M_COUNT - M_TRAFFIC; k++)
    buf_printf(&f->work, "  double s%d = 0.0;\n", k);
  for (int i = 0; with_state && i < p->nslots && !f->fail; i++) {
    const Slot *s = &p->slots[i];
    for (int k = 0; k < M_COUNT - M_TRAFFIC && !f->fail; k++) {
      if (!s->state[k])
        continue;
      const Node *ast = s->layer->mod->def->ast[M_TRAFFIC + k];
      if (!ast || s->state[k] != s->layer->mod->fn[M_TRAFFIC + k]) {
        f->fail = true;
        break;
      }
      Atom x = node_atom(f, ast, &envs[i], (Metric)(M_TRAFFIC + k));
      check(f, &x, false, 0, 0, false);
      Atom cx = op_atom(f, '*', kat(s->layer->count), x);
      buf_printf(&f->work, "  s%d += ", k);
      atom_c(f, &f->work, &cx);
      buf_puts(&f->work, ";\n");
    }
  }
  for (int k = 0; with_state && k < M_COUNT - M_TRAFFIC; k++)
    buf_printf(&f->work, "  S[%d] = s%d;\n", k, k);
  buf_printf(src,
             "int %s(const double *run, double *R, double *S, double *A, "
             "const double *K) {\n",
             name);
  for (int i = 0; i < V_COUNT; i++)
    if (f->runused[i])
      buf_printf(src, "  if (!(run[%d] >= 0 && run[%d] <= %.1f)) return -1;\n",
                 i, i, RUN_MAX);
  buf_puts(src, buf_str(&f->defs));
  buf_puts(src, buf_str(&f->work));
  buf_puts(src, "  (void)K; (void)A; (void)run; (void)S; (void)R;\n"
                "  return 0;\n}\n");
  for (int i = 0; i < p->nslots; i++)
    free(envs[i].a);
  free(envs);
}

Fused *fused_build(const Plan *p) {
  Fuser f = {0};
  buf_init(&f.defs);
  buf_init(&f.work);
  hashmap_init(&f.cse);
  hashmap_init(&f.done);
  Buf src;
  buf_init(&src);
  /* the whole plan */
  gen(&f, p, "lm_fused", NULL, NULL, 0, true, &src);
  /* the rows that depend on the KV length, and their slots' parameters */
  int nkv = 0;
  int *kv = plan_kv_rows(p, &nkv);
  bool *used = xcalloc((size_t)p->nslots + 1, sizeof(bool));
  for (int i = 0; i < nkv; i++)
    used[p->rows[kv[i]].slot] = true;
  if (!f.fail)
    gen(&f, p, "lm_fused_kv", used, kv, nkv, false, &src);
  if (!f.fail)
    gen(&f, p, "lm_fused_kvs", used, kv, nkv, true, &src);
  free(used);
  free(kv);
  Fused *fu = NULL;
  if (!f.fail) {
    const char *path = "(fused plan)", *text = buf_str(&src);
    Error e;
    err_clear(&e);
    Jit *j = jit_compile(&path, &text, 1, &e);
    void *sym = j ? jit_symbol(j, "lm_fused") : NULL;
    void *ksym = j ? jit_symbol(j, "lm_fused_kv") : NULL;
    void *ssym = j ? jit_symbol(j, "lm_fused_kvs") : NULL;
    if (sym && ksym && ssym) {
      fu = xcalloc(1, sizeof(*fu));
      fu->jit = j;
      *(void **)&fu->fn = sym;
      *(void **)&fu->kv = ksym;
      *(void **)&fu->kvs = ssym;
      fu->k = f.k;
      fu->nk = f.nk;
      f.k = NULL;
    } else {
      jit_free(j);
    }
  }
  free(f.k);
  buf_free(&f.defs);
  buf_free(&f.work);
  hashmap_free(&f.cse);
  hashmap_free(&f.done);
  free(f.rng);
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

int fused_eval_kv_state(const Fused *fu, const double *run, Values *out) {
  memcpy(out->vars, run, sizeof(double) * V_COUNT);
  return fu->kvs(run, out->row[0], out->state, out->args, fu->k);
}

void fused_free(Fused *fu) {
  if (!fu)
    return;
  jit_free(fu->jit);
  free(fu->k);
  free(fu);
}
