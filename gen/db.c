/* db.c: module_db.json <-> Db.
 *
 * db_load reads the file, rejects duplicate keys, validates it against the
 * embedded module_db_schema.json, builds one ModuleDef per entry (strings
 * copied into the Db's arena), parses and checks every formula, rejects
 * call cycles, validates stored names, and computes fingerprints. Any
 * failure returns NULL with an Error that points into the file.
 *
 * The Jansson tree is kept (db->root) so that writes (stored names, agent
 * answers) change only what they mean to: Jansson keeps key order, and the
 * committed file is in db_dump's canonical form.
 */
#include "gen.h"
#include "modabi.h"

#include <math.h>
#include <string.h>

/* Short-name index: every entry sharing a short name. */
typedef struct ShortList {
  ModuleDef **v;
  int n;
} ShortList;

/* One formula's origin, kept for cycle errors. */
typedef struct FormulaRef {
  ModuleDef *owner;
  Node **slot; /* where the parsed tree goes: md->ast[m] or op->ast[m] */
  Metric metric;
  Node *ast;
  FormulaSrc src;
  JsonPath path;
} FormulaRef;

typedef struct Loader {
  Db *db;
  Error *err;
  FormulaRef *refs;
  int nrefs, caprefs;
} Loader;

static void db_path(JsonPath *p, const char *entry) {
  jp_init(p);
  jp_key(p, "modules");
  jp_key(p, entry);
}

