/* runtime.h: the runtime part: JIT, registry, model files, the walk and its
 * evaluation, reports. lmrun is its command.
 *
 * Pipeline:  Db --reg_load--> Registry (libtcc JIT of generated_modules/)
 *            models/x.json --model_load--> Model (layers, templates)
 *            Model + Registry --plan_build--> Plan (flat op rows)
 *            Plan + run variables --plan_eval--> metric values per row
 */
#ifndef LM_RUNTIME_H
#define LM_RUNTIME_H

#include "common.h"
#include "gen.h"
#include "modabi.h"

/* ===== jit.c ===== */

typedef struct Jit Jit;

/* Compile sources (path names each for diagnostics) after the modabi.h
 * prelude, in one libtcc state, and relocate. A compile error is reported
 * at the real file and line. New; free with jit_free. */
Jit *jit_compile(const char *const *paths, const char *const *texts, int n,
                 Error *err);
/* The same through the cache of compiled code (jitcache.c, DESIGN.md
 * §7.10), under a key over salt (a caller's word on what it checked
 * before, e.g. the registry's checksums), the options, the libtcc and
 * every part of the source: the object stored under that key when there
 * is one, else compiled to an object, stored and loaded; on any cache
 * failure (none configured, unwritable, damaged, an object obj_load
 * refuses) as jit_compile, so the answer and every error are the same. */
Jit *jit_compile_cached(const char *salt, const char *const *paths,
                        const char *const *texts, int n, Error *err);
/* Only the lookup: the cached object for this salt and source, or NULL
 * (no cache, a miss, a damaged file). */
Jit *jit_cache_lookup(const char *salt, const char *const *paths,
                      const char *const *texts, int n);
/* True if j was loaded from a cache file (not compiled by this call). */
bool jit_cached(const Jit *j);
/* The key j is stored under in the cache ("" when it is not: no cache,
 * compiled in memory). */
const char *jit_cache_key(const Jit *j);
/* The stamp key (jitcache_stamp_key) of these files under salt and the
 * JIT's options; -1 with no cache or a path that is not a regular file. */
int jit_stamp_key(const char *salt, const char *const *paths,
                  const char *const *shown, int n, char key[33],
                  bool *settled);
/* The object stored under key (jit_cache_key of an earlier Jit), loaded;
 * NULL on a miss or with no cache. */
Jit *jit_cache_load_key(const char *key);
/* Address of a global symbol, or NULL. Valid until jit_free. */
void *jit_symbol(Jit *j, const char *name);
void jit_free(Jit *j);

/* ===== objload.c ===== */

/* An ELF64 x86-64 relocatable object (what libtcc writes with
 * TCC_OUTPUT_OBJ) linked in fresh pages: code read+execute, data
 * read+write. Refused (NULL, err says why) unless every part is in bounds
 * and of a kind it handles: RELA relocations of types 64, PC32, PLT32,
 * GOTPCREL, 32, 32S, PC64, no undefined symbol. */
typedef struct ObjImage ObjImage;
ObjImage *obj_load(const void *file, size_t len, Error *err);
/* A defined global symbol's address, or NULL. */
void *obj_symbol(const ObjImage *o, const char *name);
void obj_free(ObjImage *o);

/* ===== jitcache.c ===== */

/* A 128-bit hash (two 64-bit lanes) of data, seeded. */
void jitcache_hash(const void *data, size_t len, uint64_t seed,
                   uint64_t out[2]);
/* The key (32 hex digits and a NUL) of the source jit.c builds from
 * these files, compiled with options: also covers the cache format,
 * LM_ABI_VERSION, the libtcc linked in and the modabi.h prelude. */
void jitcache_key(const char *options, const char *const *paths,
                  const char *const *texts, int n, char key[33]);
/* The cache directory (malloc'd): $LM_PREDICTOR_CACHE/jit (empty or "off":
 * NULL, no cache), else $XDG_CACHE_HOME/lm-predictor/jit, else
 * $HOME/.cache/lm-predictor/jit; NULL when none applies. */
char *jitcache_dir(void);
/* The user's cache directory's sub (malloc'd): $LM_PREDICTOR_CACHE/sub
 * (empty or "off": NULL, no cache), else $XDG_CACHE_HOME/lm-predictor/sub,
 * else $HOME/.cache/lm-predictor/sub; NULL when none applies. */
char *cache_dir(const char *sub);
/* A cache file: "<magic> 1", "key <key>", "body <hash> <length>", then the
 * body. cache_get returns the whole file (malloc'd; the body at *off, *blen
 * bytes) only if it is a regular file of this user's (not a link) and
 * every header byte is what this key and the body give; else NULL (why
 * set): a miss. cache_put writes one atomically. */
char *cache_get(const char *path, const char *magic, const char *key,
                size_t *off, size_t *blen, Error *why);
int cache_put(const char *path, const char *magic, const char *key,
              const void *body, size_t len, Error *err);
/* The GNU build ID (hex) of the program or library holding this code: a
 * key part for what this code checked (any change of code, another ID). */
const char *cache_build_id(void);
/* Create dir and its parents (0700). -1 if it is not a directory after. */
int jitcache_mkdir(const char *dir);
/* <dir>/<key>.jit, malloc'd. */
char *jitcache_path(const char *dir, const char *key);
/* The object stored under key, loaded; NULL (why set) when there is none
 * or it does not match in every byte of its header and body hash, or
 * obj_load refuses it. */
ObjImage *jitcache_load(const char *dir, const char *key, Error *why);
/* Store body under key atomically (temp, fsync, rename). */
int jitcache_store(const char *dir, const char *key, const void *body,
                   size_t len, Error *err);
/* Stamps: what lets a run find its object without reading the sources.
 * jitcache_stamp_key: a key over options, the cache format, the ABI, the
 * libtcc, the prelude and, per file, its shown name and, from stat(2) of
 * its path, device, inode, size and modification and change times (ns);
 * -1 when a path is not a regular file. *settled is false when a file
 * changed in the last 2 s (its times may not show a write in the same
 * clock tick): such files are never stamped. A stamp file <dir>/<skey>.stamp
 * (cache_get/cache_put format, magic "lm-predictor-stamp") holds the key
 * of the object compiled from the files' bytes and one word (at most 16
 * characters) per file that the caller read from them. get: 0, or -1
 * (a miss: none, another key, damaged, not this user's). put: best effort. */
int jitcache_stamp_key(const char *options, const char *const *paths,
                       const char *const *shown, int n, char key[33],
                       bool *settled);
int jitcache_stamp_get(const char *dir, const char *skey, int n,
                       char jitkey[33], char (*words)[17]);
int jitcache_stamp_put(const char *dir, const char *skey, const char *jitkey,
                       const char (*words)[17], int n);
/* db_open through a stamp of module_db.json and its index in the cache's
 * db/ directory: verified (db_open_verified, neither file hashed) when the
 * stamp of both files as they are now exists; a run that took the index
 * after the full check stamps them if both are settled and stat the same
 * after as before. What lmp_open uses (DESIGN.md §7.10). */
