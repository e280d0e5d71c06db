/* accept.c: from an LLM's reply text to a checked candidate database.
 *
 * The reply is untrusted. Nothing of it is kept unless every check passed:
 * exactly one JSON object; only the members an answer may set; the
 * schema's entry definition; every formula parsed and checked against the
 * entry's parameters and the known modules; the whole database with the
 * entry in place loaded as db_load loads it (so an answer cannot break
 * another entry: cycles, names, symbols); and every formula evaluated at
 * sample values, which must give finite, non-negative numbers. The caller
 * then writes the candidate, or nothing.
 *
 * Errors point into the reply: the text around the object is blanked to
 * spaces (newlines kept), so the blanked copy parses as the object alone
 * while its line and column numbers are the reply's own.
 */
#include "agents.h"

#include <math.h>
#include <string.h>

/* ----- finding the JSON object ----- */

typedef struct Span {
  size_t off, len;
} Span;

/* A copy of text with every byte outside [off, off+n) a space, newlines
 * kept. New; free(). */
static char *blank_outside(const char *text, size_t len, size_t off, size_t n) {
  char *s = xmalloc(len + 1);
  for (size_t i = 0; i < len; i++)
    s[i] = (i >= off && i < off + n) || text[i] == '\n' ? text[i] : ' ';
  s[len] = '\0';
  return s;
}

/* Parse text[sp] as one JSON value; true if it is an object. */
static bool parses_as_object(const char *text, Span sp) {
  json_t *j = json_loadb(text + sp.off, sp.len, JSON_REJECT_DUPLICATES, NULL);
  bool ok = json_is_object(j);
  json_decref(j);
  return ok;
}

/* Record the syntax error of text[sp], located in the whole text. */
static void span_syntax_error(const char *text, size_t len, Span sp,
                              const char *what, Error *err) {
  char *raw = blank_outside(text, len, sp.off, sp.len);
  JsonDoc doc = {.text = raw, .len = len};
  json_t *j = jdoc_parse(&doc, err);
  if (j) /* valid JSON, but not an object */
    err_set(err, "%s holds JSON that is not an object", what);
  else
    err_prefix(err, "%s: ", what);
  json_decref(j);
  free(raw);
}

/* Fenced blocks: ``` lines toggle; info is the word after the opening. */
typedef struct Fence {
  Span body;
  char info[16];
} Fence;