static int entry_error(Loader *L, const JsonPath *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int entry_error(Loader *L, const JsonPath *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(L->err, &L->db->doc, p, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *const reserved_params[] = {"args"};

static int load_params(Loader *L, ModuleDef *md, json_t *arr) {
  Db *db = L->db;
  md->nparams = (int)json_array_size(arr);
  size_t np = (size_t)(md->nparams + 1);
  md->params = arena_alloc(&db->arena, sizeof(char *) * np);
  md->pmin = arena_alloc(&db->arena, sizeof(double) * np);
  md->pmax = arena_alloc(&db->arena, sizeof(double) * np);
  md->pint = arena_alloc(&db->arena, sizeof(bool) * np);
  md->pdesc = arena_alloc(&db->arena, sizeof(char *) * np);
  for (int i = 0; i < md->nparams; i++) {
    json_t *pj = json_array_get(arr, (size_t)i);
    json_t *mn = json_object_get(pj, "min"), *mx = json_object_get(pj, "max");
    md->pmin[i] = mn ? json_number_value(mn) : -INFINITY;
    md->pmax[i] = mx ? json_number_value(mx) : INFINITY;
    md->pint[i] = json_is_true(json_object_get(pj, "integer"));
    const char *name = json_string_value(json_object_get(pj, "name"));
    JsonPath p;
    db_path(&p, md->full_name);
    jp_key(&p, "parameters");
    jp_index(&p, i);
    jp_key(&p, "name");
    bool reserved = naming_is_c_keyword(name) || strncmp(name, "lm_", 3) == 0;
    for (size_t k = 0; k < LM_ARRAY_LEN(reserved_params); k++)
      reserved = reserved || strcmp(name, reserved_params[k]) == 0;
    if (reserved)
      return entry_error(L, &p,
                         "parameter name '%s' is reserved (C keywords, "
                         "'args' and the lm_ prefix)",
                         name);
    for (int j = 0; j < i; j++)
      if (strcmp(md->params[j], name) == 0)
        return entry_error(L, &p, "parameter '%s' is declared twice", name);
    if (md->pmin[i] > md->pmax[i]) {
      jp_pop(&p);
      jp_key(&p, "max");
      return entry_error(L, &p, "parameter '%s': max is below min", name);
    }
    md->params[i] = arena_strdup(&db->arena, name);
    const char *desc = json_string_value(json_object_get(pj, "description"));
    md->pdesc[i] = desc ? arena_strdup(&db->arena, desc) : NULL;
  }
  return 0;
}

/* Record a formula string for later parsing. */
static void add_ref(Loader *L, ModuleDef *md, const char *text,
                    const JsonPath *p, Node **slot, Metric metric) {
  if (L->nrefs == L->caprefs) {
    L->caprefs = L->caprefs ? L->caprefs * 2 : 64;
    L->refs = xrealloc(L->refs, sizeof(FormulaRef) * (size_t)L->caprefs);
  }
  FormulaRef *r = &L->refs[L->nrefs++];
  memset(r, 0, sizeof(*r));
  r->owner = md;
  r->slot = slot;
  r->metric = metric;
  r->path = *p;
  r->src.text = text;
  r->src.doc = &L->db->doc;
}

static int load_formulas(Loader *L, ModuleDef *md, json_t *obj,
                         const char **texts, Node **asts,
                         const JsonPath *base) {
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    int m = metric_lookup(key); /* the schema admits only metric names */
    texts[m] = arena_strdup(&L->db->arena, json_string_value(val));
    JsonPath p = *base;
    jp_key(&p, key);
    add_ref(L, md, texts[m], &p, &asts[m], (Metric)m);
  }
  return 0;
}

static int load_ops(Loader *L, ModuleDef *md, json_t *arr) {
  Db *db = L->db;
  md->nops = (int)json_array_size(arr);
  md->ops = arena_alloc(&db->arena, sizeof(AtomicOp) * (size_t)(md->nops ? md->nops : 1));
  for (int i = 0; i < md->nops; i++) {
    json_t *o = json_array_get(arr, (size_t)i);
    AtomicOp *op = &md->ops[i];
    op->name = arena_strdup(&db->arena, json_string_value(json_object_get(o, "name")));
    const char *desc = json_string_value(json_object_get(o, "description"));
    op->description = desc ? arena_strdup(&db->arena, desc) : NULL;
    const char *mode = json_string_value(json_object_get(o, "attention"));
    op->mode = !mode ? AM_ANY : strcmp(mode, "eager") == 0 ? AM_EAGER : AM_FLASH;
    const char *ph = json_string_value(json_object_get(o, "phase"));
    op->phase = !ph ? AP_ANY : strcmp(ph, "prefill") == 0 ? AP_PREFILL : AP_DECODE;
    JsonPath p;
    db_path(&p, md->full_name);
    jp_key(&p, "atomic_ops");
    jp_index(&p, i);
    for (int j = 0; j < i; j++)
      if (strcmp(md->ops[j].name, op->name) == 0) {
        jp_key(&p, "name");
        return entry_error(L, &p, "atomic operation '%s' is listed twice",
                           op->name);
      }
    jp_key(&p, "formulas");
    load_formulas(L, md, json_object_get(o, "formulas"), op->formula, op->ast,
                  &p);
  }
  return 0;
}

static int load_entry(Loader *L, const char *key, json_t *e, int index) {
  Db *db = L->db;
  ModuleDef *md = arena_alloc(&db->arena, sizeof(ModuleDef));
  md->index = index;
  md->full_name = arena_strdup(&db->arena, key);
  md->short_name =
      arena_strdup(&db->arena, json_string_value(json_object_get(e, "short_name")));
  md->kind = strcmp(json_string_value(json_object_get(e, "kind")), "basic") == 0
                 ? MK_BASIC
                 : MK_COMPOSITE;
  md->doc = &db->doc;
  md->status = arena_strdup(
      &db->arena,
      json_string_value(json_object_get(json_object_get(e, "validation"), "status")));
  json_t *src = json_object_get(e, "source");
  const char *sf = json_string_value(json_object_get(src, "file"));
  const char *sv = json_string_value(json_object_get(src, "version"));
  md->source_file = sf ? arena_strdup(&db->arena, sf) : NULL;
  md->source_version = sv ? arena_strdup(&db->arena, sv) : NULL;
  md->line_start = (int)json_integer_value(json_object_get(src, "line_start"));
  md->line_end = (int)json_integer_value(json_object_get(src, "line_end"));
  db->mods[index] = md;

  JsonPath p;
  db_path(&p, key);
  const char *last = strrchr(key, '.') + 1;
  if (strcmp(last, md->short_name) != 0) {
    jp_key(&p, "short_name");
    return entry_error(L, &p, "short_name '%s' must be the class name '%s'",
                       md->short_name, last);
  }
  if (load_params(L, md, json_object_get(e, "parameters")) < 0)
    return -1;

  JsonPath fp = p;
  jp_key(&fp, "formulas");
  load_formulas(L, md, json_object_get(e, "formulas"), md->formula, md->ast,
                &fp);

  json_t *ops = json_object_get(e, "atomic_ops");
  if (ops) {
    JsonPath op = p;
    jp_key(&op, "atomic_ops");
    if (md->kind == MK_BASIC)
      return entry_error(L, &op,
                         "a basic module has no atomic operations; make it "
                         "composite or move the formulas to 'formulas'");
    for (int m = 0; m < M_TRAFFIC; m++)
      if (md->formula[m]) {
        jp_key(&fp, metric_name[m]);
        return entry_error(L, &fp,
                           "entry has atomic_ops, so its traffic is theirs: "
                           "move '%s' into an atomic operation",
                           metric_name[m]);
      }
    if (load_ops(L, md, ops) < 0)
      return -1;
  }

  const char *fname = json_string_value(json_object_get(e, "generated_file_name"));
  const char *cname = json_string_value(json_object_get(e, "generated_class_name"));
  const char *why;
  if (fname) {
    if (!naming_valid_file(fname, &why)) {
      jp_key(&p, "generated_file_name");
      return entry_error(L, &p, "generated_file_name '%s' %s", fname, why);
    }
    md->file_name = arena_strdup(&db->arena, fname);
  }
  if (cname) {
    if (!naming_valid_class(cname, &why)) {
      jp_key(&p, "generated_class_name");
      return entry_error(L, &p, "generated_class_name '%s' %s", cname, why);
    }
    md->class_name = arena_strdup(&db->arena, cname);
  }

  if (db_register(db, md) < 0)
    return entry_error(L, &p, "duplicate entry '%s'", key);
  return 0;
}

int db_register(Db *db, ModuleDef *md) {
  if (hashmap_add(&db->by_full, md->full_name, md) < 0)
    return -1;
  ShortList *sl = hashmap_get(&db->by_short, md->short_name);
  if (!sl) {
    sl = arena_alloc(&db->arena, sizeof(ShortList));
    hashmap_add(&db->by_short, md->short_name, sl);
  }
  ModuleDef **v = arena_alloc(&db->arena, sizeof(ModuleDef *) * (size_t)(sl->n + 1));
  if (sl->n)
    memcpy(v, sl->v, sizeof(ModuleDef *) * (size_t)sl->n);
  v[sl->n++] = md;
  sl->v = v;
  return 0;
}

/* Stored names: unique file names, unique class names, and no clash among
 * the C symbols they produce. */
static int check_names(Loader *L) {
  Db *db = L->db;
  HashMap files, classes, symbols;
  hashmap_init(&files);
  hashmap_init(&classes);
  hashmap_init(&symbols);
  int rc = 0;
  for (int i = 0; i < db->nmods && rc == 0; i++) {
    ModuleDef *md = db->mods[i];
    JsonPath p;
    db_path(&p, md->full_name);
    if (md->file_name && hashmap_add(&files, md->file_name, md) < 0) {
      ModuleDef *other = hashmap_get(&files, md->file_name);
      jp_key(&p, "generated_file_name");
      rc = entry_error(L, &p, "generated_file_name '%s' is already used by %s",
                       md->file_name, other->full_name);
      break;
    }
    if (!md->class_name)
      continue;
    if (hashmap_add(&classes, md->class_name, md) < 0) {
      ModuleDef *other = hashmap_get(&classes, md->class_name);
      jp_key(&p, "generated_class_name");
      rc = entry_error(L, &p, "generated_class_name '%s' is already used by %s",
                       md->class_name, other->full_name);
      break;
    }
    for (int k = -1; k < md->nops && rc == 0; k++)
      for (int m = 0; m < M_COUNT; m++) {
        if (k >= 0 && m >= M_TRAFFIC)
          break;
        char sym[256];
        emit_symbol(md, k >= 0 ? &md->ops[k] : NULL, m, sym, sizeof(sym));
        if (hashmap_add(&symbols, sym, md) < 0) {
          ModuleDef *other = hashmap_get(&symbols, sym);
          jp_key(&p, "generated_class_name");
          rc = entry_error(L, &p,
                           "generated C symbol %s clashes with one of %s",
                           sym, other->full_name);
          break;
        }
      }
  }
  hashmap_free(&files);
  hashmap_free(&classes);
  hashmap_free(&symbols);
  return rc;
}

/* Atomic ops carry traffic only: a resident-state formula cannot call one. */
static int check_op_refs(const Node *n, const FormulaRef *r, Error *err) {
  if (!n)
    return 0;
  if (n->kind == ND_CALL && n->callee_op && r->metric >= M_TRAFFIC) {
    formula_error(err, &r->src, n->tok,
                  "atomic operation %s has no %s (operations carry traffic "
                  "metrics only)",
                  n->name, metric_name[r->metric]);
    return -1;
  }
  if (check_op_refs(n->lhs, r, err) < 0 || check_op_refs(n->rhs, r, err) < 0)
    return -1;
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int i = 0; i < n->nargs; i++)
      if (check_op_refs(n->args[i], r, err) < 0)
        return -1;
  return 0;
}

static int parse_all(Loader *L) {
  Db *db = L->db;
  for (int i = 0; i < L->nrefs; i++) {
    FormulaRef *r = &L->refs[i];
    r->src.path = &r->path;
    r->ast = parse_formula(&db->arena, &r->src, L->err);
    if (!r->ast)
      return -1;
    Scope sc = {.names = r->owner->params,
                .nnames = r->owner->nparams,
                .modules = &db->by_full,
                .what = "parameter"};
    if (check_formula(r->ast, &r->src, &sc, L->err) < 0 ||
        check_op_refs(r->ast, r, L->err) < 0)
      return -1;
    *r->slot = r->ast;
  }
  return 0;
}

/* ----- call cycles ----- */

typedef struct CallSite {
  ModuleDef *callee;
  FormulaRef *ref;
  Node *node;
} CallSite;

typedef struct Graph {
  CallSite **calls; /* per module index */
  int *ncalls;
  int *color;       /* 0 white, 1 on stack, 2 done */
  int *height;      /* done: modules in the longest chain from here */
  int *stack;       /* the path being walked */
  int *next;        /* per stack entry: the next call site to follow */
  int depth;
} Graph;

static void collect_calls(Graph *g, FormulaRef *r, Node *n) {
  if (!n)
    return;
  if (n->kind == ND_CALL) {
    int i = r->owner->index;
    g->calls[i] = xrealloc(g->calls[i], sizeof(CallSite) * (size_t)(g->ncalls[i] + 1));
    g->calls[i][g->ncalls[i]++] = (CallSite){n->callee, r, n};
  }
  collect_calls(g, r, n->lhs);
  collect_calls(g, r, n->rhs);
  for (int k = 0; k < n->nargs; k++)
    if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
      collect_calls(g, r, n->args[k]);
}

/* "A -> B -> ... -> last" from the stack entries start.. plus last. */
static void chain_text(Loader *L, Graph *g, int start, int last, Buf *b) {
  int n = g->depth - start;
  for (int s = start; s < g->depth; s++) {
    if (n > 12 && s == start + 5) { /* a long chain: its ends */
      buf_printf(b, "... (%d more) -> ", n - 10);
      s = g->depth - 5;
    }
    buf_printf(b, "%s -> ", L->db->mods[g->stack[s]]->short_name);
  }
  buf_puts(b, L->db->mods[last]->short_name);
}

/* Depth-first over the call graph with an explicit stack (a chain of any
 * length in the file is walked safely): a call back onto the stack is a
 * cycle; a chain of more than DB_MAX_CALL_DEPTH modules is refused, since
 * evaluation and generated code follow calls recursively. height[u] is the
 * longest chain starting at u, once u is done. */
static int dfs(Loader *L, Graph *g, int root) {
  g->stack[g->depth] = root;
  g->next[g->depth++] = 0;
  g->color[root] = 1;
  while (g->depth > 0) {
    int u = g->stack[g->depth - 1];
    int k = g->next[g->depth - 1]++;
    if (k == g->ncalls[u]) { /* all callees done */
      int h = 0;
      for (int c = 0; c < g->ncalls[u]; c++) {
        int hv = g->height[g->calls[u][c].callee->index];
        if (hv > h)
          h = hv;
      }
      g->height[u] = h + 1;
      g->color[u] = 2;
      g->depth--;
      continue;
    }
    CallSite *c = &g->calls[u][k];
    int v = c->callee->index;
    if (g->color[v] == 1) {
      Buf b;
      buf_init(&b);
      int start = 0;
      while (g->stack[start] != v)
        start++;
      chain_text(L, g, start, v, &b);
      formula_error(L->err, &c->ref->src, c->node->tok, "call cycle: %s",
                    buf_str(&b));
      buf_free(&b);
      return -1;
    }
    int below = g->color[v] == 2 ? g->height[v] : 1;
    if (g->depth + below > DB_MAX_CALL_DEPTH) {
      Buf b;
      buf_init(&b);
      chain_text(L, g, 0, v, &b);
      formula_error(L->err, &c->ref->src, c->node->tok,
                    "calls nest too deeply: more than %d modules in a chain "
                    "(%s%s)",
                    DB_MAX_CALL_DEPTH, buf_str(&b),
                    g->color[v] == 2 ? " -> ..." : "");
      buf_free(&b);
      return -1;
    }
    if (g->color[v] == 0) {
      g->color[v] = 1;
      g->stack[g->depth] = v;
      g->next[g->depth++] = 0;
    }
  }
  return 0;
}

static int check_cycles(Loader *L) {
  int n = L->db->nmods;
  Graph g = {.calls = xcalloc((size_t)n, sizeof(CallSite *)),
             .ncalls = xcalloc((size_t)n, sizeof(int)),
             .color = xcalloc((size_t)n, sizeof(int)),
             .height = xcalloc((size_t)n, sizeof(int)),
             .stack = xcalloc((size_t)n + 1, sizeof(int)),
             .next = xcalloc((size_t)n + 1, sizeof(int))};
  for (int i = 0; i < L->nrefs; i++)
    collect_calls(&g, &L->refs[i], L->refs[i].ast);
  int rc = 0;
  for (int u = 0; u < n && rc == 0; u++)
    if (g.color[u] == 0)
      rc = dfs(L, &g, u);
  for (int i = 0; i < n; i++)
    free(g.calls[i]);
  free(g.calls);
  free(g.ncalls);
  free(g.color);
  free(g.height);
  free(g.stack);
  free(g.next);
  return rc;
}

/* ----- fingerprints ----- */

static void callee_names(const Node *n, HashMap *seen) {
  if (!n)
    return;
  if (n->kind == ND_CALL)
    hashmap_add(seen, n->callee->full_name, n->callee);
  callee_names(n->lhs, seen);
  callee_names(n->rhs, seen);
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int k = 0; k < n->nargs; k++)
      callee_names(n->args[k], seen);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The fingerprint covers what the generated code depends on: the ABI
 * version, the entry's names, kind, parameters, formulas and atomic ops,
 * and the parameter lists of the modules it calls (a caller passes them
 * positionally). Reasoning, source and validation do not affect code. */
static void fingerprint(ModuleDef *md) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "abi=%d\nname=%s\nkind=%d\nfile=%s\nclass=%s\nparams=",
             LM_ABI_VERSION, md->full_name, (int)md->kind,
             md->file_name ? md->file_name : "",
             md->class_name ? md->class_name : "");
  for (int i = 0; i < md->nparams; i++)
    buf_printf(&b, "%s,", md->params[i]);
  buf_putc(&b, '\n');
  for (int m = 0; m < M_COUNT; m++)
    if (md->formula[m])
      buf_printf(&b, "%s=%s\n", metric_name[m], md->formula[m]);
  HashMap seen;
  hashmap_init(&seen);
  for (int m = 0; m < M_COUNT; m++)
    callee_names(md->ast[m], &seen);
  for (int k = 0; k < md->nops; k++) {
    const AtomicOp *op = &md->ops[k];
    buf_printf(&b, "op=%s:%d\n", op->name, (int)op->mode);
    if (op->phase != AP_ANY) /* absent: fingerprints stay as they were */
      buf_printf(&b, "phase=%d\n", (int)op->phase);
    for (int m = 0; m < M_TRAFFIC; m++) {
      if (op->formula[m])
        buf_printf(&b, "  %s=%s\n", metric_name[m], op->formula[m]);
      callee_names(op->ast[m], &seen);
    }
  }
  const char **names = xcalloc(seen.used + 1, sizeof(char *));
  size_t it = 0, n = 0;
  const char *k;
  while (hashmap_next(&seen, &it, &k, NULL))
    names[n++] = k;
  qsort(names, n, sizeof(char *), cmp_str);
  for (size_t i = 0; i < n; i++) {
    const ModuleDef *c = hashmap_get(&seen, names[i]);
    buf_printf(&b, "callee=%s(", c->full_name);
    for (int j = 0; j < c->nparams; j++)
      buf_printf(&b, "%s,", c->params[j]);
    buf_puts(&b, ")\n");
  }
  free(names);
  hashmap_free(&seen);
  md->fingerprint = fnv1a64(buf_str(&b), b.len);
  buf_free(&b);
}

