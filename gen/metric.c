/* metric.c: the metric table's names (include/gen.h, LM_METRICS). */
#include "gen.h"

#include <string.h>

#define NAME(id, name, heading, unit, kind) [id] = name,
#define HEADING(id, name, heading, unit, kind) [id] = heading,
#define UNIT(id, name, heading, unit, kind) [id] = unit,

const char *const metric_name[M_COUNT] = {LM_METRICS(NAME)};
const char *const metric_heading[M_COUNT] = {LM_METRICS(HEADING)};
const char *const metric_unit[M_COUNT] = {LM_METRICS(UNIT)};

int metric_lookup(const char *name) {
  for (int m = 0; m < M_COUNT; m++) /* the first byte first: cheaper */
    if (name[0] == metric_name[m][0] && strcmp(name, metric_name[m]) == 0)
      return m;
  return -1;
}
