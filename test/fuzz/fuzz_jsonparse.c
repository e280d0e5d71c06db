/* fuzz_jsonparse.c: libFuzzer target comparing the fast JSON path
 * (common/jsonparse.c) with Jansson. The input is the text, read through
 * its length only (a copy with no byte after it, so ASan sees any read
 * past the end). A tree the fast path builds for a text Jansson rejects,
 * or a tree other than Jansson's (a member order, an integer for a real,
 * a value's bits, a string's bytes), is a finding (abort). */
#include "common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(json_t *a, json_t *b) {
  if (json_typeof(a) != json_typeof(b))
    return 0;
  switch (json_typeof(a)) {
  case JSON_OBJECT: {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    void *ia = json_object_iter(a), *ib = json_object_iter(b);
    for (; ia && ib;
         ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
      size_t n = json_object_iter_key_len(ia);
      if (n != json_object_iter_key_len(ib) ||
          memcmp(json_object_iter_key(ia), json_object_iter_key(ib), n) != 0 ||
          !same(json_object_iter_value(ia), json_object_iter_value(ib)))
        return 0;
    }
    return !ia && !ib;
  }
  case JSON_ARRAY:
    if (json_array_size(a) != json_array_size(b))
      return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!same(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           memcmp(json_string_value(a), json_string_value(b),
                  json_string_length(a)) == 0;
  case JSON_INTEGER:
    return json_integer_value(a) == json_integer_value(b);
  case JSON_REAL: {
    double x = json_real_value(a), y = json_real_value(b);
    return memcmp(&x, &y, sizeof(x)) == 0;
  }
  default:
    return 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  json_t *fast = json_fast_parse(text, size);
  if (fast) {
    json_t *ref = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
    if (!ref || !same(fast, ref))
      abort();
    json_decref(ref);
    json_decref(fast);
  }
  free(text);
  return 0;
}