Db *db_open_stamped(const char *db_path, const char *mod_dir, Error *e);

/* ===== registry.c ===== */

/* One loaded module: its definition and its compiled metric functions. */
typedef struct RegModule {
  const ModuleDef *def;            /* borrowed from the Db */
  bool ready;                      /* compiled: the pointers below are set */
  lm_metric_fn fn[M_COUNT];        /* entry metrics */
  lm_metric_fn (*opfn)[M_TRAFFIC]; /* per atomic op, def->nops rows */
  const char *dir;                 /* generated modules' directory (the
                                      registry's; NULL if not opened from
                                      one): explanations cite the file */
} RegModule;

typedef struct Registry Registry;

Registry *reg_new(void);
/* Tests inject a weak hash to force collisions. */
Registry *reg_new_with_hash(HashFn fn);
/* Add under its def's full name; the short-name index is updated. Returns
 * -1 if the full name is present, or for reg_open's registry (it holds its
 * database's modules only). The registry takes ownership of m. */
int reg_add(Registry *r, RegModule *m);
/* By full class name, O(1). Borrowed; NULL if absent. */
RegModule *reg_get(const Registry *r, const char *full_name);
/* By short name, O(1): the module if exactly one has it; NULL otherwise,
 * with *count set to how many share it (0 = none). */
RegModule *reg_get_short(const Registry *r, const char *short_name,
                         int *count);
/* Iterate in insertion order: *i starts at 0. */
RegModule *reg_next(const Registry *r, int *i);
int reg_count(const Registry *r);
void reg_free(Registry *r);

/* Compile every module of db from modules_dir (by stored file name only),
 * check fingerprints, resolve symbols, register. New; free with reg_free.
 * The registry keeps the JIT state; db must outlive it. */
Registry *reg_load(const Db *db, const char *modules_dir, Error *err);
/* Register every module of db, compile none (cheap: the modules in one
 * allocation, looked up by name through db's own maps). New; free with
 * reg_free. Model loading then compiles what the model uses. */
Registry *reg_open(const Db *db, const char *modules_dir, Error *err);
/* Compile full_name from text (generated C, borrowed: it must outlive the
 * next reg_ensure) instead of its file: a candidate that is not on disk
 * yet (lmgen --arch checks new modules before writing anything). -1 if
 * the registry has no such module. */
int reg_set_text(Registry *r, const char *full_name, const char *text);
/* Compile the modules not ready yet among mods, with every module their
 * formulas call, in one new JIT state. 0, or -1 with err (stale or missing
 * file, compile error): the registry stays usable. */
int reg_ensure(Registry *r, RegModule *const *mods, int n, Error *err);
/* How many of r's compiles a stamp answered: the cached object found by
 * stat(2) of the files alone, none read (registry.c, DESIGN.md §7.10). */
int reg_stamp_hits(const Registry *r);

/* ===== prog.c: compiled parameter templates ===== */

typedef struct Instr {
  unsigned char op; /* PROG_* */
  unsigned char n;  /* min/max arity */
  int idx;          /* variable index */
  double k;         /* constant */
} Instr;

typedef struct Prog {
  Instr *code;
  int len;
  int depth; /* stack needed */
} Prog;

#define PROG_MAX_DEPTH 64

/* Compile a checked formula whose ND_PARAM indexes are variable indexes
 * (module calls are not allowed). Variables with known[i] are constants
 * (values[i]) and every subtree using only them is folded; the others are
 * read at run time. Fails if the stack would exceed PROG_MAX_DEPTH. */
int prog_compile(Arena *a, const Node *n, const double *values,
                 const bool *known, Prog *out, Error *err);
/* True if the program is a single constant (its value in *v). */
bool prog_const(const Prog *p, double *v);
double prog_eval(const Prog *p, const double *vars);
/* An instruction's kind as a character: 'k' constant, 'v' variable,
 * '+' '-' '*' '/' '0' (floor division) binary, 'n' negation, 'c' ceil,
 * 'f' floor, 'm' min, 'M' max (of in->n operands). */
char prog_op_kind(const Instr *in);
/* True if the program reads variable var at run time. */
bool prog_reads(const Prog *p, int var);

/* ===== model.c: architecture files ===== */

/* Run variables: the values a model template may use besides its config. */
typedef enum {
  V_B,        /* batch size */
  V_S,        /* sequence length */
  V_T,        /* tokens per sequence in this step */
  V_L,        /* KV length attended over */
  V_W_BYTES,  /* bytes per weight element */
  V_A_BYTES,  /* bytes per activation element */
  V_KV_BYTES, /* bytes per KV-cache element */
  V_SRAM_BYTES, /* on-chip shared memory per SM of the GPU, bytes */
  V_E_BYTES,  /* bytes per embedding / lm_head weight element */
  V_X_BYTES,  /* bytes per routed-expert weight element (MoE) */
  V_DECODE,   /* 1 in the decode step, 0 in prefill */
  V_EXPERT_BALANCE, /* routing balance in (0, 1]: 1 = uniform (MoE) */
  V_ACTIVE_ONLY,    /* 1: param_bytes of MoE layers count top_k experts */
  V_COUNT
} RunVar;

extern const char *const run_var_name[V_COUNT];

/* Weight precision a config's quantization_config sets (config.c): bits
 * per weight including scales, for the dense weights quantization covers
 * (w_bytes) and the routed experts (x_bytes); 0 = not covered (the run's
 * --w-bits, default 16). nominal_*: the format's element width (8 for
 * FP8), which decides the compute peak. */
typedef struct Quant {
  const char *method;  /* quant_method, or NULL: no quantization_config */
  bool known;          /* a method modelled (fp8, mxfp4, gptq, awq,
                          compressed-tensors) */
  const char *why;     /* not known although the method is: why (a string
                          literal), else NULL */
  double w_bits, x_bits;
  int nominal_w, nominal_x;
} Quant;

/* Where a config value came from (config.c): --tree and --explain say it. */
typedef struct VarOrigin {
  int line;          /* the key's line in the config (a count: the line of
                        the array counted); 0: absent (with dflt set: the
                        key is null there) */
  const char *array; /* a count: the array (or pattern string) counted;
                        else NULL */
  const char *dflt;  /* absent: the template's default as written; else
                        NULL */
  int dflt_line;     /* that default's line in the template */
  bool by_null;      /* dflt is the declaration's "null" value: the config
                        writes the key as null and the class gives None a
                        meaning of its own */
  const char *choice; /* a choice's "variable": the choice key whose value's
                         index it holds (its value in
                         `value`); else NULL */
  const char *value;  /* that choice's value */
} VarOrigin;

typedef struct Layer Layer;

/* One item of a layer's sub_layers: a sub-layer, or where one of the
 * layer's own atomic operations runs. */
typedef struct Item {
  Layer *layer;        /* a sub-layer, or NULL */
  int op;              /* index of an atomic op when layer is NULL */
  bool omit;           /* the op placement's `when` is 0: the op does not run */
} Item;

