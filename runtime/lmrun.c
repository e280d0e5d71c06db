/* lmrun.c: placeholder until the runtime issue lands. */
#include <stdio.h>

int main(void) {
  fputs("lmrun: not yet: the runtime (JIT, registry, model walk) is the next "
        "issue\n",
        stderr);
  return 0;
}
