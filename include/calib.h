/* calib.h: calibrated kernel times and serving engines (runtime/calib.c).
 *
 *   calibration/<hw>.json --calib_for_gpu--> Calib (fitted constants)
 *   engines/<id>.json     --engine_load-->   Engine (fusions, attention)
 *   Plan + Engine         --calib_plan-->    CalibPlan (per-row constants,
 *                                            fused kernels; built once)
 *   CalibPlan + Values    --calib_predict--> predicted time per row
 *
 * The model (DESIGN.md section 12): one kernel takes
 *   launches * (launch + gap) + max(tc, tm) + overlap * min(tc, tm),
 *   tc = flops / (peak * compute_eff * waves), tm = bytes / (bandwidth *
 *   memory_eff)
 * with compute_eff, memory_eff, overlap and launch fitted per kernel kind on
 * measured kernel times (lmcalib --fit); waves is the GEMM's wave
 * quantisation; gap the engine's idle time between kernels. Memory-only
 * kinds (norms, element-wise, ...) have no compute term. A phase takes at
 * least the engine's host time to issue its launches (host-bound:
 * calib_host_time).
 */
#ifndef LM_CALIB_H
#define LM_CALIB_H

#include "runtime.h"

typedef enum {
  KK_GEMM,      /* a projection: (m x k) @ (k x n) */
  KK_BGEMM,     /* a batched attention matmul (eager qk/sv) */
  KK_ATTENTION, /* a fused flash attention kernel */
  KK_NORM,      /* RMSNorm / LayerNorm */
  KK_ADD,       /* residual add (two operands) */
  KK_ACT,       /* gated activation (SiLU and multiply) */
  KK_ROPE,      /* rotary embedding applied to q and k */
  KK_SOFTMAX,
  KK_GATHER,      /* embedding lookup */
  KK_ELEMENTWISE, /* any other memory-bound kernel */
  KK_COUNT
} KernelKind;

extern const char *const kernel_kind_name[KK_COUNT];
/* The kind named s, or -1. */
int kernel_kind_find(const char *s);
/* Kinds with a compute term (GEMMs and attention). */
bool kernel_kind_computes(KernelKind k);

/* Fitted constants of one kernel kind on one GPU. */
typedef struct KernelFit {
  double launch;      /* fixed cost per launch, s */
  double compute_eff; /* achieved fraction of the peak (computing kinds) */
  double memory_eff;  /* achieved fraction of the bandwidth */
  double overlap;     /* computing kinds: the fraction of the smaller of the
                         compute and memory times that does not overlap the
                         larger (0 = perfect overlap, the plain roofline
                         maximum; 1 = none, their sum) */
  double wall_slack;  /* s; the fit's reading of its wall-clock rows only
                         (never used in a prediction): host time after the
                         launch that hides the kernel's first microseconds
                         (calib_meas_predict) */
  int rows;           /* measurements fitted; 0 when borrowed */
  double median_err;  /* median |relative error| of the fit (in sample) */
  const char *from;   /* the kind it was borrowed from, or NULL */
} KernelFit;

struct Calib {
  const char *hw_id; /* the GPU the measurements come from */
  const char *path;  /* the calibration file */
  bool fallback;     /* borrowed for a GPU without measurements */
  const char *note;  /* why, for a fallback */
  KernelFit k[KK_COUNT];
  Arena arena;
};

/* Load one calibration file (format in DESIGN.md section 12), checked
 * strictly with located errors. New; free with calib_free. */
Calib *calib_load_text(const char *path, const char *text, size_t len,
                       Error *err);
Calib *calib_load(const char *path, Error *err);
/* The calibration for GPU hw_id: dir/<hw_id>.json when it exists, else the
 * sibling named in dir/fallback.json (marked fallback, with its note). */
Calib *calib_for_gpu(const char *dir, const char *hw_id, Error *err);
void calib_free(Calib *c);

/* Fraction of the SMs a GEMM keeps busy, averaged over its waves: tiles =
 * ceil(m/128) * ceil(n/128), times a split-K factor when that leaves SMs
 * idle (split = min(floor(sms / tiles), ceil(k / 1024)), as cuBLAS and
 * CUTLASS split the reduction of narrow GEMMs); busy = tiles / (ceil(tiles
 * / sms) * sms). */
double calib_waves(double m, double n, double k, double sms);
/* A flash kernel's softmax time outside the Tensor Cores: E = flops / (4d
 * + 5) score elements, E / sfu_ops (the exponential) + 4 E / (fp32_flops
 * / 2) (max, subtract, sum, rescale: one FP32 instruction each); 0 when d
 * or either rate of the GPU is 0. */