struct Layer {
  const char *name;     /* Hugging Face module name; "" for the root */
  const char *path;     /* dotted path from the root */
  const char *cls;      /* full class name as written */
  RegModule *mod;       /* resolved */
  Prog *args;           /* one per declared parameter, in order */
  const char **arg_text;/* each as the model file writes it ("{B} * {T}") */
  double repeat;        /* instances of this layer (>= 1) */
  const char *repeat_text; /* as the model file writes it; NULL if absent */
  double count;         /* instances in the model (product of repeats) */
  Item *items;          /* sub_layers in file order, with op placements */
  int nitems;
  int depth;
  JsonPath jp;          /* the layer object in the model file (keys copied) */
  const char *kind;     /* layer kind ("sliding", "full"), inherited; or NULL */
  bool tied;            /* weights belong to another layer: param_bytes not
                           counted (tied embeddings) */
};

typedef struct Model {
  JsonDoc doc;         /* file as given, its text (carets); owned */
  const char *id;      /* "model" */
  const char **var_names; /* run variables, then config keys */
  double *var_values;     /* config values (run variables unset) */
  int nvars;
  Layer *root;
  const char *family;  /* Hugging Face model_type; NULL for a model file */
  const char *note;    /* what the template leaves out, or NULL */
  bool from_config;    /* built from a config.json and a template */
  double ckpt_bytes;   /* checkpoint size from model.safetensors.index.json
                          next to the config; -1 if none */
  const char *warnings; /* lines met while loading (Hub retries, not
                           cached), or NULL */
  double ckpt_elem_bytes; /* bytes per parameter the checkpoint stores
                             (config torch_dtype: float32 4, float8 1,
                             else 2) */
  Quant quant;         /* from the config's quantization_config */
  const char *tmpl_pending; /* the template, when its validation.status is
                               pending (written by lmgen --arch), or NULL */
  const char *config_path; /* the config.json a template was filled from
                              (doc is then the template); NULL otherwise */
  const VarOrigin *origin; /* per variable (run variables zeroed), with
                              config_path; NULL for a model file */
  Arena arena;
} Model;

/* The config values a template is filled with (config.c). */
typedef struct ModelVars {
  const char *id;      /* model id shown in reports */
  const char *family;  /* model_type */
  const char *note;    /* or NULL */
  const char *const *names;
  const double *values;
  int n;
  Quant quant;
  const char *config_path;  /* the config read, as shown; or NULL */
  const VarOrigin *origins; /* per name; or NULL */
} ModelVars;

#define TMPL_NMEMBERS 11
extern const char *const tmpl_members[TMPL_NMEMBERS];

#define MODEL_MAX_DEPTH 32

/* Load and check a model file against the registry: every class resolved,
 * parameters exactly those declared, templates checked. New; free with
 * model_free. NULL on error. */
Model *model_load(const char *path, const Registry *reg, Error *err);
Model *model_load_text(const char *path, const char *text, size_t len,
                       const Registry *reg, Error *err);
/* From parsed JSON: a model file (vars NULL) or, with vars, a template's
 * architecture filled with config values. root is borrowed. */
Model *model_load_json(const char *path, const char *text, size_t len,
                       json_t *root, const ModelVars *vars,
                       const Registry *reg, Error *err);
void model_free(Model *m);

/* ===== config.c: Hugging Face configs and templates ===== */

typedef struct ModelOpenOpts {
  const char *arch_dir; /* templates; NULL: <install>/models/arch */
} ModelOpenOpts;

/* The one entry point for everything lmrun accepts: a model file, a
 * Hugging Face config.json, a directory holding one (a snapshot), or a Hub
 * id "org/name" (hub.c). o may be NULL. New; free with model_free. */
Model *model_open(const char *arg, const ModelOpenOpts *o, const Registry *reg,
                  Error *err);
/* A config.json's text (path names it in errors) filled into
 * <arch_dir>/<model_type>.json. id: the model id to show, or NULL (then
 * the config's _name_or_path when it is an id, else the path). */
Model *model_from_config(const char *path, const char *text, size_t len,
                         const char *id, const char *arch_dir,
                         const Registry *reg, Error *err);
/* The same with the template given as text (named tname in errors)
 * instead of <arch_dir>/<model_type>.json: lmgen --arch checks a template
 * before it exists. */
Model *model_from_template(const char *cpath, const char *text, size_t len,
                           const char *id, const char *tname,
                           const char *ttext, size_t tlen,
                           const Registry *reg, Error *err);
/* A config.json's text, located as lmrun locates it (config.c's
 * config_locate). Owned strings; config_text_free. */
typedef struct ConfigText {
  char *path; /* named in messages: the file, or "org/name:config.json" */
  char *text;
  size_t len;
  char *id;   /* the Hub id, or NULL */
  char *dir;  /* where model.safetensors.index.json would be (the config's
                 directory, the cached snapshot); NULL: fetched */
} ConfigText;
/* What lmrun accepts as a config: a config.json file, a directory holding
 * one (a snapshot), or a Hub id (cache first). A model file is an error
 * here. */
int config_locate(const char *arg, ConfigText *out, Error *err);
void config_text_free(ConfigText *c);
/* The config's model_type (a family name: lowercase, digits, '_'), errors
 * located in the config. */
int config_model_type(const ConfigText *c, char *out, size_t outsz,
                      Error *err);
/* <install>/models/arch. New string. */
char *arch_dir_default(void);

/* ===== hub.c: Hub ids and huggingface_hub's cache ===== */

bool hub_valid_id(const char *id);
/* $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub. New string. */
char *hub_cache_dir(void);
/* Cache first, then $HF_ENDPOINT (unless HF_HUB_OFFLINE); stores what it
 * fetched once the model loaded. */
Model *hub_open_model(const char *id, const ModelOpenOpts *o,
                      const Registry *reg, Error *err);
/* A Hub id's config.json: the cache's snapshot, else fetched (not stored:
 * lmrun stores it once a template reads it). */
int hub_config_text(const char *id, ConfigText *out, Error *err);
/* metadata.total_size of the id's model.safetensors.index.json on the
 * Hub; -1 when there is none (offline, single-file checkpoint). A failure
 * other than a missing index sets err. */
double hub_index_total(const char *id, Error *err);
/* m->ckpt_bytes from dir/model.safetensors.index.json (-1 if none). */
void hub_read_index(Model *m, const char *dir);

/* ===== plan.c: the walk, flattened ===== */

/* Attention implementations, as --attention names them. */
#define LM_ATTNS(X) X(ATTN_EAGER, "eager") X(ATTN_FLASH, "flash")
typedef enum { LM_ATTNS(LM_X_ENUM) ATTN_COUNT } AttnImpl;
extern const char *const attn_name[ATTN_COUNT];

/* One reported operation: a basic layer, a composite's own formulas, or an
 * atomic op. */
typedef struct Row {
  const char *path;     /* model.layers.self_attn.qk_matmul */
  const char *op;       /* leaf name: q_proj, qk_matmul, ... */
  const char *module;   /* full class name */
  double count;         /* instances in the model */
  int slot;             /* which argument vector (layer) it reads */
  PhaseMode phase;      /* AP_ANY, or the one phase it runs in */
  bool xw;              /* its weights are the routed experts' (x_bytes) */
  lm_metric_fn fn[M_TRAFFIC]; /* NULL = metric absent (0) */
} Row;