void db_fingerprint_hex(const ModuleDef *md, char *out) {
  snprintf(out, 17, "%016llx", (unsigned long long)md->fingerprint);
}

/* ----- load ----- */

void db_free(Db *db) {
  if (!db)
    return;
  if (db->text_mapped) {
    fs_unmap((char *)db->doc.text, db->text_mapped);
    db->doc.text = NULL;
  }
  jdoc_free(&db->doc);
  json_decref(db->root);
  free(db->index_text);
  free(db->mods);
  hashmap_free(&db->by_full);
  hashmap_free(&db->by_short);
  arena_free(&db->arena);
  free(db);
}

static int compute_all(Loader *L) {
  Db *db = L->db;
  if (parse_all(L) < 0 || check_cycles(L) < 0 || check_names(L) < 0)
    return -1;
  for (int i = 0; i < db->nmods; i++) {
    fingerprint(db->mods[i]);
    db->mods[i]->parsed = DB_PARSED;
  }
  return 0;
}

/* ----- formulas on first use (a Db read from the index) ----- */

static int ensure(const Db *cdb, const ModuleDef *cmd, int depth,
                  Error *err);

/* The modules n calls, parsed in turn. A call back onto the chain being
 * parsed, or a chain longer than DB_MAX_CALL_DEPTH, cannot come from a
 * checked database (db_load refuses both): an index made by hand. */
