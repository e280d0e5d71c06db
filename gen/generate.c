/* generate.c: module_db.json -> generated_modules/, the lmgen pipeline.
 *
 * A batch is the closure of some entries (each with its callees), their
 * names decided and their C emitted into memory; applying it writes
 * module_db.json first (when names or an entry changed), then each C file
 * whose bytes differ, each atomically, then removes generated files no
 * entry claims. Nothing is written until every target emitted. The agent
 * (agents/agent.c) applies its batch through the same two calls.
 *
 * gen_run is `lmgen [--all | NAME...]`: lock, load, prepare, then check,
 * dry run or write. It prints progress on stdout and the error on stderr,
 * as the command does; the command's main is argument parsing only.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "gen.h"
#include "runtime.h" /* jit_compile: the batch is compiled as lmrun would */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add_with_callees(const Node *n, ModuleDef **set, int *nset,
                             bool *in);

static void add_module(ModuleDef *md, ModuleDef **set, int *nset, bool *in) {
  if (in[md->index])
    return;
  in[md->index] = true;
  set[(*nset)++] = md;
  for (int m = 0; m < M_COUNT; m++)
    add_with_callees(md->ast[m], set, nset, in);
  for (int k = 0; k < md->nops; k++)
    for (int m = 0; m < M_TRAFFIC; m++)
      add_with_callees(md->ops[k].ast[m], set, nset, in);
}

static void add_with_callees(const Node *n, ModuleDef **set, int *nset,
                             bool *in) {
  if (!n)
    return;
  if (n->kind == ND_CALL)
    add_module(n->callee, set, nset, in);
  add_with_callees(n->lhs, set, nset, in);
  add_with_callees(n->rhs, set, nset, in);
  if (n->kind == ND_MIN || n->kind == ND_MAX || n->kind == ND_CALL)
    for (int i = 0; i < n->nargs; i++)
      add_with_callees(n->args[i], set, nset, in);
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

int gen_lock_db(const char *db_path, Error *err) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s.lock", db_path);
  int fd = fs_lock(buf_str(&b), err);
  buf_free(&b);
  return fd;
}

/* Compile the emitted texts with libtcc as the runtime does (the modabi.h
 * prelude, one state, -Werror): code that does not build is an error,
 * located in the generated file, before anything is written. */
static int compile_batch(const GenBatch *b, Error *err) {
  if (b->n == 0)
    return 0;
  const char **paths = xcalloc((size_t)b->n, sizeof(char *));
  const char **texts = xcalloc((size_t)b->n, sizeof(char *));
  for (int i = 0; i < b->n; i++) {
    paths[i] = path_display(b->t[i].path);
    texts[i] = b->t[i].text;
  }
  Jit *j = jit_compile(paths, texts, b->n, err);
  free(paths);
  free(texts);
  if (!j) {
    err_prefix(err, "generated code does not compile (a bug of lmgen or "
                    "modabi.h): ");
    return -1;
  }
  jit_free(j);
  return 0;
}

int gen_prepare(Db *db, ModuleDef *const *roots, int nroots,
                const char *out_dir, GenBatch *b, Error *err) {
  memset(b, 0, sizeof(*b));
  b->out_dir = out_dir;
  b->db_file = xstrdup(db->doc.file);
  ModuleDef **set = xcalloc((size_t)db->nmods + 1, sizeof(ModuleDef *));
  bool *in = xcalloc((size_t)db->nmods + 1, sizeof(bool));
  int nset = 0;
  for (int i = 0; i < nroots; i++)
    add_module(roots[i], set, &nset, in);
  free(in);
  int rc = -1;
  b->assigned = db_assign_names(db, set, nset, err);
  if (b->assigned < 0)
    goto out_free_set;
  b->t = xcalloc((size_t)nset + 1, sizeof(GenTarget));
  for (int i = 0; i < nset; i++) {
    GenTarget *t = &b->t[b->n++];
    t->md = set[i];
    t->path = path_join(out_dir, set[i]->file_name);
    t->text = emit_module(set[i], base_name(db->doc.file), err);
    if (!t->text)
      goto out_free_set;
  }
  rc = compile_batch(b, err);
out_free_set:
  free(set);
  return rc;
}

void gen_find_stale(GenBatch *b) {
  DIR *d = opendir(b->out_dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 3 || strcmp(de->d_name + len - 2, ".c") != 0)
      continue;
    bool claimed = false;
    for (int i = 0; i < b->n && !claimed; i++)
      claimed = strcmp(b->t[i].md->file_name, de->d_name) == 0;
    if (claimed)
      continue;
    char *p = path_join(b->out_dir, de->d_name);
    FILE *f = fopen(p, "r");
    char line[256] = "";
    if (f) {
      if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
      fclose(f);
    }
    if (strstr(line, EMIT_MARKER)) {
      b->stale = xrealloc(b->stale, sizeof(char *) * (size_t)(b->nstale + 1));
      b->stale[b->nstale++] = p;
    } else {
      free(p);
    }
  }
  closedir(d);
}

