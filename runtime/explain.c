/* explain.c: where a number comes from (--explain), and the model's
 * structure as the walk sees it (--tree).
 *
 * explain_find resolves an operation named by its path
 * (model.layers.self_attn.qk_matmul) or its leaf name (qk_matmul) to a
 * row of the plan; an unknown or ambiguous name is an error listing the
 * candidates. explain_row writes, for one row of one phase: what the
 * operation is and where its module's source is; each parameter's
 * template as the model file writes it, with the values substituted and
 * where every variable came from (a run variable and its option, or a
 * config key); each metric's formula from module_db.json, substituted and
 * evaluated (calls into other modules expanded the same way); the bytes
 * sum; the roofline terms (compute time, memory time, the larger wins,
 * intensity against the ridge point); the calibration; the row's share of
 * the phase. Every figure is computed again here from the formulas' parsed
 * trees (node_eval) and must equal what the JIT-compiled code gave; the
 * text says so if it ever does not.
 *
 * tree_render writes the layers indented as they nest: name, class, repeat
 * and instance count, each parameter's template and its value in prefill
 * and decode, and the atomic operations at the places they run.
 */
#include "calib.h"
#include "runtime.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

/* What each run variable is, for "where it came from". */
static const char *const run_var_desc[V_COUNT] = {
    [V_B] = "run variable: sequences in the batch (-B)",
    [V_S] = "run variable: tokens per sequence (-S)",
    [V_T] = "run variable: tokens per sequence in this step (S in prefill, "
            "1 in decode)",
    [V_L] = "run variable: KV length attended over (S)",
    [V_W_BYTES] = "run variable: bytes per weight element (--w-bits / 8)",
    [V_A_BYTES] = "run variable: bytes per activation element (--a-bits / 8)",
    [V_KV_BYTES] = "run variable: bytes per KV-cache element (--kv-bits / 8)",
    [V_SRAM_BYTES] = "run variable: the GPU's shared memory per SM "
                     "(hardware.json)",
    [V_E_BYTES] = "run variable: bytes per embedding / lm_head element "
                  "(--embed-bits / 8)",
};

/* A value as the explanation writes it: integers exactly, others with
 * the shortest round-trip decimal. */
static void num(Buf *b, double v) {
  char n[64];
  report_number(v, n, sizeof(n));
  buf_puts(b, n);
}

/* "34359738368 (34.4 G)": the exact value, and a readable one when large. */
static void num_si(Buf *b, double v, const char *unit) {
  num(b, v);
  if (fabs(v) >= 1000 && isfinite(v)) {
    char s[32];
    si_format(v, unit, s, sizeof(s));
    buf_printf(b, " (%s)", s);
  } else if (unit[0]) {
    buf_printf(b, " %s", unit);
  }
}

static void time_text(Buf *b, double s) {
  static const struct {
    double scale;
    const char *unit;
  } u[] = {{1e-9, "ns"}, {1e-6, "us"}, {1e-3, "ms"}, {1, "s"}};
  if (s == 0) {
    buf_puts(b, "0 s");
    return;
  }
  int k = 0;
  while (k < 3 && s >= u[k + 1].scale * 0.9995)
    k++;
  buf_printf(b, "%.4g %s", s / u[k].scale, u[k].unit);
}

/* The line in doc where the value at jp starts; 0 if not found. */
static int doc_line(const JsonDoc *doc, const JsonPath *jp) {
  if (!doc || !doc->text)
    return 0;
  long off = jloc_find(doc->text, doc->len, jp);
  if (off < 0)
    return 0;
  int line, col;
  text_linecol(doc->text, (size_t)off, &line, &col);
  return line;
}

static const char *doc_name(const JsonDoc *doc) {
  return doc && doc->file ? path_display(doc->file) : "(memory)";
}

/* Where a value sits in a JSON document: its first and last line. The
 * search runs inside the value at base (an offset of doc->text, whose
 * first line is base_line), so the many look-ups of one explanation scan
 * one database entry, not the whole file. */
typedef struct Span {
  long off, end;   /* the value's offsets in doc->text: [off, end); off -1:
                      not found */
  int first, last; /* lines, 1-based; 0 if not found */
} Span;

/* Newlines in t[0, n). */
static int newlines(const char *t, size_t n) {
  int k = 0;
  for (const char *p = t; (p = memchr(p, '\n', n - (size_t)(p - t))); p++)
    k++;
  return k;
}

static Span doc_span_in(const JsonDoc *doc, Span base, const JsonPath *jp) {
  Span s = {-1, -1, 0, 0};
  if (!doc || !doc->text || base.off < 0)
    return s;
  const char *t = doc->text + base.off;
  size_t len = (size_t)(base.end - base.off);
  long off = jloc_find(t, len, jp);
  long vend = off < 0 ? -1 : jloc_value_end(t, len, (size_t)off);
  if (vend <= off)
    return s;
  s.first = base.first + newlines(t, (size_t)off);
  s.last = s.first + newlines(t + off, (size_t)(vend - 1 - off));
  s.off = base.off + off;
  s.end = base.off + vend;
  return s;
}

/* The whole document as a span (the root of every search). */
static Span doc_root(const JsonDoc *doc) {
  Span s = {-1, -1, 0, 0};
  if (!doc || !doc->text)
    return s;
  s.off = 0;
  s.end = (long)doc->len;
  s.first = s.last = 1;
  return s;
}

static void span_text(Buf *b, Span s) {
  if (s.first == s.last)
    buf_printf(b, "line %d", s.first);
  else
    buf_printf(b, "lines %d-%d", s.first, s.last);
}