static int ensure_calls(const Db *db, const ModuleDef *md, const Node *n,
                        int depth, Error *err) {
  if (!n)
    return 0;
  if (n->kind == ND_CALL) {
    if (n->callee->parsed == DB_PARSING || depth >= DB_MAX_CALL_DEPTH) {
      err_file(err, db->doc.file,
               "%s calls %s: a call cycle or a chain of more than %d modules, "
               "which no checked database has (%s was not written by lmgen: "
               "run `make generate`)",
               md->full_name, n->callee->full_name, DB_MAX_CALL_DEPTH,
               DBINDEX_FILE);
      return -1;
    }
    if (ensure(db, n->callee, depth + 1, err) < 0)
      return -1;
  }
  if (ensure_calls(db, md, n->lhs, depth, err) < 0 ||
      ensure_calls(db, md, n->rhs, depth, err) < 0)
    return -1;
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int i = 0; i < n->nargs; i++)
      if (ensure_calls(db, md, n->args[i], depth, err) < 0)
        return -1;
  return 0;
}

static void clear_asts(ModuleDef *md) {
  memset(md->ast, 0, sizeof(md->ast));
  for (int k = 0; k < md->nops; k++)
    memset(md->ops[k].ast, 0, sizeof(md->ops[k].ast));
}

