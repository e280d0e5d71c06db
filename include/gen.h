/* gen.h: the generator part: formula language, module database, naming,
 * schema validation and C emission. The runtime and the agents link it.
 *
 * Pipeline:  module_db.json --db_load--> Db (schema-checked entries)
 *            formula text --tokenize--> Token list --parse--> Node tree
 *            Node trees --check--> resolved (params, callees), no cycles
 *            Db + ModuleDef --emit_module--> C text --fs_write_atomic
 */
#ifndef LM_GEN_H
#define LM_GEN_H

#include "common.h"

#include <jansson.h>

/* ===== metric.c: the metrics ===== */

/* What a formula measures: one table, from which the enum, the names
 * (formula keys in module_db.json, JSON keys and CSV columns of lmrun's
 * output), the table headings and units, the traffic/state split and the
 * bytes sum derive. Adding a metric touches this table, the schema
 * (module_db_schema.json) and the formulas only.
 *
 *   X(id, name, heading, unit, kind)
 *   heading: lmrun's table column (NULL for state metrics: not per op)
 *   unit:    "" for a count, "B" for bytes (what the bytes sum adds)
 *   kind:    TRAFFIC, per-step traffic of one operation (atomic ops have
 *            these only), or STATE, resident state of a module. Traffic
 *            metrics come first, so metric < M_TRAFFIC is traffic.
 */
#define LM_METRICS(X)                                                          \
  X(M_FLOPS, "flops", "FLOPs", "", TRAFFIC)                                    \
  X(M_WEIGHT_BYTES, "weight_bytes", "weights", "B", TRAFFIC)                   \
  X(M_ACT_READ_BYTES, "act_read_bytes", "act read", "B", TRAFFIC)              \
  X(M_ACT_WRITE_BYTES, "act_write_bytes", "act write", "B", TRAFFIC)           \
  X(M_KV_READ_BYTES, "kv_read_bytes", "KV read", "B", TRAFFIC)                 \
  X(M_KV_WRITE_BYTES, "kv_write_bytes", "KV write", "B", TRAFFIC)              \
  /* bytes of parameters held in memory */                                     \
  X(M_PARAM_BYTES, "param_bytes", NULL, "B", STATE)                            \
  /* bytes of KV cache held for the whole context */                           \
  X(M_KV_CACHE_BYTES, "kv_cache_bytes", NULL, "B", STATE)

#define LM_METRIC_KIND_TRAFFIC 1
#define LM_METRIC_KIND_STATE 0
#define LM_METRIC_ENUM(id, name, heading, unit, kind) id,
#define LM_METRIC_IS_TRAFFIC(id, name, heading, unit, kind)                    \
  +LM_METRIC_KIND_##kind
#define LM_METRIC_ORDER(id, name, heading, unit, kind)                         \
  _Static_assert(((int)id < M_TRAFFIC) == LM_METRIC_KIND_##kind,               \
                 "traffic metrics come first: " name);
#define LM_METRIC_BYTES_TERM(id, name, heading, unit, kind)                    \
  LM_METRIC_BYTES_##kind(id, unit)
#define LM_METRIC_BYTES_TRAFFIC(id, unit) +(unit[0] == 'B' ? v[id] : 0)
#define LM_METRIC_BYTES_STATE(id, unit)

typedef enum { LM_METRICS(LM_METRIC_ENUM) M_COUNT } Metric;
/* How many traffic metrics (the first ones). */
enum { LM_METRIC_TRAFFIC_COUNT = 0 LM_METRICS(LM_METRIC_IS_TRAFFIC) };
#define M_TRAFFIC ((int)LM_METRIC_TRAFFIC_COUNT)
LM_METRICS(LM_METRIC_ORDER)

extern const char *const metric_name[M_COUNT];
extern const char *const metric_heading[M_COUNT];
extern const char *const metric_unit[M_COUNT];

/* All bytes one operation moves: the sum, in table order, of the traffic
 * metrics in bytes of v[M_TRAFFIC]. */
static inline double metric_bytes(const double *v) {
  return 0 LM_METRICS(LM_METRIC_BYTES_TERM);
}
/* Metric by name, or -1. */
int metric_lookup(const char *name);

/* ===== tokenize.c ===== */