static int find_fences(const char *text, size_t len, Fence **out) {
  int n = 0, cap = 0;
  *out = NULL;
  bool open = false;
  Fence cur;
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t k = i;
    while (k < end && (text[k] == ' ' || text[k] == '\t'))
      k++;
    if (end - k >= 3 && strncmp(text + k, "```", 3) == 0) {
      if (!open) {
        open = true;
        memset(&cur, 0, sizeof(cur));
        size_t a = k + 3, m = 0;
        while (a < end && (text[a] == ' ' || text[a] == '\t'))
          a++;
        while (a < end && m + 1 < sizeof(cur.info) && text[a] != ' ' &&
               text[a] != '\r') {
          char c = text[a++];
          cur.info[m++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        cur.body.off = nl ? end + 1 : len;
      } else {
        open = false;
        cur.body.len = i - cur.body.off;
        if (n == cap) {
          cap = cap ? cap * 2 : 4;
          *out = xrealloc(*out, sizeof(Fence) * (size_t)cap);
        }
        (*out)[n++] = cur;
      }
    }
    i = end + 1;
  }
  if (open) { /* an unclosed fence runs to the end */
    cur.body.len = len > cur.body.off ? len - cur.body.off : 0;
    if (n == cap)
      *out = xrealloc(*out, sizeof(Fence) * (size_t)(cap + 1));
    (*out)[n++] = cur;
  }
  return n;
}

/* The end of the {...} starting at text[i] (one past its '}'), reading
 * strings as JSON does; len when it never closes. */
static size_t brace_end(const char *text, size_t len, size_t i) {
  int depth = 0;
  bool str = false;
  for (; i < len; i++) {
    char c = text[i];
    if (str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        str = false;
    } else if (c == '"') {
      str = true;
    } else if (c == '{') {
      depth++;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return len;
}

/* Is text[i] inside a fence (its ``` lines included)? Fences are in text
 * order and i only grows, so *k walks forward: linear overall. */
static bool in_fence(const Fence *f, int nf, int *k, size_t i) {
  while (*k < nf && f[*k].body.off + f[*k].body.len + 3 < i)
    (*k)++;
  return *k < nf && i + 3 >= f[*k].body.off;
}

static bool looks_like_json(const char *s, size_t n) {
  return memchr(s, '"', n) && memchr(s, ':', n);
}

int accept_find_json(const char *text, size_t len, size_t *off, size_t *n,
                     Error *err) {
  Fence *f;
  int nf = find_fences(text, len, &f);
  Span found[2];
  int nfound = 0, total = 0;
  Span bad = {0, 0};
  bool have_bad = false;
  const char *where = "the reply";

  /* ```json blocks (or bare ``` blocks holding an object) win */
  for (int k = 0; k < nf; k++) {
    bool tagged = strcmp(f[k].info, "json") == 0;
    Span b = f[k].body;
    size_t s = b.off;
    while (s < b.off + b.len && strchr(" \t\r\n", text[s]))
      s++;
    if (!tagged && (f[k].info[0] || s >= b.off + b.len || text[s] != '{'))
      continue;
    if (parses_as_object(text, b)) {
      if (nfound < 2)
        found[nfound] = b;
      nfound++;
    } else if (!have_bad) {
      bad = b;
      have_bad = true;
      where = "the ```json block of the reply";
    }
    total++;
  }
  /* otherwise: top-level {...} spans of the prose outside fences */
  if (total == 0) {
    int fk = 0;
    for (size_t i = 0; i < len; i++) {
      if (text[i] != '{' || in_fence(f, nf, &fk, i))
        continue;
      Span sp = {i, brace_end(text, len, i) - i};
      if (parses_as_object(text, sp)) {
        if (nfound < 2)
          found[nfound] = sp;
        nfound++;
      } else if (!have_bad && looks_like_json(text + sp.off, sp.len)) {
        bad = sp;
        have_bad = true;
      }
      i = sp.off + sp.len - 1;
    }
  }
  free(f);
  if (nfound == 1) {
    *off = found[0].off;
    *n = found[0].len;
    return 0;
  }
  if (nfound > 1) {
    int l1, l2, c;
    text_linecol(text, found[0].off, &l1, &c);
    text_linecol(text, found[1].off, &l2, &c);
    err_set(err,
            "the reply holds %d JSON objects (lines %d and %d%s); expected "
            "exactly one",
            nfound, l1, l2, nfound > 2 ? ", ..." : "");
    return -1;
  }
  if (have_bad) {
    span_syntax_error(text, len, bad, where, err);
    return -1;
  }
  err_set(err, "the reply holds no JSON object; expected one entry, bare or "
               "in a ```json block");
  return -1;
}

/* ----- accepting an answer ----- */

typedef struct Ctx {
  const Db *db;
  const AcceptOpts *o;
  JsonDoc doc;   /* reply name for errors; the reply, blanked around the
                    object (text owned) */
  JsonPath base; /* path of the entry object in raw */
  Error *err;
  Accepted *out;
} Ctx;

static int answer_error(Ctx *c, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int answer_error(Ctx *c, const char *member, const char *fmt, ...) {
  JsonPath p = c->base;
  if (member)
    jp_key(&p, member);
  va_list ap;
  va_start(ap, fmt);
  jdoc_verror(c->err, &c->doc, &p, fmt, ap);
  va_end(ap);
  return -1;
}

static const char *const agent_members[] = {"kind", "parameters", "formulas",
                                            "atomic_ops", "reasoning"};
static const char *const owned_members[] = {
    "source", "validation", "generated_file_name", "generated_class_name"};

static bool in_list(const char *k, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(k, list[i]) == 0)
      return true;
  return false;
}

/* The answer's members: names must match, unknown members are errors,
 * lmgen-owned members are noted and dropped (source only when lmgen has
 * one). */
static int check_members(Ctx *c, const json_t *ans, const char *short_name,
                         const json_t *fallback_source) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)ans, k, v) {
    if (strcmp(k, "full_name") == 0) {
      if (!json_is_string(v) ||
          strcmp(json_string_value(v), c->o->full_name) != 0)
        return answer_error(c, k, "the answer is for %s%s%s, not for %s",
                            json_is_string(v) ? "'" : "",
                            json_is_string(v) ? json_string_value(v)
                                              : "another class",
                            json_is_string(v) ? "'" : "", c->o->full_name);
    } else if (strcmp(k, "short_name") == 0) {
      if (!json_is_string(v) || strcmp(json_string_value(v), short_name) != 0)
        return answer_error(c, k,
                            "short_name must be '%s', the class asked "
                            "about",
                            short_name);
    } else if (in_list(k, owned_members, LM_ARRAY_LEN(owned_members))) {
      if (strcmp(k, "source") != 0 || fallback_source)
        buf_printf(&c->out->notes,
                   "ignored '%s' from the answer: lmgen sets "
                   "it\n",
                   k);
    } else if (!in_list(k, agent_members, LM_ARRAY_LEN(agent_members))) {
      return answer_error(c, k,
                          "unknown member '%s' in the answer (expected: "
                          "full_name, short_name, kind, parameters, "
                          "formulas, atomic_ops, reasoning)",
                          k);
    }
  }
  return 0;
}

