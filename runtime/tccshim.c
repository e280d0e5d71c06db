/* tccshim.c: built into liblmpredict.so only.
 *
 * Debian's libtcc.a is not position-independent: its code reaches stdout,
 * stderr and environ PC-relative (R_X86_64_PC32), which a shared library
 * cannot do for symbols another object defines. The Makefile renames them
 * in libtcc's members to these hidden copies, which live in the .so, and
 * this constructor points them at libc's own when the library loads.
 */
#include <stdio.h>

extern char **environ;

__attribute__((visibility("hidden"))) FILE *lmp_tcc_stdout;
__attribute__((visibility("hidden"))) FILE *lmp_tcc_stderr;
__attribute__((visibility("hidden"))) char **lmp_tcc_environ;

void lmp_tcc_shim_init(void) __attribute__((constructor, visibility("hidden")));
void lmp_tcc_shim_init(void) {
  lmp_tcc_stdout = stdout;
  lmp_tcc_stderr = stderr;
  lmp_tcc_environ = environ;
}