/* A layer whose arguments are evaluated; rows refer to it by slot. */
typedef struct Slot {
  const Layer *layer;
  double *init;         /* argument values; constants filled, others 0 */
  int nargs;
  int argbase;          /* offset of this slot's arguments in Values.args */
  int *dyn;             /* parameters evaluated per run */
  int ndyn;
  lm_metric_fn state[M_COUNT - M_TRAFFIC]; /* param_bytes, kv_cache_bytes */
} Slot;

typedef struct Fused Fused;

typedef struct Plan {
  unsigned long serial; /* unique per plan_build in the process: a cache
                           keyed by a plan compares this, since a freed
                           plan's address is reused by the next one */
  const Model *model;
  AttnImpl attn;
  Row *rows;
  int nrows;
  Slot *slots;
  int nslots;
  int nargs;            /* total arguments over all slots */
  Fused *fused;         /* the whole plan as one JIT function, built by
                           plan_fuse or after PLAN_FUSE_AFTER evaluations
                           (a cache: plan_eval fills it); NULL: none yet */
  int evals;            /* evaluations so far, until fused */
  bool fuse_tried;      /* fused_build ran (NULL: not fusable) */
  int *kvrows;          /* rows that depend on the KV length (plan_kv_rows) */
  int nkvrows;
  bool all_phases;      /* every row runs in both phases (plan_build found no
                           one-phase row): Values.off stays all false */
  Arena arena;
} Plan;

/* Values of one evaluation: per row, the six traffic metrics; plus the
 * state metrics summed over the model (count x value). */
typedef struct Values {
  double (*row)[M_TRAFFIC]; /* nrows x M_TRAFFIC */
  bool *off;                /* per row: not run in this phase (values 0);
                               NULL: every row runs */
  double state[M_COUNT - M_TRAFFIC];
  int nrows;
  double *vars;             /* run variables then config values */
  double *args;             /* every slot's arguments */
} Values;

Plan *plan_build(const Model *m, AttnImpl attn, Error *err);
void plan_free(Plan *p);
Values *values_new(const Plan *p);
void values_free(Values *v);
/* Evaluate every row with the given run variables (V_COUNT values). Fails
 * on a parameter or result that is negative, NaN or infinite, naming the
 * layer and what went wrong. */
int plan_eval(const Plan *p, const double *run, Values *out, Error *err);
/* The model's parameter count (see plan.c), evaluated in scratch: total,
 * and active (the parameters one token uses: MoE layers count top_k of
 * their routed experts). Either pointer may be NULL. */
int plan_parameters(const Plan *p, Values *scratch, double *total,
                    double *active, Error *err);
/* KV cache bytes per layer kind from evaluated values v; returns how many
 * kinds (at most max), names borrowed ("" = no kind). */
int plan_kv_by_kind(const Plan *p, const Values *v, const char **kinds,
                    double *bytes, int max);
/* Evaluations of a plan before plan_eval compiles it into one function
 * (fuse.c). Compiling costs 1-7 ms and saves under 1.5 us per evaluation,
 * so one prediction (a few dozen evaluations) stays interpreted and a
 * sweep or a long -O is fused early; the results are bit-identical either
 * way. */
#define PLAN_FUSE_AFTER 2048
/* Compile the fused function now (tests, bench); whether it exists is
 * p->fused. */
void plan_fuse(Plan *p);
/* The same without the fused function (fuse.c): the stack machine and
 * one call per row and metric. plan_eval uses it when the plan is not
 * fused or the fused function reports a failed check (to word the
 * error). */
int plan_eval_interp(const Plan *p, const double *run, Values *out,
                     Error *err);
/* The rows whose values depend on the KV length: rows of a slot with a
 * dynamic argument reading L or S. New array of row indexes (*n of them);
 * free(). */
int *plan_kv_rows(const Plan *p, int *n);
/* Re-evaluate only the given rows (and their slots' arguments) of out, an
 * evaluation of the same plan whose other rows stay valid; the state
 * metrics are not updated. Same checks as plan_eval. */
int plan_eval_rows(const Plan *p, const double *run, const int *rows, int n,
                   Values *out, Error *err);
/* plan_eval_rows of the plan's kvrows: the fused function's when there is
 * one (bit-identical), else interpreted. */
int plan_eval_kv(const Plan *p, const double *run, Values *out, Error *err);
/* out, a whole evaluation at run variables that differ from run in L and
 * S at most, made one at run: the KV rows and the state re-evaluated
 * (fused), else a whole plan_eval. */
int plan_eval_kv_state(const Plan *p, const double *run, Values *out,
                       Error *err);

/* ===== fuse.c: a plan as one JIT-compiled function ===== */

/* Compile the plan's evaluation into one function (config folded,
 * formulas inlined); bit-identical to plan_eval_interp. NULL when the plan
 * uses something the fuser does not inline or the JIT fails (plan_eval
 * then stays interpretive). */
Fused *fused_build(const Plan *p);
/* Evaluate: 0, or -1 when a check fails (out is then partly written). */
int fused_eval(const Fused *f, const double *run, Values *out);
/* Only the plan's KV rows (plan->kvrows) and their slots' parameters,
 * into out, an evaluation of the same plan (the state is not touched). */
int fused_eval_kv(const Fused *f, const double *run, Values *out);
/* The same and the state metrics: out then equals a whole evaluation at
 * run when it was one at run variables that differ in L and S only. */
int fused_eval_kv_state(const Fused *f, const double *run, Values *out);
void fused_free(Fused *f);

/* ===== hardware.c ===== */

typedef struct Gpu {
  const char *id;      /* h100-sxm */
  const char *name;    /* NVIDIA H100 SXM5 80GB */
  double fp16_flops;   /* dense FP16/BF16 Tensor Core peak, FLOP/s */
  double fp8_flops;    /* dense FP8 peak, 0 if none */
  double int8_ops;     /* dense INT8 peak, 0 if none */
  double fp6_flops;    /* dense FP6 peak (Blackwell), 0 if none */
  double fp4_flops;    /* dense FP4 peak (Blackwell: MXFP4/NVFP4), 0 if none */
  double fp32_flops;   /* non-tensor FP32 peak (FMA = 2 FLOPs), 0 if not given */
  double sfu_ops;      /* special-function results (exp2) per second, 0 if
                          not given */
  double softmax_hidden; /* the fraction of a flash kernel's softmax time
                          (sfu_ops, fp32_flops) its MMAs hide: 0 unless
                          given (Blackwell's kernels: 1) */
  double bandwidth;    /* HBM (or GDDR) bandwidth, bytes/s */
  double memory;       /* capacity, bytes */
  double l2;           /* L2 cache, bytes */
  double smem_per_sm;  /* on-chip shared memory per SM (or LDS per CU) */
  double sm_count;     /* SMs (or compute units) */
  /* interconnect: 0 when hardware.json does not give it */
  double nvlink_bw;    /* NVLink (or Infinity Fabric) per GPU, one
                          direction, bytes/s */
  bool nvswitch;       /* every GPU of the node reaches every other at
                          nvlink_bw */
  double pcie_bw;      /* host link per GPU, one direction, bytes/s */
  double network_bw;   /* scale-out network per node, one direction */
  double gpus_per_node;
} Gpu;

