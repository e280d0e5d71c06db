/* arch.c: the architecture agent, `lmgen --arch X`.
 *
 * X is what lmrun takes (config_locate: a config.json, a snapshot
 * directory, a Hub id). The family's modeling file, the config, the known
 * modules and one existing template go to an LLM (or the answer comes from
 * --analysis FILE); the answer is a template. Under the database lock:
 * archaccept.c checks its shape; every class it names that the database
 * lacks is analysed by the module agent's prompt and checks (accept.c),
 * one request each, each entry checked against the database with the ones
 * before it; the candidate modules are emitted into memory and compiled
 * from there; then the template is loaded with the config (and, with
 * --force, with every config of the family in test/data/configs),
 * evaluated, and its parameter count compared with the reference. Only
 * then: the new modules' C files and module_db.json (the generator's
 * batch), then models/arch/<model_type>.json, each atomically, the entries
 * and the template marked pending. On any failure nothing is written and
 * the replies are saved.
 */
#include "agents.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The state of one run, freed at the end whatever happened. */
typedef struct Run {
  const ArchArgs *a;
  Error err;
  LlmConfig cfg;
  HttpOptions hopt;
  bool network, curl_up;
  ConfigText ct;
  char model_type[80];
  char *tpath;          /* arch_dir/<model_type>.json */
  char *arch_dir;
  Db *db;               /* the database as read (under the lock) */
  Db *cand;             /* the last candidate: db plus the new entries */
  Accepted *accs;       /* one per new class, chained */
  int naccs;
  char *by;
  Buf reply;            /* the template answer */
  char *reply_path;     /* where a rejected reply is saved */
  bool save;
  Buf mreply;           /* a rejected module answer */
  char *mreply_path;
  ConfigText *extra;    /* --force: the family's test configs */
  int nextra;
} Run;

static char *reply_file(const char *what) {
  const char *dir = getenv("LMGEN_REPLY_DIR");
  char name[300];
  snprintf(name, sizeof(name), "lmgen-reply-%s-%ld.txt", what, (long)getpid());
  return path_join(dir && *dir ? dir : NULL, name);
}

/* The checkpoint's total_size: the index next to the config (or in the
 * cached snapshot), else the Hub's for a Hub id. -1 without one. */
static double ckpt_bytes(Run *r) {
  Model dummy = {0};
  dummy.ckpt_bytes = -1;
  if (r->ct.dir)
    hub_read_index(&dummy, r->ct.dir);
  if (dummy.ckpt_bytes <= 0 && r->ct.id)
    return hub_index_total(r->ct.id, &r->err);
  return dummy.ckpt_bytes;
}

/* --force: every .json of test/data/configs of the family (as installed
 * next to module_db.json; none in an install without tests). */
static int family_configs(Run *r) {
  char *dir = path_join(lm_home(), "test/data/configs");
  DIR *d = opendir(dir);
  int rc = 0;
  if (!d)
    goto out;
  char *names[512];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 512) {
    size_t l = strlen(e->d_name);
    if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
      names[n++] = xstrdup(e->d_name);
  }
  closedir(d);
  for (int i = 1; i < n; i++) /* sorted: a stable order of checks */
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  for (int i = 0; i < n; i++) {
    char *p = path_join(dir, names[i]);
    ConfigText ct;
    char mt[80];
    Error e2;
    err_clear(&e2);
    if (config_locate(p, &ct, &e2) == 0 &&
        config_model_type(&ct, mt, sizeof(mt), &e2) == 0 &&
        strcmp(mt, r->model_type) == 0 &&
        strcmp(ct.path, r->ct.path) != 0) {
      r->extra = xrealloc(r->extra, sizeof(ConfigText) * (size_t)(r->nextra + 1));
      r->extra[r->nextra++] = ct;
    } else {
      config_text_free(&ct);
    }
    free(p);
    free(names[i]);
  }
out:
  free(dir);
  return rc;
}

/* The modeling file: --source, else under $LMGEN_SOURCE_ROOT. */
static int read_modeling(Run *r, ClassSource *src) {
  const char *roots = getenv("LMGEN_SOURCE_ROOT");
  if (r->a->source)
    return source_whole_file(r->a->source, src, &r->err);
  if (roots && *roots) {
    char mod[256];
    snprintf(mod, sizeof(mod), "transformers.models.%s.modeling_%s",
             r->model_type, r->model_type);
    return source_module_from_roots(roots, mod, src, &r->err);
  }
  err_set(&r->err,
          "no modeling source for model_type '%s': give --source PATH "
          "(modeling_%s.py) or set LMGEN_SOURCE_ROOT (a transformers "
          "checkout)",
          r->model_type, r->model_type);
  return -1;
}

