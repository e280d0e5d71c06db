/* fuzz_objload.c: libFuzzer target for the object loader behind the cache
 * of compiled code (runtime/objload.c) and for the cached GPU table's text
 * form (gpudb_deserialize): any bytes are loaded or refused, never read or
 * written out of bounds. Loaded code is never run. */
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Error e;
  err_clear(&e);
  ObjImage *o = obj_load(data, size, &e);
  if (o) {
    (void)obj_symbol(o, "TorchLinear_flops");
    obj_free(o);
  }
  char *text = xmalloc(size + 1); /* gpudb_deserialize wants a NUL after */
  memcpy(text, data, size);
  text[size] = '\0';
  GpuDb *g = gpudb_deserialize(text, size);
  gpudb_free(g);
  free(text);
  return 0;
}