int db_ensure(const Db *db, const ModuleDef *md, Error *err) {
  return ensure(db, md, 1, err);
}

static int ensure(const Db *cdb, const ModuleDef *cmd, int depth,
                  Error *err) {
  if (cmd->parsed != DB_UNPARSED)
    return 0; /* parsed (a callee's parsing checks for cycles) */
  /* the trees are a cache the Db owns: filled in place */
  Db *db = (Db *)cdb;
  ModuleDef *md = (ModuleDef *)cmd;
  md->parsed = DB_PARSING;
  Loader L = {.db = db, .err = err};
  JsonPath p;
  db_path(&p, md->full_name);
  JsonPath fp = p;
  jp_key(&fp, "formulas");
  for (int m = 0; m < M_COUNT; m++)
    if (md->formula[m]) {
      JsonPath q = fp;
      jp_key(&q, metric_name[m]);
      add_ref(&L, md, md->formula[m], &q, &md->ast[m], (Metric)m);
    }
  for (int k = 0; k < md->nops; k++) {
    JsonPath op = p;
    jp_key(&op, "atomic_ops");
    jp_index(&op, k);
    jp_key(&op, "formulas");
    for (int m = 0; m < M_TRAFFIC; m++)
      if (md->ops[k].formula[m]) {
        JsonPath q = op;
        jp_key(&q, metric_name[m]);
        add_ref(&L, md, md->ops[k].formula[m], &q, &md->ops[k].ast[m],
                (Metric)m);
      }
  }
  int rc = parse_all(&L);
  for (int i = 0; i < L.nrefs && rc == 0; i++)
    rc = ensure_calls(db, md, L.refs[i].ast, depth, err);
  free(L.refs);
  if (rc < 0) {
    clear_asts(md);
    md->parsed = DB_UNPARSED;
    return -1;
  }
  md->parsed = DB_PARSED;
  return 0;
}

