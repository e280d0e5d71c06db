/* registry.c: loaded modules by full class name, with a short-name index
 * (redis dict's API over common/hashmap.c: O(1) add and lookup, add fails
 * on an existing key, borrowed values, explicit iteration).
 *
 * Modules enter from disk by the file name stored in module_db.json (never a
 * derived one); a file whose fingerprint does not match its entry is
 * refused. reg_load compiles every module in one JIT state; reg_open
 * registers them all and compiles nothing, and reg_ensure then compiles
 * what a model uses (with every module those call) in one more state, so
 * lmrun pays for its model's modules only, however large the database.
 */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

typedef struct ShortEntry {
  RegModule *first;
  int count;
} ShortEntry;

struct Registry {
  HashMap by_full;   /* full name -> RegModule* */
  HashMap by_short;  /* short name -> ShortEntry* */
  RegModule **mods;  /* insertion order; owned */
  ShortEntry **shorts; /* owned */
  int nmods, cap, nshorts;
  Jit *jit;          /* the newest JIT state */
  Jit **jits;        /* owned: function pointers die with them */
  int njits;
  const Db *db;      /* reg_open: where the definitions come from; its
                        name maps are the registry's (mods[i]->def is
                        db->mods[i]: looked up there, not hashed again) */
  RegModule *block;  /* reg_open: all the modules, one allocation */
  lm_metric_fn (*opblock)[M_TRAFFIC]; /* reg_open: their opfn rows */
  char *modules_dir;
  HashMap texts;     /* full name -> generated C held in memory (borrowed):
                        compiled instead of the file (reg_set_text) */
  bool cache;        /* compile through the cache of compiled code
                        (reg_open; not reg_load's whole database) */
  int stamp_hits;    /* compiles answered by a stamp (reg_stamp_hits) */
};

Registry *reg_new_with_hash(HashFn fn) {
  Registry *r = xcalloc(1, sizeof(Registry));
  hashmap_init_with_hash(&r->by_full, fn);
  hashmap_init_with_hash(&r->by_short, fn);
  hashmap_init(&r->texts);
  return r;
}

Registry *reg_new(void) { return reg_new_with_hash(fnv1a64); }

int reg_add(Registry *r, RegModule *m) {
  if (r->db) /* reg_open's registry holds its database's modules only */
    return -1;
  if (hashmap_add(&r->by_full, m->def->full_name, m) < 0)
    return -1;
  if (r->nmods == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->mods = xrealloc(r->mods, sizeof(RegModule *) * (size_t)r->cap);
    r->shorts = xrealloc(r->shorts, sizeof(ShortEntry *) * (size_t)r->cap);
  }
  r->mods[r->nmods++] = m;
  ShortEntry *se = hashmap_get(&r->by_short, m->def->short_name);
  if (se) {
    se->count++;
  } else {
    se = xcalloc(1, sizeof(ShortEntry));
    se->first = m;
    se->count = 1;
    hashmap_add(&r->by_short, m->def->short_name, se);
    r->shorts[r->nshorts++] = se;
  }
  return 0;
}

/* A Db module's entry in reg_open's registry. */
static RegModule *of_def(const Registry *r, const ModuleDef *md) {
  return md && md->index >= 0 && md->index < r->nmods &&
                 r->mods[md->index]->def == md
             ? r->mods[md->index]
             : NULL;
}

RegModule *reg_get(const Registry *r, const char *full_name) {
  if (r->db)
    return of_def(r, hashmap_get(&r->db->by_full, full_name));
  return hashmap_get(&r->by_full, full_name);
}

RegModule *reg_get_short(const Registry *r, const char *short_name,
                         int *count) {
  if (r->db) { /* the Db's list of modules by short name: the same count */
    ModuleDef *first;
    int n = db_short(r->db, short_name, &first);
    if (count)
      *count = n;
    return n == 1 ? of_def(r, first) : NULL;
  }
  ShortEntry *se = hashmap_get(&r->by_short, short_name);
  if (count)
    *count = se ? se->count : 0;
  return se && se->count == 1 ? se->first : NULL;
}