static json_t *validation_member(const AcceptOpts *o) {
  return json_pack("{s:s, s:s, s:s, s:s}", "status", "pending", "by", o->by,
                   "date", o->date, "notes",
                   "written by an LLM agent through lmgen; review the "
                   "formulas, then set status to validated");
}

/* The entry in canonical member order, from the answer and lmgen's own
 * members. New reference. */
static json_t *build_entry(const json_t *ans, const char *short_name,
                           const json_t *old, const json_t *source,
                           const AcceptOpts *o) {
  json_t *e = json_object();
  json_object_set_new(e, "short_name", json_string(short_name));
  for (size_t i = 0; i < LM_ARRAY_LEN(agent_members); i++) {
    json_t *v = json_object_get(ans, agent_members[i]);
    if (v)
      json_object_set(e, agent_members[i], v);
  }
  if (source)
    json_object_set(e, "source", (json_t *)source);
  json_object_set_new(e, "validation", validation_member(o));
  for (int i = 2; i < 4 && old; i++) {
    json_t *v = json_object_get(old, owned_members[i]);
    if (v)
      json_object_set(e, owned_members[i], v);
  }
  return e;
}

/* Re-analysis keeps what model files and callers depend on: the kind, the
 * parameter names in order, the names of the atomic operations. */
