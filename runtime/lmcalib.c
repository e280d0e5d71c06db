/* lmcalib.c: the lmcalib command: fit and validate calibrations.
 *
 *   lmcalib --fit KERNELS.csv --hardware ID [--out DIR] [--source TEXT]...
 *   lmcalib --validate KERNELS.csv
 *   lmcalib --score KERNELS.csv [--calibration DIR] [--residuals FILE]
 *
 * --fit fits the kernel constants of GPU ID on the rows of KERNELS.csv
 * measured on it and writes DIR/ID.json (default DIR: calibration/) and its
 * residuals DIR/ID.residuals.csv, atomically. --validate prints, for every
 * GPU with measurements from two or more sources, the leave-one-source-out
 * errors: fit on the other sources, predict the held-out one, per kernel
 * class. --score predicts every row with the calibration lmrun uses for
 * its GPU (calibration/<id>.json, else the fallback sibling): measurements
 * the shipped files were not fitted on, scored. The CSV format is in
 * DESIGN.md section 12.
 */
#include "calib.h"
#include "lmpredict.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
  fputs("usage: lmcalib --fit KERNELS.csv --hardware ID [--out DIR]\n"
        "               [--source TEXT]... [--hardware-db PATH]\n"
        "       lmcalib --validate KERNELS.csv [--hardware-db PATH]\n"
        "       lmcalib --score KERNELS.csv [--calibration DIR]\n"
        "               [--residuals FILE] [--hardware-db PATH]\n"
        "\n"
        "Fit a GPU's calibrated kernel times from measured kernel times,\n"
        "print the leave-one-source-out validation of the data, or score\n"
        "measurements against the calibrations lmrun uses.\n"
        "\n"
        "  --fit CSV          measured kernel times (DESIGN.md section 12)\n"
        "  --hardware ID      the GPU (hardware.json id) whose rows to fit\n"
        "  --out DIR          where ID.json and ID.residuals.csv go\n"
        "                     (default: the install's calibration/,\n"
        "                     which lmrun reads)\n"
        "  --source TEXT      provenance of the data, written into the file\n"
        "                     (repeatable)\n"
        "  --validate CSV     leave-one-source-out errors per kernel class\n"
        "  --score CSV        errors of the shipped calibrations (or a GPU's\n"
        "                     fallback sibling) per GPU, source and class\n"
        "  --calibration DIR  the calibrations --score reads (default: the\n"
        "                     install's calibration/)\n"
        "  --residuals FILE   --score: every row's measured and predicted\n"
        "                     time, written atomically\n"
        "  --hardware-db PATH GPU database (default: the install's)\n"
        "  -h, --help         this help\n"
        "  --version          print the version and exit\n",
        out);
}

/* The classes the validation reports. */
enum { C_GEMM, C_ATTN, C_SMALL, C_ALL, C_COUNT };
static const char *const class_name[C_COUNT] = {"GEMM", "attention",
                                                "small ops", "all"};

static int meas_class(const Meas *m) {
  if (m->kind == KK_GEMM)
    return C_GEMM;
  if (m->kind == KK_BGEMM || m->kind == KK_ATTENTION || m->kind == KK_SOFTMAX)
    return C_ATTN;
  return C_SMALL;
}

/* The source of a row without its "/part" (vidur/llama-2-7b-hf -> vidur),
 * as a length. */
static size_t family_len(const char *src) {
  return strcspn(src, "/");
}

static bool same_family(const char *a, const char *b) {
  size_t n = family_len(a);
  return n == family_len(b) && strncmp(a, b, n) == 0;
}

/* Fit on fit[nf], print the errors of out[no] per class. */
static void held_out(const Gpu *gpu, const Meas **fit, int nf, const Meas **out,
                     int no, const char *label) {
  Calib c;
  memset(&c, 0, sizeof(c));
  calib_fit(fit, nf, gpu, &c);
  for (int k = 0; k < C_COUNT; k++) {
    const Meas **sel = xcalloc((size_t)no + 1, sizeof(Meas *));
    int ns = 0;
    for (int i = 0; i < no; i++)
      if (k == C_ALL || meas_class(out[i]) == k)
        sel[ns++] = out[i];
    if (ns) {
      double med, p90;
      calib_errors(&c, gpu, sel, ns, &med, &p90);
      printf("%-15s %-28s %-11s %6d %8.1f%% %8.1f%%\n", gpu->id, label,
             class_name[k], ns, 100 * med, 100 * p90);
    }
    free(sel);
  }
}

