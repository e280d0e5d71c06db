/* modabi.h: the contract between the generator, the JIT and the runtime.
 *
 * This is the only header generated code sees. The runtime compiles it,
 * from text embedded at build time, ahead of every generated file in one
 * libtcc state with -nostdinc -nostdlib, so it must include nothing and
 * need nothing from libc or libtcc1.a (no unsigned 64-bit conversions).
 *
 * Every metric of every module is a function
 *
 *     double <Class>_<metric>(const double *args);
 *
 * with args positional in the module's declared parameter order. Atomic
 * operations of a module are <Class>_op_<op>_<metric>. Arguments travel by
 * pointer and results as a scalar double because this libtcc passes small
 * mixed int/float structs wrongly across the host/JIT boundary.
 *
 * Generated code names a parameter {x} as the local p_x, so this header
 * must define no p_ name, and every name it defines starts with lm_/LM_
 * (which parameter and class names may not).
 *
 * The helpers below define the formula language's functions. The host's
 * formula interpreter includes this same header, so interpreted and
 * compiled formulas compute bit-identical results.
 */
#ifndef LM_MODABI_H
#define LM_MODABI_H

/* Bump when the calling convention or helper semantics change: it is part
 * of every entry's fingerprint, so old generated files are then refused. */
#define LM_ABI_VERSION 2 /* 2: parameters are the locals p_<name> */

typedef double (*lm_metric_fn)(const double *args);

/* floor(x). |x| >= 2^52 is already integral (and NaN/inf pass through). */
static inline double lm_floor(double x) {
  if (!(x > -4503599627370496.0 && x < 4503599627370496.0))
    return x;
  long long i = (long long)x;
  double d = (double)i;
  return d > x ? d - 1.0 : d;
}

/* ceil(x), same range rules as lm_floor. */
static inline double lm_ceil(double x) {
  if (!(x > -4503599627370496.0 && x < 4503599627370496.0))
    return x;
  long long i = (long long)x;
  double d = (double)i;
  return d < x ? d + 1.0 : d;
}

/* min/max propagate NaN so that a bad value is never silently dropped. */
static inline double lm_min(double a, double b) {
  if (a != a || b != b)
    return a + b;
  return a < b ? a : b;
}

static inline double lm_max(double a, double b) {
  if (a != a || b != b)
    return a + b;
  return a > b ? a : b;
}

/* a // b: floor of the quotient. Exact for integers below 2^53 (done in
 * 64-bit integers, since a/b rounded to double can land on an integer the
 * true quotient is just below). Division by zero gives inf or NaN, which
 * the runtime reports. */
static inline double lm_floordiv(double a, double b) {
  if (a > -9007199254740992.0 && a < 9007199254740992.0 &&
      b > -9007199254740992.0 && b < 9007199254740992.0) {
    long long ia = (long long)a, ib = (long long)b;
    if ((double)ia == a && (double)ib == b && ib != 0) {
      long long q = ia / ib;
      if (ia % ib != 0 && ((ia < 0) != (ib < 0)))
        q--;
      return (double)q;
    }
  }
  return lm_floor(a / b);
}

#endif
