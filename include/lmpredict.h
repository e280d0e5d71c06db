/* lmpredict.h: the LM-Predictor C library.
 *
 * Predicts what a large language model costs to run on a GPU: per
 * operation FLOPs, bytes of weights, activations and KV cache, arithmetic
 * intensity, bound and time; for the whole model TTFT, TPOT, throughput,
 * memory footprint and the largest batch that fits. The same numbers, to
 * the byte, as the lmrun command, which is built on this library.
 *
 *   lmp_error e;
 *   lmp_data *d = lmp_open(NULL, NULL, NULL, &e);        // installed data
 *   lmp_model *m = lmp_model_load(d, "models/llama-2-7b-hf.json", &e);
 *   lmp_options *o = lmp_options_new();                  // lmrun's defaults
 *   lmp_options_set(o, "batch", "8", &e);
 *   lmp_options_set(o, "hardware", "a100-sxm-80gb", &e);
 *   lmp_result *r = lmp_predict(d, m, o, &e);
 *   char *json = lmp_result_json(r);   // == lmrun ... --format json
 *   printf("%s", json);
 *   lmp_free(json); lmp_result_free(r); lmp_options_free(o);
 *   lmp_model_free(m); lmp_close(d);
 *
 * Conventions:
 * - Every public name starts with lmp_ or LMP_; handles are opaque.
 * - Errors are data: a failing function returns NULL or -1 and fills the
 *   lmp_error (when err is not NULL). Nothing prints, nothing exits (only
 *   running out of memory aborts).
 * - Strings returned as char * are new: free them with lmp_free. Strings
 *   returned as const char * are borrowed from their handle.
 * - Lifetimes: a model belongs to the data it was loaded with and a
 *   result refers to its model: free results before their model, models
 *   before their data. Different handles may be used from different
 *   threads; one handle is used by one thread at a time (a model caches
 *   its plan per attention implementation on first use). Loading the
 *   data (the JIT) is serialised by libtcc itself.
 *
 * Link with -llmpredict (pkg-config lmpredict), or the static
 * liblmpredict.a plus -ljansson -lcurl -ltcc -ldl -lm.
 */
#ifndef LMPREDICT_H
#define LMPREDICT_H

