/* fuzz_calib.c: libFuzzer target for the calibration loader
 * (calibration/<gpu>.json, runtime/calib.c). A loaded file's constants
 * must give finite, non-negative kernel times: anything else is a finding
 * (abort), as the loader must refuse it with a located error. */
#include "calib.h"

#include <math.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const Calib *c) {
  /* an H100-like GPU, so only the file's constants vary */
  Gpu g = {.bandwidth = 3.35e12, .sm_count = 132};
  static const double shape[][3] = {{1, 4096, 4096}, {4096, 4096, 4096},
                                    {0, 0, 0}};
  for (int k = 0; k < KK_COUNT; k++) {
    const KernelFit *f = &c->k[k];
    if (!isfinite(f->launch) || f->launch < 0)
      abort();
    for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++) {
      double t = calib_kernel_time(f, (KernelKind)k, 1e9, 1e6, shape[s][0],
                                   shape[s][1], shape[s][2], 989e12, &g);
      if (!isfinite(t) || t < 0)
        abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  Calib *c = calib_load_text("fuzz_calib.json", (const char *)data, size, &e);
  if (c) {
    check(c);
    calib_free(c);
  } else {
    FILE *f = fopen("/dev/null", "w");
    if (f) {
      err_print(f, &e);
      fclose(f);
    }
  }
  return 0;
}