/* True if name is <prefix>.tmp.XXXXXX, the temporary file fs_write_atomic
 * makes for <prefix> (mkstemp's six characters). */
static bool is_temp_of(const char *name, const char *prefix) {
  size_t n = strlen(name), p = strlen(prefix);
  if (n != p + 11 || strncmp(name, prefix, p) != 0 ||
      strncmp(name + p, ".tmp.", 5) != 0)
    return false;
  for (size_t i = p + 5; i < n; i++)
    if (!isalnum((unsigned char)name[i]))
      return false;
  return true;
}

void gen_find_temps(GenBatch *b, const char *db_path) {
  char *real = realpath(db_path, NULL);
  const char *dbp = real ? real : db_path;
  const char *slash = strrchr(dbp, '/');
  char *db_dir = slash ? xstrndup(dbp, (size_t)(slash - dbp + (slash == dbp)))
                       : xstrdup(".");
  const char *dirs[2] = {b->out_dir, db_dir};
  for (int k = 0; k < 2; k++) {
    if (k == 1 && strcmp(dirs[0], dirs[1]) == 0)
      break;
    DIR *d = opendir(dirs[k]);
    if (!d)
      continue;
    struct dirent *de;
    while ((de = readdir(d))) {
      const char *name = de->d_name;
      bool ours = is_temp_of(name, base_name(dbp)) ||
                  (k == 0 && is_temp_of(name, DBINDEX_FILE));
      const char *t = strstr(name, ".c.tmp.");
      if (!ours && t) {
        char *prefix = xstrndup(name, (size_t)(t - name) + 2);
        ours = is_temp_of(name, prefix);
        free(prefix);
      }
      if (!ours)
        continue;
      b->temps = xrealloc(b->temps, sizeof(char *) * (size_t)(b->ntemps + 1));
      b->temps[b->ntemps++] = path_join(dirs[k], name);
    }
    closedir(d);
  }
  free(db_dir);
  free(real);
}

/* Write each target whose file differs (or say it would, on a dry run). */
static int write_targets(const GenBatch *b, bool dry_run, int *written,
                         Error *err) {
  *written = 0;
  for (int i = 0; i < b->n; i++) {
    const GenTarget *t = &b->t[i];
    size_t len = strlen(t->text);
    if (fs_same_content(t->path, t->text, len))
      continue;
    if (dry_run) {
      printf("lmgen: would write %s\n", path_display(t->path));
    } else {
      if (fs_write_atomic(t->path, t->text, len, err) < 0)
        return -1;
      printf("lmgen: wrote %s\n", path_display(t->path));
    }
    (*written)++;
  }
  return 0;
}

int gen_apply(const GenBatch *b, const Db *save, const char *note, bool dry_run,
              int *count, Error *err) {
  *count = 0;
  if (dry_run) {
    if (note)
      printf("lmgen: %s\n", note);
    write_targets(b, true, count, err);
    for (int i = 0; i < b->nstale; i++)
      printf("lmgen: would remove %s (no entry claims it)\n",
             path_display(b->stale[i]));
    for (int i = 0; i < b->ntemps; i++)
      printf("lmgen: would remove %s (left by an interrupted write)\n",
             path_display(b->temps[i]));
    return 0;
  }
  if (mkdir(b->out_dir, 0755) != 0 && errno != EEXIST) {
    err_file(err, b->out_dir, "cannot create directory: %s", strerror(errno));
    return -1;
  }
  /* under the lock no write is in progress: these are a dead run's */
  for (int i = 0; i < b->ntemps; i++)
    if (unlink(b->temps[i]) == 0)
      printf("lmgen: removed %s (left by an interrupted write)\n",
             path_display(b->temps[i]));
  if (save) {
    if (db_save(save, err) < 0)
      return -1;
    if (note)
      printf("lmgen: %s\n", note);
  }
  if (write_targets(b, false, count, err) < 0)
    return -1;
  for (int i = 0; i < b->nstale; i++)
    if (unlink(b->stale[i]) == 0)
      printf("lmgen: removed %s (no entry claims it)\n",
             path_display(b->stale[i]));
  /* the index of the database as it now is on disk (saved above or not):
   * a cache lmrun checks against the file's bytes, so not announced */
  if (dbindex_write(b->db_file, b->out_dir, false, NULL, err) < 0)
    return -1;
  printf("lmgen: %d module%s, %d written, %d unchanged\n", b->n,
         b->n == 1 ? "" : "s", *count, b->n - *count);
  return 0;
}

void gen_batch_free(GenBatch *b) {
  for (int i = 0; i < b->n; i++) {
    free(b->t[i].path);
    free(b->t[i].text);
  }
  free(b->t);
  for (int i = 0; i < b->nstale; i++)
    free(b->stale[i]);
  free(b->stale);
  for (int i = 0; i < b->ntemps; i++)
    free(b->temps[i]);
  free(b->temps);
  free(b->db_file);
  memset(b, 0, sizeof(*b));
}