static int check_kept(Ctx *c, const json_t *ans, const ModuleDef *old) {
  const char *kind = json_string_value(json_object_get(ans, "kind"));
  const char *want = old->kind == MK_BASIC ? "basic" : "composite";
  if (strcmp(kind, want) != 0)
    return answer_error(c, "kind",
                        "the answer makes %s %s; re-analysis keeps its kind "
                        "(%s): model files depend on it",
                        old->short_name, kind, want);
  const json_t *params = json_object_get(ans, "parameters");
  bool same = json_array_size(params) == (size_t)old->nparams;
  for (int i = 0; same && i < old->nparams; i++)
    same = strcmp(json_string_value(json_object_get(
                      json_array_get(params, (size_t)i), "name")),
                  old->params[i]) == 0;
  if (!same) {
    Buf b;
    buf_init(&b);
    for (int i = 0; i < old->nparams; i++)
      buf_printf(&b, "%s%s", i ? ", " : "", old->params[i]);
    answer_error(c, "parameters",
                 "the answer changes the parameters of %s; re-analysis keeps "
                 "them (%s), because model files and callers pass them in "
                 "that order",
                 old->short_name, b.len ? buf_str(&b) : "none");
    buf_free(&b);
    return -1;
  }
  const json_t *ops = json_object_get(ans, "atomic_ops");
  for (int k = 0; k < old->nops; k++) {
    bool kept = false;
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
      kept = kept || strcmp(json_string_value(json_object_get(op, "name")),
                            old->ops[k].name) == 0;
    }
    if (!kept)
      return answer_error(c, ops ? "atomic_ops" : NULL,
                          "the answer drops atomic operation '%s' of %s; "
                          "re-analysis keeps every operation (model files "
                          "place them by name)",
                          old->ops[k].name, old->short_name);
  }
  return 0;
}

/* Parse and check one formula of the answer against its parameters and
 * the known modules; errors land on the formula in the reply. */
static int check_one(Ctx *c, Arena *a, const char *text, const JsonPath *p,
                     const char *const *names, int nnames) {
  FormulaSrc src = {.text = text,
                    .doc = &c->doc,
                    .path = p};
  Node *n = parse_formula(a, &src, c->err);
  if (!n)
    return -1;
  Scope sc = {.names = names,
              .nnames = nnames,
              .modules = &c->db->by_full,
              .what = "parameter"};
  return check_formula(n, &src, &sc, c->err);
}

static int check_formulas(Ctx *c, const json_t *entry) {
  const json_t *params = json_object_get(entry, "parameters");
  int np = (int)json_array_size(params);
  const char **names = xcalloc((size_t)np + 1, sizeof(char *));
  for (int i = 0; i < np; i++)
    names[i] = json_string_value(
        json_object_get(json_array_get(params, (size_t)i), "name"));
  Arena a;
  arena_init(&a);
  int rc = 0;
  const char *k;
  json_t *v;
  JsonPath p = c->base;
  jp_key(&p, "formulas");
  json_object_foreach(json_object_get(entry, "formulas"), k, v) {
    jp_key(&p, k);
    rc = check_one(c, &a, json_string_value(v), &p, names, np);
    jp_pop(&p);
    if (rc < 0)
      goto out;
  }
  size_t i;
  json_t *op;
  json_array_foreach(json_object_get(entry, "atomic_ops"), i, op) {
    JsonPath q = c->base;
    jp_key(&q, "atomic_ops");
    jp_index(&q, (int)i);
    jp_key(&q, "formulas");
    json_object_foreach(json_object_get(op, "formulas"), k, v) {
      jp_key(&q, k);
      rc = check_one(c, &a, json_string_value(v), &q, names, np);
      jp_pop(&q);
      if (rc < 0)
        goto out;
    }
  }
out:
  arena_free(&a);
  free(names);
  return rc;
}

/* An error from loading the candidate database points into text that
 * exists nowhere on disk: keep its message, JSON path and the offending
 * line, drop the line number, and name the reply. */
static void candidate_error(Ctx *c, const Error *e) {
  if (!c->err || c->err->set)
    return;
  *c->err = *e;
  snprintf(c->err->file, sizeof(c->err->file), "%s", c->doc.file);
  c->err->line = c->err->col = 0;
  if (c->err->context[0])
    c->err->context_line = -1;
  err_prefix(c->err, "with this answer the database fails a check: ");
}

/* Evaluate every formula of the entry and of its operations with all
 * parameters at each sample value. */