#ifdef __cplusplus
extern "C" {
#endif

#define LMP_ERROR_TEXT 4096

/* An error: a failing call fills it (whatever it held before); a call
 * that succeeds leaves it as it was. */
typedef struct lmp_error {
  int set;                  /* 0: no error */
  char file[512];           /* the file the error is in; "" if none */
  char where[512];          /* JSON path in that file; "" if none */
  int line, column;         /* 1-based; 0 if unknown */
  char message[1024];       /* "unknown parameter 'N'" */
  char text[LMP_ERROR_TEXT];/* the whole error as lmrun prints it after
                               "lmrun: ": file:line:col: where: error: msg,
                               then the source line and a caret under the
                               span; option errors are the message alone.
                               Ends with a newline. */
} lmp_error;

typedef struct lmp_data lmp_data;       /* module db + JIT registry + GPUs */
typedef struct lmp_model lmp_model;     /* a loaded model file */
typedef struct lmp_options lmp_options; /* prediction options */
typedef struct lmp_result lmp_result;   /* one prediction */

/* The library's version, "0.2.0" (the Makefile's VERSION). */
const char *lmp_version(void);

/* Load the module database, JIT-compile the generated modules and load the
 * GPU database. A NULL path means the default one, found as lmrun finds
 * it: module_db.json, generated_modules/ and hardware.json in the
 * installation's data directory ($LM_PREDICTOR_HOME when set). NULL on
 * error. */
lmp_data *lmp_open(const char *module_db, const char *modules_dir,
                   const char *hardware_db, lmp_error *err);
void lmp_close(lmp_data *d);
/* The GPUs as a JSON array, one object per GPU with every figure of
 * hardware.json (and its sources). lmp_free it. */
char *lmp_hardware_json(const lmp_data *d);
/* The GPU list `lmrun --list-hardware` prints. lmp_free it. */
char *lmp_hardware_text(const lmp_data *d);

/* Load a model architecture file (anything lmrun accepts). NULL on error,
 * located in the file. */
lmp_model *lmp_model_load(lmp_data *d, const char *path, lmp_error *err);
void lmp_model_free(lmp_model *m);
/* The model's id ("meta-llama/Llama-2-7b-hf"), borrowed. */
const char *lmp_model_id(const lmp_model *m);

/* Options with lmrun's defaults: batch 1, seq-len 2048, phase all, 16-bit
 * weights, activations, KV cache and embeddings, the 8-bit format the GPU
 * has, the engine's attention (eager with roofline), hardware h100-sxm,
 * engine vllm (calibrated times), format table. */
lmp_options *lmp_options_new(void);
/* Set one option. name is an lmrun long option without its dashes:
 * "batch", "seq-len", "phase", "w-bits", "a-bits", "kv-bits",
 * "embed-bits", "8bit-format", "attention", "hardware", "format",
 * "output-len" (-O: tokens generated; end-to-end latency and mean TPOT),
 * "tp", "pp", "ep" (tensor, pipeline, expert parallel GPUs, default 1),
 * "microbatches" (pipeline microbatches, divides the batch),
 * "engine" (vllm, trtllm, hf-eager: engines/<id>.json, checked when
 * predicting), "roofline" ("yes": times are the roofline bound, lmrun's
 * --roofline; default "no"), "expert-balance" (a decimal in (0, 1], MoE
 * routing balance); '_' is accepted for '-' ("seq_len"). One
 * more, not lmrun's: "max-batch", "yes"
 * (default) or "no", whether to search the largest batch that fits (about
 * 40 evaluations; without it the summary's max_batch is 0). value is written as on lmrun's command
 * line. The value is checked as lmrun checks it, with lmrun's messages
 * ("-B must be at least 1"). Returns 0, or -1 with err on an unknown name
 * or a bad value (the options are then unchanged). A GPU id is checked
 * when predicting. */
int lmp_options_set(lmp_options *o, const char *name, const char *value,
                    lmp_error *err);
void lmp_options_free(lmp_options *o);

/* Predict: both phases (prefill of S tokens, one decode step over S), the
 * roofline of every operation, the summary, the footprint and the largest
 * batch. NULL on error (unknown GPU, a formula out of range, ...). */
lmp_result *lmp_predict(lmp_data *d, const lmp_model *m,
                        const lmp_options *o, lmp_error *err);
/* The document `lmrun MODEL ... --format json` prints with the same
 * options, byte for byte. lmp_free it. */
char *lmp_result_json(const lmp_result *r);
/* The output lmrun prints with the same options, in the options' format
 * (table, json, csv, markdown: GitHub-flavoured tables, or html: one
 * self-contained page with charts and every row's explanation). lmp_free
 * it. */
char *lmp_result_text(const lmp_result *r);
/* Where the numbers of one operation come from (lmrun --explain OP):
 * for each phase the options show, the module and its source file, each
 * parameter's template from the model file with its value and origin (a
 * run variable and its option, or a config key), each metric's formula
 * from module_db.json substituted and evaluated, the roofline terms and
 * the calibration. op is a row's path ("model.layers.self_attn.qk_matmul")
 * or a leaf name only one row has ("qk_matmul"). NULL with err on an
 * unknown or ambiguous name, the message listing the candidates. lmp_free
 * it. */
char *lmp_explain(const lmp_result *r, const char *op, lmp_error *err);
/* The model's structure as the walk sees it (lmrun --tree): each layer's
 * name, class, repeat, its parameters' templates and values, the atomic
 * operations where they run. lmp_free it. */
char *lmp_result_tree(const lmp_result *r);
/* Warnings lmrun prints on stderr after "lmrun: warning: ", one line each
 * ("" if none): a sequence longer than the model was trained for, modules
 * whose formulas await review. Borrowed. */
const char *lmp_result_warnings(const lmp_result *r);

/* Reading a result without JSON. phase is "prefill" or "decode" (both
 * are computed whatever the phase option says). */
/* Operation rows of a phase; -1 for an unknown phase. */
int lmp_result_rows(const lmp_result *r, const char *phase);
/* A row's "path", "op" or "module"; NULL for an unknown row or field.
 * Borrowed. */
const char *lmp_result_row_name(const lmp_result *r, int row,
                                const char *field);
/* A row's number named as in the JSON document: "count", "flops",
 * "weight_bytes", "act_read_bytes", "act_write_bytes", "kv_read_bytes",
 * "kv_write_bytes", "bytes", "arithmetic_intensity", "time_s" (the
 * calibrated prediction, or the bound with roofline), "roofline_time_s";
 * NaN for an unknown phase, row or key. */
double lmp_result_row(const lmp_result *r, const char *phase, int row,
                      const char *key);
/* A summary number named as in the JSON document's summary: "ttft_s",
 * "tpot_s", "ttft_roofline_s", "tpot_roofline_s", "tokens_per_s", "weight_bytes", "kv_cache_bytes",
 * "activation_bytes", "total_bytes", "capacity_bytes", "fits" (1 or 0),
 * "max_batch", "max_batch_capped" (1 or 0), "output_len", "e2e_latency_s",
 * "tpot_mean_s" (0 without output-len), "gpus", "throughput_tokens_per_s",
 * "throughput_per_gpu_tokens_per_s"; with parallelism the memory figures
 * are per GPU (the fullest pipeline stage); NaN for an unknown key. */
double lmp_result_summary(const lmp_result *r, const char *key);
void lmp_result_free(lmp_result *r);

/* ------------------------------------------------------------ sweeps
 *
 * A sweep evaluates the cross product of option values, one result at a
 * time into the same buffers: memory does not grow with its size. */
typedef struct lmp_sweep lmp_sweep;
/* A sweep over base's options (copied: base may be freed at once). */
lmp_sweep *lmp_sweep_new(lmp_data *d, const lmp_model *m,
                         const lmp_options *base);
/* Give an option (named as for lmp_options_set) a list of values: items
 * separated by ',', each a value ("8", "a100-sxm-80gb"), an integer range
 * "lo..hi" (every integer) or a geometric range "lo..hixk" (lo, lo*k,
 * lo*k^2, ... up to hi; k >= 2): "1,2,4,8", "1..256", "1..256x2",
 * "1,3,16..64x2". Every value is checked as lmp_options_set checks it.
 * The first option given varies slowest. 0, or -1 with err; an error in
 * an item gives err->column, the item's 1-based offset in values ("x" in
 * "1,2,x": 5; file and line stay empty, the text is the message alone). */
int lmp_sweep_values(lmp_sweep *s, const char *name, const char *values,
                     lmp_error *err);
/* Configurations in the cross product. */
double lmp_sweep_size(const lmp_sweep *s);
/* Evaluate the next configuration: 1 with *r set (borrowed, valid until
 * the next call), 0 when the sweep is done, -1 when this configuration
 * cannot be predicted (err says why; the next call goes on). */
int lmp_sweep_next(lmp_sweep *s, const lmp_result **r, lmp_error *err);
/* The options of the configuration last evaluated (borrowed). */
const lmp_options *lmp_sweep_options(const lmp_sweep *s);
/* The row of a configuration lmp_sweep_next could not predict: its
 * configuration and err's message ("error" key in JSON, the last CSV
 * column). lmp_free it. */
char *lmp_sweep_error_row(const lmp_sweep *s, const char *format,
                          const lmp_error *err);
void lmp_sweep_free(lmp_sweep *s);

/* One summary row of a result: its configuration and summary numbers, in
 * format "json" (one object on one line, keys as the JSON summary's),
 * "csv" (under lmp_row_header's line) or "table" (fixed-width columns).
 * Ends with a newline. lmp_free it. */
char *lmp_result_summary_row(const lmp_result *r, const char *format);
char *lmp_row_header(const char *format);

/* ---------------------------------------------------- the best choice */
typedef struct lmp_slo lmp_slo;
/* Targets "ttft=200ms,tpot=30ms" (either or both, and e2e=...; units s,
 * ms, us) and what to maximize: "throughput" (total tokens/s) or
 * "throughput-per-gpu". NULL with err on a bad spec. */
lmp_slo *lmp_slo_new(const char *targets, const char *maximize,
                     lmp_error *err);
/* Offer a result: 0 if it fits, meets the targets and is the best so far
 * (kept), 1 if it met them but is not better, 2 does not fit, 3 misses
 * TTFT, 4 misses TPOT, 5 misses e2e (the first reason in that order). */
int lmp_slo_offer(lmp_slo *s, const lmp_result *r);
/* Count a configuration that could not be predicted. */
void lmp_slo_offer_error(lmp_slo *s, const lmp_error *err);
/* The outcome: {"slo": ..., "maximize": ..., "configurations": N,
 * "met": M, "lost": {...}, "best": {...configuration..., "summary":
 * {...}} or null}, or the same as text ("table"). lmp_free it. */
char *lmp_slo_result(const lmp_slo *s, const char *format);
/* The best refers to its result's model: free the SLO (and a page)
 * before the model. */
void lmp_slo_free(lmp_slo *s);

/* A sweep as one HTML page (lmrun --format html with a sweep): TTFT, TPOT
 * and throughput against the first numeric option swept (batch, sequence,
 * -O, tp, ...), one line per value of the other swept options (hardware,
 * attention, ...), with the SLO's targets, frontier and best. Add every
 * configuration predicted, with what lmp_slo_offer said of it (-1 without
 * an SLO), then render; the SLO (or NULL) gives the targets and the best.
 * lmp_free the page. */
typedef struct lmp_sweep_page lmp_sweep_page;
lmp_sweep_page *lmp_sweep_page_new(const lmp_sweep *s);
void lmp_sweep_page_add(lmp_sweep_page *pg, const lmp_result *r, int slo);
char *lmp_sweep_page_html(lmp_sweep_page *pg, const lmp_slo *slo);
void lmp_sweep_page_free(lmp_sweep_page *pg);

/* Free a string the library returned. */
void lmp_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
