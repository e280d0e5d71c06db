/* emit.c: checked formula trees -> C source of one calculator module.
 *
 * Pure text generation: gen_expr() walks the AST (never the formula text)
 * and parenthesizes every binary node, so it never reasons about
 * precedence, and nothing from the database reaches the C source except
 * numbers it formats itself, identifiers in the generator's own namespace,
 * and formula text inside comments (which the tokenizer restricts to the
 * language's own characters). A parameter {x} is the local p_x; functions
 * are <Class>_<metric> and <Class>_op_<op>_<metric>. No database name is
 * ever a whole C token, so none can be a macro the preprocessor owns
 * (unix, linux, __LINE__, LM_ABI_VERSION, ...). Output is deterministic:
 * no timestamps, no paths beyond the database file name.
 */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

void emit_number(double v, char *out, size_t outsz) {
  if (v > -1e16 && v < 1e16 && v == (double)(long long)v) {
    snprintf(out, outsz, "%lld.0", (long long)v); /* integers read best */
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, outsz, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      break;
  }
  if (!strpbrk(out, ".eEni")) {
    size_t n = strlen(out);
    if (n + 3 <= outsz)
      memcpy(out + n, ".0", 3);
  }
}

/* The names are built by hand: the JIT resolves a model's 300 symbols
 * through here on every run, where snprintf cost 1,000 instructions a
 * name. */
void emit_symbol(const ModuleDef *md, const AtomicOp *op, Metric m, char *out,
                 size_t outsz) {
  const char *cls = md->class_name ? md->class_name : "?";
  size_t at = 0;
  if (!outsz)
    return;
  str_put(out, outsz, &at, cls);
  if (op) {
    str_put(out, outsz, &at, "_op_");
    str_put(out, outsz, &at, op->name);
  }
  str_put(out, outsz, &at, "_");
  str_put(out, outsz, &at, metric_name[m]);
  out[at] = '\0';
}

typedef struct Emitter {
  const ModuleDef *md;
  Buf *out;
  Error *err;
} Emitter;

static int gen_expr(Emitter *e, const Node *n, Metric m);

static int gen_args(Emitter *e, const Node *n, Metric m) {
  for (int i = 0; i < n->nargs; i++) {
    if (i)
      buf_puts(e->out, ", ");
    if (gen_expr(e, n->args[i], m) < 0)
      return -1;
  }
  return 0;
}

/* min/max of n args as a left fold: lm_min(lm_min(a, b), c) */
static int gen_fold(Emitter *e, const Node *n, int k, Metric m) {
  if (k == 0)
    return gen_expr(e, n->args[0], m);
  buf_puts(e->out, n->kind == ND_MIN ? "lm_min(" : "lm_max(");
  if (gen_fold(e, n, k - 1, m) < 0)
    return -1;
  buf_puts(e->out, ", ");
  if (gen_expr(e, n->args[k], m) < 0)
    return -1;
  buf_putc(e->out, ')');
  return 0;
}