/* ---------------------------------------------------- generated code */

/* A generated module file, read once per explanation. */
typedef struct GenFile {
  char *path;  /* as shown */
  char *text;  /* NULL: not readable (why in err) */
  size_t len;
  Error err;
} GenFile;

static void genfile_open(GenFile *g, const RegModule *rm) {
  memset(g, 0, sizeof(*g));
  err_clear(&g->err);
  const ModuleDef *md = rm->def;
  if (!md->file_name || !rm->dir)
    return;
  char *full = path_join(rm->dir, md->file_name);
  g->path = xstrdup(path_display(full));
  g->text = fs_read(full, &g->len, &g->err);
  free(full);
}

static void genfile_close(GenFile *g) {
  free(g->path);
  free(g->text);
}

/* Lines of the definition of the generated function for metric k of md
 * (op: of that atomic op): from "double Sym(const double *args)" to its
 * closing brace. 0 when absent (a metric without formula has none). */
static int genfile_fn(const GenFile *g, const ModuleDef *md,
                      const AtomicOp *op, Metric k, int *last, char *sym,
                      size_t symsz) {
  emit_symbol(md, op, k, sym, symsz);
  if (!g->text)
    return 0;
  char head[300];
  snprintf(head, sizeof(head), "\ndouble %s(const double *args)\n{", sym);
  const char *at = strstr(g->text, head);
  if (!at)
    return 0;
  const char *end = strstr(at + 1, "\n}\n");
  if (!end)
    return 0;
  int first, col;
  text_linecol(g->text, (size_t)(at + 1 - g->text), &first, &col);
  text_linecol(g->text, (size_t)(end + 1 - g->text), last, &col);
  return first;
}

/* ------------------------------------------------------------ finding */

/* Levenshtein distance, capped (short names only). */
static int edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63)
    return 99;
  int d[64][64];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = c < del ? (c < ins ? c : ins) : (del < ins ? del : ins);
    }
  return d[n][m];
}

int explain_find(const Plan *p, const char *query, Error *err) {
  int found = -1, nfound = 0;
  for (int r = 0; r < p->nrows; r++)
    if (strcmp(p->rows[r].path, query) == 0)
      return r;
  for (int r = 0; r < p->nrows; r++)
    if (strcmp(p->rows[r].op, query) == 0) {
      found = r;
      nfound++;
    }
  if (nfound == 1)
    return found;
  Buf b;
  buf_init(&b);
  if (nfound > 1) {
    for (int r = 0; r < p->nrows; r++)
      if (strcmp(p->rows[r].op, query) == 0)
        buf_printf(&b, "\n  %s", p->rows[r].path);
    err_set(err, "operation '%s' is ambiguous; give its path, one of:%s", query,
            buf_str(&b));
    buf_free(&b);
    return -1;
  }
  /* near misses first: a name the query is part of, or a typo away */
  int near = 0;
  for (int r = 0; r < p->nrows; r++) {
    const Row *w = &p->rows[r];
    if (strstr(w->path, query) || edit_distance(w->op, query) <= 2) {
      buf_printf(&b, "\n  %s", w->path);
      near++;
    }
  }
  if (!near)
    for (int r = 0; r < p->nrows; r++)
      buf_printf(&b, "\n  %s", p->rows[r].path);
  err_set(err, "no operation '%s' in %s (%s attention); %s:%s", query,
          p->model->id, attn_name[p->attn],
          near ? "did you mean" : "the operations are", buf_str(&b));
  buf_free(&b);
  return -1;
}

/* ---------------------------------------------------- substitution */

/* Index of a {name} among names, or -1. */
static int name_index(const char *const *names, int n, const char *s,
                      size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
      return i;
  return -1;
}

/* Copy a formula or template with every {name} replaced by its value and
 * every ${full.Class[.op]} by its short form Class[.op]. */
static void substitute(Buf *b, const char *text, const char *const *names,
                       const double *values, int n) {
  for (const char *s = text; *s;) {
    if (s[0] == '$' && s[1] == '{') {
      const char *end = strchr(s, '}');
      if (!end)
        break;
      /* short form: the class (last component with a capital) onwards */
      const char *start = s + 2, *cls = start;
      for (const char *q = start; q < end; q++)
        if (*q == '.' && q + 1 < end && isupper((unsigned char)q[1]))
          cls = q + 1;
      buf_append(b, cls, (size_t)(end - cls));
      s = end + 1;
    } else if (s[0] == '{') {
      const char *end = strchr(s, '}');
      int i = end ? name_index(names, n, s + 1, (size_t)(end - s - 1)) : -1;
      if (i < 0) {
        buf_putc(b, *s++);
        continue;
      }
      num(b, values[i]);
      s = end + 1;
    } else {
      buf_putc(b, *s++);
    }
  }
}

/* Collect the variables a template uses (bit set over the model's
 * variables). */
static void used_vars(const char *text, const Model *m, bool *used) {
  for (const char *s = text; (s = strchr(s, '{'));) {
    if (s > text && s[-1] == '$') {
      s++;
      continue;
    }
    const char *end = strchr(s, '}');
    if (!end)
      return;
    int i = name_index(m->var_names, m->nvars, s + 1, (size_t)(end - s - 1));
    if (i >= 0)
      used[i] = true;
    s = end + 1;
  }
}

/* Where config key i of a model built from a config.json came from: the
 * config's line, the array it counts, or the template's default applied
 * because the key is absent. brief: the short form --tree's layer lines
 * use. */