typedef struct GpuDb {
  Gpu *gpus;
  int n;
  Arena arena;
} GpuDb;

/* Load and check hardware.json: every GPU complete, positive, sourced.
 * New; free with gpudb_free. NULL on error (located in the file). */
GpuDb *gpudb_load(const char *path, Error *err);
GpuDb *gpudb_load_text(const char *path, const char *text, size_t len,
                       Error *err);
/* The same through the user's cache (cache_dir("hw"), DESIGN.md §7.10):
 * the table checked before from the same bytes by the same build, else
 * gpudb_load_text, storing what it accepts. The same table or error. */
GpuDb *gpudb_load_cached(const char *path, const char *text, size_t len,
                         Error *err);
/* The table as text, each figure exact (%a), and back (NULL unless it is
 * exactly such a text; text[len] must be a NUL). For the cache. */
char *gpudb_serialize(const GpuDb *db);
GpuDb *gpudb_deserialize(const char *text, size_t len);
const Gpu *gpudb_find(const GpuDb *db, const char *id);
/* Whether s has the form of a GPU id: lowercase letters, digits, '-'. */
bool gpu_id_valid(const char *s);
void gpudb_free(GpuDb *db);

/* ===== roofline.c ===== */

#define LM_MAX_BATCH 1048576.0 /* 2^20 sequences */
#define LM_MAX_PARALLEL 4096.0 /* GPUs in one parallel dimension */

typedef enum { BOUND_MEMORY, BOUND_COMPUTE } Bound;

/* The 8-bit peak, as --8bit-format names it (auto: not a choice, the
 * default when the option is absent). */
#define LM_FORMATS8(X) X(FMT8_AUTO, NULL) X(FMT8_INT8, "int8") X(FMT8_FP8, "fp8")
typedef enum { LM_FORMATS8(LM_X_ENUM) FMT8_COUNT } Format8;
extern const char *const format8_name[FMT8_COUNT];

/* The compute peaks for a run: the FP16/BF16 one, and the 8-bit one an
 * operation uses when every operand it reads is 8 bits or narrower. */
typedef struct Peaks {
  double p16;          /* FP16/BF16 dense peak, FLOP/s */
  double p8;           /* the 8-bit peak; 0 if the GPU has none */
  const char *p8_name; /* "INT8" or "FP8" */
  double p6, p4;       /* the FP6 and FP4 peaks; 0 if the GPU has none */
  int w_bits, a_bits, kv_bits;
  int x_bits;          /* the routed experts' weight width (their format's
                          element width: 4 for MXFP4); w_bits if not set */
} Peaks;

/* The 8-bit peak is INT8 (auto: if the GPU has one, else FP8) or FP8, as
 * asked. Fails when the GPU lacks the format asked for. */
int roof_peaks(const Gpu *g, int w_bits, int a_bits, int kv_bits, Format8 f,
               Peaks *out, Error *err);
/* The peak an operation with these metrics computes at, from the widest
 * operand it reads (its activations; its weights if it reads any, at the
 * experts' width x_bits when xw; its KV cache if it reads any): FP4 at 4
 * bits or less and FP6 at 6 where the GPU has them (Blackwell), the 8-bit
 * peak at 8 or less (so W8A8 projections and, with an 8-bit cache too, the
 * attention matmuls), else FP16/BF16. *name says which. */
double roof_peak(const Peaks *pk, const double *metrics, bool xw,
                 const char **name);
/* roof_peak's body, inlined where a sweep runs it for every row */
static inline double roof_peak_inline(const Peaks *pk, const double *v,
                                      bool xw, const char **name) {
  /* the widest operand the operation reads */
  int bits = pk->a_bits;
  int wb = xw ? pk->x_bits : pk->w_bits;
  if (v[M_WEIGHT_BYTES] != 0 && wb > bits)
    bits = wb;
  if (v[M_KV_READ_BYTES] != 0 && pk->kv_bits > bits)
    bits = pk->kv_bits;
  const char *n = "FP16/BF16";
  double p = pk->p16;
  if (bits <= 4 && pk->p4 > 0)
    n = "FP4", p = pk->p4;
  else if (bits <= 6 && pk->p6 > 0)
    n = "FP6", p = pk->p6;
  else if (bits <= 8 && pk->p8 > 0)
    n = pk->p8_name, p = pk->p8;
  if (name)
    *name = n;
  return p;
}
/* roof_peak of a row whose weights are at w_bits (not the experts'). */
double roof_row_peak(const Peaks *pk, const double *metrics, const char **name);
/* The peak of an operation that reads weights (a projection). */
double roof_weight_peak(const Peaks *pk, const char **name);
/* time = max(flops / peak, bytes / bandwidth); *bound says which. */
double roof_time(double flops, double bytes, double peak, double bandwidth,
                 Bound *bound);

/* Memory needed to run B sequences of S tokens. */
typedef struct Footprint {
  double weights;    /* parameters held (param_bytes) */
  double kv_cache;   /* KV cache after S tokens (decode's KV length) */
  double act;        /* largest act read + written by one operation */
  double total;
  double capacity;   /* the GPU's memory */
  bool fits;
  double max_batch;  /* largest B that fits at this S; 0 if none */
  bool max_capped;   /* max_batch hit LM_MAX_BATCH */
} Footprint;

/* Evaluate prefill and decode run variables (prefill_run, decode_run, with
 * B overridden) and measure the footprint; with search, also the largest
 * batch that fits. Scratch values for both evaluations are passed in. */
int roof_footprint(const Plan *p, const double *prefill_run,
                   const double *decode_run, double capacity, bool search,
                   Values *scratch_a, Values *scratch_b, Footprint *out,
                   Error *err);
/* The footprint of prefill and decode values already evaluated (no search:
 * max_batch 0). */
void roof_measure(const Plan *p, const Values *prefill, const Values *decode,
                  double capacity, Footprint *out);
/* Does k fit? *total: the footprint there (NaN if unknown), a guide. */
typedef bool (*RoofFits)(void *ctx, double k, double *total);
/* The largest k in [lo, hi) that fits, given fits(lo) (footprint tlo) and
 * not fits(hi) (thi): the one k with fits(k) and not fits(k + 1) where
 * fitting is monotone in k, found in a few probes for a footprint linear
 * in k (a guess from the footprints, then its neighbour). */
double roof_search_batch(RoofFits fits, void *ctx, double capacity, double lo,
                         double tlo, double hi, double thi);
/* The largest batch that fits at these run variables (their B ignored),
 * into out->max_batch and out->max_capped; probes evaluate into scratch. */
void roof_max_batch(const Plan *p, const double *prefill_run,
                    const double *decode_run, double capacity,
                    Values *scratch_a, Values *scratch_b, Footprint *out);