static void validate(const MeasSet *s, const GpuDb *gdb) {
  printf("Held-out validation: fit on the other rows of the GPU, predict the "
         "held-out ones.\n"
         "Sources: leave one source out; models: leave one model out within "
         "a source.\n"
         "median |error| (90th percentile) per kernel class; n = rows held "
         "out.\n\n");
  printf("%-15s %-28s %-11s %6s %9s %9s\n", "GPU", "held out", "class", "n",
         "median", "p90");
  const Meas **fit = xcalloc((size_t)s->n + 1, sizeof(Meas *));
  const Meas **out = xcalloc((size_t)s->n + 1, sizeof(Meas *));
  for (int g = 0; g < gdb->n; g++) {
    const Gpu *gpu = &gdb->gpus[g];
    /* the sources ("vidur/llama-2-7b-hf") of this GPU */
    const char *src[64];
    int nsrc = 0;
    for (int i = 0; i < s->n; i++) {
      if (strcmp(s->rows[i].hw_id, gpu->id) != 0)
        continue;
      bool seen = false;
      for (int j = 0; j < nsrc && !seen; j++)
        seen = strcmp(src[j], s->rows[i].source) == 0;
      if (!seen && nsrc < 64)
        src[nsrc++] = s->rows[i].source;
    }
    if (nsrc == 0)
      continue;
    /* leave one source family out */
    int nfam = 0;
    for (int h = 0; h < nsrc; h++) {
      bool first = true;
      for (int j = 0; j < h && first; j++)
        first = !same_family(src[j], src[h]);
      nfam += first;
    }
    for (int h = 0; h < nsrc && nfam > 1; h++) {
      bool first = true;
      for (int j = 0; j < h && first; j++)
        first = !same_family(src[j], src[h]);
      if (!first)
        continue;
      int nf = 0, no = 0;
      for (int i = 0; i < s->n; i++) {
        const Meas *m = &s->rows[i];
        if (strcmp(m->hw_id, gpu->id) != 0)
          continue;
        if (same_family(m->source, src[h]))
          out[no++] = m;
        else
          fit[nf++] = m;
      }
      char label[64];
      snprintf(label, sizeof(label), "source %.*s", (int)family_len(src[h]),
               src[h]);
      held_out(gpu, fit, nf, out, no, label);
    }
    /* leave one model out, within a source with several */
    for (int h = 0; h < nsrc; h++) {
      if (!strchr(src[h], '/'))
        continue;
      int sib = 0;
      for (int j = 0; j < nsrc; j++)
        sib += j != h && same_family(src[j], src[h]);
      if (!sib)
        continue;
      int nf = 0, no = 0;
      for (int i = 0; i < s->n; i++) {
        const Meas *m = &s->rows[i];
        if (strcmp(m->hw_id, gpu->id) != 0)
          continue;
        if (strcmp(m->source, src[h]) == 0)
          out[no++] = m;
        else if (same_family(m->source, src[h]))
          fit[nf++] = m;
      }
      char label[64];
      snprintf(label, sizeof(label), "model %s", src[h]);
      held_out(gpu, fit, nf, out, no, label);
    }
  }
  free(fit);
  free(out);
}

/* --score: every row predicted with the calibration lmrun uses for its
 * GPU; errors per GPU, source family and class; the rows to res_path. */
