/* prompt.c: the request's text, from the templates in agents/prompts/ and
 * the database.
 *
 * The templates are text files (system, user, and the task paragraph: new
 * or force), embedded at build time like the schema; LMGEN_PROMPT_DIR
 * points lmgen at edited copies without a rebuild. Placeholders are
 * {{NAME}} (the formula language already uses {x} and ${x}); every value
 * comes from the database or the class's source and is inserted verbatim,
 * never scanned for placeholders again.
 *
 * What the model is told from the database: every known module with its
 * parameters in call order (so it may call them), the metric names, two
 * entries as worked examples, and on re-analysis the current entry.
 */
#include "agents.h"

#include <stdlib.h>
#include <string.h>

extern const char lm_prompt_system_text[];
extern const char lm_prompt_user_text[];
extern const char lm_prompt_new_text[];
extern const char lm_prompt_force_text[];
extern const char lm_prompt_arch_system_text[];
extern const char lm_prompt_arch_user_text[];
extern const char lm_prompt_arch_new_text[];
extern const char lm_prompt_arch_force_text[];

static bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || c == '_';
}

int prompt_fill(const char *tmpl, const char *const *keys,
                const char *const *vals, int n, Buf *out, Error *err) {
  const char *p = tmpl;
  while (*p) {
    const char *open = strstr(p, "{{");
    if (!open) {
      buf_puts(out, p);
      break;
    }
    const char *q = open + 2;
    while (is_key_char(*q))
      q++;
    if (q == open + 2 || q[0] != '}' || q[1] != '}') {
      buf_append(out, p, (size_t)(open + 2 - p)); /* literal "{{" */
      p = open + 2;
      continue;
    }
    buf_append(out, p, (size_t)(open - p));
    size_t klen = (size_t)(q - (open + 2));
    int k = 0;
    while (k < n &&
           !(strlen(keys[k]) == klen && strncmp(keys[k], open + 2, klen) == 0))
      k++;
    if (k == n) {
      err_set(err, "prompt template: unknown placeholder {{%.*s}}", (int)klen,
              open + 2);
      return -1;
    }
    buf_puts(out, vals[k]);
    p = q + 2;
  }
  return 0;
}

char *prompt_template(const char *name, Error *err) {
  const char *dir = getenv("LMGEN_PROMPT_DIR");
  if (dir && *dir) {
    char file[256];
    snprintf(file, sizeof(file), "%s.txt", name);
    char *path = path_join(dir, file);
    char *text = fs_read(path, NULL, err);
    free(path);
    return text;
  }
  const char *t = strcmp(name, "system") == 0  ? lm_prompt_system_text
                  : strcmp(name, "user") == 0  ? lm_prompt_user_text
                  : strcmp(name, "new") == 0   ? lm_prompt_new_text
                  : strcmp(name, "force") == 0 ? lm_prompt_force_text
                  : strcmp(name, "arch_system") == 0 ? lm_prompt_arch_system_text
                  : strcmp(name, "arch_user") == 0   ? lm_prompt_arch_user_text
                  : strcmp(name, "arch_new") == 0    ? lm_prompt_arch_new_text
                  : strcmp(name, "arch_force") == 0  ? lm_prompt_arch_force_text
                                                     : NULL;
  if (!t) {
    err_set(err, "no prompt template '%s'", name);
    return NULL;
  }
  return xstrdup(t);
}

/* An entry as the model should write it: full_name first, without the
 * members lmgen owns. New string. */
static char *entry_for_prompt(const Db *db, const ModuleDef *md) {
  const json_t *e =
      json_object_get(json_object_get(db->root, "modules"), md->full_name);
  json_t *o = json_object();
  json_object_set_new(o, "full_name", json_string(md->full_name));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)e, k, v) {
    if (strcmp(k, "source") && strcmp(k, "validation") &&
        strcmp(k, "generated_file_name") && strcmp(k, "generated_class_name"))
      json_object_set(o, k, v);
  }
  char *s = json_dumps(o, JSON_INDENT(2));
  json_decref(o);
  return s;
}