/* One existing template as the worked example: llama's, else the first. */
static char *example_template(Run *r, char *type, size_t typesz) {
  char *p = path_join(r->arch_dir, "llama.json");
  char *t = fs_read(p, NULL, NULL);
  free(p);
  if (t) {
    snprintf(type, typesz, "llama");
    return t;
  }
  DIR *d = opendir(r->arch_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l > 5 && l < typesz + 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
      p = path_join(r->arch_dir, e->d_name);
      t = fs_read(p, NULL, NULL);
      free(p);
      if (t) {
        snprintf(type, typesz, "%.*s", (int)(l - 5), e->d_name);
        break;
      }
    }
  }
  if (d)
    closedir(d);
  if (!t) {
    snprintf(type, typesz, "(none)");
    t = xstrdup("(no template exists yet)");
  }
  return t;
}

/* Ask the LLM; the reply text into out. */
static int ask(Run *r, const Prompt *pr, Buf *out) {
  Buf raw;
  buf_init(&raw);
  int rc = llm_ask(&r->cfg, http_curl(), &r->hopt, pr->system, pr->user, out,
                   &raw, stderr, &r->err);
  if (rc < 0 && raw.len) { /* keep what the API said */
    buf_reset(out);
    buf_puts(out, buf_str(&raw));
  }
  buf_free(&raw);
  return rc;
}

/* Analyse one class the template names and the database lacks, against
 * the latest candidate; on success the candidate grows by its entry. */
static int analyse_class(Run *r, const char *full, const char *date) {
  const char *short_name = strrchr(full, '.') + 1;
  ClassSource src = {0};
  Prompt pr = {0};
  json_t *source_json = NULL;
  int rc = -1;
  const char *roots = getenv("LMGEN_SOURCE_ROOT");
  Error e;
  err_clear(&e);
  int got = -1;
  if (r->a->source)
    got = source_from_file(r->a->source, short_name, &src, &e);
  if (got < 0 && roots && *roots) {
    err_clear(&e);
    got = source_from_roots(roots, full, &src, &e);
  }
  if (got < 0) {
    r->err = e;
    err_prefix(&r->err, "the template names %s, which the database lacks: ",
               full);
    goto out;
  }
  source_json = json_pack("{s:s, s:i, s:i}", "file", src.file, "line_start",
                          src.line_start, "line_end", src.line_end);
  const Db *cur = r->cand ? r->cand : r->db;
  PromptInput pin = {.db = cur, .full_name = full, .source = &src};
  if (prompt_build(&pin, &pr, &r->err) < 0)
    goto out;
  printf("lmgen: the template names %s, which the database lacks: asking "
         "%s about it, from %s lines %d-%d\n",
         full, r->cfg.model, src.file, src.line_start, src.line_end);
  fflush(stdout);
  free(r->mreply_path);
  r->mreply_path = reply_file(short_name);
  buf_reset(&r->mreply);
  if (ask(r, &pr, &r->mreply) < 0) {
    r->save = r->mreply.len > 0;
    goto out;
  }
  AcceptOpts ao = {.full_name = full,
                   .by = r->by,
                   .date = date,
                   .source = source_json,
                   .reply_name = path_display(r->mreply_path)};
  r->accs = xrealloc(r->accs, sizeof(Accepted) * (size_t)(r->naccs + 1));
  Accepted *acc = &r->accs[r->naccs];
  memset(acc, 0, sizeof(*acc));
  buf_init(&acc->notes);
  if (accept_answer(cur, buf_str(&r->mreply), r->mreply.len, &ao, acc,
                    &r->err) < 0) {
    accepted_free(acc);
    r->save = true;
    goto out;
  }
  r->naccs++;
  r->cand = acc->db;
  agent_print_accepted(full, NULL, acc);
  buf_reset(&r->mreply); /* accepted: not saved */
  rc = 0;
out:
  json_decref(source_json);
  source_free(&src);
  prompt_free(&pr);
  return rc;
}