/* ===== report.c ===== */

/* Calibrated times (calib.h): opaque here. */
typedef struct Calib Calib;
typedef struct Engine Engine;
typedef struct CalibPlan CalibPlan;

/* Output formats, as --format names them. */
#define LM_FORMATS(X)                                                          \
  X(FMT_TABLE, "table") X(FMT_JSON, "json") X(FMT_CSV, "csv")                  \
  X(FMT_MARKDOWN, "markdown") X(FMT_HTML, "html")
typedef enum { LM_FORMATS(LM_X_ENUM) FMT_COUNT } Format;
extern const char *const format_name[FMT_COUNT];

typedef struct CommOp CommOp;

/* roof_peak's answers for one Peaks: a row's peak depends only on whether
 * it reads weights (bit 0), the KV cache (bit 1) and whether its weights
 * are the experts' (bit 2). Kept by phase_roofline_rows between calls. */
typedef struct PeakTab {
  bool valid;
  Peaks pk;
  double peak[8];
  const char *name[8];
} PeakTab;

typedef struct PhaseResult {
  const char *name; /* "prefill", "decode" */
  double tokens;    /* T */
  double kv_len;    /* L */
  const Plan *plan;
  const Values *vals;
  double *time;     /* per row, seconds; NULL without hardware */
  Bound *bound;     /* per row */
  const char **peak;/* per row: the peak it computes at */
  double total_time;/* sum of count x time (the roofline bound) */
  double *pred;     /* per row: calibrated time, s; NULL with --roofline */
  const char **kernel; /* per row: the engine's kernel it runs in */
  double pred_total;/* sum of count x pred */
  PeakTab ptab;     /* phase_roofline_rows' */
  /* parallelism (parallel.c): communication rows and the phase latency */
  const CommOp *comm;   /* the plan's collectives; NULL without */
  int ncomm;
  double *comm_bytes;   /* per collective: bytes, seconds */
  double *comm_time;    /* calibrated (collectives.json) unless roofline */
  double *comm_roof;    /* the datasheet bound of each */
  const char **comm_kernel; /* the measured kernel comm_time is from
                               ("nccl", an engine's own); NULL: the bound */
  int comm_cap;         /* their length */
  double send_bytes, send_time; /* pipeline: one stage to the next */
  double send_time_roof;        /* its datasheet bound */
  int sends;            /* pp - 1 */
  int send_after;       /* the row the send row follows */
  double *stage_send;   /* per stage boundary: the send's time */
  double step_host; /* the engine's host time per step in latency (its
                       step object; 0 with --roofline) */
  double latency_roofline; /* the same with the rows' roofline times */
  double latency;       /* the phase's time on the configuration: the
                           rows (pred_total, or total_time with --roofline),
                           the collectives, the pipeline */
} PhaseResult;

typedef struct Summary {
  double ttft;         /* prefill time, s (calibrated unless --roofline) */
  double tpot;         /* one decode step, s (likewise) */
  double ttft_roofline, tpot_roofline; /* the roofline bounds */
  double tokens_per_s; /* B / tpot */
  Footprint mem;
  /* -O N (output_len > 0): the request generates N tokens */
  double output_len;   /* N; 0 without -O */
  double decode_sum;   /* the N - 1 decode steps, KV lengths S+1 .. S+N-1 */
  double e2e;          /* ttft + decode_sum */
  double tpot_mean;    /* decode_sum / (N - 1); 0 when N = 1 */
  double gpus;         /* GPUs of the configuration: tp x pp */
  double throughput;   /* tokens/s in total: B N / e2e with -O, else
                          tokens_per_s */
  double throughput_per_gpu; /* throughput / gpus */
} Summary;

typedef struct Report {
  const char *model;
  const char *family;    /* model_type; NULL for a model file: then the
                            parameters and kinds below are not shown */
  const char *note;      /* what is not counted, or NULL */
  double parameters;     /* parameter count (dense: all active) */
  double active;         /* parameters one token uses (MoE: top_k experts) */
  const Quant *quant;    /* the config's quantization, or NULL */
  const char *const *kv_kinds; /* KV cache per layer kind ("" = none) */
  const double *kv_kind_bytes;
  int nkinds;
  double batch, seq_len;
  int w_bits, a_bits, kv_bits;
  const char *attention;
  const PhaseResult *phases;
  int nphases;
  const Gpu *gpu;        /* NULL: counts only */
  Peaks peaks;
  const Summary *summary;
  bool serving;          /* -O or parallelism given: serving keys shown */
  int tp, pp, ep, microbatches;
  const Engine *engine;  /* NULL: roofline only (--roofline) */
  const Calib *calib;
  const CalibPlan *cplan; /* the engine's kernels (explanations); NULL
                             with --roofline */
  const double (*run)[V_COUNT]; /* the phases' run variables, prefill
                                   then decode (explanations); may be
                                   NULL */
} Report;

/* Roofline time and bound of every row of a phase. Allocates ph->time,
 * ph->bound and ph->peak when ph->time is NULL, else reuses them (they
 * must hold ph->plan->nrows rows); free with phase_free_times. */
void phase_roofline(PhaseResult *ph, const Peaks *peaks, double bandwidth);
/* The same for the rows marked in only (NULL: all); the others keep their
 * time, bound and peak. The total is over every row, in order. */
void phase_roofline_rows(PhaseResult *ph, const Peaks *peaks,
                         double bandwidth, const bool *only);
void phase_free_times(PhaseResult *ph);

/* Render the report. New string; free(). */
char *report_render(const Report *r, Format fmt);
/* "68.7 G" style: three significant digits and an SI prefix. */
void si_format(double v, const char *unit, char *out, size_t outsz);
/* A count, batch or length for the table: snprintf's "%.0f" of a whole
 * number under 10^15 (written by hand), else "%.6g". Returns out. */
const char *report_whole(double v, char *out, size_t n);
/* "220 us" style: three significant digits and ns, us, ms or s. */
void time_format(double s, char *out, size_t outsz);
/* Shortest round-trip decimal, integers without a fraction; "null" for a
 * non-finite value. */
void report_number(double v, char *out, size_t outsz);
/* Append s as a JSON string literal: quotes and backslashes escaped,
 * control characters as \u00XX, other bytes as they are. */
void report_json_string(Buf *b, const char *s);

/* ===== html.c ===== */

/* The report as one self-contained HTML page (inline SVG, CSS and
 * script; nothing fetched): per phase the roofline, the time by kind of
 * operation, the sortable table with each row's explanation; the memory
 * footprint against capacity. */
/* The model header lines (family, parameters, quantization, note). */
void report_model_lines(const Report *r, Buf *b);
void render_html(const Report *r, Buf *out);

/* One configuration of a sweep, for its page. */
typedef struct SweepPoint {
  const char *series;  /* the swept options but x ("h100-sxm"); one line
                          per series */
  double x;            /* the swept variable's value */
  double ttft, tpot;   /* s */
  double throughput;   /* tokens/s */
  bool fits;
  int slo;             /* -1: no SLO; 0 meets it; 1 misses it */
  bool best;           /* the SLO's best configuration */
} SweepPoint;