static void cfg_origin(Buf *b, const Model *m, int i, bool brief) {
  const VarOrigin *o = &m->origin[i];
  if (o->choice) {
    buf_printf(b, brief ? "index of %s = '%s'"
                        : "the index of %s's value '%s' in the template's "
                          "values",
               o->choice, o->value);
  } else if (o->dflt) {
    if (o->line && o->by_null)
      buf_printf(b, brief ? "null, config line %d: the template's null"
                          : "null in the config (line %d): the template's "
                            "value for null",
                 o->line);
    else if (o->line)
      buf_printf(b, brief ? "null, config line %d: default"
                          : "null in the config (line %d): the template's "
                            "default",
                 o->line);
    else
      buf_puts(b, brief ? "absent: default"
                        : "absent from the config: the template's default");
    if (!brief) {
      buf_printf(b, " %s", o->dflt);
      if (o->dflt_line)
        buf_printf(b, " (%s line %d)", doc_name(&m->doc), o->dflt_line);
    }
  } else if (o->array) {
    buf_printf(b, "counted in %s", o->array);
    if (o->line && brief)
      buf_printf(b, ", config line %d", o->line);
    else if (o->line)
      buf_printf(b, " (%s line %d)", m->config_path, o->line);
  } else {
    if (brief)
      buf_printf(b, "config line %d", o->line);
    else
      buf_printf(b, "%s line %d", m->config_path, o->line);
  }
}

static void var_origin(Buf *b, const Model *m, int i) {
  if (i < V_COUNT) {
    buf_puts(b, run_var_desc[i] ? run_var_desc[i] : "run variable");
    return;
  }
  if (m->origin) {
    buf_printf(b, "config key '%s': ", m->var_names[i]);
    cfg_origin(b, m, i, false);
    return;
  }
  buf_printf(b, "config key '%s' of %s", m->var_names[i], doc_name(&m->doc));
  JsonPath jp;
  jp_init(&jp);
  jp_key(&jp, "config");
  jp_key(&jp, m->var_names[i]);
  int line = doc_line(&m->doc, &jp);
  if (line)
    buf_printf(b, " (line %d)", line);
}

/* One metric formula of a module (or atomic op), substituted and
 * evaluated, then each call it makes expanded the same way. */
static void explain_calls(Buf *b, const Node *n, const ModuleDef *md,
                          const double *args, Metric k, int depth);

/* where: a line said after the value (the formula's location), or NULL */
static void explain_formula(Buf *b, const char *formula, const Node *ast,
                            const ModuleDef *md, const double *args, Metric k,
                            int depth, int col, const char *where) {
  buf_printf(b, "%*s= ", col, "");
  substitute(b, formula, md->params, args, md->nparams);
  buf_printf(b, "\n%*s= ", col, "");
  num_si(b, node_eval(ast, args, k), metric_unit[k]);
  buf_putc(b, '\n');
  if (where)
    buf_printf(b, "%*s%s\n", col, "", where);
  explain_calls(b, ast, md, args, k, depth);
}

static void explain_calls(Buf *b, const Node *n, const ModuleDef *md,
                          const double *args, Metric k, int depth) {
  if (!n)
    return;
  if (n->kind == ND_CALL && depth < 4) {
    const ModuleDef *c = n->callee;
    double cargs[64];
    int na = n->nargs < 64 ? n->nargs : 64;
    for (int i = 0; i < na; i++)
      cargs[i] = node_eval(n->args[i], args, k);
    char indent[16];
    snprintf(indent, sizeof(indent), "%*s", 2 * (depth + 2), "");
    buf_printf(b, "%swhere %s%s%s.%s(", indent, c->short_name,
               n->callee_op ? "." : "", n->callee_op ? n->callee_op->name : "",
               metric_name[k]);
    for (int i = 0; i < na; i++) {
      buf_printf(b, "%s%s=", i ? ", " : "", c->params[i]);
      num(b, cargs[i]);
    }
    buf_puts(b, ")");
    const char *f = n->callee_op ? n->callee_op->formula[k] : c->formula[k];
    const Node *ast = n->callee_op ? n->callee_op->ast[k] : c->ast[k];
    if (f) {
      buf_printf(b, " = %s's formula\n%s  %s\n", c->full_name, indent, f);
      explain_formula(b, f, ast, c, cargs, k, depth + 1,
                      (int)strlen(indent) + 2, NULL);
    } else {
      buf_puts(b, " = ");
      num_si(b, module_eval(c, k, cargs), metric_unit[k]);
      buf_printf(b, " (%s)\n",
                 c->nops ? "the sum of its eager atomic "
                           "operations"
                         : "no formula: 0");
    }
    return;
  }
  explain_calls(b, n->lhs, md, args, k, depth);
  explain_calls(b, n->rhs, md, args, k, depth);
  for (int i = 0; i < n->nargs; i++)
    explain_calls(b, n->args[i], md, args, k, depth);
}

/* ------------------------------------------------------------ explain */

/* The atomic op a row is, or NULL when it is a module's own formulas (a
 * module with atomic ops has no row of its own: plan.c). */
static const AtomicOp *row_op(const Row *w, const ModuleDef *md) {
  for (int k = 0; k < md->nops; k++)
    if (strcmp(md->ops[k].name, w->op) == 0)
      return &md->ops[k];
  return NULL;
}

/* A kernel's cost per launch: its fitted launch, plus the engine's idle
 * gap between kernels when it has one ("(4.25 us + gap 0.9 us)"). */
static void launch_text(Buf *b, double launch, double gap) {
  if (gap > 0)
    buf_putc(b, '(');
  time_text(b, launch);
  if (gap > 0) {
    buf_puts(b, " + gap ");
    time_text(b, gap);
    buf_putc(b, ')');
  }
}