static int gen_expr(Emitter *e, const Node *n, Metric m) {
  static const char *binop[] = {[ND_ADD] = " + ", [ND_SUB] = " - ",
                                [ND_MUL] = " * ", [ND_DIV] = " / "};
  char num[64];
  switch (n->kind) {
  case ND_NUM:
    emit_number(n->val, num, sizeof(num));
    buf_puts(e->out, num);
    return 0;
  case ND_PARAM:
    buf_printf(e->out, "%s%s", EMIT_PARAM_PREFIX, n->name);
    return 0;
  case ND_NEG:
    buf_puts(e->out, "(-");
    if (gen_expr(e, n->lhs, m) < 0)
      return -1;
    buf_putc(e->out, ')');
    return 0;
  case ND_ADD:
  case ND_SUB:
  case ND_MUL:
  case ND_DIV:
    buf_putc(e->out, '(');
    if (gen_expr(e, n->lhs, m) < 0)
      return -1;
    buf_puts(e->out, binop[n->kind]);
    if (gen_expr(e, n->rhs, m) < 0)
      return -1;
    buf_putc(e->out, ')');
    return 0;
  case ND_FLOORDIV:
  case ND_POW:
    buf_puts(e->out, n->kind == ND_POW ? "lm_pow(" : "lm_floordiv(");
    if (gen_expr(e, n->lhs, m) < 0)
      return -1;
    buf_puts(e->out, ", ");
    if (gen_expr(e, n->rhs, m) < 0)
      return -1;
    buf_putc(e->out, ')');
    return 0;
  case ND_CEIL:
  case ND_FLOOR:
    buf_puts(e->out, n->kind == ND_CEIL ? "lm_ceil(" : "lm_floor(");
    if (gen_expr(e, n->lhs, m) < 0)
      return -1;
    buf_putc(e->out, ')');
    return 0;
  case ND_MIN:
  case ND_MAX:
    return gen_fold(e, n, n->nargs - 1, m);
  case ND_CALL: {
    if (!n->callee || !n->callee->class_name) {
      err_set(e->err,
              "%s calls %s, which has no stored generated_class_name yet: "
              "generate it too",
              e->md->full_name, n->name);
      return -1;
    }
    char sym[256];
    emit_symbol(n->callee, n->callee_op, m, sym, sizeof(sym));
    buf_printf(e->out, "%s(", sym);
    if (n->nargs == 0) {
      buf_puts(e->out, "(const double *)0)");
      return 0;
    }
    buf_puts(e->out, "(const double[]){");
    if (gen_args(e, n, m) < 0)
      return -1;
    buf_puts(e->out, "})");
    return 0;
  }
  }
  return -1;
}

static void mark_params(const Node *n, bool *used) {
  if (!n)
    return;
  if (n->kind == ND_PARAM)
    used[n->index] = true;
  mark_params(n->lhs, used);
  mark_params(n->rhs, used);
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int i = 0; i < n->nargs; i++)
      mark_params(n->args[i], used);
}

/* Formula text for a comment: "*" "/" can never occur in a valid formula,
 * but keep the comment closed whatever happens. */
static void comment_text(Buf *out, const char *s) {
  for (; *s; s++) {
    buf_putc(out, *s);
    if (s[0] == '*' && s[1] == '/')
      buf_putc(out, ' ');
  }
}

static bool has_phases(const ModuleDef *md) {
  for (int k = 0; k < md->nops; k++)
    if (md->ops[k].phase != AP_ANY)
      return true;
  return false;
}

static int emit_function(Emitter *e, const AtomicOp *op, Metric m) {
  const ModuleDef *md = e->md;
  const char *text = op ? op->formula[m] : md->formula[m];
  const Node *ast = op ? op->ast[m] : md->ast[m];
  char sym[256];
  emit_symbol(md, op, m, sym, sizeof(sym));
  Buf *out = e->out;

  if (!op && md->nops > 0 && m < M_TRAFFIC) {
    buf_printf(out,
               "/* %s: sum of the atomic operations that run with eager "
               "attention%s */\n",
               metric_name[m], has_phases(md) ? " in prefill" : "");
    buf_printf(out, "double %s(const double *args)\n{\n", sym);
    int terms = 0;
    Buf expr;
    buf_init(&expr);
    for (int k = 0; k < md->nops; k++) {
      if (md->ops[k].mode == AM_FLASH || md->ops[k].phase == AP_DECODE ||
          !md->ops[k].ast[m])
        continue;
      char opsym[256];
      emit_symbol(md, &md->ops[k], m, opsym, sizeof(opsym));
      if (terms++ == 0)
        buf_printf(&expr, "%s(args)", opsym);
      else {
        char *prev = buf_steal(&expr);
        buf_printf(&expr, "(%s + %s(args))", prev, opsym);
        free(prev);
      }
    }
    if (terms == 0)
      buf_puts(out, "  (void)args;\n  return 0.0;\n}\n\n");
    else
      buf_printf(out, "  return %s;\n}\n\n", buf_str(&expr));
    buf_free(&expr);
    return 0;
  }

  if (!ast) {
    buf_printf(out, "/* %s: not given, 0 */\n", metric_name[m]);
    buf_printf(out, "double %s(const double *args)\n{\n", sym);
    buf_puts(out, "  (void)args;\n  return 0.0;\n}\n\n");
    return 0;
  }
  buf_printf(out, "/* %s = ", metric_name[m]);
  comment_text(out, text);
  buf_puts(out, " */\n");
  buf_printf(out, "double %s(const double *args)\n{\n", sym);
  bool used[64] = {0};
  mark_params(ast, used);
  bool any = false;
  for (int i = 0; i < md->nparams; i++)
    if (used[i]) {
      buf_printf(out, "  double %s%s = args[%d];\n", EMIT_PARAM_PREFIX,
                 md->params[i], i);
      any = true;
    }
  if (!any)
    buf_puts(out, "  (void)args;\n");
  buf_puts(out, "  return ");
  if (gen_expr(e, ast, m) < 0)
    return -1;
  buf_puts(out, ";\n}\n\n");
  return 0;
}

