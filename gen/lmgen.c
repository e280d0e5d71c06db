/* lmgen.c: the lmgen command.
 *
 *   lmgen [--db PATH] [--out DIR] [--check] [--dry-run] [--all | NAME...]
 *   lmgen [--force] [--analysis FILE] [--source PATH] [--dry-run] NAME
 *
 * Loads and checks the whole database (any error stops everything before a
 * byte is written), decides and stores names for entries that lack them,
 * emits every target into memory, then writes: module_db.json first (only
 * if names were added), then each changed C file, each atomically. With
 * --all, generated files that no entry claims any more are removed. With
 * --check nothing is written: lmgen reports drift between the database and
 * the generated files and exits 1 if there is any (CI runs this).
 *
 * A full class name the database does not know, --force, or --analysis
 * runs the agent (include/agents.h): the class's source goes to an LLM (or
 * the answer comes from FILE), the answer passes accept.c's checks against
 * the database re-read under the lock, and only then are module_db.json
 * and the entry's C file written. A known name never touches the network.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "agents.h"
#include "gen.h"
#include "runtime.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out) {
  fputs("usage: lmgen [--db PATH] [--out DIR] [--check] [--dry-run] "
        "[--all | NAME...]\n"
        "       lmgen [--force] [--analysis FILE] [--source PATH] [--dry-run] "
        "NAME\n"
        "\n"
        "Generate C calculator modules from the module database; analyse a\n"
        "module the database does not know with an LLM agent.\n"
        "\n"
        "  NAME           full class name (torch.nn.modules.activation.SiLU)\n"
        "                 or short name (SiLU); its callees are generated too.\n"
        "                 A full name the database does not know is analysed\n"
        "                 by the agent, then generated\n"
        "  --all          every entry; removes generated files no entry claims\n"
        "  --db PATH      module database (default: module_db.json of the\n"
        "                 install, found next to the lmgen executable)\n"
        "  --out DIR      output directory (default: generated_modules/)\n"
        "  --check        write nothing; exit 1 if any file or stored name\n"
        "                 differs from what generation would produce\n"
        "  --dry-run      write nothing; show what would change (for an\n"
        "                 analysis: old and new formulas)\n"
        "  --force        analyse NAME again although it is known; replaces\n"
        "                 its formulas, keeps its parameters and stored names\n"
        "  --analysis FILE  take the answer from FILE (an entry as JSON, or a\n"
        "                 whole LLM reply) instead of the network; same checks\n"
        "  --source PATH  the Python file defining NAME (default: found under\n"
        "                 $LMGEN_SOURCE_ROOT)\n"
        "  -h, --help     this help\n"
        "\n"
        "The agent reads LMGEN_API_URL, LMGEN_API_KEY, LMGEN_MODEL and\n"
        "LMGEN_API_STYLE (anthropic or openai); see README.md.\n",
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

/* Temporary files an interrupted write left behind: <file>.c.tmp.XXXXXX
 * in the output directory and <db>.tmp.XXXXXX beside the database (the
 * file a symlinked database names). Appended to *out; returns the count. */
static int temp_files(const char *out_dir, const char *db_path, char ***out) {
  int n = 0;
  *out = NULL;
  char *real = realpath(db_path, NULL);
  const char *dbp = real ? real : db_path;
  const char *slash = strrchr(dbp, '/');
  char *db_dir = slash ? xstrndup(dbp, (size_t)(slash - dbp + (slash == dbp)))
                       : xstrdup(".");
  const char *dirs[2] = {out_dir, db_dir};
  for (int k = 0; k < 2; k++) {
    if (k == 1 && strcmp(dirs[0], dirs[1]) == 0)
      break;
    DIR *d = opendir(dirs[k]);
    if (!d)
      continue;
    struct dirent *de;
    while ((de = readdir(d))) {
      const char *name = de->d_name;
      bool ours = is_temp_of(name, base_name(dbp));
      const char *t = strstr(name, ".c.tmp.");
      if (!ours && t) {
        char *prefix = xstrndup(name, (size_t)(t - name) + 2);
        ours = is_temp_of(name, prefix);
        free(prefix);
      }
      if (!ours)
        continue;
      *out = xrealloc(*out, sizeof(char *) * (size_t)(n + 1));
      (*out)[n++] = path_join(dirs[k], name);
    }
    closedir(d);
  }
  free(db_dir);
  free(real);
  return n;
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

/* Emit set[0..n) into memory, names decided. */
static int emit_targets(ModuleDef **set, int n, const char *out_dir,
                        const char *db_name, Target **out, int *nout,
                        Error *err) {
  *out = xcalloc((size_t)n + 1, sizeof(Target));
  *nout = 0;
  for (int i = 0; i < n; i++) {
    Target *t = &(*out)[(*nout)++];
    t->md = set[i];
    t->path = path_join(out_dir, set[i]->file_name);
    t->text = emit_module(set[i], db_name, err);
    if (!t->text)
      return -1;
  }
  return 0;
}

/* Write each target whose file differs (or say it would, on a dry run). */
static int write_targets(Target *t, int n, bool dry_run, int *written,
                         Error *err) {
  *written = 0;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(t[i].text);
    if (fs_same_content(t[i].path, t[i].text, len))
      continue;
    if (dry_run) {
      printf("lmgen: would write %s\n", path_display(t[i].path));
    } else {
      if (fs_write_atomic(t[i].path, t[i].text, len, err) < 0)
        return -1;
      printf("lmgen: wrote %s\n", path_display(t[i].path));
    }
    (*written)++;
  }
  return 0;
}