typedef struct SweepPage {
  const char *model;
  const char *settings; /* the options every configuration shares */
  const char *xname;    /* the swept variable, with its unit ("batch") */
  const SweepPoint *pts;
  int n;
  const char *slo;      /* the targets as given; NULL: none */
  double slo_ttft, slo_tpot; /* s; 0 when not a target */
  const char *outcome;  /* the best configuration as text, or NULL */
} SweepPage;

/* A sweep as one page: TTFT, TPOT and throughput against the swept
 * variable, one line per series (at most eight), the SLO's targets and
 * frontier; a sortable table of the configurations. */
void render_sweep_html(const SweepPage *p, Buf *out);

/* ===== explain.c ===== */

/* The row of p named by query: its path, or a leaf name that only one row
 * has. -1 with err listing the candidates (the rows sharing the leaf name,
 * near misses, or every operation). */
int explain_find(const Plan *p, const char *query, Error *err);
/* Where every number of row r of rep->phases[phase] comes from: the
 * module and its source, each parameter's template, value and origin,
 * each formula substituted and evaluated, the roofline terms. */
void explain_row(const Report *rep, int phase, int r, Buf *out);
/* The model's layers as the walk visits them, with parameter templates
 * and their values in prefill (pre) and decode (dec). */
void tree_render(const Plan *p, const Values *pre, const Values *dec,
                 Buf *out);
/* ===== parallel.c: tensor, pipeline and expert parallelism ===== */

/* Collectives, as parallel.json names them. */
#define LM_COLLS(X)                                                            \
  X(COLL_ALL_REDUCE, "all_reduce") X(COLL_ALL_GATHER, "all_gather")            \
  X(COLL_REDUCE_SCATTER, "reduce_scatter") X(COLL_ALL_TO_ALL, "all_to_all")    \
  X(COLL_SEND, "send")
typedef enum { LM_COLLS(LM_X_ENUM) COLL_COUNT } CollKind;
extern const char *const coll_name[COLL_COUNT];

/* What a split does to a config value: divide exactly (else an error),
 * divide or replicate (key/value heads: v/n when n divides v, else 1 when
 * v divides n), divide rounding up (a padded vocabulary). */
#define LM_SPLITS(X)                                                           \
  X(SPLIT_EXACT, "exact") X(SPLIT_REPLICATE, "replicate") X(SPLIT_CEIL, "ceil")
typedef enum { LM_SPLITS(LM_X_ENUM) SPLIT_COUNT } SplitKind;

/* How a layer is laid out under tensor parallelism (checked). */
#define LM_LAYOUTS(X)                                                          \
  X(LAYOUT_COLUMN, "column") X(LAYOUT_ROW, "row") X(LAYOUT_VOCAB, "vocab")     \
  X(LAYOUT_REPLICATED, "replicated") X(LAYOUT_EXPERT, "expert")              \
  X(LAYOUT_HEADS, "heads") X(LAYOUT_SHARDED, "sharded")
typedef enum { LM_LAYOUTS(LM_X_ENUM) LAYOUT_COUNT } Layout;

enum { GROUP_TP, GROUP_EP, GROUP_PP, GROUP_COUNT };
extern const char *const group_name[GROUP_COUNT];

typedef struct ParSplit { const char *key; SplitKind kind; } ParSplit;
/* A collective after a row (or after a layer's last row), when a config
 * formula is nonzero (NULL: always); optional: absent layers are no
 * error. */
typedef struct ParColl {
  const char *after; CollKind kind; const char *bytes;
  const char *when; bool optional;
} ParColl;
/* How one argument of a layer is split: scaled as a split config key
 * (v' / v), divided or multiplied by the group size, or set to a formula
 * over the config (names of split keys prefixed "gpu_": per-GPU value). */
#define LM_ARGRULES(X)                                                         \
  X(ARG_KEY, "key") X(ARG_DIV, "/n") X(ARG_MUL, "*n") X(ARG_FORMULA, "=")
typedef enum { LM_ARGRULES(LM_X_ENUM) ARGRULE_COUNT } ArgRule;
typedef struct ParArg { const char *name; ArgRule rule; const char *text; } ParArg;
/* Paths name layers without their kind ("model.layers.mlp", every kind). */
typedef struct ParLayer {
  const char *path; Layout layout;
  ParArg *args; int nargs;
} ParLayer;
typedef struct ParGroup {
  ParSplit *split; int nsplit;
  ParColl *coll; int ncoll;
  ParLayer *layers; int nlayers;
  /* ep only: the layers and collectives of expert parallelism over the
   * tensor-parallel GPUs (--tp N --ep N); its layers replace tp's rules
   * for the same paths; split keys are ep's. NULL: not modelled. */
  struct ParGroup *with_tp;
} ParGroup;
typedef struct ParFamily {
  const char **classes; int nclasses;
  ParGroup g[2];        /* GROUP_TP, GROUP_EP */
  const char *pp_send;  /* bytes one stage sends the next; NULL: none */
} ParFamily;
typedef struct ParDb {
  ParFamily *fam; int n;
  double lat[3];        /* seconds per step: NVLink, PCIe, network */
  Arena arena;
} ParDb;

/* Load and check parallel.json. New; NULL on error (located). */
ParDb *pardb_load(const char *path, Error *err);
ParDb *pardb_load_text(const char *path, const char *text, size_t len,
                       Error *err);
void pardb_free(ParDb *db);

/* ===== collective.c: measured collective times ===== */

/* calibration/collectives.json: NCCL times per message size, per board,
 * collective, group size and span (DESIGN.md section 15.2). */
typedef struct CollCal CollCal;
/* Load and check it. New; NULL on error (located). */
CollCal *collcal_load(const char *path, Error *err);
CollCal *collcal_load_text(const char *path, const char *text, size_t len,
                           Error *err);
void collcal_free(CollCal *c);
/* Add a second file's tables (the whole of path, or text[0..len) when text
 * is not NULL) to c. 0, or -1 with err located (c keeps what it held). */
int collcal_extend(CollCal *c, const char *path, const char *text, size_t len,
                   Error *err);
/* The measured time (seconds) of collective k of `bytes` over n GPUs of
 * GPU hw (nodes: the group spans nodes) by kernel (NULL = "nccl"):
 * interpolated linearly in bytes between the table's points, the first
 * point's time below it, the last point's bandwidth above it; all_gather,
 * reduce_scatter and all_to_all from the all_reduce table at bytes / 2.
 * -1 when no table applies. */
double collcal_time(const CollCal *c, const char *hw, const char *kernel,
                    CollKind k, int n, bool nodes, double bytes);

/* One collective of a split plan: after which row, how many bytes. */
struct CommOp {
  const char *path;     /* model.layers.self_attn.o_proj.all_reduce */
  CollKind kind;
  int group;            /* GROUP_TP or GROUP_EP */
  int after;            /* the row it follows */
  double count;         /* instances: the row's count */
  Prog bytes;           /* of the run variables (config before the split) */
};