double calib_attn_vector_time(double flops, double d, const Gpu *g);
/* An attention kernel's tc at rate = peak x compute_eff: the matmuls'
 * 4d / (4d + 5) of the flops at rate plus the vector time, less the GPU's
 * softmax_hidden fraction of the smaller of the two (flops / rate when d or
 * the GPU's rates are 0). */
double calib_attn_compute_time(double flops, double d, double rate,
                               const Gpu *g);
/* Time of ONE launch of a kernel of this kind (without the launch cost):
 * max(tc, tm) + overlap * min(tc, tm) with tc = flops / (peak * eff_c *
 * waves), tm = bytes / (bandwidth * eff_m); memory kinds take tm only. m, n, k: the GEMM's rows, columns and
 * reduction (0 = no wave quantisation). For an attention kernel k is the
 * head size d (0: unknown) and tc = (4d / (4d + 5)) flops / (peak * eff_c)
 * + calib_attn_vector_time(flops, d, g) (less the GPU's softmax_hidden
 * fraction of the smaller of the two): the softmax's 5 FLOPs per score
 * element run on the special-function units and the FP32 cores. */
double calib_kernel_time(const KernelFit *f, KernelKind kind, double flops,
                         double bytes, double m, double n, double k,
                         double peak, const Gpu *g);

/* ===== engines ===== */

typedef enum {
  FUSE_SHARED_INPUT,     /* GEMMs over one input: it is read once */
  FUSE_INTERMEDIATE,     /* a chain: inner results never touch HBM */
  FUSE_INTERMEDIATE_READ /* a chain: inner results are written (needed
                            later) but not read back */
} FuseDrop;

typedef struct Fusion {
  const char *kernel; /* its name, shown per row */
  const char **ops;   /* row op names, producer first */
  int nops;
  KernelKind kind;
  FuseDrop drop;
} Fusion;

typedef struct OpCost {
  const char *op;
  double launches; /* kernels the op costs (default 1) */
  double traffic;  /* HBM bytes relative to the fused count (default 1) */
} OpCost;

/* One case of an engine's own all-reduce (engines/<id>.json all_reduce.when):
 * the group sizes it takes, the message sizes (bytes < below_bytes), and
 * whether every pair of GPUs needs NVLink (an NVSwitch or a full mesh). */
typedef struct ArRule {
  int *gpus;
  int ngpus;
  double below_bytes;
  bool needs_nvlink;
} ArRule;

struct Engine {
  const char *id;
  const char *name;
  AttnImpl attention; /* the attention it runs */
  const char *attention_kernel;
  bool causal_skip; /* flash prefill skips masked tiles */
  bool l2_kv_reuse; /* K/V re-reads that fit in L2 are not HBM */
  double q_tile;    /* query rows per tile of its flash kernel */
  /* attention.kv_per_query_head: the attention ops (rows) that read K and
   * V once per query head rather than once per KV head in a grouped-query
   * model (n_rep = num_heads / num_kv_heads > 1), in the phases marked
   * (kvq_phase[0] prefill, [1] decode); kvq_copy: launches of a copy
   * kernel per such row that first materialises the n_rep copies
   * (transformers' repeat_kv), 0 for none. nkvq_ops 0: every op reads K/V
   * once per KV head (DESIGN.md section 12.4). */
  const char **kvq_ops;
  int nkvq_ops;
  bool kvq_phase[2];
  double kvq_copy;
  /* what its 8-bit GEMMs reach over its 16-bit ones (gemm_8bit); 0 = none
   * given: an 8-bit computing kernel then uses the 8-bit peak unchanged */
  double gemm8_speedup;
  /* gemm_8bit.by_gpu: a speedup measured on one GPU (hardware.json id),
   * over gemm8_speedup on that GPU; ng8 entries */
  const char **g8_ids;
  double *g8_speedup;
  int ng8;
  /* launch_gap: the GPU's idle time between two dependent kernels of a
   * stream, s, in prefill [0] and decode [1] (0 = none given) */
  double launch_gap[2];
  /* host: the host's time to issue one launch, s (0 = none given: the host
   * is assumed to keep ahead of the GPU) */
  double host_launch;
  /* step: the host's time per forward step that the GPU waits for, s, in
   * prefill [0] and decode [1], plus step_per_seq per sequence of the
   * batch (0 = none given) */
  double step[2];
  double step_per_seq;
  /* all_reduce: the kernel of its tensor-parallel all-reduces where a rule
   * holds (NULL: NCCL always), within one node only when ar_one_node */
  const char *ar_kernel;
  bool ar_one_node;
  ArRule *ar_rules;
  int nar_rules;
  Fusion *fusions;
  int nfusions;
  OpCost *costs;
  int ncosts;
  Arena arena;
};