int arch_run(const ArchArgs *a) {
  Run R = {.a = a, .network = !a->analysis};
  Run *r = &R;
  err_clear(&r->err);
  buf_init(&r->reply);
  buf_init(&r->mreply);
  ClassSource src = {0};
  Prompt pr = {0};
  ArchAnswer ans = {0};
  buf_init(&ans.notes);
  GenBatch batch = {0};
  Registry *reg = NULL;
  const char **unknown = NULL;
  int nunknown = 0, lockfd = -1, rc = 1;
  char *example = NULL, *current = NULL, *text = NULL;
  ModuleDef **newmods = NULL;
  Buf b;
  buf_init(&b);

  r->arch_dir = a->arch_dir ? xstrdup(a->arch_dir) : arch_dir_default();
  if (config_locate(a->arg, &r->ct, &r->err) < 0 ||
      config_model_type(&r->ct, r->model_type, sizeof(r->model_type),
                        &r->err) < 0)
    goto out;
  buf_printf(&b, "%s.json", r->model_type);
  r->tpath = path_join(r->arch_dir, buf_str(&b));
  buf_reset(&b);
  struct stat st;
  bool exists = stat(r->tpath, &st) == 0;
  if (exists && !a->force) {
    err_set(&r->err,
            "%s exists: lmrun already reads model_type '%s'; add --force to "
            "analyse the family again",
            path_display(r->tpath), r->model_type);
    goto out;
  }
  if (!exists && a->force) {
    err_set(&r->err, "--force re-analyses a template, and %s does not exist",
            path_display(r->tpath));
    goto out;
  }
  if (exists && !(current = fs_read(r->tpath, NULL, &r->err)))
    goto out;
  if (a->force && family_configs(r) < 0)
    goto out;
  /* the reference, before any token is spent */
  double ckpt = a->expect_params > 0 ? -1 : ckpt_bytes(r);
  if (r->err.set)
    goto out;
  if (a->expect_params <= 0 && ckpt <= 0 && !a->no_param_check) {
    err_set(&r->err,
            "no parameter count to check the template against: %s has no "
            "model.safetensors.index.json%s; give --expect-params N (the "
            "model card's count) or, to accept the template unchecked, "
            "--no-param-check",
            path_display(r->ct.path),
            r->ct.id ? " in the cache or on the Hub" : " next to it");
    goto out;
  }
  if (!(r->db = db_load(a->db_path, &r->err)))
    goto out;
  if (r->network && (llm_config_from_env(&r->cfg, &r->err) < 0 ||
                     http_options_from_env(&r->hopt, &r->err) < 0))
    goto out;
  if (a->source || r->network)
    if (read_modeling(r, &src) < 0)
      goto out;

  if (r->network) {
    buf_printf(&b, "arch-%s", r->model_type);
    r->reply_path = reply_file(buf_str(&b));
    buf_reset(&b);
    buf_printf(&b, "agent:%s", r->cfg.model);
    r->by = buf_steal(&b);
    char etype[80];
    example = example_template(r, etype, sizeof(etype));
    ArchPromptInput pin = {.db = r->db,
                           .model_type = r->model_type,
                           .config_file = path_display(r->ct.path),
                           .config = r->ct.text,
                           .source_file = src.file,
                           .source = src.text,
                           .example_type = etype,
                           .example = example,
                           .current = current,
                           .run_vars = run_var_name,
                           .nrun_vars = V_COUNT};
    if (prompt_build_arch(&pin, &pr, &r->err) < 0)
      goto out;
    if (http_global_init(&r->err) < 0)
      goto out;
    r->curl_up = true;
    printf("lmgen: asking %s (%s API) for the template of model_type '%s', "
           "from %s\n",
           r->cfg.model, llm_style_name(r->cfg.style), r->model_type,
           src.file);
    fflush(stdout);
    if (ask(r, &pr, &r->reply) < 0) {
      r->save = r->reply.len > 0;
      goto out;
    }
  } else {
    size_t len;
    char *t = fs_read(a->analysis, &len, &r->err);
    if (!t)
      goto out;
    buf_append(&r->reply, t, len);
    free(t);
    const char *slash = strrchr(a->analysis, '/');
    buf_printf(&b, "analysis:%s", slash ? slash + 1 : a->analysis);
    r->by = buf_steal(&b);
  }

  if (!a->dry_run) {
    /* re-read under the lock: a run that finished meanwhile is kept */
    db_free(r->db);
    r->db = NULL;
    if ((lockfd = gen_lock_db(a->db_path, &r->err)) < 0)
      goto out;
    agent_test_lock_delay();
    if (!(r->db = db_load(a->db_path, &r->err)))
      goto out;
    if (!a->force && stat(r->tpath, &st) == 0) {
      err_set(&r->err, "%s was written meanwhile; nothing changed",
              path_display(r->tpath));
      goto out;
    }
  }
  const char *rname = r->reply_path ? path_display(r->reply_path) : a->analysis;
  r->save = r->network;
  if (arch_parse_answer(buf_str(&r->reply), r->reply.len, r->model_type, rname,
                        &ans, &r->err) < 0 ||
      arch_unknown_classes(&ans, r->db, &unknown, &nunknown, &r->err) < 0)
    goto out;
  char date[16];
  agent_today(date, sizeof(date));
  for (int i = 0; i < nunknown; i++) {
    if (!r->network) {
      err_set(&r->err,
              "the template names %s, which the database lacks; --analysis "
              "never asks the network: analyse it first (`lmgen %s`), or "
              "run without --analysis",
              unknown[i], unknown[i]);
      goto out;
    }
    if (analyse_class(r, unknown[i], date) < 0)
      goto out;
  }
  const Db *fin = r->cand ? r->cand : r->db;
  if (r->naccs) {
    newmods = xcalloc((size_t)r->naccs, sizeof(ModuleDef *));
    for (int i = 0; i < r->naccs; i++)
      newmods[i] = hashmap_get(&fin->by_full, unknown[i]);
    if (gen_prepare((Db *)fin, newmods, r->naccs, a->out_dir, &batch,
                    &r->err) < 0)
      goto out;
  }
  reg = reg_open(fin, a->out_dir, &r->err);
  for (int i = 0; i < batch.n; i++)
    reg_set_text(reg, batch.t[i].md->full_name, batch.t[i].text);
  ArchCheck chk = {.reg = reg,
                   .cfg = &r->ct,
                   .extra = r->extra,
                   .nextra = r->nextra,
                   .ckpt_bytes = ckpt,
                   .expect_params = a->expect_params};
  double params, ref;
  if (arch_check(&ans, &chk, &params, &ref, &r->err) < 0)
    goto out;
  text = arch_template_text(&ans, r->by, date);

  printf("lmgen: the template for model_type '%s' passed every check\n",
         r->model_type);
  if (ref > 0)
    printf("lmgen: %.0f parameters with %s; reference %.0f (%s): %+.3f%%\n",
           params, path_display(r->ct.path), ref,
           a->expect_params > 0 ? "--expect-params" : "the checkpoint",
           (params - ref) / ref * 100);
  else
    printf("lmgen: %.0f parameters with %s; NOT checked against any "
           "reference (--no-param-check)\n",
           params, path_display(r->ct.path));
  if (r->nextra)
    printf("lmgen: also loads and evaluates with %d more config%s of the "
           "family\n",
           r->nextra, r->nextra == 1 ? "" : "s");
  for (char *line = ans.notes.data, *nl; line && *line; line = nl + 1) {
    nl = strchr(line, '\n');
    printf("lmgen: note: %.*s\n", (int)(nl ? nl - line : (long)strlen(line)),
           line);
    if (!nl)
      break;
  }
  r->save = false;
  if (r->naccs) {
    buf_reset(&b);
    if (a->dry_run)
      buf_printf(&b, "would add %d module%s to %s", r->naccs,
                 r->naccs == 1 ? "" : "s", path_display(a->db_path));
    else
      buf_printf(&b, "added %d module%s to %s (validation: pending)",
                 r->naccs, r->naccs == 1 ? "" : "s", path_display(a->db_path));
    int count;
    if (gen_apply(&batch, fin, buf_str(&b), a->dry_run, &count, &r->err) < 0)
      goto out;
  }
  if (a->dry_run) {
    printf("lmgen: would %s %s:\n%s", exists ? "rewrite" : "write",
           path_display(r->tpath), text);
    printf("lmgen: dry run: nothing written\n");
  } else {
    if (fs_write_atomic(r->tpath, text, strlen(text), &r->err) < 0)
      goto out;
    printf("lmgen: %s %s (validation: pending)\n",
           exists ? "rewrote" : "wrote", path_display(r->tpath));
  }
  rc = 0;

out:
  if (r->err.set) {
    llm_redact_error(&r->err, r->cfg.key);
    err_print(stderr, &r->err);
    rc = 1;
  }
  if (r->save && r->reply_path && r->reply.len)
    agent_save_reply(r->reply_path, buf_str(&r->reply), r->cfg.key);
  if (r->save && r->mreply_path && r->mreply.len)
    agent_save_reply(r->mreply_path, buf_str(&r->mreply), r->cfg.key);
  reg_free(reg);
  gen_batch_free(&batch);
  free(newmods);
  free(unknown);
  arch_answer_free(&ans);
  for (int i = r->naccs - 1; i >= 0; i--)
    accepted_free(&r->accs[i]);
  free(r->accs);
  db_free(r->db);
  fs_unlock(lockfd);
  for (int i = 0; i < r->nextra; i++)
    config_text_free(&r->extra[i]);
  free(r->extra);
  source_free(&src);
  prompt_free(&pr);
  config_text_free(&r->ct);
  buf_free(&r->reply);
  buf_free(&r->mreply);
  buf_free(&b);
  free(r->reply_path);
  free(r->mreply_path);
  free(r->tpath);
  free(r->arch_dir);
  free(r->by);
  free(example);
  free(current);
  free(text);
  llm_config_free(&r->cfg);
  if (r->curl_up)
    http_global_cleanup();
  return rc;
}
