/* lmgen.c: the lmgen command.
 *
 *   lmgen [--db PATH] [--out DIR] [--check] [--all | NAME...]
 *
 * Loads and checks the whole database (any error stops everything before a
 * byte is written), decides and stores names for entries that lack them,
 * emits every target into memory, then writes: module_db.json first (only
 * if names were added), then each changed C file, each atomically. With
 * --all, generated files that no entry claims any more are removed. With
 * --check nothing is written: lmgen reports drift between the database and
 * the generated files and exits 1 if there is any (CI runs this).
 */
#include "gen.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out) {
  fputs("usage: lmgen [--db PATH] [--out DIR] [--check] [--all | NAME...]\n"
        "\n"
        "Generate C calculator modules from the module database.\n"
        "\n"
        "  NAME         full class name (torch.nn.modules.activation.SiLU)\n"
        "               or short name (SiLU); its callees are generated too\n"
        "  --all        every entry; removes generated files no entry claims\n"
        "  --db PATH    module database (default: module_db.json of the\n"
        "               install, found next to the lmgen executable)\n"
        "  --out DIR    output directory (default: generated_modules/)\n"
        "  --check      write nothing; exit 1 if any file or stored name\n"
        "               differs from what generation would produce\n"
        "  -h, --help   this help\n",
        out);
}

typedef struct Target {
  ModuleDef *md;
  char *path; /* out/<file_name> */
  char *text; /* generated source */
} Target;

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

/* Generated .c files in dir (first line carries the marker) that no
 * target claims. */