static void list_params(const ModuleDef *md, Buf *b) {
  for (int i = 0; i < md->nparams; i++)
    buf_printf(b, "%s%s", i ? ", " : "", md->params[i]);
}

/* Every known module but `skip`: name, kind, call form, parameters. */
void prompt_known_modules(const Db *db, const ModuleDef *skip, Buf *b) {
  const json_t *mods = json_object_get(db->root, "modules");
  int shown = 0;
  for (int i = 0; i < db->nmods; i++) {
    const ModuleDef *md = db->mods[i];
    if (md == skip)
      continue;
    const json_t *params =
        json_object_get(json_object_get(mods, md->full_name), "parameters");
    buf_printf(b, "%s- %s (%s)\n  call: ${%s}(", shown++ ? "\n" : "",
               md->full_name, md->kind == MK_BASIC ? "basic" : "composite",
               md->full_name);
    list_params(md, b);
    buf_puts(b, ")\n");
    for (int k = 0; k < md->nparams; k++)
      buf_printf(b, "  %s: %s\n", md->params[k],
                 json_string_value(json_object_get(
                     json_array_get(params, (size_t)k), "description")));
    if (md->nops) {
      buf_puts(b, "  atomic operations: ");
      for (int k = 0; k < md->nops; k++)
        buf_printf(b, "%s%s", k ? ", " : "", md->ops[k].name);
      buf_putc(b, '\n');
    }
  }
  if (!shown)
    buf_puts(b, "(none)\n");
}

/* Two worked examples: the first basic entry with formulas and the first
 * entry with atomic operations, other than `skip`. */
static void examples(const Db *db, const ModuleDef *skip, Buf *b) {
  const ModuleDef *basic = NULL, *comp = NULL;
  for (int i = 0; i < db->nmods; i++) {
    const ModuleDef *md = db->mods[i];
    if (md == skip)
      continue;
    bool has = false;
    for (int m = 0; m < M_COUNT; m++)
      has = has || md->formula[m];
    if (!basic && md->kind == MK_BASIC && has)
      basic = md;
    if (!comp && md->nops > 0)
      comp = md;
  }
  const ModuleDef *ex[2] = {basic, comp};
  int shown = 0;
  for (int i = 0; i < 2; i++) {
    if (!ex[i])
      continue;
    char *s = entry_for_prompt(db, ex[i]);
    buf_printf(b, "%s```json\n%s\n```\n", shown++ ? "\n" : "", s);
    free(s);
  }
  if (!shown)
    buf_puts(b, "(none)\n");
}

/* Renders a prompt from its three templates: the task paragraph is filled
 * first (keys[nkeys - 1], "TASK", is its own slot and still empty), then
 * the user and system templates with TASK set to it. vals[nkeys - 1] is
 * overwritten. */
static int prompt_render(const char *task_name, const char *user_name,
                         const char *sys_name, const char **keys,
                         const char **vals, int nkeys, Prompt *out,
                         Error *err) {
  int rc = -1;
  Buf task, user, sys;
  buf_init(&task);
  buf_init(&user);
  buf_init(&sys);
  char *t_task = prompt_template(task_name, err);
  char *t_user = t_task ? prompt_template(user_name, err) : NULL;
  char *t_sys = t_user ? prompt_template(sys_name, err) : NULL;
  if (!t_sys)
    goto out;
  if (prompt_fill(t_task, keys, vals, nkeys - 1, &task, err) < 0)
    goto out;
  /* drop the task paragraph's final newline: user.txt spaces it */
  while (task.len && task.data[task.len - 1] == '\n')
    task.data[--task.len] = '\0';
  vals[nkeys - 1] = buf_str(&task);
  if (prompt_fill(t_user, keys, vals, nkeys, &user, err) < 0 ||
      prompt_fill(t_sys, keys, vals, nkeys, &sys, err) < 0)
    goto out;
  out->system = buf_steal(&sys);
  out->user = buf_steal(&user);
  rc = 0;
out:
  free(t_task);
  free(t_user);
  free(t_sys);
  buf_free(&task);
  buf_free(&user);
  buf_free(&sys);
  return rc;
}

