/* lmrun.c: the lmrun command.
 *
 *   lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]
 *         [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]
 *         [--attention eager|flash] [--hardware ID] [--format F]
 *         [--db PATH] [--modules DIR] [--hardware-db PATH]
 *   lmrun --list-hardware
 *
 * MODEL is a model file, a Hugging Face config.json, a directory holding
 * one, or a Hub id (model_open). Loads module_db.json, registers
 * generated_modules/ (compiling the model's modules only), loads the
 * model, builds the plan once, and evaluates it
 * twice: prefill (T = S tokens per sequence, KV length L = S) and one
 * decode step (T = 1 new token attending over L = S). Both are always
 * evaluated (the summary needs both); --phase chooses what is printed.
 */
#include "runtime.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 16777216.0 /* 2^24 tokens */

static void usage(FILE *out) {
  fputs(
      "usage: lmrun MODEL [-B N] [-S N] [--phase prefill|decode|all]\n"
      "             [--w-bits 16|8|4] [--a-bits 16|8|4] [--kv-bits 16|8|4]\n"
      "             [--embed-bits 16|8|4] [--8bit-format int8|fp8]\n"
      "             [--attention eager|flash] [--hardware ID]\n"
      "             [--format table|json|csv] [--db PATH] [--modules DIR]\n"
      "             [--hardware-db PATH]\n"
      "       lmrun --list-hardware\n"
      "\n"
      "Per-operation cost of a model on a GPU: FLOPs, bytes of weights,\n"
      "activations and KV cache, arithmetic intensity, bound and time; time\n"
      "to first token, time per output token, memory footprint.\n"
      "MODEL is a model file (models/*.json), a Hugging Face config.json,\n"
      "a directory holding one, or a Hub id (org/name: cache first, see\n"
      "HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).\n"
      "\n"
      "  -B, --batch N        sequences in the batch (default 1)\n"
      "  -S, --seq-len N      tokens per sequence (default 2048)\n"
      "  --phase P            prefill, decode or all (default all)\n"
      "  --w-bits/--a-bits/--kv-bits N\n"
      "                       weight, activation and KV-cache precision:\n"
      "                       16, 8 or 4 (default 16)\n"
      "  --embed-bits N       embedding and lm_head precision (default 16:\n"
      "                       quantized checkpoints keep them 16-bit)\n"
      "  --8bit-format F      the 8-bit peak: int8 or fp8 (default: INT8 if\n"
      "                       the GPU has it, else FP8)\n"
      "  --attention A        eager (default) or flash (FlashAttention-2)\n"
      "  --hardware ID        GPU from hardware.json (default h100-sxm)\n"
      "  --list-hardware      list the GPUs and exit\n"
      "  --format F           table (default), json or csv\n"
      "  --db PATH            module database (default: the install's)\n"
      "  --modules DIR        generated modules (default: generated_modules/)\n"
      "  --hardware-db PATH   GPU database (default: the install's\n"
      "                       hardware.json)\n"
      "  -h, --help           this help\n",
      out);
}

/* A whole number in [1, max], digits only. */
static int parse_count(const char *opt, const char *s, double max,
                       double *out) {
  if (!*s || strspn(s, "0123456789") != strlen(s)) {
    fprintf(stderr, "lmrun: %s expects a whole number, not '%s'\n", opt, s);
    return -1;
  }
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno == ERANGE || (double)v > max) {
    fprintf(stderr, "lmrun: %s %s is too large (at most %.0f)\n", opt, s, max);
    return -1;
  }
  if (v == 0) {
    fprintf(stderr, "lmrun: %s must be at least 1\n", opt);
    return -1;
  }
  *out = (double)v;
  return 0;
}

static int parse_bits(const char *opt, const char *s, int *out) {
  if (strcmp(s, "16") == 0 || strcmp(s, "8") == 0 || strcmp(s, "4") == 0) {
    *out = atoi(s);
    return 0;
  }
  fprintf(stderr, "lmrun: %s is 16, 8 or 4, not '%s'\n", opt, s);
  return -1;
}

