#!/usr/bin/env python3
"""validate_e2e.py: lmrun's calibrated and roofline times against published
end-to-end latencies (test/data/calibration/e2e.csv, sources cited there).

    python3 tools/validate_e2e.py [E2E.csv] [--lmrun ./lmrun]

Standard library only. Prints one line per figure and the median |error|.
"""
import csv
import json
import shlex
import subprocess
import sys


def run(lmrun, model, hw, engine, batch, seq, flags, roofline):
    cmd = [lmrun, "models/%s.json" % model, "--hardware", hw, "-B", str(batch),
           "-S", str(seq), "--format", "json"] + shlex.split(flags)
    cmd += ["--roofline", "--attention", "flash"] if roofline else ["--engine", engine]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["summary"]


def predict(lmrun, r, roofline):
    b, i, o = int(r["batch"]), int(r["input"]), int(r["output"])
    args = (lmrun, r["model"], r["hardware"], r["engine"], b)
    m = r["metric"]
    if m == "ttft":
        return run(*args, i, r["flags"], roofline)["ttft_s"] * 1e3
    mid = i + o // 2
    tpot = run(*args, mid, r["flags"], roofline)["tpot_s"] * 1e3
    if m == "tpot":
        return tpot
    # the prefill samples the first of the o output tokens: o - 1 decode
    # steps follow it
    lat = run(*args, i, r["flags"], roofline)["ttft_s"] * 1e3 + (o - 1) * tpot
    if m == "latency":
        return lat
    if m == "throughput":
        # output tokens per second of a static batch (gptSessionBenchmark:
        # batch x output / the batch's latency); published_ms holds tok/s
        return b * o / (lat * 1e-3)
    raise SystemExit("validate_e2e: unknown metric " + m)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def main():
    path, lmrun = "test/data/calibration/e2e.csv", "./lmrun"
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--lmrun":
            lmrun = args.pop(0)
        else:
            path = a
    with open(path) as f:
        rows = list(csv.DictReader(l for l in f if not l.startswith("#")))
    print("End to end against published latencies (%s; sources cited there)."
          % path)
    print("%-16s %-16s %-14s %-10s %5s %5s %5s %-10s %13s %13s %7s %13s %7s" % (
        "source", "model", "GPU", "engine", "B", "in", "out", "metric",
        "published", "predicted", "error", "roofline", "error"))
    ep, er = [], []
    groups = {}
    for r in rows:
        p = predict(lmrun, r, False)
        q = predict(lmrun, r, True)
        pub = float(r["published_ms"])
        e1, e2 = p / pub - 1, q / pub - 1
        ep.append(abs(e1))
        er.append(abs(e2))
        g = "throughput" if r["metric"] == "throughput" else "latency"
        groups.setdefault(g, ([], []))
        groups[g][0].append(abs(e1))
        groups[g][1].append(abs(e2))
        unit = "tok/s" if r["metric"] == "throughput" else "ms"
        print("%-16s %-16s %-14s %-10s %5s %5s %5s %-10s %7.1f %-5s %7.1f %-5s %+6.1f%% %7.1f %-5s %+6.1f%%"
              % (r["source"], r["model"], r["hardware"], r["engine"],
                 r["batch"], r["input"], r["output"], r["metric"], pub, unit,
                 p, unit, 100 * e1, q, unit, 100 * e2))
    for g in sorted(groups):
        print("median |error| of the %s figures: calibrated %.1f%%, roofline "
              "%.1f%% (%d figures)" % (g, 100 * median(groups[g][0]),
                                       100 * median(groups[g][1]),
                                       len(groups[g][0])))
    print("median |error|: calibrated %.1f%%, roofline %.1f%% (%d figures)"
          % (100 * median(ep), 100 * median(er), len(rows)))


if __name__ == "__main__":
    main()