/* JdocBuild: the database of a parsed document. */
static void *build_db(JsonDoc *doc, json_t *root, const void *ctx,
                      Error *err) {
  (void)ctx;
  Db *db = xcalloc(1, sizeof(Db));
  db->doc = *doc; /* taken over */
  memset(doc, 0, sizeof(*doc));
  db->root = json_incref(root);
  arena_init(&db->arena);
  hashmap_init(&db->by_full);
  hashmap_init(&db->by_short);
  if (schema_validate(schema_module_db(), db->root, &db->doc, err) < 0) {
    db_free(db);
    return NULL;
  }
  json_t *mods = json_object_get(db->root, "modules");
  db->nmods = (int)json_object_size(mods);
  db->mods = xcalloc((size_t)db->nmods + 1, sizeof(ModuleDef *));
  Loader L = {.db = db, .err = err};
  const char *key;
  json_t *e;
  int i = 0, rc = 0;
  json_object_foreach(mods, key, e) {
    if ((rc = load_entry(&L, key, e, i++)) < 0)
      break;
  }
  if (rc == 0)
    rc = compute_all(&L);
  free(L.refs);
  if (rc < 0) {
    db_free(db);
    return NULL;
  }
  return db;
}

Db *db_load_text(const char *path, const char *text, size_t len, Error *err) {
  return jdoc_load(path, text, len, build_db, NULL, err);
}