static int check_values(Ctx *c, const ModuleDef *md) {
  static const double samples[] = {1, 7, 4096};
  double args[64];
  for (size_t s = 0; s < LM_ARRAY_LEN(samples); s++) {
    for (int i = 0; i < md->nparams && i < 64; i++)
      args[i] = samples[s];
    for (int k = -1; k < md->nops; k++) {
      for (int m = 0; m < M_COUNT; m++) {
        const Node *n = k < 0 ? md->ast[m] : md->ops[k].ast[m];
        const char *f = k < 0 ? md->formula[m] : md->ops[k].formula[m];
        if (!n)
          continue;
        double v = node_eval(n, args, (Metric)m);
        if (isfinite(v) && v >= 0)
          continue;
        JsonPath p = c->base;
        if (k >= 0) {
          jp_key(&p, "atomic_ops");
          jp_index(&p, k);
        }
        jp_key(&p, "formulas");
        jp_key(&p, metric_name[m]);
        char shown[32];
        if (isnan(v))
          snprintf(shown, sizeof(shown), "NaN");
        else
          snprintf(shown, sizeof(shown), "%g", v);
        return jdoc_error_string(
            c->err, &c->doc, &p, f, 0, (int)strlen(f),
            "%s gives %s with every parameter = %g; a cost must be a finite "
            "number, not negative",
            metric_name[m], shown, samples[s]);
      }
    }
  }
  return 0;
}

int accept_answer(const Db *db, const char *reply, size_t len,
                  const AcceptOpts *o, Accepted *out, Error *err) {
  memset(out, 0, sizeof(*out));
  buf_init(&out->notes);
  Ctx c = {.db = db, .o = o, .err = err, .out = out};
  c.doc.file = o->reply_name;
  jp_init(&c.base);
  size_t off, n;
  if (accept_find_json(reply, len, &off, &n, err) < 0) {
    if (err && !err->file[0])
      snprintf(err->file, sizeof(err->file), "%s", o->reply_name);
    return -1;
  }
  c.doc.text = blank_outside(reply, len, off, n);
  c.doc.len = len;
  json_t *root = jdoc_parse(&c.doc, NULL); /* accept_find_json parsed it */
  json_t *entry = NULL, *cand_root = NULL, *merged = NULL;
  char *cand_text = NULL;
  Db *cand = NULL;
  int rc = -1;
  const char *dot = strrchr(o->full_name, '.');
  const char *short_name = dot ? dot + 1 : o->full_name;

  /* the entry alone, or wrapped as {"full.Name": {...}} */
  json_t *ans = root;
  if (json_object_size(root) == 1) {
    const char *k = json_object_iter_key(json_object_iter(root));
    json_t *v = json_object_iter_value(json_object_iter(root));
    if (strchr(k, '.') && json_is_object(v)) {
      if (strcmp(k, o->full_name) != 0) {
        answer_error(&c, NULL, "the answer is for '%s', not for %s", k,
                     o->full_name);
        goto out;
      }
      ans = v;
      jp_key(&c.base, k);
    }
  }
  const json_t *mods = json_object_get(db->root, "modules");
  const json_t *old_json = json_object_get(mods, o->full_name);
  const ModuleDef *old = hashmap_get(&db->by_full, o->full_name);
  const json_t *old_source = json_object_get(old_json, "source");
  if (o->source && old_source &&
      json_equal(json_object_get(o->source, "file"),
                 json_object_get(old_source, "file"))) {
    /* same file: keep what else the entry recorded (its version) */
    merged = json_deep_copy(old_source);
    json_object_update(merged, (json_t *)o->source);
  }
  const json_t *source = merged ? merged : o->source ? o->source : old_source;
  if (check_members(&c, ans, short_name, source) < 0)
    goto out;
  if (!source && !json_object_get(ans, "source")) {
    err_file(err, c.doc.file,
             "no source is known for %s: give --source PATH (the Python "
             "file defining it), or a 'source' member in the analysis",
             o->full_name);
    goto out;
  }
  entry = build_entry(ans, short_name, old_json, source, o);
  if (!source)
    json_object_set(entry, "source", json_object_get(ans, "source"));
  if (schema_validate_def(schema_module_db(), "entry", entry, &c.base, &c.doc,
                          err) < 0)
    goto out;
  if (old) {
    if (check_kept(&c, entry, old) < 0)
      goto out;
    /* keep the stored parameter descriptions too */
    json_object_set(entry, "parameters",
                    json_object_get(old_json, "parameters"));
  }
  if (check_formulas(&c, entry) < 0)
    goto out;

  /* the whole database with the entry in place */
  cand_root = json_deep_copy(db->root);
  json_object_set(json_object_get(cand_root, "modules"), o->full_name, entry);
  char *dump = json_dumps(cand_root, JSON_INDENT(2));
  Buf t;
  buf_init(&t);
  buf_puts(&t, dump);
  buf_putc(&t, '\n');
  free(dump);
  size_t tlen = t.len;
  cand_text = buf_steal(&t);
  Error e;
  err_clear(&e);
  cand = db_load_text(db->doc.file, cand_text, tlen, &e);
  if (!cand) {
    candidate_error(&c, &e);
    goto out;
  }
  ModuleDef *md = hashmap_get(&cand->by_full, o->full_name);
  if (check_values(&c, md) < 0)
    goto out;
  if (!old && db_assign_names(cand, &md, 1, &e) < 0) {
    candidate_error(&c, &e);
    goto out;
  }
  out->db = cand;
  out->md = md;
  out->is_new = old == NULL;
  cand = NULL;
  rc = 0;
out:
  if (rc < 0)
    buf_free(&out->notes);
  db_free(cand);
  free(cand_text);
  json_decref(cand_root);
  json_decref(entry);
  json_decref(merged);
  json_decref(root);
  free((void *)c.doc.text);
  return rc;
}