/* Compile the emitted texts with libtcc as the runtime does (the modabi.h
 * prelude, one state, -Werror): code that does not build is an error,
 * located in the generated file, before anything is written. */
static int compile_targets(const Target *t, int n, Error *err) {
  if (n == 0)
    return 0;
  const char **paths = xcalloc((size_t)n, sizeof(char *));
  const char **texts = xcalloc((size_t)n, sizeof(char *));
  for (int i = 0; i < n; i++) {
    paths[i] = path_display(t[i].path);
    texts[i] = t[i].text;
  }
  Jit *j = jit_compile(paths, texts, n, err);
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

static void free_targets(Target *t, int n) {
  for (int i = 0; i < n; i++) {
    free(t[i].path);
    free(t[i].text);
  }
  free(t);
}

static char *lock_path_of(const char *db_path) {
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s.lock", db_path);
  return buf_steal(&b);
}

/* ===== the agent ===== */

typedef struct AgentArgs {
  const char *db_path, *out_dir;
  const char *name;     /* as given */
  bool force, dry_run;
  const char *analysis; /* --analysis FILE, or NULL */
  const char *source;   /* --source PATH, or NULL */
} AgentArgs;

static void today(char *out, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%d", &tm);
}

/* Save a failed reply for inspection: $LMGEN_REPLY_DIR or the working
 * directory, lmgen-reply-<class>-<pid>.txt. The text is already redacted. */
static void save_reply(const char *path, const char *text, const char *key) {
  char *red = llm_redact(text, key);
  Error e;
  err_clear(&e);
  if (fs_write_atomic(path, red, strlen(red), &e) == 0)
    fprintf(stderr, "lmgen: the reply is saved in %s\n", path_display(path));
  else
    fprintf(stderr, "lmgen: could not save the reply: %s\n", e.msg);
  free(red);
}

static void print_error(Error *err, const char *key) {
  llm_redact_error(err, key);
  err_print(stderr, err);
}

/* Hold the lock a while before reading: lets the tests overlap two runs
 * deterministically. */
static void test_lock_delay(void) {
  const char *s = getenv("LMGEN_TEST_LOCK_DELAY_MS");
  long ms = s ? strtol(s, NULL, 10) : 0;
  if (ms > 0 && ms <= 10000) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static int agent_main(const AgentArgs *a) {
  Error err;
  err_clear(&err);
  int rc = 1, lockfd = -1;
  LlmConfig cfg = {0};
  HttpOptions hopt;
  ClassSource src = {0};
  Prompt prompt = {0};
  Buf text, raw;
  buf_init(&text);
  buf_init(&raw);
  Accepted acc = {0};
  buf_init(&acc.notes);
  Db *db = NULL;
  json_t *source_json = NULL;
  char *full = NULL, *by = NULL, *reply_path = NULL, *lock_path = NULL;
  Target *targets = NULL;
  int ntargets = 0;
  bool network = !a->analysis, curl_up = false, save = false;

  db = db_load(a->db_path, &err);
  if (!db)
    goto out;
  ModuleDef *known = hashmap_get(&db->by_full, a->name);
  if (!known) {
    Error e;
    err_clear(&e);
    known = db_find(db, a->name, &e);
    if (!known && hashmap_get(&db->by_short, a->name)) {
      err = e; /* ambiguous short name */
      goto out;
    }
  }
  if (!known) {
    json_t *j = json_string(a->name);
    int bad = !strchr(a->name, '.') ||
              schema_validate_def(schema_module_db(), "full_name", j, NULL,
                                  NULL, NULL, 0, NULL) < 0;
    json_decref(j);
    if (bad) {
      err_set(&err,
              "module '%s' is not in %s; to analyse a new module, give its "
              "full dotted class name (package.module.Class)",
              a->name, path_display(a->db_path));
      goto out;
    }
  }
  if (known && !a->force) {
    err_set(&err,
            "%s is already in %s; add --force to analyse it again (plain "
            "`lmgen %s` regenerates it without the agent)",
            known->full_name, path_display(a->db_path), a->name);
    goto out;
  }
  /* fail at once when the agent is not configured */
  if (network && (llm_config_from_env(&cfg, &err) < 0 ||
                  http_options_from_env(&hopt, &err) < 0))
    goto out;
  full = xstrdup(known ? known->full_name : a->name);
  const char *short_name = strrchr(full, '.') + 1;

  if (a->source || network) {
    const char *roots = getenv("LMGEN_SOURCE_ROOT");
    int src_rc;
    if (a->source)
      src_rc = source_from_file(a->source, short_name, &src, &err);
    else if (roots && *roots)
      src_rc = source_from_roots(roots, full, &src, &err);
    else {
      err_set(&err,
              "no source for %s: give --source PATH (the Python file "
              "defining it) or set LMGEN_SOURCE_ROOT (a transformers or "
              "torch checkout)",
              full);
      src_rc = -1;
    }
    if (src_rc < 0)
      goto out;
    source_json = json_pack("{s:s, s:i, s:i}", "file", src.file, "line_start",
                            src.line_start, "line_end", src.line_end);
  }

  Buf b;
  buf_init(&b);
  if (network) {
    const char *dir = getenv("LMGEN_REPLY_DIR");
    char name[300];
    snprintf(name, sizeof(name), "lmgen-reply-%s-%ld.txt", short_name,
             (long)getpid());
    reply_path = path_join(dir && *dir ? dir : NULL, name);
    buf_printf(&b, "agent:%s", cfg.model);
    by = buf_steal(&b);

    PromptInput pin = {
        .db = db, .full_name = full, .current = known, .source = &src};
    if (prompt_build(&pin, &prompt, &err) < 0)
      goto out;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_up = true;
    printf("lmgen: asking %s (%s API) about %s, from %s lines %d-%d\n",
           cfg.model, llm_style_name(cfg.style), full, src.file,
           src.line_start, src.line_end);
    fflush(stdout);
    if (llm_ask(&cfg, http_curl(), &hopt, prompt.system, prompt.user, &text,
                &raw, stderr, &err) < 0) {
      if (raw.len) { /* keep what the API said */
        buf_reset(&text);
        buf_puts(&text, buf_str(&raw));
        save = true;
      }
      goto out;
    }
  } else {
    size_t len;
    char *t = fs_read(a->analysis, &len, &err);
    if (!t)
      goto out;
    buf_append(&text, t, len);
    free(t);
    const char *slash = strrchr(a->analysis, '/');
    buf_printf(&b, "analysis:%s", slash ? slash + 1 : a->analysis);
    by = buf_steal(&b);
  }

  char date[16];
  today(date, sizeof(date));
  AcceptOpts ao = {.full_name = full,
                   .by = by,
                   .date = date,
                   .source = source_json,
                   .reply_name = reply_path ? path_display(reply_path)
                                            : a->analysis};
  if (!a->dry_run) {
    /* re-read under the lock: a run that finished meanwhile is kept */
    db_free(db);
    db = NULL;
    lock_path = lock_path_of(a->db_path);
    lockfd = fs_lock(lock_path, &err);
    if (lockfd < 0)
      goto out;
    test_lock_delay();
    db = db_load(a->db_path, &err);
    if (!db)
      goto out;
  }
  const ModuleDef *old = hashmap_get(&db->by_full, full);
  if (accept_answer(db, buf_str(&text), text.len, &ao, &acc, &err) < 0) {
    save = network;
    goto out;
  }
  printf("lmgen: the answer for %s passed every check\n", full);
  Buf diff;
  buf_init(&diff);
  accept_diff(old, acc.md, &diff);
  fputs(buf_str(&diff), stdout);
  buf_free(&diff);
  if (acc.notes.len) {
    for (char *line = acc.notes.data, *nl; line && *line; line = nl + 1) {
      nl = strchr(line, '\n');
      printf("lmgen: note: %.*s\n", (int)(nl ? nl - line : (long)strlen(line)),
             line);
      if (!nl)
        break;
    }
  }

  /* the entry and its callees, from the candidate database */
  ModuleDef **set = xcalloc((size_t)acc.db->nmods + 1, sizeof(ModuleDef *));
  bool *in = xcalloc((size_t)acc.db->nmods + 1, sizeof(bool));
  int nset = 0;
  add_module(acc.md, set, &nset, in);
  free(in);
  int rcn = db_assign_names(acc.db, set, nset, &err);
  int rce = rcn < 0 ? -1
                    : emit_targets(set, nset, a->out_dir,
                                   base_name(a->db_path), &targets, &ntargets,
                                   &err);
  free(set);
  if (rce < 0 || compile_targets(targets, ntargets, &err) < 0)
    goto out;
  if (a->dry_run) {
    int would;
    printf("lmgen: would update %s\n", path_display(a->db_path));
    write_targets(targets, ntargets, true, &would, &err);
    printf("lmgen: dry run: nothing written\n");
    rc = 0;
    goto out;
  }
  if (mkdir(a->out_dir, 0755) != 0 && errno != EEXIST) {
    err_file(&err, a->out_dir, "cannot create directory: %s", strerror(errno));
    goto out;
  }
  if (db_save(acc.db, &err) < 0)
    goto out;
  printf("lmgen: %s %s in %s (validation: pending)\n",
         acc.is_new ? "added" : "updated", full, path_display(a->db_path));
  int written;
  if (write_targets(targets, ntargets, false, &written, &err) < 0)
    goto out;
  printf("lmgen: %d module%s, %d written, %d unchanged\n", ntargets,
         ntargets == 1 ? "" : "s", written, ntargets - written);
  rc = 0;

out:
  if (err.set) {
    print_error(&err, cfg.key);
    rc = 1;
  }
  if (save && reply_path)
    save_reply(reply_path, buf_str(&text), cfg.key);
  free_targets(targets, ntargets);
  accepted_free(&acc);
  db_free(db);
  fs_unlock(lockfd);
  free(lock_path);
  json_decref(source_json);
  source_free(&src);
  prompt_free(&prompt);
  buf_free(&text);
  buf_free(&raw);
  free(full);
  free(by);
  free(reply_path);
  llm_config_free(&cfg);
  if (curl_up)
    curl_global_cleanup();
  return rc;
}

/* ===== main ===== */

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *db_path = path_join(home, "module_db.json");
  char *out_dir = path_join(home, "generated_modules");
  bool all = false, check = false, dry_run = false, force = false;
  const char *analysis = NULL, *source = NULL;
  static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                       {"out", required_argument, 0, 'o'},
                                       {"all", no_argument, 0, 'a'},
                                       {"check", no_argument, 0, 'c'},
                                       {"dry-run", no_argument, 0, 'n'},
                                       {"force", no_argument, 0, 'f'},
                                       {"analysis", required_argument, 0, 'A'},
                                       {"source", required_argument, 0, 's'},
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
    case 'n':
      dry_run = true;
      break;
    case 'f':
      force = true;
      break;
    case 'A':
      analysis = optarg;
      break;
    case 's':
      source = optarg;
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
  const char *bad = NULL;
  bool agent = force || analysis || source;
  if (all == (optind < argc))
    bad = all ? "give --all or names, not both"
              : "nothing to generate: give NAME... or --all";
  else if (check && dry_run)
    bad = "give --check or --dry-run, not both";
  else if (agent && (all || check))
    bad = "--force, --analysis and --source take one NAME, without --all or "
          "--check";
  else if (agent && argc - optind != 1)
    bad = "--force, --analysis and --source analyse one NAME at a time";
  if (bad) {
    fprintf(stderr, "lmgen: %s\n", bad);
    usage(stderr);
    free(db_path);
    free(out_dir);
    return 2;
  }
  AgentArgs aa = {.db_path = db_path,
                  .out_dir = out_dir,
                  .name = optind < argc ? argv[optind] : NULL,
                  .force = force,
                  .dry_run = dry_run,
                  .analysis = analysis,
                  .source = source};
  if (agent) {
    int rc = agent_main(&aa);
    free(db_path);
    free(out_dir);
    return rc;
  }

  Error err;
  err_clear(&err);
  int rc = 1, lockfd = -1, ntargets = 0;
  Target *targets = NULL;
  char **stale = NULL, **temps = NULL;
  int nstale = 0, ntemp = 0;
  Db *db = NULL;
  bool go_agent = false;

  if (!check && !dry_run) {
    char *lock_path = lock_path_of(db_path);
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
      if (!md && !hashmap_get(&db->by_short, argv[i])) {
        /* not in the database: a full name alone goes to the agent */
        bool dotted = strchr(argv[i], '.') != NULL;
        err_clear(&err);
        if (dotted && argc - optind == 1 && !check)
          go_agent = true;
        else
          err_set(&err, "module '%s' is not in %s; %s", argv[i],
                  path_display(db_path),
                  !dotted ? "to analyse a new module, give its full dotted "
                            "class name (package.module.Class)"
                  : check ? "run lmgen NAME to analyse it"
                          : "analyse it on its own: lmgen NAME");
      }
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
  int rce = emit_targets(set, nset, out_dir, base_name(db_path), &targets,
                         &ntargets, &err);
  free(set);
  if (rce < 0)
    goto out;
  if (all)
    nstale = stale_files(out_dir, targets, ntargets, &stale);
  ntemp = temp_files(out_dir, db_path, &temps);
  if (!check && compile_targets(targets, ntargets, &err) < 0)
    goto out;

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
    for (int i = 0; i < ntemp; i++) {
      fprintf(stderr,
              "lmgen: %s is a temporary file left by an interrupted write "
              "(lmgen removes it)\n",
              path_display(temps[i]));
      drift++;
    }
    if (drift)
      fprintf(stderr, "lmgen: generated code differs from %s: run `make "
                      "generate` and commit the result\n",
              path_display(db_path));
    if (compile_targets(targets, ntargets, &err) < 0) {
      rc = 1;
      goto out;
    }
    if (drift) {
      rc = 1;
    } else {
      printf("lmgen: %d generated file%s match %s and compile\n", ntargets,
             ntargets == 1 ? "" : "s", path_display(db_path));
      rc = 0;
    }
    goto out;
  }

  if (dry_run) {
    int would;
    if (assigned > 0)
      printf("lmgen: would store names for %d entr%s in %s\n", assigned,
             assigned == 1 ? "y" : "ies", path_display(db_path));
    write_targets(targets, ntargets, true, &would, &err);
    for (int i = 0; i < nstale; i++)
      printf("lmgen: would remove %s (no entry claims it)\n",
             path_display(stale[i]));
    for (int i = 0; i < ntemp; i++)
      printf("lmgen: would remove %s (left by an interrupted write)\n",
             path_display(temps[i]));
    printf("lmgen: dry run: %d module%s, %d would be written; nothing "
           "written\n",
           ntargets, ntargets == 1 ? "" : "s", would);
    rc = 0;
    goto out;
  }

  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    err_file(&err, out_dir, "cannot create directory: %s", strerror(errno));
    goto out;
  }
  /* under the lock no write is in progress: these are a dead run's */
  for (int i = 0; i < ntemp; i++)
    if (unlink(temps[i]) == 0)
      printf("lmgen: removed %s (left by an interrupted write)\n",
             path_display(temps[i]));
  if (assigned > 0) {
    if (db_save(db, &err) < 0)
      goto out;
    printf("lmgen: stored names for %d entr%s in %s\n", assigned,
           assigned == 1 ? "y" : "ies", path_display(db_path));
  }
  int written;
  if (write_targets(targets, ntargets, false, &written, &err) < 0)
    goto out;
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
  free_targets(targets, ntargets);
  for (int i = 0; i < nstale; i++)
    free(stale[i]);
  free(stale);
  for (int i = 0; i < ntemp; i++)
    free(temps[i]);
  free(temps);
  db_free(db);
  fs_unlock(lockfd);
  if (go_agent)
    rc = agent_main(&aa);
  free(db_path);
  free(out_dir);
  return rc;
}