/* The calibrated time of row r: its kernel, the fitted constants, the
 * kernel's time and the row's share of it (calib_predict's steps, through
 * calib_kernel_cost). */
static void explain_calib(const Report *rep, const PhaseResult *ph, int r,
                          Buf *b) {
  const CalibPlan *cp = rep->cplan;
  const Calib *c = rep->calib;
  const Engine *e = rep->engine;
  const Gpu *g = rep->gpu;
  const Plan *p = ph->plan;
  int lead = cp->lead[r];
  KernelKind kind = cp->kind[lead];
  const KernelFit *f = &c->k[kind];
  const double *run =
      rep->run ? rep->run[strcmp(ph->name, "prefill") == 0 ? 0 : 1] : NULL;
  buf_printf(b, "\ncalibration: engine %s (%s), %s", e ? e->id : "-",
             e ? e->name : "-", c->path ? path_display(c->path) : "-");
  if (c->fallback)
    buf_printf(b, " (measured on %s, borrowed for %s: %s)", c->hw_id, g->id,
               c->note ? c->note : "");
  buf_putc(b, '\n');
  buf_printf(b, "  kernel '%s' (kind %s)", cp->kernel[r],
             kernel_kind_name[kind]);
  int n = 0;
  for (int q = lead; q >= 0; q = cp->next[q])
    n++;
  if (n > 1) {
    buf_puts(b, ", fusing");
    for (int q = lead; q >= 0; q = cp->next[q])
      buf_printf(b, " %s%s", p->rows[q].op, cp->next[q] >= 0 ? "," : "");
    buf_printf(b, " (%s)",
               cp->drop[lead] == FUSE_SHARED_INPUT ? "one input, read once"
               : cp->drop[lead] == FUSE_INTERMEDIATE
                   ? "a chain: the inner results never reach HBM"
                   : "a chain: inner results written, not read back");
  }
  if (cp->launches[r] != 1)
    buf_printf(b, ", %g launches", cp->launches[r]);
  if (cp->traffic[r] != 1)
    buf_printf(b, ", HBM traffic x %g", cp->traffic[r]);
  buf_putc(b, '\n');
  if (!run)
    return;
  KernelCost kc;
  calib_kernel_cost(cp, c, e, g, &rep->peaks, ph->vals, run, ph->time, lead,
                    &kc);
  buf_puts(b, "  the kernel's FLOPs = ");
  num_si(b, kc.flops, "");
  buf_puts(b, ", bytes = ");
  num_si(b, kc.bytes, "B");
  buf_printf(b, "%s\n",
             kind == KK_ATTENTION ? " (after causal tile skipping "
                                    "and L2 reuse)"
             : n > 1              ? " (after the fusion)"
                                  : "");
  if (cp->kvq[r] && cp->attn_arg[r] >= 0 &&
      engine_kv_per_query_head(e, p->rows[r].op, run[V_DECODE] != 0)) {
    const double *args = ph->vals->args + cp->attn_arg[r];
    double h = args[cp->attn_off[r][0]], hkv = args[cp->attn_off[r][1]];
    if (hkv > 0 && h > hkv) {
      buf_printf(b,
                 "  each of the %g query heads of a KV head reads its K and V "
                 "(engines/%s.json attention.kv_per_query_head)",
                 h / hkv, e->id);
      if (kc.copy_bytes > 0) {
        buf_puts(b, ", after copies that move ");
        num_si(b, kc.copy_bytes, "B");
        buf_printf(b, " in %g launches (element-wise constants)",
                   kc.launches - cp->launches[lead]);
      }
      buf_putc(b, '\n');
    }
  }
  buf_printf(b, "  fitted %s constants: launch ", kernel_kind_name[kind]);
  time_text(b, f->launch);
  if (kernel_kind_computes(kind))
    buf_printf(b, ", compute_eff %.4g, overlap %.4g", f->compute_eff,
               f->overlap);
  buf_printf(b, ", memory_eff %.4g (", f->memory_eff);
  if (f->rows)
    buf_printf(b, "%d measurements, median error %.1f%%)\n", f->rows,
               f->median_err * 100);
  else
    buf_printf(b, "no measurements: borrowed from %s)\n",
               f->from ? f->from : "a pooled fit");
  double gap = e ? e->launch_gap[run[V_DECODE] != 0] : 0;
  if (gap > 0)
    buf_printf(b,
               "  the engine's idle gap between dependent kernels in %s: %g "
               "us per launch (launch_gap)\n",
               ph->name, gap * 1e6);
  const char *per = gap > 0 ? "(launch + gap)" : "launch";
  double waves =
      kind == KK_GEMM ? calib_waves(kc.m, kc.n, kc.k, g->sm_count) : 1;
  double tm = kc.bytes / (g->bandwidth * f->memory_eff);
  if (kernel_kind_computes(kind)) {
    double tv = kind == KK_ATTENTION ? calib_attn_vector_time(kc.flops, kc.k, g)
                                     : 0;
    double tflops = tv > 0 ? kc.flops * 4 * kc.k / (4 * kc.k + 5) : kc.flops;
    double tc = kind == KK_ATTENTION
                    ? calib_attn_compute_time(kc.flops, kc.k,
                                              kc.peak * f->compute_eff, g)
                    : kc.flops / (kc.peak * f->compute_eff * waves);
    if (tv > 0) {
      buf_puts(b, "  softmax off the Tensor Cores: ");
      num(b, kc.flops / (4 * kc.k + 5));
      buf_printf(b,
                 " score elements (FLOPs / (4 x %g + 5)), each an exp on the "
                 "special-function units (",
                 kc.k);
      buf_printf(b, "%.4g /s) and 4 FP32 instructions (%.4g /s): ",
                 g->sfu_ops, g->fp32_flops / 2);
      time_text(b, tv);
      if (g->softmax_hidden > 0)
        buf_printf(b,
                   ", added to tc less %g x the smaller of it and the "
                   "matmuls' time (hardware.json attn_softmax_hidden: the "
                   "kernel overlaps the two); tc's FLOPs are the 4d of the "
                   "matmuls\n",
                   g->softmax_hidden);
      else
        buf_puts(b, ", added to tc; tc's FLOPs are the 4d of the matmuls\n");
    }
    if (kc.peak < roof_peak(&rep->peaks, ph->vals->row[lead],
                            ph->plan->rows[lead].xw, NULL))
      buf_printf(b,
                 "  peak: the engine's 8-bit speedup (%s) caps it at "
                 "%g x the 16-bit peak\n",
                 e && engine_gemm8_measured(e, g)
                     ? "measured on this GPU, gemm_8bit.by_gpu"
                     : "published",
                 e ? engine_gemm8(e, g) : 0);
    if (kind == KK_GEMM)
      buf_printf(b,
                 "  GEMM %g x %g x %g (m x n x k): waves = %.4g (the "
                 "fraction of the %g SMs busy)\n",
                 kc.m, kc.n, kc.k, waves, g->sm_count);
    buf_printf(b,
               "  kernel time = launches x %s + max(tc, tm) + overlap x "
               "min(tc, tm), tc = flops / (peak x compute_eff x waves), tm "
               "= bytes / (bandwidth x memory_eff)\n"
               "              = %g x ",
               per, cp->launches[lead]);
    launch_text(b, f->launch, gap);
    buf_puts(b, " + max(");
    num(b, tflops);
    buf_puts(b, " / (");
    num(b, kc.peak);
    buf_printf(b, " x %.4g x %.4g)%s, ", f->compute_eff, waves,
               tv > 0 ? " + softmax" : "");
    num(b, kc.bytes);
    buf_puts(b, " / (");
    num(b, g->bandwidth);
    buf_printf(b, " x %.4g)) + %.4g x min(...)\n              = %g x ",
               f->memory_eff, f->overlap, cp->launches[lead]);
    launch_text(b, f->launch, gap);
    buf_puts(b, " + max(");
    time_text(b, tc);
    buf_puts(b, ", ");
    time_text(b, tm);
    buf_printf(b, ") + %.4g x ", f->overlap);
    time_text(b, tc < tm ? tc : tm);
    buf_putc(b, '\n');
  } else {
    buf_printf(b,
               "  kernel time = launches x %s + bytes / (bandwidth x "
               "memory_eff)\n              = %g x ",
               per, cp->launches[lead]);
    launch_text(b, f->launch, gap);
    buf_puts(b, " + ");
    num(b, kc.bytes);
    buf_puts(b, " / (");
    num(b, g->bandwidth);
    buf_printf(b, " x %.4g)\n", f->memory_eff);
  }
  if (kc.copy_bytes > 0) {
    /* kv_per_query_head's copy kernels, element-wise constants */
    const KernelFit *cf = &c->k[KK_ELEMENTWISE];
    double nc = kc.launches - cp->launches[lead];
    buf_printf(b, "              + copies %g x ", nc);
    launch_text(b, cf->launch, gap);
    buf_puts(b, " + ");
    num(b, kc.copy_bytes);
    buf_puts(b, " / (");
    num(b, g->bandwidth);
    buf_printf(b, " x %.4g) = ", cf->memory_eff);
    time_text(b, nc * (cf->launch + gap) +
                     kc.copy_bytes / (g->bandwidth * cf->memory_eff));
    buf_putc(b, '\n');
  }
  buf_puts(b, "              = ");
  time_text(b, kc.time);
  buf_putc(b, '\n');
  if (n > 1) {
    buf_puts(b, "  this row's share, by roofline time: ");
    time_text(b, ph->time[r]);
    buf_puts(b, " of the kernel's ");
    time_text(b, kc.roof_sum);
    buf_putc(b, '\n');
  }
  double host = calib_host_time(cp, e, ph->vals);
  if (host > 0 && host >= ph->pred_total) {
    /* calib_predict scaled every row of this host-bound phase */
    buf_puts(b, "  host-bound: the host issues the phase's launches in ");
    time_text(b, host);
    buf_printf(b,
               " (%g us each, the engine's host figure), longer than its "
               "kernels take: every row waits in proportion\n",
               e->host_launch * 1e6);
  }
  buf_puts(b, "  predicted time = ");
  time_text(b, ph->pred[r]);
  if (ph->time[r] > 0)
    buf_printf(b, " (%.3g x the roofline bound)", ph->pred[r] / ph->time[r]);
  buf_putc(b, '\n');
}