void accepted_free(Accepted *a) {
  if (!a)
    return;
  db_free(a->db);
  buf_free(&a->notes);
  memset(a, 0, sizeof(*a));
}

/* ----- diff ----- */

static void diff_formulas(const char *const *old, const char *const *now,
                          int nmetrics, const char *indent, Buf *out) {
  for (int m = 0; m < nmetrics; m++) {
    const char *a = old ? old[m] : NULL, *b = now ? now[m] : NULL;
    if (!a && !b)
      continue;
    if (a && b && strcmp(a, b) == 0)
      buf_printf(out, "%s%s: %s (unchanged)\n", indent, metric_name[m], a);
    else if (!old)
      buf_printf(out, "%s%s: %s\n", indent, metric_name[m], b);
    else
      buf_printf(out, "%s%s:\n%s  old: %s\n%s  new: %s\n", indent,
                 metric_name[m], indent, a ? a : "(none)", indent,
                 b ? b : "(none)");
  }
}

void accept_diff(const ModuleDef *old, const ModuleDef *now, Buf *out) {
  if (!old) {
    buf_printf(out, "  new %s entry; parameters: ",
               now->kind == MK_BASIC ? "basic" : "composite");
    for (int i = 0; i < now->nparams; i++)
      buf_printf(out, "%s%s", i ? ", " : "", now->params[i]);
    buf_puts(out, now->nparams ? "\n" : "none\n");
  }
  diff_formulas(old ? old->formula : NULL, now->formula, M_COUNT, "  ", out);
  for (int k = 0; k < now->nops; k++) {
    const AtomicOp *b = &now->ops[k];
    const AtomicOp *a = old ? db_find_op(old, b->name) : NULL;
    buf_printf(out, "  atomic op %s%s:\n", b->name,
               old && !a ? " (added)" : "");
    diff_formulas(a ? a->formula : NULL, b->formula, M_TRAFFIC, "    ", out);
  }
  for (int k = 0; old && k < old->nops; k++)
    if (!db_find_op(now, old->ops[k].name))
      buf_printf(out, "  atomic op %s (removed)\n", old->ops[k].name);
}
