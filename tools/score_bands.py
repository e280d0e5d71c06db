#!/usr/bin/env python3
"""score_bands.py: the errors of `lmcalib --score ... --residuals FILE` by
shape band (DESIGN.md section 12.5.1).

    python3 tools/score_bands.py RESIDUALS.csv

Per GPU (with the calibration it was scored against) and kernel kind: every
row; GEMMs on LLM shapes (n and k >= 1024) and by m within them (m <= 64,
64 < m < 1024, m >= 1024); attention by op (prefill_attention,
decode_attention, ...) with the kernels of 100 us and more apart from the
smaller ones. Each line: rows, median |error|, signed median error.
"""
import csv
import statistics
import sys


def line(label, errs):
    if not errs:
        return
    print("  %-40s %7d %8.1f%% %+8.1f%%" % (
        label, len(errs), 100 * statistics.median(abs(e) for e in errs),
        100 * statistics.median(errs)))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().split("\n\n")[1])
    try:
        with open(sys.argv[1], newline="") as f:
            rows = list(csv.DictReader(l for l in f if not l.startswith("#")))
    except OSError as e:
        sys.exit("score_bands.py: %s: cannot read: %s"
                 % (sys.argv[1], e.strerror))
    need = {"hw_id", "calibration", "kind", "op", "m", "n", "k",
            "measured_us", "error"}
    if rows and not need <= set(rows[0]):
        sys.exit("score_bands.py: %s: not an lmcalib --score --residuals "
                 "file (missing columns: %s)"
                 % (sys.argv[1], ", ".join(sorted(need - set(rows[0])))))
    groups = {}
    for r in rows:
        groups.setdefault((r["hw_id"], r["calibration"], r["kind"]),
                          []).append(r)
    print("  %-40s %7s %9s %9s" % ("rows", "n", "median", "signed"))
    for (hw, cal, kind), rs in sorted(groups.items()):
        print("%s (calibration %s), %s" % (hw, cal, kind))
        err = lambda sel: [float(r["error"]) for r in sel]
        line("all", err(rs))
        if kind == "gemm":
            llm = [r for r in rs
                   if min(float(r["n"]), float(r["k"])) >= 1024]
            line("LLM shapes (n, k >= 1024)", err(llm))
            for name, lo, hi in (("m <= 64", 0, 64), ("64 < m < 1024", 65, 1023),
                                 ("m >= 1024", 1024, float("inf"))):
                line("  " + name, err([r for r in llm
                                       if lo <= float(r["m"]) <= hi]))
        if kind == "attention":
            for op in sorted({r["op"] for r in rs}):
                sel = [r for r in rs if r["op"] == op]
                line(op + ", >= 100 us", err([r for r in sel
                                               if float(r["measured_us"]) >= 100]))
                line(op + ", < 100 us", err([r for r in sel
                                              if float(r["measured_us"]) < 100]))


if __name__ == "__main__":
    main()