static int stale_files(const char *dir, Target *t, int nt, char ***out) {
  DIR *d = opendir(dir);
  int n = 0;
  *out = NULL;
  if (!d)
    return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len < 3 || strcmp(de->d_name + len - 2, ".c") != 0)
      continue;
    bool claimed = false;
    for (int i = 0; i < nt && !claimed; i++)
      claimed = strcmp(t[i].md->file_name, de->d_name) == 0;
    if (claimed)
      continue;
    char *p = path_join(dir, de->d_name);
    FILE *f = fopen(p, "r");
    char line[256] = "";
    if (f) {
      if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
      fclose(f);
    }
    if (strstr(line, EMIT_MARKER)) {
      *out = xrealloc(*out, sizeof(char *) * (size_t)(n + 1));
      (*out)[n++] = p;
    } else {
      free(p);
    }
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *db_path = path_join(home, "module_db.json");
  char *out_dir = path_join(home, "generated_modules");
  bool all = false, check = false;
  static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                       {"out", required_argument, 0, 'o'},
                                       {"all", no_argument, 0, 'a'},
                                       {"check", no_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'd':
      free(db_path);
      db_path = xstrdup(optarg);
      break;
    case 'o':
      free(out_dir);
      out_dir = xstrdup(optarg);
      break;
    case 'a':
      all = true;
      break;
    case 'c':
      check = true;
      break;
    case 'h':
      usage(stdout);
      free(db_path);
      free(out_dir);
      return 0;
    default:
      usage(stderr);
      free(db_path);
      free(out_dir);
      return 2;
    }
  }
  if (all == (optind < argc)) {
    fputs(all ? "lmgen: give --all or names, not both\n"
              : "lmgen: nothing to generate: give NAME... or --all\n",
          stderr);
    usage(stderr);
    free(db_path);
    free(out_dir);
    return 2;
  }

  Error err;
  err_clear(&err);
  int rc = 1, lockfd = -1, ntargets = 0;
  Target *targets = NULL;
  char **stale = NULL;
  int nstale = 0;
  Db *db = NULL;

  if (!check) {
    char *lock_path = xstrdup(db_path);
    lock_path = xrealloc(lock_path, strlen(lock_path) + 6);
    strcat(lock_path, ".lock");
    lockfd = fs_lock(lock_path, &err);
    free(lock_path);
    if (lockfd < 0)
      goto out;
  }
  db = db_load(db_path, &err);
  if (!db)
    goto out;

  ModuleDef **set = xcalloc((size_t)db->nmods + 1, sizeof(ModuleDef *));
  bool *in = xcalloc((size_t)db->nmods + 1, sizeof(bool));
  int nset = 0;
  if (all) {
    for (int i = 0; i < db->nmods; i++)
      add_module(db->mods[i], set, &nset, in);
  } else {
    for (int i = optind; i < argc; i++) {
      ModuleDef *md = db_find(db, argv[i], &err);
      if (!md) {
        free(set);
        free(in);
        goto out;
      }
      add_module(md, set, &nset, in);
    }
  }
  free(in);

  int assigned = db_assign_names(db, set, nset, &err);
  if (assigned < 0) {
    free(set);
    goto out;
  }
  targets = xcalloc((size_t)nset + 1, sizeof(Target));
  const char *db_name = base_name(db_path);
  for (int i = 0; i < nset; i++) {
    Target *t = &targets[ntargets++];
    t->md = set[i];
    t->path = path_join(out_dir, set[i]->file_name);
    t->text = emit_module(set[i], db_name, &err);
    if (!t->text) {
      free(set);
      goto out;
    }
  }
  free(set);
  if (all)
    nstale = stale_files(out_dir, targets, ntargets, &stale);

  if (check) {
    int drift = 0;
    if (assigned > 0) { /* names decided just now, in memory only */
      fprintf(stderr, "lmgen: %d entr%s of %s lack stored names\n", assigned,
              assigned == 1 ? "y" : "ies", path_display(db_path));
      drift++;
    }
    for (int i = 0; i < ntargets; i++)
      if (!fs_same_content(targets[i].path, targets[i].text,
                           strlen(targets[i].text))) {
        fprintf(stderr, "lmgen: %s is out of date\n",
                path_display(targets[i].path));
        drift++;
      }
    for (int i = 0; i < nstale; i++) {
      fprintf(stderr, "lmgen: %s belongs to no entry\n", path_display(stale[i]));
      drift++;
    }
    if (drift) {
      fprintf(stderr, "lmgen: generated code differs from %s: run `make "
                      "generate` and commit the result\n",
              path_display(db_path));
      rc = 1;
    } else {
      printf("lmgen: %d generated file%s match %s\n", ntargets,
             ntargets == 1 ? "" : "s", path_display(db_path));
      rc = 0;
    }
    goto out;
  }

  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    err_file(&err, out_dir, "cannot create directory: %s", strerror(errno));
    goto out;
  }
  if (assigned > 0) {
    if (db_save(db, &err) < 0)
      goto out;
    printf("lmgen: stored names for %d entr%s in %s\n", assigned,
           assigned == 1 ? "y" : "ies", path_display(db_path));
  }
  int written = 0;
  for (int i = 0; i < ntargets; i++) {
    Target *t = &targets[i];
    size_t len = strlen(t->text);
    if (fs_same_content(t->path, t->text, len))
      continue;
    if (fs_write_atomic(t->path, t->text, len, &err) < 0)
      goto out;
    printf("lmgen: wrote %s\n", path_display(t->path));
    written++;
  }
  for (int i = 0; i < nstale; i++) {
    if (unlink(stale[i]) == 0)
      printf("lmgen: removed %s (no entry claims it)\n", path_display(stale[i]));
  }
  printf("lmgen: %d module%s, %d written, %d unchanged\n", ntargets,
         ntargets == 1 ? "" : "s", written, ntargets - written);
  rc = 0;

out:
  if (err.set) {
    err_print(stderr, &err);
    rc = 1;
  }
  for (int i = 0; i < ntargets; i++) {
    free(targets[i].path);
    free(targets[i].text);
  }
  free(targets);
  for (int i = 0; i < nstale; i++)
    free(stale[i]);
  free(stale);
  db_free(db);
  fs_unlock(lockfd);
  free(db_path);
  free(out_dir);
  return rc;
}
