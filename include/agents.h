/* agents.h: the agents part: LLM-backed analysis of a module's forward()
 * source. lmgen is its command (`lmgen NewModule`, `lmgen --force NAME`,
 * `lmgen --analysis FILE NAME`).
 *
 * Pipeline:  Python file --source.c--> the class's source text
 *            Db + source --prompt.c--> system and user prompt
 *            prompt --llm.c--> request JSON --http.c (libcurl)--> reply JSON
 *            reply JSON --llm.c--> reply text
 *            reply text + Db --accept.c--> one entry, checked alone and then
 *            inside a candidate database (schema, formulas, cycles, names,
 *            evaluation at sample values) --agent.c--> module_db.json + C
 *            (through the generator's batch, gen/generate.c)
 *
 * The LLM is an untrusted, flaky remote party: nothing it says reaches the
 * database before every check of accept.c passed, and nothing it says is
 * ever compiled except through the formula language's checked AST.
 */
#ifndef LM_AGENTS_H
#define LM_AGENTS_H

#include "common.h"
#include "gen.h"
#include "http.h"
#include "runtime.h"

#include <jansson.h>

/* ===== llm.c ===== */

typedef enum { LLM_ANTHROPIC, LLM_OPENAI } LlmStyle;

/* Where and how to ask. Strings are owned; free with llm_config_free. */
typedef struct LlmConfig {
  char *url;       /* LMGEN_API_URL: the full endpoint URL */
  char *key;       /* LMGEN_API_KEY: never printed, logged or saved */
  char *model;     /* LMGEN_MODEL */
  LlmStyle style;  /* LMGEN_API_STYLE: anthropic (default) or openai */
  long max_tokens; /* LMGEN_MAX_TOKENS, default 4096 */
} LlmConfig;

/* From the environment. A missing URL, key or model is one error naming
 * every variable to set. */
int llm_config_from_env(LlmConfig *c, Error *err);
void llm_config_free(LlmConfig *c);
const char *llm_style_name(LlmStyle s);
/* The request body: Anthropic Messages {model, max_tokens, temperature,
 * system, messages} or OpenAI chat completions {model, temperature,
 * messages}. New string; free(). The key is never in it. */
char *llm_request_body(const LlmConfig *c, const char *system,
                       const char *user);
/* Request headers: content type plus x-api-key and anthropic-version, or
 * Authorization: Bearer. New NULL-terminated array; llm_headers_free. */
char **llm_request_headers(const LlmConfig *c);
void llm_headers_free(char **h);
/* The reply text of a successful (2xx) API reply: Anthropic content[]
 * text blocks, OpenAI choices[0].message.content. A reply cut off at the
 * token limit, or of another shape, is an error. */
int llm_reply_text(LlmStyle style, const char *body, size_t len, Buf *text,
                   Error *err);
/* Describe a non-2xx API reply: status plus the API's own error type and
 * message when the body carries them. */
void llm_api_error(long status, const char *body, size_t len, Error *err);
/* Ask: build the request, POST it with retries, return the reply text.
 * raw receives the last HTTP body (for saving on failure). */
int llm_ask(const LlmConfig *c, const HttpTransport *t, const HttpOptions *o,
            const char *system, const char *user, Buf *text, Buf *raw,
            FILE *log, Error *err);
/* s with every occurrence of secret replaced by [REDACTED]. Secrets
 * shorter than 8 bytes (a placeholder such as "none" for a local server)
 * are not searched for. New string; free(). */
char *llm_redact(const char *s, const char *secret);
/* Redact an Error's message and context in place. */
void llm_redact_error(Error *e, const char *secret);

/* ===== source.c ===== */

/* The source of one class, cut out of a Python file. Owned strings; free
 * with source_free. */
typedef struct ClassSource {
  char *file;     /* path recorded in the entry's source.file */
  char *text;     /* the class: decorators, header and body */
  int line_start; /* 1-based, inclusive */
  int line_end;
} ClassSource;

/* Cut `class Name(...):` (with its decorators) out of Python text: the
 * class ends at the first logical line indented no deeper than its
 * header. Strings, comments, brackets and continuation lines are
 * understood, so a docstring or a call spanning lines never ends it. */
int source_extract(const char *text, size_t len, const char *class_name,
                   ClassSource *out, Error *err);
/* Read `path` and extract class_name (the last component of a full name);
 * source.file records `path` as given. */
int source_from_file(const char *path, const char *class_name, ClassSource *out,
                     Error *err);
/* Map a full class name to a file under one of the roots (a ':'-separated
 * list, LMGEN_SOURCE_ROOT) and extract the class: a.b.c.Class is looked
 * up as <root>/src/a/b/c.py, <root>/a/b/c.py, then .../c/__init__.py in
 * both layouts. source.file records the path relative to its root. */
int source_from_roots(const char *roots, const char *full_name,
                      ClassSource *out, Error *err);