/* The layers from the root down to target into chain; their number, 0
 * if target is not below ly. */
static int layer_chain(const Layer *ly, const Layer *target,
                       const Layer **chain, int depth) {
  if (depth > MODEL_MAX_DEPTH)
    return 0;
  chain[depth] = ly;
  if (ly == target)
    return depth + 1;
  for (int i = 0; i < ly->nitems; i++)
    if (ly->items[i].layer) {
      int n = layer_chain(ly->items[i].layer, target, chain, depth + 1);
      if (n)
        return n;
    }
  return 0;
}

void explain_row(const Report *rep, int phase, int r, Buf *b) {
  const PhaseResult *ph = &rep->phases[phase];
  const Plan *p = ph->plan;
  const Model *m = p->model;
  const Row *w = &p->rows[r];
  const Slot *sl = &p->slots[w->slot];
  const Layer *ly = sl->layer;
  const ModuleDef *md = ly->mod->def;
  const AtomicOp *op = row_op(w, md);
  const double *args = ph->vals->args + sl->argbase;
  const double *vars = ph->vals->vars;
  const double *v = ph->vals->row[r];

  buf_printf(b, "%s, %s: %g token%s per sequence, KV length %g, batch %g\n",
             w->path, ph->name, ph->tokens, ph->tokens == 1 ? "" : "s",
             ph->kv_len, rep->batch);
  if (op)
    buf_printf(
        b, "  atomic operation '%s' of %s%s%s%s\n", op->name, md->full_name,
        op->mode == AM_EAGER   ? " (eager attention only)"
        : op->mode == AM_FLASH ? " (flash attention only)"
                               : "",
        op->description ? ": " : "", op->description ? op->description : "");
  else
    buf_printf(b, "  %s module %s%s\n",
               md->kind == MK_BASIC ? "basic"
                                    : "composite (its own work "
                                      "between its sub-layers)",
               md->full_name, "");
  buf_printf(b, "  count: %g instance%s in the model", w->count,
             w->count == 1 ? "" : "s");
  if (w->count != 1) {
    const Layer *chain[MODEL_MAX_DEPTH + 2];
    int n = layer_chain(m->root, ly, chain, 0);
    buf_puts(b, " =");
    bool first = true;
    for (int i = 0; i < n; i++)
      if (chain[i]->repeat != 1) {
        buf_printf(b, "%s %g (%s: repeat %s)", first ? "" : " x",
                   chain[i]->repeat, chain[i]->path, chain[i]->repeat_text);
        first = false;
      }
  }
  buf_putc(b, '\n');
  /* where the module is written down: its database entry, the C the
   * generator made of it, the source it was read from */
  JsonPath dp;
  jp_init(&dp);
  jp_key(&dp, "modules");
  jp_key(&dp, md->full_name);
  Span entry = doc_span_in(md->doc, doc_root(md->doc), &dp);
  JsonPath rel; /* inside the entry */
  jp_init(&rel);
  if (op) {
    jp_key(&rel, "atomic_ops");
    jp_index(&rel, (int)(op - md->ops));
  }
  Span opspan = op ? doc_span_in(md->doc, entry, &rel) : entry;
  buf_printf(b, "  entry: %s", doc_name(md->doc));
  if (entry.first) {
    buf_putc(b, ' ');
    span_text(b, entry);
  }
  if (op && opspan.first) {
    buf_printf(b, ", atomic op '%s' ", op->name);
    span_text(b, opspan);
  }
  buf_printf(b, " (validation: %s)\n", md->status);
  GenFile gen;
  genfile_open(&gen, ly->mod);
  buf_puts(b, "  generated: ");
  if (gen.text)
    buf_printf(b, "%s (C functions %s_%s%s%s<metric>)\n", gen.path,
               md->class_name, op ? "op_" : "", op ? op->name : "",
               op ? "_" : "");
  else if (gen.path)
    buf_printf(b, "%s, not readable: %s\n", gen.path, gen.err.msg);
  else
    buf_puts(b, "no generated file recorded\n");
  buf_puts(b, "  reference source: ");
  if (md->source_file) {
    buf_puts(b, md->source_file);
    if (md->line_start)
      buf_printf(b, ", lines %d-%d", md->line_start,
                 md->line_end ? md->line_end : md->line_start);
    else
      buf_puts(b, " (lines not stored in the module database)");
    if (md->source_version)
      buf_printf(b, ", %s", md->source_version);
  } else {
    buf_puts(b, "not recorded in the module database");
  }
  buf_putc(b, '\n');

  /* parameters */
  int lline = doc_line(&m->doc, &ly->jp);
  buf_printf(b, "\nparameters of layer '%s' (%s",
             ly->path[0] ? ly->path : "(root)", doc_name(&m->doc));
  if (lline)
    buf_printf(b, " line %d", lline);
  buf_puts(b, "):\n");
  bool *used = xcalloc((size_t)m->nvars + 1, sizeof(bool));
  int wname = 0;
  for (int i = 0; i < md->nparams; i++)
    if ((int)strlen(md->params[i]) > wname)
      wname = (int)strlen(md->params[i]);
  for (int i = 0; i < md->nparams; i++) {
    const char *t = ly->arg_text[i];
    buf_printf(b, "  %-*s = %s", wname, md->params[i], t);
    Buf s;
    buf_init(&s);
    substitute(&s, t, m->var_names, vars, m->nvars);
    char val[64];
    report_number(args[i], val, sizeof(val));
    if (strcmp(buf_str(&s), t) != 0 && strcmp(buf_str(&s), val) != 0)
      buf_printf(b, " = %s", buf_str(&s));
    if (strcmp(t, val) != 0)
      buf_printf(b, " = %s", val);
    buf_free(&s);
    if (md->pdesc[i])
      buf_printf(b, "   (%s)", md->pdesc[i]);
    buf_putc(b, '\n');
    used_vars(t, m, used);
  }
  bool any = false;
  for (int i = 0; i < m->nvars; i++)
    if (used[i]) {
      if (!any)
        buf_puts(b, "where:\n");
      any = true;
      buf_printf(b, "  %s = ", m->var_names[i]);
      num(b, vars[i]);
      buf_puts(b, ": ");
      var_origin(b, m, i);
      buf_putc(b, '\n');
    }
  free(used);

  /* formulas */
  const char *const *formula = op ? op->formula : md->formula;
  Node *const *ast = op ? op->ast : md->ast;
  JsonPath fp;
  jp_init(&fp);
  jp_key(&fp, "formulas");
  Span fspan = doc_span_in(md->doc, opspan, &fp);
  buf_printf(b, "\nformulas (%s", doc_name(md->doc));
  if (fspan.first) {
    buf_putc(b, ' ');
    span_text(b, fspan);
  }
  buf_printf(b, ", %s%s%s), one instance:\n", md->short_name, op ? "." : "",
             op ? op->name : "");
  for (int k = 0; k < M_TRAFFIC; k++) {
    if (!formula[k]) {
      buf_printf(b, "  %s: no formula, 0\n", metric_name[k]);
      continue;
    }
    buf_printf(b, "  %s = %s\n", metric_name[k], formula[k]);
    /* where this formula is written, and the C made of it */
    JsonPath kp;
    jp_init(&kp);
    jp_key(&kp, metric_name[k]);
    Span ks = doc_span_in(md->doc, fspan, &kp);
    char sym[200];
    int glast = 0;
    int gfirst = genfile_fn(&gen, md, op, (Metric)k, &glast, sym, sizeof(sym));
    Buf where;
    buf_init(&where);
    buf_puts(&where, "(");
    if (ks.first)
      buf_printf(&where, "%s line %d; ", doc_name(md->doc), ks.first);
    if (gfirst)
      buf_printf(&where, "%s lines %d-%d, %s", gen.path, gfirst, glast, sym);
    else
      buf_printf(&where, "C function %s", sym);
    buf_puts(&where, ")");
    explain_formula(b, formula[k], ast[k], md, args, (Metric)k, 0,
                    (int)strlen(metric_name[k]) + 3, buf_str(&where));
    buf_free(&where);
    double again = node_eval(ast[k], args, (Metric)k);
    if (again != v[k]) {
      buf_puts(b, "  (the compiled module gave ");
      num(b, v[k]);
      buf_puts(b, ": generated_modules/ is out of date, run make generate)\n");
    }
  }
  genfile_close(&gen);
  double bytes = metric_bytes(v);
  buf_puts(b, "  bytes = weight + act read + act write + KV read + KV write\n"
              "        = ");
  for (int k = 0, first = 1; k < M_TRAFFIC; k++)
    if (metric_unit[k][0] == 'B') {
      buf_puts(b, first ? "" : " + ");
      num(b, v[k]);
      first = 0;
    }
  buf_puts(b, "\n        = ");
  num_si(b, bytes, "B");
  buf_putc(b, '\n');

  /* roofline */
  if (!rep->gpu || !ph->time)
    return;
  const char *pname;
  double peak = roof_peak(&rep->peaks, v, w->xw, &pname);
  double bw = rep->gpu->bandwidth;
  double tc = v[M_FLOPS] / peak, tm = bytes / bw;
  char ps[32], bs[32];
  si_format(peak, "FLOP/s", ps, sizeof(ps));
  si_format(bw, "B/s", bs, sizeof(bs));
  buf_printf(b, "\nroofline on %s (%s):\n", rep->gpu->id, rep->gpu->name);
  buf_printf(b, "  peak: %s %s dense (", pname, ps);
  if (strcmp(pname, "FP16/BF16") == 0)
    buf_puts(b, rep->peaks.p8 > 0 ? "an operand is wider than 8 bits"
                                  : "the GPU has no 8-bit peak");
  else
    buf_puts(b, "every operand it reads is 8 bits or narrower");
  buf_printf(b, "); bandwidth %s\n", bs);
  buf_puts(b, "  compute time = flops / peak = ");
  num(b, v[M_FLOPS]);
  buf_puts(b, " / ");
  num(b, peak);
  buf_puts(b, " = ");
  time_text(b, tc);
  buf_puts(b, "\n  memory time  = bytes / bandwidth = ");
  num(b, bytes);
  buf_puts(b, " / ");
  num(b, bw);
  buf_puts(b, " = ");
  time_text(b, tm);
  buf_puts(b, "\n  time = max(compute, memory) = ");
  time_text(b, ph->time[r]);
  buf_printf(b, ": %s bound\n",
             ph->bound[r] == BOUND_COMPUTE ? "compute" : "memory");
  buf_puts(b, "  arithmetic intensity = flops / bytes = ");
  if (bytes > 0) {
    buf_printf(b, "%.4g FLOP/B", v[M_FLOPS] / bytes);
  } else {
    buf_puts(b, "- (no bytes)");
  }
  buf_printf(b, "; ridge point = peak / bandwidth = %.4g FLOP/B\n", peak / bw);
  if (!ph->pred || !rep->cplan || !rep->calib)
    buf_puts(b, "  calibration: none (--roofline): the roofline time is "
                "the prediction\n");
  else
    explain_calib(rep, ph, r, b);
  const double *t = ph->pred ? ph->pred : ph->time;
  double total = ph->pred ? ph->pred_total : ph->total_time;
  double share = total > 0 ? w->count * t[r] / total * 100 : 0;
  buf_printf(b, "\nin the %s: count x %s = %g x ", ph->name,
             ph->pred ? "predicted time" : "time", w->count);
  time_text(b, t[r]);
  buf_puts(b, " = ");
  time_text(b, w->count * t[r]);
  buf_printf(b, ", %.3g%% of the phase's ", share);
  time_text(b, total);
  buf_putc(b, '\n');
}