static int score(const MeasSet *s, const GpuDb *gdb, const char *csv,
                 const char *hw_path, const char *cdir, const char *res_path,
                 Error *err) {
  /* every row's GPU first: nothing is printed for a file that fails */
  for (int i = 0; i < s->n; i++)
    if (!gpudb_find(gdb, s->rows[i].hw_id)) {
      err_file(err, path_display(csv),
               "line %d: no GPU '%s' in %s (lmrun --list-hardware)",
               s->rows[i].line, s->rows[i].hw_id, path_display(hw_path));
      return -1;
    }
  /* the table (tb) and the rows (rb) are built whole and printed or written
   * only when everything succeeded: a failure leaves no partial output */
  Buf rb, tb;
  buf_init(&rb);
  buf_init(&tb);
  buf_puts(&rb, "# lmcalib --score: rows predicted with the calibration "
                "lmrun uses for their GPU\n"
                "hw_id,calibration,line,source,op,kind,m,n,k,flops,bytes,"
                "measured_us,predicted_us,error\n");
  buf_printf(&tb, "Scored against the calibrations lmrun uses (%s/<gpu>.json, else "
         "the fallback sibling).\n"
         "median |error| (90th percentile) per kernel class; n = rows.\n\n",
         path_display(cdir));
  buf_printf(&tb, "%-15s %-26s %-24s %-11s %6s %9s %9s\n", "GPU",
             "calibration",
         "source", "class", "n", "median", "p90");
  const Meas **sel = xcalloc((size_t)s->n + 1, sizeof(Meas *));
  int rc = 0;
  for (int g = 0; g < gdb->n && rc == 0; g++) {
    const Gpu *gpu = &gdb->gpus[g];
    bool any = false;
    for (int i = 0; i < s->n && !any; i++)
      any = strcmp(s->rows[i].hw_id, gpu->id) == 0;
    if (!any)
      continue;
    Calib *c = calib_for_gpu(cdir, gpu->id, err);
    if (!c) {
      rc = -1;
      break;
    }
    char cal[64];
    snprintf(cal, sizeof(cal), "%s%s", c->hw_id,
             c->fallback ? " (fallback)" : "");
    /* each source family in order of first appearance (fams: the first
     * row of each, at most 64 families a GPU) */
    const Meas *fams[64];
    int nfams = 0;
    for (int h = 0; h < s->n; h++) {
      const Meas *first = &s->rows[h];
      if (strcmp(first->hw_id, gpu->id) != 0)
        continue;
      bool seen = false;
      for (int j = 0; j < nfams && !seen; j++)
        seen = same_family(fams[j]->source, first->source);
      if (seen)
        continue;
      if (nfams == 64) {
        buf_printf(&tb, "%-15s (more than 64 source families: the rest are in the "
               "residuals only)\n",
               gpu->id);
        break;
      }
      fams[nfams++] = first;
      char fam[64];
      snprintf(fam, sizeof(fam), "%.*s", (int)family_len(first->source),
               first->source);
      for (int k = 0; k < C_COUNT; k++) {
        int ns = 0;
        for (int i = 0; i < s->n; i++) {
          const Meas *m = &s->rows[i];
          if (strcmp(m->hw_id, gpu->id) == 0 &&
              same_family(m->source, first->source) &&
              (k == C_ALL || meas_class(m) == k))
            sel[ns++] = m;
        }
        if (!ns)
          continue;
        double med, p90;
        calib_errors(c, gpu, sel, ns, &med, &p90);
        buf_printf(&tb, "%-15s %-26s %-24s %-11s %6d %8.1f%% %8.1f%%\n",
                   gpu->id, cal,
               fam, class_name[k], ns, 100 * med, 100 * p90);
      }
    }
    for (int i = 0; i < s->n; i++) {
      const Meas *m = &s->rows[i];
      if (strcmp(m->hw_id, gpu->id) != 0)
        continue;
      double p = calib_meas_predict(c, gpu, m);
      buf_printf(&rb, "%s,%s,%d,%s,%s,%s,%g,%g,%g,%.17g,%.17g,%.6g,%.6g,%.4f\n",
                 gpu->id, c->hw_id, m->line, m->source, m->op,
                 kernel_kind_name[m->kind], m->m, m->n, m->k, m->flops,
                 m->bytes, m->measured * 1e6, p * 1e6, p / m->measured - 1);
    }
    calib_free(c);
  }
  if (rc == 0 && res_path &&
      fs_write_atomic(res_path, buf_str(&rb), rb.len, err) < 0)
    rc = -1;
  if (rc == 0)
    fputs(buf_str(&tb), stdout);
  free(sel);
  buf_free(&rb);
  buf_free(&tb);
  return rc;
}