Engine *engine_load_text(const char *path, const char *text, size_t len,
                         Error *err);
Engine *engine_load(const char *path, Error *err);
void engine_free(Engine *e);
/* The host time one forward step of a phase (decode or prefill) adds for a
 * batch of `batch` sequences: step[decode] + step_per_seq x batch (0 for e
 * NULL or without step). */
double engine_step_time(const Engine *e, bool decode, double batch);
/* The engine's 8-bit GEMM speedup on GPU g: its gemm_8bit.by_gpu entry
 * for g's id, else speedup_over_16bit (0: none given). */
double engine_gemm8(const Engine *e, const Gpu *g);
/* Whether that speedup is a by_gpu entry (measured on g). */
bool engine_gemm8_measured(const Engine *e, const Gpu *g);
/* The kernel e runs an all-reduce of `bytes` over n GPUs with: its own
 * (all_reduce.kernel) when the group is in one node (or the engine does not
 * ask) and a rule takes n, bytes < its below_bytes and, if it needs NVLink,
 * the GPUs have it; else "nccl" (also for e NULL or without all_reduce). */
const char *engine_all_reduce_kernel(const Engine *e, int n, double bytes,
                                     bool one_node, bool nvlink);

/* ===== per plan ===== */

struct CalibPlan {
  const Plan *plan;
  int nrows;
  KernelKind *kind;    /* per row */
  int *lead;           /* per row: the first row of its kernel */
  int *next;           /* per row: the next row of its kernel, or -1 */
  FuseDrop *drop;      /* per lead row */
  double *launches;    /* per row */
  double *traffic;     /* per row */
  const char **kernel; /* per row: the kernel's name */
  int *attn_arg;       /* per row: its layer's first Values.args index, or
                          -1 when the kind needs no shape or the layer's
                          module lacks the parameters */
  bool *kvq;           /* per row: an op of the engine's kv_per_query_head
                          (its attn_arg then holds the attention shape) */
  int (*attn_off)[3];  /* offsets of its shape parameters: num_heads,
                          num_kv_heads, head_dim (attention); N,
                          in_features, out_features (gemm) */
  /* the kernels in row order, for calib_predict's loop: kernel i is led
   * by row klead[i], its rows (lead first, then in next order) are
   * member[kfirst[i] .. kfirst[i + 1] - 1]; kidx: per lead row, its i */
  int nkern;
  int *klead, *kfirst, *member, *kidx;
  struct KernInfo *kinfo; /* per kernel: what calib_predict reads */
  int nkinds, kinds[KK_COUNT]; /* the kinds of its kernels */
  struct MemberInfo *minfo; /* per member[] entry */
  Arena arena;
};

/* Classify every row, build the engine's fused kernels (rows of one
 * kernel share a parent layer and count) and precompute what
 * calib_predict needs. New; free with calib_plan_free. */
CalibPlan *calib_plan(const Plan *p, const Engine *e);
void calib_plan_free(CalibPlan *cp);

/* Predicted time of every row (row_time[nrows]): each kernel's time is
 * shared among its rows in proportion to their roofline times (roof[],
 * phase_roofline's), so count x row_time sums to the phase's predicted
 * time, which is returned. run: the phase's run variables. */
double calib_predict(const CalibPlan *cp, const Calib *c, const Engine *e,
                     const Gpu *g, const Peaks *pk, const Values *v,
                     const double *run, const double *roof, double *row_time);
/* The same for the kernels with a row marked in only (NULL: all); the
 * others keep their rows' row_time (a call on the same values left them).
 * The total is over every kernel, in order. */
double calib_predict_rows(const CalibPlan *cp, const Calib *c,
                          const Engine *e, const Gpu *g, const Peaks *pk,
                          const Values *v, const double *run,
                          const double *roof, double *row_time,
                          const bool *only);

/* The time the engine's host takes to issue the phase's launches (its
 * host.launch_us x the launches of the kernels that run), or 0 without a
 * host figure. calib_predict's phase time is at least this: when it is
 * larger (host-bound), every row's time is scaled up to it. */
double calib_host_time(const CalibPlan *cp, const Engine *e, const Values *v);