/* A whole Python file (a family's modeling file), lines 1 to the last;
 * at most 256 kB. */
int source_whole_file(const char *path, ClassSource *out, Error *err);
/* The file of a module (a.b.modeling_x -> <root>/src/a/b/modeling_x.py or
 * <root>/a/b/modeling_x.py) under one of the ':'-separated roots, whole;
 * source.file records the path relative to its root. */
int source_module_from_roots(const char *roots, const char *module,
                             ClassSource *out, Error *err);
void source_free(ClassSource *s);

/* ===== prompt.c ===== */

typedef struct Prompt {
  char *system; /* owned */
  char *user;   /* owned */
} Prompt;

/* What the prompt is about. */
typedef struct PromptInput {
  const Db *db;              /* known modules, examples */
  const char *full_name;     /* the class to analyse */
  const ModuleDef *current;  /* its entry when re-analysing (--force) */
  const ClassSource *source; /* its source */
} PromptInput;

/* Fill `tmpl`'s {{NAME}} placeholders with vals[i] for keys[i]. Values
 * are inserted verbatim, never re-scanned. An unknown placeholder is an
 * error. */
int prompt_fill(const char *tmpl, const char *const *keys,
                const char *const *vals, int n, Buf *out, Error *err);
/* The prompt text named `name` (system, user, new, force): the file
 * $LMGEN_PROMPT_DIR/<name>.txt when that variable is set, else the copy of
 * agents/prompts/<name>.txt embedded at build time. New string; free(). */
char *prompt_template(const char *name, Error *err);
/* Build both prompts from the templates and the database. */
int prompt_build(const PromptInput *in, Prompt *out, Error *err);
/* Every module of db but skip: full name, kind, call form, parameters
 * with their descriptions, atomic operations. */
void prompt_known_modules(const Db *db, const ModuleDef *skip, Buf *b);

/* What the architecture prompt is about (lmgen --arch). */
typedef struct ArchPromptInput {
  const Db *db;                    /* known modules */
  const char *model_type;
  const char *config_file, *config; /* the config.json: name, text */
  const char *source_file, *source; /* modeling_<model_type>.py */
  const char *example_type, *example; /* one existing template */
  const char *current;             /* --force: the template now, or NULL */
  const char *const *run_vars;     /* names a value may use besides keys */
  int nrun_vars;
} ArchPromptInput;
/* Build the architecture agent's prompts from arch_system, arch_user and
 * arch_new (arch_force when current is set). */
int prompt_build_arch(const ArchPromptInput *in, Prompt *out, Error *err);
void prompt_free(Prompt *p);

/* ===== accept.c ===== */

/* Find the one JSON object in a reply text: the contents of ```json (or
 * bare ```) fences when there are any, else the top-level {...} spans of
 * the text that parse as JSON objects. None, or more than one, is an
 * error. *off and *n locate the object's text. */
int accept_find_json(const char *text, size_t len, size_t *off, size_t *n,
                     Error *err);

typedef struct AcceptOpts {
  const char *full_name;  /* the class asked about */
  const char *by;         /* validation.by, e.g. "agent:claude-x" */
  const char *date;       /* validation.date, YYYY-MM-DD */
  const json_t *source;   /* source member from the source lmgen read, or
                             NULL (then the entry's stored one, or the
                             answer's own) */
  const char *reply_name; /* file named in errors about the reply */
} AcceptOpts;

typedef struct Accepted {
  Db *db;        /* the candidate database, fully checked; owned */
  ModuleDef *md; /* the answered entry in it; borrowed from db */
  bool is_new;   /* the entry was not in the database */
  Buf notes;     /* members of the answer that were ignored, one a line */
} Accepted;

/* Accept an answer for o->full_name against db, or explain why not.
 *
 * The answer may set kind, parameters, formulas, atomic_ops and reasoning;
 * full_name and short_name, when present, must name the class asked
 * about. lmgen owns short_name, source, validation (pending, by, date) and
 * the stored names (kept on re-analysis; the naming rule decides them for
 * a new entry), so the answer's values for them are ignored. Re-analysing
 * a known entry keeps its kind, its parameters and the names of its atomic
 * operations (model files and callers depend on them).
 *
 * Checks, first failure wins, each error located in the reply: one JSON
 * object; the members; the schema's entry definition; every formula
 * parsed and checked (unknown parameters and modules, arity); then the
 * whole database with the entry inserted (new: appended; known: replaced
 * in place) loaded as db_load does (schema, formulas, cycles, names); then
 * every metric of the entry and of each atomic operation evaluated with
 * all parameters at 1, 7 and 4096, which must give finite, non-negative
 * numbers. New entries get their stored names here. */
int accept_answer(const Db *db, const char *reply, size_t len,
                  const AcceptOpts *o, Accepted *out, Error *err);
void accepted_free(Accepted *a);
/* What changes: per metric and per atomic op, old and new formula (old is
 * NULL for a new entry); operations added or removed. */
