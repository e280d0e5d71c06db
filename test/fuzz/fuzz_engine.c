/* fuzz_engine.c: libFuzzer target for the serving engine loader
 * (engines/<id>.json, runtime/calib.c), its all_reduce rules and step
 * times included. A loaded engine must give finite, non-negative host
 * times and a kernel name for every all-reduce: anything else is a
 * finding (abort). */
#include "calib.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const Engine *en) {
  static const double batch[] = {1, 64, 4096};
  for (int d = 0; d < 2; d++)
    for (size_t b = 0; b < sizeof batch / sizeof batch[0]; b++) {
      double t = engine_step_time(en, d, batch[b]);
      if (!isfinite(t) || t < 0)
        abort();
    }
  for (int i = 0; i < 2; i++)
    if (!isfinite(en->launch_gap[i]) || en->launch_gap[i] < 0)
      abort();
  if (!isfinite(en->host_launch) || en->host_launch < 0 ||
      !isfinite(en->q_tile) || en->q_tile < 0 ||
      !isfinite(en->gemm8_speedup) || en->gemm8_speedup < 0)
    abort();
  for (int n = 2; n <= 16; n *= 2)
    for (double bytes = 1024; bytes < 1e9; bytes *= 16)
      for (int m = 0; m < 4; m++)
        if (!engine_all_reduce_kernel(en, n, bytes, m & 1, m & 2))
          abort();
  for (int i = 0; i < en->ncosts; i++)
    if (!isfinite(en->costs[i].launches) || en->costs[i].launches < 0 ||
        !isfinite(en->costs[i].traffic) || en->costs[i].traffic < 0)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  Engine *en = engine_load_text("fuzz_engine.json", (const char *)data, size,
                                &e);
  if (en) {
    check(en);
    engine_free(en);
  } else {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
