/* agent.c: the agent workflow, `lmgen NewModule`, `lmgen --force NAME`,
 * `lmgen --analysis FILE NAME`.
 *
 * The class's source goes to an LLM (or the answer comes from FILE), the
 * answer passes accept.c's checks against the database re-read under the
 * lock, and only then are module_db.json and the entry's C file written,
 * through the generator's batch (gen/generate.c) as any other generation.
 * A known name never touches the network. Progress goes to stdout; the
 * error (the API key redacted) and, for a rejected reply, where the reply
 * was saved go to stderr.
 */
#include "agents.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

void agent_today(char *out, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%d", &tm);
}

/* Save a failed reply for inspection: $LMGEN_REPLY_DIR or the working
 * directory, lmgen-reply-<class>-<pid>.txt. The text is already redacted. */
void agent_save_reply(const char *path, const char *text, const char *key) {
  char *red = llm_redact(text, key);
  Error e;
  err_clear(&e);
  if (fs_write_atomic(path, red, strlen(red), &e) == 0)
    fprintf(stderr, "lmgen: the reply is saved in %s\n", path_display(path));
  else
    fprintf(stderr, "lmgen: could not save the reply: %s\n", e.msg);
  free(red);
}

/* Hold the lock a while before reading: lets the tests overlap two runs
 * deterministically. */