int prompt_build(const PromptInput *in, Prompt *out, Error *err) {
  memset(out, 0, sizeof(*out));
  const char *dot = strrchr(in->full_name, '.');
  const char *short_name = dot ? dot + 1 : in->full_name;
  Buf metrics, known, ex, params, ops, lines;
  buf_init(&metrics);
  buf_init(&known);
  buf_init(&ex);
  buf_init(&params);
  buf_init(&ops);
  buf_init(&lines);
  for (int m = 0; m < M_COUNT; m++)
    buf_printf(&metrics, "%s%s", m ? ", " : "", metric_name[m]);
  prompt_known_modules(in->db, in->current, &known);
  examples(in->db, in->current, &ex);
  char *current = NULL;
  const char *kind = "";
  if (in->current) {
    current = entry_for_prompt(in->db, in->current);
    kind = in->current->kind == MK_BASIC ? "basic" : "composite";
    list_params(in->current, &params);
    for (int k = 0; k < in->current->nops; k++)
      buf_printf(&ops, "%s%s", k ? ", " : "", in->current->ops[k].name);
  }
  if (!params.len)
    buf_puts(&params, "none");
  if (!ops.len)
    buf_puts(&ops, "none");
  buf_printf(&lines, "%d-%d", in->source->line_start, in->source->line_end);

  const char *keys[] = {"CLASS",         "SHORT_NAME", "METRIC_NAMES",
                        "KNOWN_MODULES", "EXAMPLES",   "SOURCE_FILE",
                        "SOURCE_LINES",  "SOURCE",     "KIND",
                        "PARAMETERS",    "OPS",        "CURRENT_ENTRY",
                        "TASK"};
  const char *vals[] = {in->full_name,
                        short_name,
                        buf_str(&metrics),
                        buf_str(&known),
                        buf_str(&ex),
                        in->source->file,
                        buf_str(&lines),
                        in->source->text,
                        kind,
                        buf_str(&params),
                        buf_str(&ops),
                        current ? current : "",
                        ""};
  int rc = prompt_render(in->current ? "force" : "new", "user", "system",
                         keys, vals, (int)LM_ARRAY_LEN(keys), out, err);
  free(current);
  buf_free(&metrics);
  buf_free(&known);
  buf_free(&ex);
  buf_free(&params);
  buf_free(&ops);
  buf_free(&lines);
  return rc;
}

void prompt_free(Prompt *p) {
  if (!p)
    return;
  free(p->system);
  free(p->user);
  p->system = p->user = NULL;
}

int prompt_build_arch(const ArchPromptInput *in, Prompt *out, Error *err) {
  memset(out, 0, sizeof(*out));
  Buf known, vars;
  buf_init(&known);
  buf_init(&vars);
  prompt_known_modules(in->db, NULL, &known);
  for (int i = 0; i < in->nrun_vars; i++)
    buf_printf(&vars, "%s{%s}", i ? ", " : "", in->run_vars[i]);
  const char *keys[] = {"MODEL_TYPE", "CONFIG_FILE",  "CONFIG",
                        "KNOWN_MODULES", "EXAMPLE_TYPE", "EXAMPLE",
                        "SOURCE_FILE",   "SOURCE",       "RUN_VARS",
                        "CURRENT",       "TASK"};
  const char *vals[] = {in->model_type,  in->config_file,  in->config,
                        buf_str(&known), in->example_type, in->example,
                        in->source_file, in->source,       buf_str(&vars),
                        in->current ? in->current : "", ""};
  int rc = prompt_render(in->current ? "arch_force" : "arch_new", "arch_user",
                         "arch_system", keys, vals, (int)LM_ARRAY_LEN(keys),
                         out, err);
  buf_free(&known);
  buf_free(&vars);
  return rc;
}