RegModule *reg_next(const Registry *r, int *i) {
  return *i < r->nmods ? r->mods[(*i)++] : NULL;
}

int reg_count(const Registry *r) { return r->nmods; }

void reg_free(Registry *r) {
  if (!r)
    return;
  for (int i = 0; i < r->nmods && !r->block; i++) {
    free(r->mods[i]->opfn);
    free(r->mods[i]);
  }
  free(r->block);
  free(r->opblock);
  for (int i = 0; i < r->nshorts; i++)
    free(r->shorts[i]);
  free(r->mods);
  free(r->shorts);
  hashmap_free(&r->by_full);
  hashmap_free(&r->by_short);
  hashmap_free(&r->texts);
  for (int i = 0; i < r->njits; i++)
    jit_free(r->jits[i]);
  free(r->jits);
  free(r->modules_dir);
  free(r);
}

static lm_metric_fn symbol(Registry *r, const ModuleDef *md, const AtomicOp *op,
                           Metric m, const char *path, Error *err) {
  char sym[256];
  emit_symbol(md, op, m, sym, sizeof(sym));
  void *p = jit_symbol(r->jit, sym);
  if (!p) {
    err_file(err, path, "does not define %s: run `make generate`", sym);
    return NULL;
  }
  lm_metric_fn f;
  memcpy(&f, &p, sizeof(f)); /* object pointer -> function pointer */
  return f;
}

/* What the registry's cache entries vouch for: their files passed the
 * checksum check below before they were compiled and stored. */
#define REG_CACHE_SALT "registry: checksums checked"

/* The generated file's code matches the checksum in its header. */
static int check_checksum(const Registry *r, const char *path,
                          const char *text, Error *err) {
  char sum_hdr[17], sum_body[17];
  if (emit_checksum(text, sum_hdr, sum_body) < 0 ||
      strcmp(sum_hdr, sum_body) != 0) {
    err_file(err, path_display(path),
             "edited by hand: its code no longer matches the checksum in its "
             "header; run `make generate` to restore it, and change formulas "
             "in %s instead",
             path_display(r->db->doc.file));
    return -1;
  }
  return 0;
}

/* The header's fingerprint is the entry's. */
static int check_fingerprint(const Registry *r, const ModuleDef *md,
                             const char *path, const char *text, Error *err) {
  char want[17], got[17];
  db_fingerprint_hex(md, want);
  emit_header_hex(text, "fingerprint", got);
  if (strcmp(want, got) != 0) {
    err_file(err, path_display(path),
             "stale: fingerprint %s does not match %s in %s (%s): run `make "
             "generate`",
             got[0] ? got : "(none)", md->full_name,
             path_display(r->db->doc.file), want);
    return -1;
  }
  return 0;
}

/* Read the generated files of mods: how many were read before the first
 * that could not be (n: all), with err set for that one. */
static int read_texts(Registry *r, const ModuleDef *const *mods, int n,
                      char **paths, char **texts, Error *err) {
  for (int i = 0; i < n; i++) {
    const ModuleDef *md = mods[i];
    if (!md->file_name || !md->class_name) {
      err_set(err, "%s has no generated file yet: run `lmgen %s`",
              md->full_name, md->short_name);
      return i;
    }
    if (!paths[i])
      paths[i] = path_join(r->modules_dir, md->file_name);
    Error ferr;
    err_clear(&ferr);
    const char *mem = hashmap_get(&r->texts, md->full_name);
    texts[i] = mem ? xstrdup(mem) : fs_read(paths[i], NULL, &ferr);
    if (!texts[i]) {
      err_file(err, path_display(paths[i]),
               "generated file of %s is missing (%s): run `make generate`",
               md->full_name, ferr.msg);
      return i;
    }
  }
  return n;
}