void accept_diff(const ModuleDef *old, const ModuleDef *now, Buf *out);

/* ===== archaccept.c ===== */

/* A template answer: the one JSON object of the reply, checked for shape. */
typedef struct ArchAnswer {
  json_t *obj;      /* the template as answered, lmgen's members dropped */
  char *text;       /* the reply blanked outside the object: parses as the
                       object, lines and columns are the reply's */
  size_t len;
  const char *name; /* the reply's name in errors (borrowed) */
  Buf notes;        /* members ignored, one a line */
} ArchAnswer;

/* Find and parse the one JSON object of the reply; it must be an object
 * with "format": "lm-predictor-template" and model_type exactly
 * `model_type`, and only a template's members (a "validation" member is
 * lmgen's: noted and dropped). Errors located in the reply. */
int arch_parse_answer(const char *reply, size_t len, const char *model_type,
                      const char *reply_name, ArchAnswer *out, Error *err);
void arch_answer_free(ArchAnswer *a);

/* The classes the answer names ("class" of the root and of every layer)
 * that db lacks, once each, in file order: new array of borrowed strings
 * (free the array). Each must be a full dotted class name of the schema's
 * form; else -1 with the error at that class in the reply. */
int arch_unknown_classes(const ArchAnswer *a, const Db *db,
                         const char ***names, int *n, Error *err);

/* What arch_check runs the answer against. */
typedef struct ArchCheck {
  const Registry *reg;     /* every class the answer names, compiled or
                              compilable (candidates by reg_set_text) */
  const ConfigText *cfg;   /* the config asked about */
  const ConfigText *extra; /* more configs of the family (--force) */
  int nextra;
  double ckpt_bytes;       /* the checkpoint's total_size; <= 0: none */
  double expect_params;    /* --expect-params; <= 0: none */
} ArchCheck;

/* The (B, S) points arch_check evaluates at (prefill T = S and decode
 * T = 1, L = S, eager and flash attention). */
#define ARCH_NPOINTS 3
extern const double arch_points[ARCH_NPOINTS][2];

/* Load the answer as a template with each config (the model loader's
 * checks: classes, parameters, values, ops; errors located in the reply),
 * evaluate it at arch_points (finite, non-negative), and count its
 * parameters with the first config: within 1% of expect_params or, else,
 * of ckpt_bytes over the stored precision (the config's torch_dtype).
 * *params gets the count; *ref the reference (-1 without one). */
int arch_check(const ArchAnswer *a, const ArchCheck *c, double *params,
               double *ref, Error *err);

/* The template to write: the answer's members in template order, with
 * "validation": {"status": "pending", by, date, notes} after "source".
 * New string, ending in a newline. */
char *arch_template_text(const ArchAnswer *a, const char *by,
                         const char *date);

/* ===== arch.c ===== */

/* `lmgen --arch X [--force] [--analysis FILE] [--source PATH] [--dry-run]
 *  [--expect-params N | --no-param-check]` */
typedef struct ArchArgs {
  const char *db_path, *out_dir;
  const char *arch_dir;   /* templates (default <install>/models/arch) */
  const char *arg;        /* a config.json, snapshot directory or Hub id */
  bool force, dry_run, no_param_check;
  double expect_params;   /* > 0 when given */
  const char *analysis;   /* --analysis FILE, or NULL: ask the LLM */
  const char *source;     /* --source PATH (the modeling file), or NULL */
} ArchArgs;

/* Write the template of X's model_type (and entries for the classes it
 * names that the database lacks), or nothing. Returns the exit status. */
int arch_run(const ArchArgs *a);

/* ===== agent.c ===== */

/* `lmgen [--force] [--analysis FILE] [--source PATH] [--dry-run] NAME` */
typedef struct AgentArgs {
  const char *db_path, *out_dir;
  const char *name;     /* as given: a full class name, or a known name */
  bool force, dry_run;
  const char *analysis; /* --analysis FILE, or NULL: ask the LLM */
  const char *source;   /* --source PATH, or NULL */
} AgentArgs;

/* Analyse a->name and, unless a dry run, write its entry and its C file
 * (with its callees). Progress on stdout; the error on stderr with the API
 * key redacted, then where a rejected reply was saved. Calls
 * curl_global_init/cleanup itself when it asks the network. Returns the
 * exit status, 0 or 1. */
int agent_run(const AgentArgs *a);
/* Helpers arch.c shares: today's date (UTC, YYYY-MM-DD); save a reply
 * (redacted) atomically and say where on stderr; the delay
 * LMGEN_TEST_LOCK_DELAY_MS asks for after taking the lock; print what
 * accept_answer accepted (verdict, diff, notes). */
void agent_today(char *out, size_t n);
void agent_save_reply(const char *path, const char *text, const char *key);
void agent_test_lock_delay(void);
void agent_print_accepted(const char *full, const ModuleDef *old,
                          const Accepted *acc);

#endif