/* One kernel as calib_predict times it: lead is its first row. */
typedef struct KernelCost {
  double flops, bytes; /* after fusion, causal skipping and L2 reuse */
  double copy_bytes;   /* the engine's K/V copy kernels (kv_per_query_head
                          copy): bytes they move, 0 when none */
  double launches;     /* the kernel's launches, its copies' included */
  double m, n, k;      /* the GEMM's shape (attention: k = the head size);
                          0 when none */
  double peak;         /* the compute peak it runs at */
  double time;         /* launches x (launch + gap) + calib_kernel_time */
  double roof_sum;     /* its rows' roofline times, summed */
  int nrows;           /* rows fused into it */
} KernelCost;
void calib_kernel_cost(const CalibPlan *cp, const Calib *c, const Engine *e,
                       const Gpu *g, const Peaks *pk, const Values *v,
                       const double *run, const double *roof, int lead,
                       KernelCost *out);

/* Flash attention after the engine's causal skipping and L2 reuse: the
 * FLOPs and HBM bytes the kernel really does. b, t, l: batch, queries,
 * keys; h, hkv, d: heads, KV heads, head size; kv_read: the metric (K and
 * V re-read once per query tile); per_q: the kernel reads K and V once
 * per query head and query tile (kv_per_query_head: one thread block per
 * query head, 2 b h ceil(t / q_tile) l d kv_bytes), whose re-reads by the
 * n_rep query heads of a KV head the L2 rule may still catch. */
void calib_flash(const Engine *e, const Gpu *g, double b, double t, double l,
                 double h, double hkv, double d, double kv_bytes, double flops,
                 double kv_read, bool per_q, double *flops_out,
                 double *kv_out);
/* Whether row op reads K/V per query head under e in this phase. */
bool engine_kv_per_query_head(const Engine *e, const char *op, bool decode);

/* ===== fit.c: measured kernel times and the fit ===== */

/* One row of a kernel CSV (DESIGN.md section 12): `kernels` identical
 * kernels measured together, flops and bytes per kernel. */
typedef struct Meas {
  const char *hw_id, *source, *op;
  KernelKind kind;
  bool wall; /* timing "wall-clock" (else "kernel") */
  double kernels, m, n, k, flops, bytes;
  double overhead; /* harness time inside the measurement, s */
  double measured; /* s */
  int line;
} Meas;

typedef struct MeasSet {
  Meas *rows;
  int n;
  Arena arena;
} MeasSet;

/* Load a kernel CSV; a bad field is reported at its line and column with a
 * caret. New; free with meas_free. */
MeasSet *meas_load_text(const char *path, const char *text, size_t len,
                        Error *err);
MeasSet *meas_load(const char *path, Error *err);
void meas_free(MeasSet *s);

/* The calibrated time of a measured row, at the GPU's FP16 peak: a
 * kernel-timed row takes kernels x (launch + kernel time) + overhead; a
 * wall-clock row overhead + max(0, (kernels - 1) x launch + kernels x kernel
 * time - wall_slack) (its overhead, the sweep's floor, holds the first
 * launch; the host's own work after the launch hides the first wall_slack
 * of the GPU's; DESIGN.md section 12.3). */
double calib_meas_predict(const Calib *c, const Gpu *g, const Meas *m);

/* The launch cost (us) a fit assumes when no row of the data is
 * kernel-timed (a wall-clock source alone cannot separate a kernel's own
 * fixed cost from the host's): the device time of a short kernel in
 * NVIDIA's "Getting Started with CUDA Graphs" (A. Gray, NVIDIA Technical
 * Blog, 2019: 2.9 us), rounded (DESIGN.md section 12). */
#define CALIB_LAUNCH_PRIOR_US 3.0

/* Fit every kernel kind on the rows (all of one GPU, g) by least squares
 * of log(predicted / measured): gemm and bgemm share launch, compute_eff,
 * memory_eff and overlap; attention has its own four when it has 3 rows or
 * more;
 * each memory kind its launch and memory_eff (3 rows or more); kinds
 * without rows borrow (attention from gemm, memory kinds from a pooled fit
 * of all memory rows). Fills out->k (and nothing else). */
void calib_fit(const Meas *const *rows, int n, const Gpu *g, Calib *out);

/* Median and 90th percentile of |relative error| of rows under c. */
void calib_errors(const Calib *c, const Gpu *g, const Meas *const *rows, int n,
                  double *median, double *p90);

/* The calibration file for c, fitted on the named data (JSON text; free).
 * residuals: the CSV of per-row residuals it names, or NULL. */
char *calib_to_json(const Calib *c, const Gpu *g, const char *data_path,
                    const char *const *sources, int nsources,
                    const Meas *const *rows, int n, const char *residuals);
/* The per-row residuals CSV. New string; free. */
char *calib_residuals_csv(const Calib *c, const Gpu *g, const Meas *const *rows,
                          int n);

#endif