typedef enum {
  TK_NUM,    /* 12, 1.5, 2e-3 */
  TK_PARAM,  /* {name} */
  TK_MODREF, /* ${full.module.Class} */
  TK_IDENT,  /* min, max, ceil, floor, pow (anything else is an error later) */
  TK_PUNCT,  /* + - * / // ( ) , */
  TK_EOF,
} TokenKind;

typedef struct Token {
  TokenKind kind;
  struct Token *next;
  int off;          /* byte offset of the token in the formula */
  int len;          /* bytes the token spans (whole {name} / ${...}) */
  const char *loc;  /* formula text + off */
  double val;       /* TK_NUM */
  const char *name; /* TK_PARAM, TK_MODREF, TK_IDENT: NUL-terminated */
} Token;

/* Where a formula came from, so errors can point into the file. */
typedef struct FormulaSrc {
  const char *text;     /* the formula */
  const JsonDoc *doc;   /* the file it is in (may be NULL) */
  const JsonPath *path; /* path of the formula string in the file */
} FormulaSrc;

/* Record an error at token tok (a caret under it). */
void formula_error(Error *err, const FormulaSrc *src, const Token *tok,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Tokenize; tokens live in the arena. NULL on error. */
Token *tokenize(Arena *a, const FormulaSrc *src, Error *err);
bool tok_equal(const Token *t, const char *op);

/* ===== parse.c ===== */

typedef enum {
  ND_NUM,      /* literal */
  ND_PARAM,    /* {name} */
  ND_NEG,      /* -lhs */
  ND_ADD,      /* lhs + rhs */
  ND_SUB,      /* lhs - rhs */
  ND_MUL,      /* lhs * rhs */
  ND_DIV,      /* lhs / rhs */
  ND_FLOORDIV, /* lhs // rhs */
  ND_MIN,      /* min(args...) */
  ND_MAX,      /* max(args...) */
  ND_CEIL,     /* ceil(lhs) */
  ND_FLOOR,    /* floor(lhs) */
  ND_POW,      /* pow(lhs, rhs): rhs a whole number */
  ND_CALL,     /* ${module}(args...) */
} NodeKind;

struct ModuleDef;
struct AtomicOp;

typedef struct Node {
  NodeKind kind;
  Token *tok;                /* representative token, for errors */
  struct Node *lhs, *rhs;    /* operands */
  struct Node **args;        /* ND_MIN, ND_MAX, ND_CALL */
  int nargs;
  double val;                /* ND_NUM */
  const char *name;          /* ND_PARAM, ND_CALL */
  int index;                 /* ND_PARAM: resolved position (check) */
  struct ModuleDef *callee;  /* ND_CALL: resolved module (check) */
  const struct AtomicOp *callee_op; /* ND_CALL of ${Class.op}: that atomic
                                       op; NULL = the whole module */
} Node;

/* The tallest formula tree accepted: the walks over trees recurse, and a
 * flat chain {B}+{B}+... is as tall as it is long. */
#define FORMULA_MAX_HEIGHT 256

/* Tokenize and parse a whole formula. NULL on error, also for a tree
 * taller than FORMULA_MAX_HEIGHT. */
Node *parse_formula(Arena *a, const FormulaSrc *src, Error *err);
/* Print as an s-expression, e.g. (+ 1 (* {a} 2)); for tests and --debug. */
void node_sexpr(const Node *n, Buf *out);

/* ===== check.c ===== */

/* What names a formula may use. */
typedef struct Scope {
  const char *const *names; /* parameter or variable names */
  int nnames;
  const HashMap *modules;   /* full name -> ModuleDef*; NULL: no calls */
  const char *what;         /* "parameter" or "variable", for messages */
} Scope;

/* Resolve names and check a parsed formula: unknown parameter, unknown
 * function or module, wrong arity, division by a constant zero. */
int check_formula(Node *n, const FormulaSrc *src, const Scope *sc,
                  Error *err);
/* True if n uses no parameters and no module calls. */
bool node_is_const(const Node *n);

/* ===== eval.c ===== */

/* Interpret a checked formula. ND_CALL evaluates the callee's same metric
 * (of the named atomic op for ${Class.op}). */
double node_eval(const Node *n, const double *args, Metric m);
/* A module's metric: its formula, the eager sum of its atomic operations,
 * or 0 when absent. */
double module_eval(const struct ModuleDef *md, Metric m, const double *args);

/* ===== naming.c ===== */

/* Acronym-aware snake case: LlamaRMSNorm -> llama_rms_norm, SiLU -> silu. */
char *naming_snake(const char *class_name);
/* torch.nn.modules.activation.SiLU -> torch_silu.c */
char *naming_file(const char *full_name);
/* torch.nn.modules.activation.SiLU -> TorchSiLU */
char *naming_class(const char *full_name);
bool naming_valid_file(const char *name, const char **why);
bool naming_valid_class(const char *name, const char **why);
bool naming_is_c_keyword(const char *s);
bool naming_is_identifier(const char *s);

/* ===== schema.c ===== */

/* Validate instance against a JSON Schema (the subset module_db_schema.json
 * uses; unknown keywords in the schema are an error). Errors point into
 * doc (the instance's file, may be NULL) when it has raw text. */
int schema_validate(const json_t *schema, const json_t *inst,
                    const JsonDoc *doc, Error *err);
/* Same, for the sub-schema at "#/$defs/<def>" (e.g. one db entry), with
 * errors reported under path `base`. */
int schema_validate_def(const json_t *schema, const char *def,
                        const json_t *inst, const JsonPath *base,
                        const JsonDoc *doc, Error *err);
/* module_db_schema.json, embedded at build time. Borrowed. */
const json_t *schema_module_db(void);

/* ===== db.c ===== */

typedef enum { MK_BASIC, MK_COMPOSITE } ModuleKind;
typedef enum { AM_ANY, AM_EAGER, AM_FLASH } AttnMode;
typedef enum { AP_ANY, AP_PREFILL, AP_DECODE } PhaseMode;

typedef struct AtomicOp {
  const char *name;              /* qk_matmul, softmax, ... */
  AttnMode mode;                 /* when the op runs */
  PhaseMode phase;               /* in which phase (MLA's two paths) */
  const char *description;       /* NULL if none */
  const char *formula[M_COUNT];  /* NULL = absent (0) */
  Node *ast[M_COUNT];
} AtomicOp;

typedef struct ModuleDef {
  const char *full_name;         /* key in module_db.json */
  const char *short_name;        /* last dotted component */
  ModuleKind kind;
  const char **params;           /* declared parameter names, in order */
  int nparams;
  double *pmin, *pmax;           /* per parameter: allowed range (+-inf) */
  bool *pint;                    /* per parameter: must be a whole number */
  const char **pdesc;            /* per parameter: description or NULL */
  const char *formula[M_COUNT];  /* entry formulas; NULL = absent */
  Node *ast[M_COUNT];
  AtomicOp *ops;                 /* atomic operations, may be empty */
  int nops;
  const char *file_name;         /* stored generated_file_name or NULL */
  const char *class_name;        /* stored generated_class_name or NULL */
  const char *status;            /* validation.status */
  const char *source_file;       /* source.file (NULL if none) */
  const char *source_version;    /* source.version (NULL if none) */
  int line_start, line_end;      /* source lines; 0 if not stored */
  const JsonDoc *doc;            /* the database file it is in */
  uint64_t fingerprint;          /* of what the generated code depends on */
  int index;                     /* position in the database */
  int parsed;                    /* ASTs: DB_PARSED (0: also a ModuleDef
                                    built by hand), or, in a Db read from
                                    the index, DB_UNPARSED until db_ensure */
} ModuleDef;

enum { DB_PARSED, DB_UNPARSED, DB_PARSING };

typedef struct Db {
  JsonDoc doc;         /* file as given, its text (carets); owned */
  json_t *root;        /* owned; kept so writes preserve every other key;
                          NULL in a Db read from the index (read-only) */
  char *index_text;    /* a Db read from the index: its text, which the
                          entries' strings point into; owned */
  size_t text_mapped;  /* doc.text is fs_map's mapping of this length */
  bool verified;       /* from the index, its hashes not checked: a stamp
                          vouched for both files (db_open_verified) */
  ModuleDef **mods;    /* in file order */
  int nmods;
  HashMap by_full;     /* full name -> ModuleDef* */
  HashMap by_short;    /* short name -> ShortList* */
  Arena arena;         /* strings, tokens, ASTs */
} Db;

/* The longest chain of module calls accepted (A calls B calls C: 3):
 * evaluation and generated code follow calls recursively. */
#define DB_MAX_CALL_DEPTH 32

/* Load, schema-validate, parse and check every formula, detect call cycles
 * and chains longer than DB_MAX_CALL_DEPTH, validate stored names. New; free with db_free. NULL on error. */
Db *db_load(const char *path, Error *err);
/* The same from text already in memory (path is used in messages). */
Db *db_load_text(const char *path, const char *text, size_t len, Error *err);
void db_free(Db *db);
/* Formulas parsed and checked on first use: a Db read from the index
 * (db_open) holds every entry's data but parses an entry's formulas, and
 * its callees', only when asked, here. A no-op for db_load's Db, and for an
 * entry already parsed. The parsed trees are a cache inside the Db, hence
 * the const. -1 with a located error if a formula fails its checks (a
 * database that passed them when the index was written cannot). */
int db_ensure(const Db *db, const ModuleDef *md, Error *err);
/* Add md to db's name indexes (by full and short name). -1 if the full
 * name is already there. */
int db_register(Db *db, ModuleDef *md);
/* Full or short name; an ambiguous short name is an error listing the
 * candidates. Borrowed. */
ModuleDef *db_find(const Db *db, const char *name, Error *err);
/* How many entries have this short name; *first: the first of them in
 * file order (NULL if none). */
int db_short(const Db *db, const char *short_name, ModuleDef **first);
/* Give every listed entry lacking stored names its names (in the JSON tree
 * too). Returns how many got names, -1 on a collision or invalid name. */
int db_assign_names(Db *db, ModuleDef **mods, int n, Error *err);
/* The database as text: Jansson, 2-space indent, key order preserved. */
char *db_dump(const Db *db);
/* Write the JSON tree back atomically. */
int db_save(const Db *db, Error *err);
/* Fingerprint as 16 lowercase hex digits (out >= 17 bytes). */
void db_fingerprint_hex(const ModuleDef *md, char *out);
/* Check a value against parameter i's declared range. Returns NULL if it
 * is allowed, else a static description of the rule it breaks. */
const char *db_param_violation(const ModuleDef *md, int i, double v);
/* The ModuleDef behind an atomic op of md named op, or NULL. */
const AtomicOp *db_find_op(const ModuleDef *md, const char *op);

/* ===== dbindex.c ===== */

/* The index's file name, in the generated modules' directory. */
#define DBINDEX_FILE "module_db.index"

/* The database the runtime reads: module_db.json's bytes, hashed; the
 * index in index_dir when it was written from exactly those bytes (and by
 * this code), else db_load's full load and checks. The index's entries are
 * all there; their formulas are parsed on first use (db_ensure). NULL with
 * db_load's errors. index_dir NULL: always the full load. */
Db *db_open(const char *path, const char *index_dir, Error *err);
/* The same; verified: the caller has proof (runtime/lmpredict.c's stamp,
 * DESIGN.md §7.10) that module_db.json and the index are the files an
 * earlier db_open checked the hashes of and took the index from: neither
 * is hashed, module_db.json is mapped without being read. Every other
 * check is made; an index it refuses still falls back to db_load. */
Db *db_open_verified(const char *path, const char *index_dir, bool verified,
                     Error *err);
/* The index of a fully loaded db (db_load) whose file's bytes are text.
 * New string; free(). */
char *dbindex_text(const Db *db, const char *text, size_t len);
/* Load db_path whole (db_load's checks) and return its index; NULL with
 * the error. */
char *dbindex_build(const char *db_path, Error *err);
/* Write out_dir/DBINDEX_FILE for db_path, atomically, unless it already
 * holds those bytes (*changed says; on a dry run nothing is written). */
int dbindex_write(const char *db_path, const char *out_dir, bool dry_run,
                  bool *changed, Error *err);
/* The Db of an index: text/len are module_db.json's bytes (read from
 * path), itext/ilen the index's. NULL, with *why saying why, when the
 * index does not belong to those bytes or to this code, or is damaged;
 * else the Db owns text and itext. */
Db *dbindex_load(const char *path, char *text, size_t len, char *itext,
                 size_t ilen, const char **why);
/* The hash the index keys on (64 bits of 8-byte little-endian words). */
uint64_t dbindex_hash(const char *p, size_t n);

/* ===== emit.c ===== */

/* The C source of one module, from its checked ASTs. New string; free().
 * db_name is the database file name printed in the header. */
char *emit_module(const ModuleDef *md, const char *db_name, Error *err);
/* Shortest decimal that reads back as v, always with '.' or 'e'. */
void emit_number(double v, char *out, size_t outsz);
/* Symbol names, e.g. TorchLinear_flops, TransformersX_op_softmax_flops. */
void emit_symbol(const ModuleDef *md, const AtomicOp *op, Metric m,
                 char *out, size_t outsz);
/* The 16 hex digits a generated file's header records for field
 * ("fingerprint", "checksum"); "" if absent. out >= 17 bytes. */
void emit_header_hex(const char *text, const char *field, char *out);
/* The checksum a generated file's header records (header, "" if none) and
 * the one its body has (actual); both 16 hex digits. -1 if the text has
 * no header comment. */
int emit_checksum(const char *text, char *header, char *actual);
/* A parameter {x} becomes the C local p_x: no name from the database is a
 * whole C token (modabi.h defines only lm_/LM_ names). */
#define EMIT_PARAM_PREFIX "p_"
/* Marker on the first line of every generated file. */
#define EMIT_MARKER "generated by lmgen"

/* ===== generate.c ===== */

/* One generated file: the entry, out/<file_name>, its source (owned). */
typedef struct GenTarget {
  ModuleDef *md;
  char *path;
  char *text;
} GenTarget;

/* What one lmgen run generates, emitted into memory before any write. */
typedef struct GenBatch {
  GenTarget *t;        /* the entries asked for and their callees */
  int n;
  int assigned;        /* entries given stored names just now (in memory) */
  char **stale;        /* generated files no entry claims (gen_find_stale) */
  int nstale;
  char **temps;        /* temporary files of interrupted writes
                          (gen_find_temps) */
  int ntemps;
  const char *out_dir; /* borrowed */
  char *db_file;       /* the database's file: gen_apply writes its index
                          (DBINDEX_FILE) into out_dir */
} GenBatch;

/* Lock <db_path>.lock exclusively (blocks); an fd for fs_unlock, or -1. */
int gen_lock_db(const char *db_path, Error *err);
/* The batch of roots[0..nroots) and everything they call: names decided
 * (db_assign_names, in memory), each file emitted, and all of it compiled
 * with libtcc as the runtime does (code that does not build is an error
 * located in the generated file). Free the batch with gen_batch_free
 * whatever this returns. */
int gen_prepare(Db *db, ModuleDef *const *roots, int nroots,
                const char *out_dir, GenBatch *b, Error *err);
/* Add the files in out_dir that carry EMIT_MARKER and no target claims. */
void gen_find_stale(GenBatch *b);
/* Add the temporary files an interrupted write left behind:
 * <file>.c.tmp.XXXXXX in out_dir, <db>.tmp.XXXXXX beside db_path (beside
 * the file a symlinked database names). gen_apply removes them; --check
 * reports them. */
void gen_find_temps(GenBatch *b, const char *db_path);
/* Apply a batch. A dry run prints "lmgen: <note>" (when note is set), then
 * each file it would write or remove, and sets *count to the files it
 * would write. Otherwise: create out_dir, save `save` (when set: then
 * "lmgen: <note>"), remove the temporary files found, write each changed
 * file, remove the stale ones, refresh the database's index (silently:
 * a cache, see dbindex.c), print
 * the "N modules, W written, U unchanged" summary; *count is W. */
int gen_apply(const GenBatch *b, const Db *save, const char *note,
              bool dry_run, int *count, Error *err);
void gen_batch_free(GenBatch *b);

/* `lmgen [--db PATH] [--out DIR] [--check] [--dry-run] [--all | NAME...]` */
typedef struct GenArgs {
  const char *db_path, *out_dir;
  char *const *names; /* the NAMEs, unless all */
  int nnames;
  bool all, check, dry_run;
  bool index;         /* --index: write out_dir/DBINDEX_FILE only */
} GenArgs;

/* gen_run's answer when the one NAME is a full class name the database
 * lacks: the agent's case (nothing printed, nothing held). */
#define GEN_RUN_ANALYSE (-1)
/* Run the command: progress on stdout, the error on stderr. Returns the
 * exit status (0, or 1 on an error or drift under --check), or
 * GEN_RUN_ANALYSE. */
int gen_run(const GenArgs *a);

#endif