/* A model split for tp x ep GPUs, with its plan, collectives and pipeline
 * block. */
typedef struct ParPlan {
  int tp, ep;
  Model *model;         /* the split model (owned), or NULL when tp = ep = 1 */
  Plan *plan;           /* owned */
  Plan *whole;          /* the unsplit model's plan (owned; parameter
                           counts), or NULL when tp = ep = 1 */
  CommOp *comm;
  int ncomm, capcomm;
  Prog send;            /* pipeline send bytes; send.len 0: none */
  int bfirst, blast;    /* rows of the repeated block of layers; -1: none */
  double brepeat;       /* its repeat (layers) */
  const char *bpath;    /* its path */
  Arena arena;
} ParPlan;

/* Split m for tp and ep with the rules of its family (db); check the
 * layouts against the split plan. New; NULL with a located error. */
ParPlan *parplan_build(const ParDb *db, const Model *m, const Registry *reg,
                       AttnImpl attn, int tp, int ep, Error *err);
void parplan_free(ParPlan *pp);

/* ===== predict.c: one whole prediction ===== */

/* Which phases a report shows (both are always computed). */
#define LM_PHASES(X)                                                           \
  X(PHASE_PREFILL, "prefill") X(PHASE_DECODE, "decode") X(PHASE_ALL, "all")
typedef enum { LM_PHASES(LM_X_ENUM) PHASE_COUNT } PhaseSel;
extern const char *const phase_name[PHASE_COUNT];

/* A prediction's inputs: lmrun's options. */
typedef struct PredictOpts {
  double batch, seq_len;      /* B sequences of S tokens */
  int w_bits, a_bits, kv_bits, e_bits; /* 16, 8 or 4 */
  Format8 fmt8;
  AttnImpl attn;
  const char *hardware;       /* GPU id; borrowed */
  PhaseSel phase;             /* what a report shows */
  Format format;              /* how a report shows it */
  bool max_batch;             /* search the largest batch that fits */
  bool w_given;               /* w_bits set: overrides a quantization_config */
  double expert_balance;      /* MoE routing balance in (0, 1] (§17.1) */
  double output_len;          /* -O: tokens generated; 0 = not given */
  int tp, pp, ep;             /* tensor, pipeline, expert parallel sizes */
  int microbatches;           /* pipeline microbatches (divides batch) */
  bool roofline;              /* times are the roofline bound (no engine) */
  const char *engine;         /* serving engine id (engines/<id>.json) */
  bool attn_set;              /* attn was chosen (else the engine's) */
  const Calib *calib;         /* borrowed; NULL = roofline */
  const Engine *engine_data;  /* borrowed; NULL = roofline */
  const CollCal *coll_calib;  /* borrowed; NULL: collectives keep the
                                 datasheet bound (always with roofline) */
} PredictOpts;

/* lmrun's defaults: B 1, S 2048, 16-bit everything, eager, h100-sxm,
 * both phases, table, with the largest-batch search. */
void predict_defaults(PredictOpts *o);

/* Everything one prediction computes; the reporters read it. Buffers are
 * kept between calls: predict again into the same struct (zeroed at
 * first) and nothing is allocated unless the plan changed. */
typedef struct Prediction {
  PredictOpts opts;          /* a copy; opts.hardware borrowed */
  const Plan *plan;          /* borrowed, as are its model and gpu */
  const Gpu *gpu;
  Peaks peaks;
  int w_bits;                /* the weights' nominal width (16 unless
                                --w-bits or a quantization_config) */
  double run[2][V_COUNT];    /* prefill (T = S) and decode (T = 1), L = S */
  PhaseResult phase[2];      /* prefill, decode: rows' time, bound, peak */
  Summary summary;           /* TTFT, TPOT, throughput, footprint */
  Values *vals[2];           /* prefill, decode metric values */
  Values *scratch[2];        /* probes of the largest-batch search */
  const Plan *bufplan;       /* the plan the buffers are sized for */
  unsigned long bufserial;   /* and its serial (bufplan's address may be
                                a later plan's) */
  /* a model built from a config (model->from_config) */
  const Plan *param_plan;    /* the plan `parameters` was counted for */
  unsigned long param_serial; /* and its serial */
  double parameters;         /* plan_parameters; -1 for a model file */
  double active;             /* parameters one token uses (MoE: top_k) */
  const char *kv_kinds[8];   /* KV cache after S tokens per layer kind */
  double kv_kind_bytes[8];
  int nkinds;
  Values *steps;             /* -O: the decode steps, re-evaluated */
  PhaseResult stepph;        /* -O: one decode step's times */
  const ParPlan *par;        /* the split plan, or NULL on one GPU */
  const ParDb *pardb;
  double stage_time[2];      /* pipeline: the slowest stage per phase */
  /* vals[1] is a whole evaluation of bufplan at dec_run (dec_valid): a
   * decode at another KV length re-evaluates only the rows reading it */
  bool dec_valid;
  double dec_run[V_COUNT];
  /* and phase[1]'s times are that evaluation's on dec_gpu at dec_peaks
   * (calibrated with dec_calib and dec_engine): only the rows reading the
   * KV length are priced again */
  bool dec_times_valid;
  const Gpu *dec_gpu;
  Peaks dec_peaks;
  const Calib *dec_calib;
  const Engine *dec_engine;
  bool *kvmask; /* per row of bufplan: it reads the KV length */
  CalibPlan *cplan;          /* the engine's kernels over the plan */
  const Engine *cplan_engine;
} Prediction;

/* The GPU named id, or NULL with "no GPU 'id' (known: ...)" about file. */
const Gpu *predict_gpu(const GpuDb *db, const char *file, const char *id,
                       Error *err);
/* Evaluate both phases, the roofline of every row, the summary, the
 * footprint and (opts->max_batch) the largest batch. -1 on error. */
int predict(const Plan *plan, const Gpu *gpu, const PredictOpts *opts,
            Prediction *out, Error *err);
/* The same on a split plan (tp, ep) with pipeline stages (opts->pp) and
 * microbatches: collectives and sends as rows, per-GPU footprint. */
int predict_par(const ParPlan *par, const ParDb *db, const Gpu *gpu,
                const PredictOpts *opts, Prediction *out, Error *err);
/* The phase's latency with collectives and pipeline, into ph->latency
 * (ph->total_time set); run is the phase's run variables. */
int phase_latency(const Prediction *p, PhaseResult *ph, const double *run,
                  Error *err);
/* The footprint per GPU of a parallel configuration (the fullest stage). */
void par_measure(const Prediction *p, const Values *prefill,
                 const Values *decode, Footprint *f);
/* The report of a prediction (opts.phase chooses the phases shown). */
Report prediction_report(const Prediction *p);
/* Warnings that do not stop a run, one line each (no "warning: "): a
 * sequence longer than the model was trained for, modules whose formulas
 * await review. */
void prediction_warnings(const Prediction *p, Buf *out);
/* Free the buffers (not the struct itself). */
void prediction_free(Prediction *p);

/* The GPU list lmrun --list-hardware prints. New string; free(). */
char *report_hardware(const GpuDb *g);

#endif