/* Check the files (each's checksum, then its fingerprint, file by file)
 * and compile them in one new JIT state. Through the cache, a hit skips
 * the checksums: the same bytes (the key covers them) passed them before
 * they were stored, under this salt only the registry uses. The
 * fingerprints, which depend on the database as it is now, are checked
 * either way, so the first error is the same with or without a cache. */
static Jit *check_and_compile(Registry *r, const ModuleDef *const *mods,
                              int n, char **paths, char **texts,
                              const char **shown, Error *err) {
  const char *const *ct = (const char *const *)texts;
  Jit *jit = r->cache ? jit_cache_lookup(REG_CACHE_SALT, shown, ct, n) : NULL;
  for (int i = 0; i < n; i++)
    if ((!jit && check_checksum(r, paths[i], texts[i], err) < 0) ||
        check_fingerprint(r, mods[i], paths[i], texts[i], err) < 0) {
      jit_free(jit);
      return NULL;
    }
  if (jit)
    return jit;
  return r->cache ? jit_compile_cached(REG_CACHE_SALT, shown, ct, n, err)
                  : jit_compile(shown, ct, n, err);
}

/* ----- stamps: a cache hit without reading the files -----
 *
 * Reading and hashing a model's 20 to 40 generated files (50 to 150 KB)
 * to find its object in the cache cost 0.2 to 0.4 ms per run. A stamp
 * (jitcache_stamp_key) names the files by what stat(2) says of them
 * (device, inode, size, modification and change times) and records the
 * key of the object compiled from their bytes and the fingerprint each
 * file's header carried: a run whose files all stat the same loads that
 * object and checks those fingerprints against the database as the full
 * path does, without opening a file. Any write to a file changes its
 * change time (which no user can set back), a replaced file is another
 * inode: either is another stamp key, so the full path runs. Files that
 * changed in the last 2 s are never stamped (a write in the same clock
 * tick could leave the times unchanged). */

/* The stamp key of mods' files (paths set), or -1: no cache, a module
 * held in memory, a file without a name or not a regular file. */
static int stamp_key(Registry *r, const ModuleDef *const *mods, int n,
                     char **paths, const char **shown, char skey[33],
                     bool *settled) {
  for (int i = 0; i < n; i++) {
    if (!mods[i]->file_name || !mods[i]->class_name ||
        hashmap_get(&r->texts, mods[i]->full_name))
      return -1;
    if (!paths[i])
      paths[i] = path_join(r->modules_dir, mods[i]->file_name);
    shown[i] = path_display(paths[i]);
  }
  return jit_stamp_key(REG_CACHE_SALT, (const char *const *)paths, shown, n,
                       skey, settled);
}

/* The object a stamp names, if every fingerprint it recorded is the
 * database's (else NULL: the full path gives the error, from the files). */
static Jit *stamp_lookup(const ModuleDef *const *mods, int n,
                         const char *skey) {
  char *dir = jitcache_dir();
  char jitkey[33], (*got)[17] = xcalloc((size_t)n + 1, sizeof(*got));
  bool ok = dir && jitcache_stamp_get(dir, skey, n, jitkey, got) == 0;
  for (int i = 0; ok && i < n; i++) {
    char want[17];
    db_fingerprint_hex(mods[i], want);
    ok = strcmp(want, got[i]) == 0;
  }
  free(got);
  free(dir);
  return ok ? jit_cache_load_key(jitkey) : NULL;
}

/* Record the stamp of files whose texts were read after the stat. */
static void stamp_store(const char *skey, const Jit *jit, char **texts,
                        int n) {
  const char *jitkey = jit_cache_key(jit);
  char *dir = jitcache_dir();
  if (dir && jitkey[0]) {
    char (*got)[17] = xcalloc((size_t)n + 1, sizeof(*got));
    for (int i = 0; i < n; i++)
      emit_header_hex(texts[i], "fingerprint", got[i]);
    jitcache_stamp_put(dir, skey, jitkey, (const char(*)[17])got, n);
    free(got);
  }
  free(dir);
}