Db *db_load(const char *path, Error *err) {
  return jdoc_load(path, NULL, 0, build_db, NULL, err);
}

ModuleDef *db_find(const Db *db, const char *name, Error *err) {
  ModuleDef *md = hashmap_get(&db->by_full, name);
  if (md)
    return md;
  ShortList *sl = hashmap_get(&db->by_short, name);
  if (sl && sl->n == 1)
    return sl->v[0];
  if (sl && sl->n > 1) {
    Buf b;
    buf_init(&b);
    for (int i = 0; i < sl->n; i++)
      buf_printf(&b, "\n  %s", sl->v[i]->full_name);
    err_set(err, "short name '%s' is ambiguous; use one of:%s", name,
            buf_str(&b));
    buf_free(&b);
    return NULL;
  }
  err_set(err, "module '%s' is not in %s", name, db->doc.file);
  return NULL;
}

int db_short(const Db *db, const char *short_name, ModuleDef **first) {
  const ShortList *sl = hashmap_get(&db->by_short, short_name);
  if (first)
    *first = sl && sl->n ? sl->v[0] : NULL;
  return sl ? sl->n : 0;
}

const char *db_param_violation(const ModuleDef *md, int i, double v) {
  static char why[96];
  if (md->pint[i] && v != floor(v)) {
    snprintf(why, sizeof(why), "must be a whole number");
    return why;
  }
  if (v < md->pmin[i]) {
    snprintf(why, sizeof(why), "must be at least %g", md->pmin[i]);
    return why;
  }
  if (v > md->pmax[i]) {
    snprintf(why, sizeof(why), "must be at most %g", md->pmax[i]);
    return why;
  }
  return NULL;
}