static void collect_callees(const Node *n, Metric m, HashMap *seen) {
  if (!n)
    return;
  if (n->kind == ND_CALL && n->callee && n->callee->class_name) {
    char sym[256];
    emit_symbol(n->callee, n->callee_op, m, sym, sizeof(sym));
    hashmap_add(seen, sym, (void *)n->callee);
  }
  collect_callees(n->lhs, m, seen);
  collect_callees(n->rhs, m, seen);
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int i = 0; i < n->nargs; i++)
      collect_callees(n->args[i], m, seen);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A parameter's local (p_<name>) named like a symbol this file uses would
 * shadow it. */
static int check_shadowing(const ModuleDef *md, HashMap *symbols, Error *err) {
  for (int i = 0; i < md->nparams; i++) {
    char local[256];
    snprintf(local, sizeof(local), "%s%s", EMIT_PARAM_PREFIX, md->params[i]);
    if (hashmap_get(symbols, local)) {
      err_set(err,
              "%s: parameter '%s' becomes the local %s, the name of a "
              "generated function",
              md->full_name, md->params[i], local);
      return -1;
    }
  }
  return 0;
}

void emit_header_hex(const char *text, const char *field, char *out) {
  out[0] = '\0';
  const char *end = strstr(text, "*/\n");
  char key[64];
  snprintf(key, sizeof(key), " * %s: ", field);
  const char *p = strstr(text, key);
  if (!p || !end || p > end)
    return;
  p += strlen(key);
  p += strspn(p, " ");
  if (strspn(p, "0123456789abcdef") == 16) {
    memcpy(out, p, 16);
    out[16] = '\0';
  }
}

int emit_checksum(const char *text, char *header, char *actual) {
  header[0] = actual[0] = '\0';
  const char *end = strstr(text, "*/\n");
  if (!end)
    return -1;
  emit_header_hex(text, "checksum", header);
  const char *body = end + 3;
  snprintf(actual, 17, "%016llx",
           (unsigned long long)fnv1a64(body, strlen(body)));
  return 0;
}