/* Resolve the symbols of mods into the registry's entries (those not
 * ready yet: a callee compiled again for its caller's sake keeps the
 * pointers it already had) from jit, now the registry's. */
static int resolve(Registry *r, const ModuleDef *const *mods, int n,
                   Jit *jit, const char **shown, Error *err) {
  r->jits = xrealloc(r->jits, sizeof(Jit *) * (size_t)(r->njits + 1));
  r->jits[r->njits++] = jit;
  r->jit = jit; /* symbol() resolves in the newest state */
  for (int i = 0; i < n; i++) {
    const ModuleDef *md = mods[i];
    RegModule *m = reg_get(r, md->full_name);
    if (m->ready)
      continue;
    const char *shown_path = shown[i];
    for (int k = 0; k < M_COUNT; k++)
      if (!(m->fn[k] = symbol(r, md, NULL, (Metric)k, shown_path, err)))
        return -1;
    for (int o = 0; o < md->nops; o++)
      for (int k = 0; k < M_TRAFFIC; k++)
        if (!(m->opfn[o][k] =
                  symbol(r, md, &md->ops[o], (Metric)k, shown_path, err)))
          return -1;
    m->ready = true;
  }
  return 0;
}

/* Read and check the generated files of mods (or, through a stamp, only
 * stat them), compile them in one new JIT state and resolve their
 * symbols. */
static int compile(Registry *r, const ModuleDef *const *mods, int n,
                   Error *err) {
  char **paths = xcalloc((size_t)n + 1, sizeof(char *));
  char **texts = xcalloc((size_t)n + 1, sizeof(char *));
  const char **shown = xcalloc((size_t)n + 1, sizeof(char *));
  int rc = -1, i;
  char skey[33];
  bool settled = false;
  bool stamped = r->cache && stamp_key(r, mods, n, paths, shown, skey,
                                       &settled) == 0;
  Jit *jit = stamped ? stamp_lookup(mods, n, skey) : NULL;
  if (jit) {
    r->stamp_hits++;
    rc = resolve(r, mods, n, jit, shown, err);
    goto out;
  }
  Error rerr;
  err_clear(&rerr);
  int nread = read_texts(r, mods, n, paths, texts, &rerr);
  if (nread < n) {
    /* the files before it are checked first, as they are read */
    for (i = 0; i < nread; i++)
      if (check_checksum(r, paths[i], texts[i], err) < 0 ||
          check_fingerprint(r, mods[i], paths[i], texts[i], err) < 0)
        goto out;
    if (err && !err->set)
      *err = rerr;
    goto out;
  }
  for (i = 0; i < n; i++)
    shown[i] = path_display(paths[i]);
  jit = check_and_compile(r, mods, n, paths, texts, shown, err);
  if (!jit)
    goto out;
  rc = resolve(r, mods, n, jit, shown, err);
  char again[33];
  bool still = false;
  /* stamped only if the files stat the same after the read as before */
  if (rc == 0 && stamped && settled &&
      jit_stamp_key(REG_CACHE_SALT, (const char *const *)paths, shown, n,
                    again, &still) == 0 &&
      still && strcmp(again, skey) == 0)
    stamp_store(skey, jit, texts, n);
out:
  for (i = 0; i < n; i++) {
    free(paths[i]);
    free(texts[i]);
  }
  free(paths);
  free(texts);
  free(shown);
  return rc;
}

int reg_stamp_hits(const Registry *r) { return r->stamp_hits; }

int reg_set_text(Registry *r, const char *full_name, const char *text) {
  if (!reg_get(r, full_name))
    return -1;
  if (hashmap_add(&r->texts, full_name, (void *)text) < 0) {
    size_t i = 0;
    const char *k;
    void *v;
    while (hashmap_next(&r->texts, &i, &k, &v))
      if (strcmp(k, full_name) == 0)
        r->texts.buckets[i - 1].val = (void *)text;
  }
  return 0;
}