/* --check: report drift on stderr; 1 if any, else 0. */
static int check_batch(const GenBatch *b, const char *db_path) {
  int drift = 0;
  if (b->assigned > 0) { /* names decided just now, in memory only */
    fprintf(stderr, "lmgen: %d entr%s of %s lack stored names\n", b->assigned,
            b->assigned == 1 ? "y" : "ies", path_display(db_path));
    drift++;
  }
  for (int i = 0; i < b->n; i++)
    if (!fs_same_content(b->t[i].path, b->t[i].text, strlen(b->t[i].text))) {
      fprintf(stderr, "lmgen: %s is out of date\n", path_display(b->t[i].path));
      drift++;
    }
  for (int i = 0; i < b->nstale; i++) {
    fprintf(stderr, "lmgen: %s belongs to no entry\n",
            path_display(b->stale[i]));
    drift++;
  }
  for (int i = 0; i < b->ntemps; i++) {
    fprintf(stderr,
            "lmgen: %s is a temporary file left by an interrupted write "
            "(lmgen removes it)\n",
            path_display(b->temps[i]));
    drift++;
  }
  if (drift) {
    fprintf(stderr,
            "lmgen: generated code differs from %s: run `make "
            "generate` and commit the result\n",
            path_display(db_path));
    return 1;
  }
  printf("lmgen: %d generated file%s match %s and compile\n", b->n,
         b->n == 1 ? "" : "s", path_display(db_path));
  return 0;
}

/* The entries a.names name, in order. A name the database lacks is an
 * error, except one full (dotted) name alone outside --check: that is the
 * agent's case, *analyse is set and err is left clear. */
static ModuleDef **resolve_names(const GenArgs *a, const Db *db, int *n,
                                 bool *analyse, Error *err) {
  ModuleDef **roots = xcalloc((size_t)a->nnames + 1, sizeof(ModuleDef *));
  *n = 0;
  for (int i = 0; i < a->nnames; i++) {
    const char *name = a->names[i];
    ModuleDef *md = db_find(db, name, err);
    if (!md && !hashmap_get(&db->by_short, name)) {
      bool dotted = strchr(name, '.') != NULL;
      err_clear(err);
      if (dotted && a->nnames == 1 && !a->check)
        *analyse = true;
      else
        err_set(err, "module '%s' is not in %s; %s", name,
                path_display(a->db_path),
                !dotted    ? "to analyse a new module, give its full dotted "
                             "class name (package.module.Class)"
                : a->check ? "run lmgen NAME to analyse it"
                           : "analyse it on its own: lmgen NAME");
    }
    if (!md) {
      free(roots);
      return NULL;
    }
    roots[(*n)++] = md;
  }
  return roots;
}

int gen_run(const GenArgs *a) {
  Error err;
  err_clear(&err);
  int rc = 1, lockfd = -1, nroots = 0;
  GenBatch b = {0};
  Db *db = NULL;
  ModuleDef **roots = NULL;
  bool analyse = false;
  char note[1024];

  if (!a->check && !a->dry_run && (lockfd = gen_lock_db(a->db_path, &err)) < 0)
    goto out;
  if (a->index) { /* make: the index alone, from the database as it is */
    bool changed = false;
    if (dbindex_write(a->db_path, a->out_dir, false, &changed, &err) < 0)
      goto out;
    char *ip = path_join(a->out_dir, DBINDEX_FILE);
    printf("lmgen: %s %s\n", changed ? "wrote" : "up to date:",
           path_display(ip));
    free(ip);
    rc = 0;
    goto out;
  }
  if (!(db = db_load(a->db_path, &err)))
    goto out;
  if (a->all) {
    roots = xcalloc((size_t)db->nmods + 1, sizeof(ModuleDef *));
    for (int i = 0; i < db->nmods; i++)
      roots[nroots++] = db->mods[i];
  } else if (!(roots = resolve_names(a, db, &nroots, &analyse, &err))) {
    goto out;
  }
  if (gen_prepare(db, roots, nroots, a->out_dir, &b, &err) < 0)
    goto out;
  if (a->all)
    gen_find_stale(&b);
  gen_find_temps(&b, a->db_path);
  if (a->check) {
    rc = check_batch(&b, a->db_path);
    goto out;
  }
  snprintf(note, sizeof(note), "%s names for %d entr%s in %s",
           a->dry_run ? "would store" : "stored", b.assigned,
           b.assigned == 1 ? "y" : "ies", path_display(a->db_path));
  int count;
  if (gen_apply(&b, b.assigned > 0 ? db : NULL, b.assigned > 0 ? note : NULL,
                a->dry_run, &count, &err) < 0)
    goto out;
  if (a->dry_run)
    printf("lmgen: dry run: %d module%s, %d would be written; nothing "
           "written\n",
           b.n, b.n == 1 ? "" : "s", count);
  rc = 0;

out:
  if (err.set) {
    err_print(stderr, &err);
    rc = 1;
  }
  gen_batch_free(&b);
  free(roots);
  db_free(db);
  fs_unlock(lockfd);
  return analyse ? GEN_RUN_ANALYSE : rc;
}