char *emit_module(const ModuleDef *md, const char *db_name, Error *err) {
  if (!md->file_name || !md->class_name) {
    err_set(err, "%s has no stored generated_file_name/generated_class_name",
            md->full_name);
    return NULL;
  }
  Buf out;
  buf_init(&out);
  char fp[17];
  db_fingerprint_hex(md, fp);

  buf_printf(&out, "/* %s: %s from %s. Do not edit: run `make generate`.\n",
             md->file_name, EMIT_MARKER, db_name);
  buf_puts(&out, " *\n");
  buf_printf(&out, " * entry:       %s\n", md->full_name);
  buf_printf(&out, " * class:       %s\n", md->class_name);
  buf_printf(&out, " * fingerprint: %s\n", fp);
  buf_puts(&out, " * parameters: ");
  if (md->nparams == 0)
    buf_puts(&out, " none");
  for (int i = 0; i < md->nparams; i++)
    buf_printf(&out, " args[%d] %s%s", i, md->params[i],
               i + 1 < md->nparams ? "," : "");
  buf_putc(&out, '\n');
  if (md->nops) {
    buf_puts(&out, " * atomic ops: ");
    for (int k = 0; k < md->nops; k++)
      buf_printf(&out, "%s%s%s%s", k ? ", " : "", md->ops[k].name,
                 md->ops[k].mode == AM_EAGER   ? " (eager)"
                 : md->ops[k].mode == AM_FLASH ? " (flash)"
                                               : "",
                 md->ops[k].phase == AP_PREFILL  ? " (prefill)"
                 : md->ops[k].phase == AP_DECODE ? " (decode)"
                                                 : "");
    buf_putc(&out, '\n');
  }
  Buf hdr = out; /* the header so far; the body is built apart */
  buf_init(&out);
  buf_puts(&out, "#ifndef LM_MODABI_H /* the JIT provides it as a prelude */\n"
                 "#include \"modabi.h\"\n#endif\n\n");

  /* prototypes: this file's functions, then the modules it calls */
  HashMap own, calls;
  hashmap_init(&own);
  hashmap_init(&calls);
  char sym[256];
  for (int m = 0; m < M_COUNT; m++) {
    emit_symbol(md, NULL, m, sym, sizeof(sym));
    hashmap_add(&own, sym, (void *)md);
    buf_printf(&out, "double %s(const double *args);\n", sym);
    collect_callees(md->ast[m], m, &calls);
  }
  for (int k = 0; k < md->nops; k++)
    for (int m = 0; m < M_TRAFFIC; m++) {
      emit_symbol(md, &md->ops[k], m, sym, sizeof(sym));
      hashmap_add(&own, sym, (void *)md);
      buf_printf(&out, "double %s(const double *args);\n", sym);
      collect_callees(md->ops[k].ast[m], m, &calls);
    }
  if (calls.used) {
    const char **names = xcalloc(calls.used, sizeof(char *));
    size_t it = 0, n = 0;
    const char *key;
    while (hashmap_next(&calls, &it, &key, NULL))
      names[n++] = key;
    qsort(names, n, sizeof(char *), cmp_str);
    buf_puts(&out, "\n/* called modules */\n");
    for (size_t i = 0; i < n; i++)
      if (!hashmap_get(&own, names[i]))
        buf_printf(&out, "double %s(const double *args);\n", names[i]);
    free(names);
  }
  buf_putc(&out, '\n');

  int rc = check_shadowing(md, &own, err);
  if (rc == 0)
    rc = check_shadowing(md, &calls, err);
  hashmap_free(&own);
  hashmap_free(&calls);

  Emitter e = {.md = md, .out = &out, .err = err};
  for (int m = 0; m < M_COUNT && rc == 0; m++)
    rc = emit_function(&e, NULL, m);
  for (int k = 0; k < md->nops && rc == 0; k++) {
    buf_printf(&out, "/* ---- atomic operation %s ---- */\n\n",
               md->ops[k].name);
    for (int m = 0; m < M_TRAFFIC && rc == 0; m++)
      rc = emit_function(&e, &md->ops[k], m);
  }
  if (rc < 0) {
    buf_free(&out);
    buf_free(&hdr);
    return NULL;
  }
  /* no trailing blank line */
  while (out.len >= 2 && out.data[out.len - 1] == '\n' &&
         out.data[out.len - 2] == '\n')
    out.data[--out.len] = '\0';
  /* the checksum covers everything after the header comment */
  buf_printf(&hdr, " * checksum:    %016llx (of the code below: hand edits are refused)\n",
             (unsigned long long)fnv1a64(buf_str(&out), out.len));
  buf_puts(&hdr, " */\n");
  buf_append(&hdr, buf_str(&out), out.len);
  buf_free(&out);
  return buf_steal(&hdr);
}