/* ---------------------------------------------------------------- tree */

static void tree_params(Buf *b, const Layer *ly, const Model *m,
                        const Values *pre, const Values *dec, const char *pad) {
  const ModuleDef *md = ly->mod->def;
  for (int i = 0; i < md->nparams; i++) {
    double a = prog_eval(&ly->args[i], pre->vars);
    double d = prog_eval(&ly->args[i], dec->vars);
    char va[64], vd[64];
    report_number(a, va, sizeof(va));
    report_number(d, vd, sizeof(vd));
    buf_printf(b, "%s    %s = %s", pad, md->params[i], ly->arg_text[i]);
    if (strcmp(ly->arg_text[i], va) != 0 || a != d) {
      if (a == d)
        buf_printf(b, " = %s", va);
      else
        buf_printf(b, " = %s prefill, %s decode", va, vd);
    }
    buf_putc(b, '\n');
  }
  (void)m;
}

static void tree_layer(Buf *b, const Layer *ly, const Plan *p,
                       const Values *pre, const Values *dec, int depth) {
  const ModuleDef *md = ly->mod->def;
  char pad[2 * MODEL_MAX_DEPTH + 4];
  snprintf(pad, sizeof(pad), "%*s", 2 * depth, "");
  buf_printf(b, "%s%s  %s", pad, ly->name[0] ? ly->name : "(root)",
             md->full_name);
  if (ly->repeat != 1)
    buf_printf(b, "  x%g (repeat %s)", ly->repeat, ly->repeat_text);
  if (ly->count != 1)
    buf_printf(b, "  (%g in the model)", ly->count);
  buf_printf(b, "  [%s]\n", md->kind == MK_BASIC ? "basic" : "composite");
  const Model *m = p->model;
  if (m->origin) {
    /* a template filled from a config: where the layer is written and the
     * config keys its repeat and parameters read */
    buf_printf(b, "%s    from %s", pad, doc_name(&m->doc));
    int line = doc_line(&m->doc, &ly->jp);
    if (line)
      buf_printf(b, " line %d", line);
    bool *used = xcalloc((size_t)m->nvars + 1, sizeof(bool));
    for (int i = 0; i < md->nparams; i++)
      used_vars(ly->arg_text[i], m, used);
    if (ly->repeat_text)
      used_vars(ly->repeat_text, m, used);
    const char *sep = "; config keys: ";
    for (int i = V_COUNT; i < m->nvars; i++)
      if (used[i]) {
        buf_printf(b, "%s%s = ", sep, m->var_names[i]);
        num(b, m->var_values[i]);
        buf_puts(b, " (");
        cfg_origin(b, m, i, true);
        buf_putc(b, ')');
        sep = ", ";
      }
    free(used);
    buf_putc(b, '\n');
  }
  tree_params(b, ly, p->model, pre, dec, pad);
  bool *placed = xcalloc((size_t)md->nops + 1, sizeof(bool));
  for (int i = 0; i < ly->nitems; i++) {
    const Item *it = &ly->items[i];
    if (it->layer) {
      tree_layer(b, it->layer, p, pre, dec, depth + 1);
    } else {
      placed[it->op] = true;
      if (it->omit)
        continue;
      const AtomicOp *op = &md->ops[it->op];
      buf_printf(b, "%s  op %s%s\n", pad, op->name,
                 op->mode == AM_EAGER   ? "  (eager attention)"
                 : op->mode == AM_FLASH ? "  (flash attention)"
                                        : "");
    }
  }
  for (int k = 0; k < md->nops; k++)
    if (!placed[k])
      buf_printf(b, "%s  op %s%s  (after the sub-layers)\n", pad,
                 md->ops[k].name,
                 md->ops[k].mode == AM_EAGER   ? "  (eager attention)"
                 : md->ops[k].mode == AM_FLASH ? "  (flash attention)"
                                               : "");
  free(placed);
}