int main(int argc, char **argv) {
  const char *home = lm_home();
  char *hw_path = path_join(home, "hardware.json");
  const char *fit_csv = NULL, *val_csv = NULL, *hw_id = NULL;
  const char *score_csv = NULL, *res_out = NULL, *cal_dir = NULL;
  char *out_default = path_join(home, "calibration");
  const char *out_dir = out_default;
  const char *sources[32];
  int nsources = 0, rc = 2;
  enum {
    O_FIT = 256,
    O_HW,
    O_OUT,
    O_SRC,
    O_VAL,
    O_HWDB,
    O_VERSION,
    O_SCORE,
    O_CAL,
    O_RES
  };
  static const struct option opts[] = {
      {"fit", required_argument, 0, O_FIT},
      {"hardware", required_argument, 0, O_HW},
      {"out", required_argument, 0, O_OUT},
      {"source", required_argument, 0, O_SRC},
      {"validate", required_argument, 0, O_VAL},
      {"score", required_argument, 0, O_SCORE},
      {"calibration", required_argument, 0, O_CAL},
      {"residuals", required_argument, 0, O_RES},
      {"hardware-db", required_argument, 0, O_HWDB},
      {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, O_VERSION},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case O_FIT:
      fit_csv = optarg;
      break;
    case O_HW:
      hw_id = optarg;
      break;
    case O_OUT:
      out_dir = optarg;
      break;
    case O_SRC:
      if (nsources == 32) {
        fputs("lmcalib: at most 32 --source\n", stderr);
        goto done;
      }
      sources[nsources++] = optarg;
      break;
    case O_VAL:
      val_csv = optarg;
      break;
    case O_SCORE:
      score_csv = optarg;
      break;
    case O_CAL:
      cal_dir = optarg;
      break;
    case O_RES:
      res_out = optarg;
      break;
    case O_HWDB:
      free(hw_path);
      hw_path = xstrdup(optarg);
      break;
    case 'h':
      usage(stdout);
      rc = 0;
      goto done;
    case O_VERSION:
      printf("lmcalib %s\n", lmp_version());
      rc = 0;
      goto done;
    default:
      usage(stderr);
      goto done;
    }
  }
  int modes = !!fit_csv + !!val_csv + !!score_csv;
  if (optind != argc || modes != 1 || (fit_csv && !hw_id) ||
      ((cal_dir || res_out) && !score_csv)) {
    fputs(optind != argc      ? "lmcalib: unexpected argument\n"
          : modes != 1        ? "lmcalib: give --fit, --validate or --score\n"
          : fit_csv && !hw_id ? "lmcalib: --fit needs --hardware ID\n"
                              : "lmcalib: --calibration and --residuals go "
                                "with --score\n",
          stderr);
    usage(stderr);
    goto done;
  }
  rc = 1;
  Error err;
  err_clear(&err);
  GpuDb *gdb = gpudb_load(hw_path, &err);
  MeasSet *s = NULL;
  char *json = NULL, *res = NULL, *jpath = NULL, *rpath = NULL;
  const Meas **rows = NULL;
  if (!gdb || !(s = meas_load(fit_csv    ? fit_csv
                              : val_csv ? val_csv
                                        : score_csv,
                              &err)))
    goto out;
  if (score_csv) {
    if (score(s, gdb, score_csv, hw_path, cal_dir ? cal_dir : out_default,
              res_out, &err) == 0)
      rc = 0;
    goto out;
  }
  if (val_csv) {
    validate(s, gdb);
    rc = 0;
    goto out;
  }
  const Gpu *g = predict_gpu(gdb, hw_path, hw_id, &err);
  if (!g)
    goto out;
  rows = xcalloc((size_t)s->n + 1, sizeof(Meas *));
  int n = 0;
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->rows[i].hw_id, hw_id) == 0)
      rows[n++] = &s->rows[i];
  if (n == 0) {
    err_file(&err, path_display(fit_csv), "no rows measured on '%s'", hw_id);
    goto out;
  }
  Calib cal;
  memset(&cal, 0, sizeof(cal));
  calib_fit(rows, n, g, &cal);
  Buf b;
  buf_init(&b);
  buf_printf(&b, "%s.residuals.csv", hw_id);
  char *rname = xstrdup(buf_str(&b));
  buf_reset(&b);
  buf_printf(&b, "%s.json", hw_id);
  jpath = path_join(out_dir, buf_str(&b));
  buf_free(&b);
  rpath = path_join(out_dir, rname);
  /* the sources: each source column value with its row count, then the
   * provenance given with --source */
  const char *all[64];
  int na = 0;
  Arena sa;
  arena_init(&sa);
  for (int i = 0; i < n && na < 32; i++) {
    bool seen = false;
    for (int j = 0; j < i && !seen; j++)
      seen = strcmp(rows[j]->source, rows[i]->source) == 0;
    if (seen)
      continue;
    int cnt = 0;
    for (int j = 0; j < n; j++)
      cnt += strcmp(rows[j]->source, rows[i]->source) == 0;
    Buf sb;
    buf_init(&sb);
    buf_printf(&sb, "%s: %d rows of %s", rows[i]->source, cnt, fit_csv);
    all[na++] = arena_strdup(&sa, buf_str(&sb));
    buf_free(&sb);
  }
  for (int i = 0; i < nsources; i++)
    all[na++] = sources[i];
  json = calib_to_json(&cal, g, fit_csv, all, na, rows, n, rname);
  arena_free(&sa);
  free(rname);
  res = calib_residuals_csv(&cal, g, rows, n);
  if (fs_write_atomic(rpath, res, strlen(res), &err) < 0 ||
      fs_write_atomic(jpath, json, strlen(json), &err) < 0)
    goto out;
  /* the file must read back as it was meant */
  Calib *back = calib_load(jpath, &err);
  if (!back)
    goto out;
  calib_free(back);
  double med, p90;
  calib_errors(&cal, g, rows, n, &med, &p90);
  fprintf(stderr,
          "lmcalib: %s: %d rows fitted, median |error| %.1f%% (p90 %.1f%%); "
          "wrote %s and %s\n",
          hw_id, n, 100 * med, 100 * p90, path_display(jpath),
          path_display(rpath));
  rc = 0;
out:
  if (err.set) {
    fputs("lmcalib: ", stderr);
    err_print(stderr, &err);
  }
  free(rows);
  free(json);
  free(res);
  free(jpath);
  free(rpath);
  meas_free(s);
  gpudb_free(gdb);
done:
  free(hw_path);
  free(out_default);
  return rc;
}