void agent_test_lock_delay(void) {
  const char *s = getenv("LMGEN_TEST_LOCK_DELAY_MS");
  long ms = s ? strtol(s, NULL, 10) : 0;
  if (ms > 0 && ms <= 10000) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* The entry a->name names, or NULL for a class to add; -1 when the name
 * cannot be analysed (unknown short name, ambiguous, known without
 * --force). */
static int find_known(const AgentArgs *a, const Db *db, ModuleDef **known,
                      Error *err) {
  *known = hashmap_get(&db->by_full, a->name);
  if (!*known) {
    Error e;
    err_clear(&e);
    *known = db_find(db, a->name, &e);
    if (!*known && hashmap_get(&db->by_short, a->name)) {
      *err = e; /* ambiguous short name */
      return -1;
    }
  }
  if (!*known) {
    json_t *j = json_string(a->name);
    int bad = !strchr(a->name, '.') ||
              schema_validate_def(schema_module_db(), "full_name", j, NULL,
                                  NULL, NULL) < 0;
    json_decref(j);
    if (bad) {
      err_set(err,
              "module '%s' is not in %s; to analyse a new module, give its "
              "full dotted class name (package.module.Class)",
              a->name, path_display(a->db_path));
      return -1;
    }
  }
  if (*known && !a->force) {
    err_set(err,
            "%s is already in %s; add --force to analyse it again (plain "
            "`lmgen %s` regenerates it without the agent)",
            (*known)->full_name, path_display(a->db_path), a->name);
    return -1;
  }
  return 0;
}

/* The class's source: --source, else found under $LMGEN_SOURCE_ROOT. */
static int read_source(const AgentArgs *a, const char *full, ClassSource *src,
                       Error *err) {
  const char *roots = getenv("LMGEN_SOURCE_ROOT");
  if (a->source)
    return source_from_file(a->source, strrchr(full, '.') + 1, src, err);
  if (roots && *roots)
    return source_from_roots(roots, full, src, err);
  err_set(err,
          "no source for %s: give --source PATH (the Python file defining "
          "it) or set LMGEN_SOURCE_ROOT (a transformers or torch checkout)",
          full);
  return -1;
}

/* Print what accept_answer accepted: the verdict, the diff, the notes. */
void agent_print_accepted(const char *full, const ModuleDef *old,
                           const Accepted *acc) {
  printf("lmgen: the answer for %s passed every check\n", full);
  Buf diff;
  buf_init(&diff);
  accept_diff(old, acc->md, &diff);
  fputs(buf_str(&diff), stdout);
  buf_free(&diff);
  for (char *line = acc->notes.data, *nl; line && *line; line = nl + 1) {
    nl = strchr(line, '\n');
    printf("lmgen: note: %.*s\n", (int)(nl ? nl - line : (long)strlen(line)),
           line);
    if (!nl)
      break;
  }
}

int agent_run(const AgentArgs *a) {
  Error err;
  err_clear(&err);
  int rc = 1, lockfd = -1;
  LlmConfig cfg = {0};
  HttpOptions hopt;
  ClassSource src = {0};
  Prompt prompt = {0};
  Buf text, raw, b;
  buf_init(&text);
  buf_init(&raw);
  buf_init(&b);
  Accepted acc = {0};
  buf_init(&acc.notes);
  GenBatch batch = {0};
  Db *db = NULL;
  json_t *source_json = NULL;
  char *full = NULL, *by = NULL, *reply_path = NULL;
  bool network = !a->analysis, curl_up = false, save = false;
  ModuleDef *known = NULL;

  if (!(db = db_load(a->db_path, &err)) || find_known(a, db, &known, &err) < 0)
    goto out;
  /* fail at once when the agent is not configured */
  if (network && (llm_config_from_env(&cfg, &err) < 0 ||
                  http_options_from_env(&hopt, &err) < 0))
    goto out;
  full = xstrdup(known ? known->full_name : a->name);
  const char *short_name = strrchr(full, '.') + 1;

  if (a->source || network) {
    if (read_source(a, full, &src, &err) < 0)
      goto out;
    source_json = json_pack("{s:s, s:i, s:i}", "file", src.file, "line_start",
                            src.line_start, "line_end", src.line_end);
  }

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
    if (http_global_init(&err) < 0)
      goto out;
    curl_up = true;
    printf("lmgen: asking %s (%s API) about %s, from %s lines %d-%d\n",
           cfg.model, llm_style_name(cfg.style), full, src.file, src.line_start,
           src.line_end);
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
  agent_today(date, sizeof(date));
  AcceptOpts ao = {.full_name = full,
                   .by = by,
                   .date = date,
                   .source = source_json,
                   .reply_name =
                       reply_path ? path_display(reply_path) : a->analysis};
  if (!a->dry_run) {
    /* re-read under the lock: a run that finished meanwhile is kept */
    db_free(db);
    db = NULL;
    if ((lockfd = gen_lock_db(a->db_path, &err)) < 0)
      goto out;
    agent_test_lock_delay();
    if (!(db = db_load(a->db_path, &err)))
      goto out;
  }
  const ModuleDef *old = hashmap_get(&db->by_full, full);
  if (accept_answer(db, buf_str(&text), text.len, &ao, &acc, &err) < 0) {
    save = network;
    goto out;
  }
  agent_print_accepted(full, old, &acc);

  /* the entry and its callees, from the candidate database */
  if (gen_prepare(acc.db, &acc.md, 1, a->out_dir, &batch, &err) < 0)
    goto out;
  if (a->dry_run)
    buf_printf(&b, "would update %s", path_display(a->db_path));
  else
    buf_printf(&b, "%s %s in %s (validation: pending)",
               acc.is_new ? "added" : "updated", full,
               path_display(a->db_path));
  int count;
  if (gen_apply(&batch, acc.db, buf_str(&b), a->dry_run, &count, &err) < 0)
    goto out;
  if (a->dry_run)
    printf("lmgen: dry run: nothing written\n");
  rc = 0;

out:
  if (err.set) {
    llm_redact_error(&err, cfg.key);
    err_print(stderr, &err);
    rc = 1;
  }
  if (save && reply_path)
    agent_save_reply(reply_path, buf_str(&text), cfg.key);
  gen_batch_free(&batch);
  accepted_free(&acc);
  db_free(db);
  fs_unlock(lockfd);
  json_decref(source_json);
  source_free(&src);
  prompt_free(&prompt);
  buf_free(&text);
  buf_free(&raw);
  buf_free(&b);
  free(full);
  free(by);
  free(reply_path);
  llm_config_free(&cfg);
  if (curl_up)
    http_global_cleanup();
  return rc;
}