static int pick(const char *opt, const char *s, const char *const *names,
                int n, int *out) {
  for (int i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  fprintf(stderr, "lmrun: %s is ", opt);
  for (int i = 0; i < n; i++)
    fprintf(stderr, "%s%s", names[i],
            i + 2 < n ? ", " : i + 1 < n ? " or " : "");
  fprintf(stderr, ", not '%s'\n", s);
  return -1;
}

static void list_hardware(const GpuDb *g) {
  printf("%-14s %-28s %9s %9s %9s %9s %8s %6s %9s %5s\n", "id", "name",
         "FP16", "FP8", "INT8", "HBM", "memory", "L2", "smem/SM", "SMs");
  for (int i = 0; i < g->n; i++) {
    const Gpu *x = &g->gpus[i];
    char f16[32], f8[32], i8[32], bw[32], mem[32];
    si_format(x->fp16_flops, "F", f16, sizeof(f16));
    if (x->fp8_flops > 0)
      si_format(x->fp8_flops, "F", f8, sizeof(f8));
    else
      snprintf(f8, sizeof(f8), "-");
    if (x->int8_ops > 0)
      si_format(x->int8_ops, "OP", i8, sizeof(i8));
    else
      snprintf(i8, sizeof(i8), "-");
    si_format(x->bandwidth, "B/s", bw, sizeof(bw));
    snprintf(mem, sizeof(mem), "%g GiB", x->memory / 1073741824.0);
    printf("%-14s %-28.28s %9s %9s %9s %9s %8s %3g MiB %5g KiB %5g\n", x->id,
           x->name, f16, f8, i8, bw, mem, x->l2 / 1048576.0,
           x->smem_per_sm / 1024.0, x->sm_count);
  }
  printf("Dense peaks per second; figures and sources in hardware.json.\n");
}

enum { PHASE_PREFILL, PHASE_DECODE, PHASE_ALL };

/* Warnings that do not stop the run: a sequence longer than the model was
 * trained for, and modules whose formulas are still awaiting review. */
static void warn_model(const Model *m, const Plan *p, double seq) {
  for (int i = V_COUNT; i < m->nvars; i++)
    if (strcmp(m->var_names[i], "max_position_embeddings") == 0 &&
        seq > m->var_values[i])
      fprintf(stderr,
              "lmrun: warning: -S %g exceeds the model's "
              "max_position_embeddings (%g)\n",
              seq, m->var_values[i]);
  HashMap seen;
  hashmap_init(&seen);
  for (int r = 0; r < p->nrows; r++) {
    const ModuleDef *md = p->slots[p->rows[r].slot].layer->mod->def;
    if (strcmp(md->status, "validated") != 0 &&
        hashmap_add(&seen, md->full_name, (void *)md) == 0)
      fprintf(stderr,
              "lmrun: warning: %s is '%s' in the module database: its "
              "formulas have not been reviewed\n",
              md->full_name, md->status);
  }
  hashmap_free(&seen);
}

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *db_path = path_join(home, "module_db.json");
  char *mod_dir = path_join(home, "generated_modules");
  char *hw_path = path_join(home, "hardware.json");
  const char *hw_id = "h100-sxm";
  double batch = 1, seq = 2048;
  int fmt = FMT_TABLE, phase = PHASE_ALL, attn = ATTN_EAGER;
  int w_bits = 16, a_bits = 16, kv_bits = 16, e_bits = 16, fmt8 = 0;
  bool list = false;
  static const char *const formats[] = {"table", "json", "csv"};
  static const char *const phases[] = {"prefill", "decode", "all"};
  static const char *const attns[] = {"eager", "flash"};
  static const char *const fmts8[] = {"auto", "int8", "fp8"};
  enum { O_FORMAT = 256, O_DB, O_MODULES, O_PHASE, O_W, O_A, O_KV, O_ATTN,
         O_HW, O_HWDB, O_LIST, O_E, O_FMT8 };
  static const struct option opts[] = {
      {"batch", required_argument, 0, 'B'},
      {"seq-len", required_argument, 0, 'S'},
      {"format", required_argument, 0, O_FORMAT},
      {"db", required_argument, 0, O_DB},
      {"modules", required_argument, 0, O_MODULES},
      {"phase", required_argument, 0, O_PHASE},
      {"w-bits", required_argument, 0, O_W},
      {"a-bits", required_argument, 0, O_A},
      {"kv-bits", required_argument, 0, O_KV},
      {"embed-bits", required_argument, 0, O_E},
      {"8bit-format", required_argument, 0, O_FMT8},
      {"attention", required_argument, 0, O_ATTN},
      {"hardware", required_argument, 0, O_HW},
      {"hardware-db", required_argument, 0, O_HWDB},
      {"list-hardware", no_argument, 0, O_LIST},
      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int c, rc = 2;
  while ((c = getopt_long(argc, argv, "B:S:h", opts, NULL)) != -1) {
    int bad = 0;
    switch (c) {
    case 'B':
      bad = parse_count("-B", optarg, LM_MAX_BATCH, &batch);
      break;
    case 'S':
      bad = parse_count("-S", optarg, MAX_SEQ, &seq);
      break;
    case O_FORMAT:
      bad = pick("--format", optarg, formats, 3, &fmt);
      break;
    case O_PHASE:
      bad = pick("--phase", optarg, phases, 3, &phase);
      break;
    case O_ATTN:
      bad = pick("--attention", optarg, attns, 2, &attn);
      break;
    case O_W:
      bad = parse_bits("--w-bits", optarg, &w_bits);
      break;
    case O_A:
      bad = parse_bits("--a-bits", optarg, &a_bits);
      break;
    case O_KV:
      bad = parse_bits("--kv-bits", optarg, &kv_bits);
      break;
    case O_E:
      bad = parse_bits("--embed-bits", optarg, &e_bits);
      break;
    case O_FMT8:
      bad = pick("--8bit-format", optarg, fmts8 + 1, 2, &fmt8);
      fmt8 += 1; /* FMT8_INT8 or FMT8_FP8 */
      break;
    case O_DB:
      free(db_path);
      db_path = xstrdup(optarg);
      break;
    case O_MODULES:
      free(mod_dir);
      mod_dir = xstrdup(optarg);
      break;
    case O_HW:
      hw_id = optarg;
      break;
    case O_HWDB:
      free(hw_path);
      hw_path = xstrdup(optarg);
      break;
    case O_LIST:
      list = true;
      break;
    case 'h':
      usage(stdout);
      rc = 0;
      goto out_usage;
    default:
      usage(stderr);
      goto out_usage;
    }
    if (bad)
      goto out_usage;
  }
  if (!list && optind != argc - 1) {
    fputs(optind == argc ? "lmrun: no model file given\n"
                         : "lmrun: give exactly one model file\n",
          stderr);
    usage(stderr);
    goto out_usage;
  }

  Error err;
  err_clear(&err);
  rc = 1;
  Db *db = NULL;
  Registry *reg = NULL;
  Model *model = NULL;
  Plan *plan = NULL;
  Values *vp = NULL, *vd = NULL, *sa = NULL, *sb = NULL;
  GpuDb *gpus = NULL;
  char *text = NULL;
  PhaseResult ph[2];
  memset(ph, 0, sizeof(ph));

  if (!(gpus = gpudb_load(hw_path, &err)))
    goto out;
  if (list) {
    list_hardware(gpus);
    rc = 0;
    goto out;
  }
  const Gpu *gpu = gpudb_find(gpus, hw_id);
  if (!gpu) {
    Buf b;
    buf_init(&b);
    for (int i = 0; i < gpus->n; i++)
      buf_printf(&b, "%s%s", i ? ", " : "", gpus->gpus[i].id);
    err_file(&err, path_display(hw_path), "no GPU '%s' (known: %s)", hw_id,
             buf_str(&b));
    buf_free(&b);
    goto out;
  }
  if (!(db = db_load(db_path, &err)) || !(reg = reg_open(db, mod_dir, &err)) ||
      !(model = model_open(argv[optind], NULL, reg, &err)) ||
      !(plan = plan_build(model, (AttnImpl)attn, &err)))
    goto out;

  double prefill_run[V_COUNT] = {
      [V_B] = batch,           [V_S] = seq,
      [V_T] = seq,             [V_L] = seq,
      [V_W_BYTES] = w_bits / 8.0, [V_A_BYTES] = a_bits / 8.0,
      [V_KV_BYTES] = kv_bits / 8.0, [V_SRAM_BYTES] = gpu->smem_per_sm,
      [V_E_BYTES] = e_bits / 8.0};
  double decode_run[V_COUNT];
  memcpy(decode_run, prefill_run, sizeof(decode_run));
  decode_run[V_T] = 1;

  vp = values_new(plan);
  vd = values_new(plan);
  if (plan_eval(plan, prefill_run, vp, &err) < 0 ||
      plan_eval(plan, decode_run, vd, &err) < 0)
    goto out;
  Peaks peaks;
  if (roof_peaks(gpu, w_bits, a_bits, kv_bits, (Format8)fmt8, &peaks, &err) < 0)
    goto out;
  ph[0] = (PhaseResult){.name = "prefill", .tokens = seq, .kv_len = seq,
                        .plan = plan, .vals = vp};
  ph[1] = (PhaseResult){.name = "decode", .tokens = 1, .kv_len = seq,
                        .plan = plan, .vals = vd};
  phase_roofline(&ph[0], &peaks, gpu->bandwidth);
  phase_roofline(&ph[1], &peaks, gpu->bandwidth);

  Summary sum = {.ttft = ph[0].total_time, .tpot = ph[1].total_time};
  sum.tokens_per_s = sum.tpot > 0 ? batch / sum.tpot : 0;
  sa = values_new(plan);
  sb = values_new(plan);
  if (roof_footprint(plan, prefill_run, decode_run, gpu->memory, true, sa, sb,
                     &sum.mem, &err) < 0)
    goto out;

  double nparams = -1;
  const char *kv_kinds[8];
  double kv_bytes[8];
  int nkinds = 0;
  if (model->from_config) {
    /* parameters, and the KV cache per layer kind (after the S tokens) */
    if (plan_parameters(plan, sa, &nparams, &err) < 0 ||
        plan_eval(plan, decode_run, sa, &err) < 0)
      goto out;
    nkinds = plan_kv_by_kind(plan, sa, kv_kinds, kv_bytes, 8);
    if (model->ckpt_bytes > 0) {
      /* the checkpoint stores every parameter at its torch_dtype */
      double want = model->ckpt_elem_bytes * nparams;
      double rel = (want - model->ckpt_bytes) / model->ckpt_bytes;
      if (rel > 0.01 || rel < -0.01)
        fprintf(stderr,
                "lmrun: warning: predicted weights (%.0f parameters x %g "
                "bytes = %.0f) differ from the checkpoint's "
                "model.safetensors.index.json total_size (%.0f) by %+.2f%%\n",
                nparams, model->ckpt_elem_bytes, want, model->ckpt_bytes,
                rel * 100);
    }
  }
  Report r = {.model = model->id, .family = model->family,
              .note = model->note, .parameters = nparams,
              .kv_kinds = kv_kinds, .kv_kind_bytes = kv_bytes,
              .nkinds = nkinds, .batch = batch, .seq_len = seq,
              .w_bits = w_bits, .a_bits = a_bits, .kv_bits = kv_bits,
              .attention = attns[attn],
              .phases = phase == PHASE_DECODE ? &ph[1] : &ph[0],
              .nphases = phase == PHASE_ALL ? 2 : 1,
              .gpu = gpu, .peaks = peaks, .summary = &sum};
  warn_model(model, plan, seq);
  text = report_render(&r, (Format)fmt);
  fputs(text, stdout);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "lmrun: write error: %s\n", strerror(errno));
    goto out;
  }
  rc = 0;
out:
  if (err.set) {
    fputs("lmrun: ", stderr);
    err_print(stderr, &err);
  }
  free(text);
  phase_free_times(&ph[0]);
  phase_free_times(&ph[1]);
  values_free(vp);
  values_free(vd);
  values_free(sa);
  values_free(sb);
  plan_free(plan);
  model_free(model);
  reg_free(reg);
  db_free(db);
  gpudb_free(gpus);
out_usage:
  free(db_path);
  free(mod_dir);
  free(hw_path);
  return rc;
}