const AtomicOp *db_find_op(const ModuleDef *md, const char *op) {
  for (int i = 0; i < md->nops; i++)
    if (strcmp(md->ops[i].name, op) == 0)
      return &md->ops[i];
  return NULL;
}

int db_assign_names(Db *db, ModuleDef **mods, int n, Error *err) {
  int assigned = 0;
  for (int i = 0; i < n; i++) {
    ModuleDef *md = mods[i];
    if (md->file_name && md->class_name)
      continue;
    json_t *entry = json_object_get(json_object_get(db->root, "modules"),
                                    md->full_name);
    JsonPath p;
    db_path(&p, md->full_name);
    const char *why;
    if (!md->file_name) {
      char *f = naming_file(md->full_name);
      if (!naming_valid_file(f, &why)) {
        jdoc_error(err, &db->doc, &p,
                   "derived file name '%s' %s; store a valid "
                   "generated_file_name",
                   f, why);
        free(f);
        return -1;
      }
      md->file_name = arena_strdup(&db->arena, f);
      json_object_set_new(entry, "generated_file_name", json_string(f));
      free(f);
    }
    if (!md->class_name) {
      char *c = naming_class(md->full_name);
      if (!naming_valid_class(c, &why)) {
        jdoc_error(err, &db->doc, &p,
                   "derived class name '%s' %s; store a valid "
                   "generated_class_name",
                   c, why);
        free(c);
        return -1;
      }
      md->class_name = arena_strdup(&db->arena, c);
      json_object_set_new(entry, "generated_class_name", json_string(c));
      free(c);
    }
    assigned++;
  }
  if (assigned) {
    Loader L = {.db = db, .err = err};
    if (check_names(&L) < 0)
      return -1;
    for (int i = 0; i < db->nmods; i++)
      fingerprint(db->mods[i]);
  }
  return assigned;
}

char *db_dump(const Db *db) {
  char *s = json_dumps(db->root, JSON_INDENT(2));
  Buf b;
  buf_init(&b);
  buf_puts(&b, s);
  buf_putc(&b, '\n');
  free(s);
  return buf_steal(&b);
}

int db_save(const Db *db, Error *err) {
  char *text = db_dump(db);
  int rc = fs_write_atomic(db->doc.file, text, strlen(text), err);
  free(text);
  return rc;
}