Registry *reg_open(const Db *db, const char *modules_dir, Error *err) {
  (void)err;
  Registry *r = reg_new();
  r->db = db;
  r->modules_dir = xstrdup(modules_dir);
  r->cache = true;
  /* every module and its op rows in two allocations, and no name maps of
   * its own: lookups go through the Db's (reg_get) */
  size_t rows = 0;
  for (int i = 0; i < db->nmods; i++)
    rows += (size_t)db->mods[i]->nops + 1;
  r->block = xcalloc((size_t)db->nmods + 1, sizeof(RegModule));
  r->opblock = xcalloc(rows, sizeof(*r->opblock));
  r->mods = xcalloc((size_t)db->nmods + 1, sizeof(RegModule *));
  r->cap = db->nmods + 1;
  rows = 0;
  for (int i = 0; i < db->nmods; i++) {
    RegModule *m = &r->block[i];
    m->def = db->mods[i];
    m->opfn = r->opblock + rows;
    rows += (size_t)m->def->nops + 1;
    m->dir = r->modules_dir;
    r->mods[r->nmods++] = m;
  }
  return r;
}

/* Add md and every module its formulas call, once. */
static void add_closure(const ModuleDef *md, HashMap *seen,
                        const ModuleDef ***list, int *n, int *cap);

static void add_calls(const Node *nd, HashMap *seen, const ModuleDef ***list,
                      int *n, int *cap) {
  if (!nd)
    return;
  if (nd->kind == ND_CALL && nd->callee)
    add_closure(nd->callee, seen, list, n, cap);
  add_calls(nd->lhs, seen, list, n, cap);
  add_calls(nd->rhs, seen, list, n, cap);
  for (int i = 0; i < nd->nargs; i++)
    add_calls(nd->args[i], seen, list, n, cap);
}

static void add_closure(const ModuleDef *md, HashMap *seen,
                        const ModuleDef ***list, int *n, int *cap) {
  if (hashmap_add(seen, md->full_name, (void *)md) < 0)
    return;
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *list = xrealloc(*list, sizeof(ModuleDef *) * (size_t)*cap);
  }
  (*list)[(*n)++] = md;
  for (int k = 0; k < M_COUNT; k++)
    add_calls(md->ast[k], seen, list, n, cap);
  for (int o = 0; o < md->nops; o++)
    for (int k = 0; k < M_COUNT; k++)
      add_calls(md->ops[o].ast[k], seen, list, n, cap);
}

int reg_ensure(Registry *r, RegModule *const *mods, int n, Error *err) {
  /* a Db read from the index parses formulas on first use: these modules'
   * and their callees' (a no-op for a fully loaded Db) */
  for (int i = 0; i < n; i++)
    if (!mods[i]->ready && r->db && db_ensure(r->db, mods[i]->def, err) < 0)
      return -1;
  HashMap seen;
  hashmap_init(&seen);
  const ModuleDef **list = NULL;
  int nl = 0, cap = 0;
  for (int i = 0; i < n; i++)
    if (!mods[i]->ready)
      add_closure(mods[i]->def, &seen, &list, &nl, &cap);
  int rc = nl ? compile(r, list, nl, err) : 0;
  free(list);
  hashmap_free(&seen);
  return rc;
}

Registry *reg_load(const Db *db, const char *modules_dir, Error *err) {
  Registry *r = reg_open(db, modules_dir, err);
  r->cache = false; /* lmgen and the tests: one large source, rarely the same */
  RegModule **all = xcalloc((size_t)r->nmods + 1, sizeof(RegModule *));
  for (int i = 0; i < r->nmods; i++)
    all[i] = r->mods[i];
  int rc = reg_ensure(r, all, r->nmods, err);
  free(all);
  if (rc < 0) {
    reg_free(r);
    return NULL;
  }
  return r;
}