void tree_render(const Plan *p, const Values *pre, const Values *dec, Buf *b) {
  const Model *m = p->model;
  buf_printf(b, "%s  (%s)\n", m->id, doc_name(&m->doc));
  buf_puts(b, "Layers as the walk visits them: name, class, repeat, then "
              "each parameter's\ntemplate = its value (prefill, decode "
              "when they differ); 'op' lines are the\natomic operations at "
              "the places they run.\n");
  if (m->origin) {
    buf_printf(b,
               "template: %s (model_type %s), filled with the keys of %s "
               "it declares:\n",
               doc_name(&m->doc), m->family ? m->family : "-",
               m->config_path);
    int w = 0;
    for (int i = V_COUNT; i < m->nvars; i++) {
      char v[64];
      report_number(m->var_values[i], v, sizeof(v));
      int n = (int)(strlen(m->var_names[i]) + strlen(v));
      w = n > w ? n : w;
    }
    for (int i = V_COUNT; i < m->nvars; i++) {
      char v[64];
      report_number(m->var_values[i], v, sizeof(v));
      buf_printf(b, "  %s = %s%*s  ", m->var_names[i], v,
                 w - (int)(strlen(m->var_names[i]) + strlen(v)), "");
      cfg_origin(b, m, i, false);
      buf_putc(b, '\n');
    }
    buf_putc(b, '\n');
  } else {
    buf_puts(b, "config:");
    for (int i = V_COUNT; i < m->nvars; i++) {
      buf_printf(b, " %s=", m->var_names[i]);
      num(b, m->var_values[i]);
    }
    buf_puts(b, "\n\n");
  }
  tree_layer(b, m->root, p, pre, dec, 0);
}
