#!/usr/bin/env python3
"""validate_multi_gpu.py: lmrun's calibrated and roofline predictions against
published multi-GPU figures (test/data/calibration/multi_gpu.csv, sources
cited there; DESIGN.md 15.6 is this script's output).

    python3 tools/validate_multi_gpu.py [MULTI_GPU.csv] [--lmrun ./lmrun]
                                        [--markdown]

Standard library only. Prints one line per figure, the error
(predicted - published) / published of the calibrated prediction and of the
roofline bound, and the median |error| per group; --markdown prints the
same rows as DESIGN 15.6's tables.
"""
import csv
import json
import shlex
import subprocess
import sys


def run(lmrun, r, roofline):
    cmd = [lmrun, r["model"], "--hardware", r["hardware"], "-B", r["batch"],
           "-S", r["input"], "-O", r["output"], "--tp", r["tp"]]
    if r["ep"]:
        cmd += ["--ep", r["ep"]]
    cmd += shlex.split(r["flags"]) + ["--max-batch", "no", "--format", "json"]
    cmd += ["--roofline", "--attention", "flash"] if roofline \
        else ["--engine", r["engine"]]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("validate_multi_gpu: %s: %s"
                         % (" ".join(cmd), p.stderr.strip()))
    return json.loads(p.stdout)["summary"]


def layers(model):
    with open(model) as f:
        return json.load(f)["num_hidden_layers"]


def metric(r, s):
    """The published metric from lmrun's JSON summary (DESIGN 15.1)."""
    b, o, m = int(r["batch"]), int(r["output"]), r["metric"]
    if m == "ttft":
        return s["ttft_s"] * 1e3
    if m == "e2e":
        return s["e2e_latency_s"]
    if m == "tpot_mean":
        return s["tpot_mean_s"] * 1e3
    if m == "tput":
        return b * o / s["e2e_latency_s"]
    if m == "tput_per_gpu":
        v = b * o / s["e2e_latency_s"] / s["gpus"]
        # lmrun's own field must be the same definition (DESIGN 15.1)
        if abs(v / s["throughput_per_gpu_tokens_per_s"] - 1) > 1e-9:
            raise SystemExit("validate_multi_gpu: throughput per GPU %g is "
                             "not B x O / e2e / GPUs = %g"
                             % (s["throughput_per_gpu_tokens_per_s"], v))
        return v
    if m == "ttft_per_layer":
        return s["ttft_s"] * 1e3 / layers(r["model"])
    raise SystemExit("validate_multi_gpu: unknown metric " + m)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def fmt(v):
    if v >= 1000:
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.3f" % v
    return "%.3f" % v


def pct(e):
    s = "%+.0f%%" % (100 * e)
    return "0%" if s in ("+0%", "-0%") else s.replace("-", "\u2212")


FIELDS = ("group", "source", "model", "hardware", "engine", "batch", "input",
          "output", "tp", "ep", "metric", "published", "unit", "note", "flags")
METRICS = ("ttft", "e2e", "tpot_mean", "tput", "tput_per_gpu",
           "ttft_per_layer")


def read_rows(path):
    """The CSV's rows, each checked; a bad one is reported as FILE:LINE."""
    with open(path) as f:
        lines = [(n, l) for n, l in enumerate(f, 1) if not l.startswith("#")]
    reader = csv.DictReader(l for n, l in lines)
    if tuple(reader.fieldnames or ()) != FIELDS:
        raise SystemExit("%s:%d: header must be %s" % (
            path, lines[0][0] if lines else 1, ",".join(FIELDS)))
    rows = []
    for (n, _), r in zip(lines[1:], reader):
        where = "%s:%d" % (path, n)
        if None in r or any(r[k] is None for k in FIELDS):
            raise SystemExit(where + ": expected %d fields" % len(FIELDS))
        if r["metric"] not in METRICS:
            raise SystemExit(where + ": unknown metric " + repr(r["metric"]))
        for k in ("batch", "input", "output", "tp") + (("ep",) if r["ep"]
                                                       else ()):
            if not r[k].isdigit() or int(r[k]) < 1:
                raise SystemExit(where + ": %s must be a positive integer, "
                                 "not %r" % (k, r[k]))
        try:
            if float(r["published"]) <= 0:
                raise ValueError
        except ValueError:
            raise SystemExit(where + ": published must be a positive "
                             "number, not %r" % r["published"])
        rows.append(r)
    return rows


def evaluate(lmrun, rows):
    out = []
    for r in rows:
        pub = float(r["published"])
        p = metric(r, run(lmrun, r, False))
        q = metric(r, run(lmrun, r, True))
        out.append((r, pub, p, q, p / pub - 1, q / pub - 1))
    return out


def opts(r):
    s = "B %s, S %s, O %s, TP %s" % (r["batch"], r["input"], r["output"],
                                      r["tp"])
    return s + (", EP " + r["ep"] if r["ep"] else "")


def print_text(path, res):
    print("Multi-GPU figures against published ones (%s; sources cited "
          "there)." % path)
    print("%-13s %-15s %-13s %-10s %-30s %-14s %10s %10s %7s %10s %7s %s" % (
        "group", "source", "GPU", "engine", "options", "metric", "published",
        "predicted", "error", "roofline", "error", "unit"))
    for r, pub, p, q, e1, e2 in res:
        print("%-13s %-15s %-13s %-10s %-30s %-14s %10.4g %10.4g %+6.1f%% "
              "%10.4g %+6.1f%% %s %s" % (
                  r["group"], r["source"], r["hardware"], r["engine"],
                  opts(r), r["metric"], pub, p, 100 * e1, q, 100 * e2,
                  r["unit"], r["note"]))


COLUMNS = (("source", "source"), ("note", "run"), ("hardware", "GPU"),
           ("flags", "flags"), ("batch", "B"), ("input", "S"),
           ("output", "O"), ("tp", "TP"), ("ep", "EP"))


def print_markdown(res):
    """One table per group; the columns that are the same on every row of a
    group go in the line above its table."""
    groups = {}
    for x in res:
        groups.setdefault(x[0]["group"], []).append(x)
    for name, xs in groups.items():
        rows = [x[0] for x in xs]
        same = [(k, h) for k, h in COLUMNS
                if len(set(r[k] for r in rows)) == 1]
        vary = [(k, h) for k, h in COLUMNS if (k, h) not in same]
        r0 = rows[0]
        print("%s: `%s`, engine %s, %s in %s; %s" % (
            name, r0["model"], r0["engine"], r0["metric"], r0["unit"],
            ", ".join("%s %s" % (h, "`%s`" % r0[k] if k == "flags" else r0[k])
                      for k, h in same if r0[k])))
        print()
        print("| " + " | ".join([h for k, h in vary] + [
            "published", "calibrated", "error", "roofline", "error"]) + " |")
        print("|" + "---|" * (len(vary) + 5))
        for r, pub, p, q, e1, e2 in xs:
            cells = [("`%s`" % r[k] if k == "flags" and r[k] else r[k]) or "-"
                     for k, h in vary]
            print("| " + " | ".join(cells + [fmt(pub), fmt(p), pct(e1),
                                             fmt(q), pct(e2)]) + " |")
        print()


def print_medians(res):
    groups = {}
    for r, pub, p, q, e1, e2 in res:
        g = groups.setdefault(r["group"], ([], []))
        g[0].append(abs(e1))
        g[1].append(abs(e2))
    for name in groups:
        c, q = groups[name]
        print("median |error| of group %s: calibrated %.1f%%, roofline "
              "%.1f%% (%d figures)" % (name, 100 * median(c),
                                       100 * median(q), len(c)))
    print("median |error|: calibrated %.1f%%, roofline %.1f%% (%d figures)"
          % (100 * median([abs(x[4]) for x in res]),
             100 * median([abs(x[5]) for x in res]), len(res)))


def main():
    path, lmrun, markdown = "test/data/calibration/multi_gpu.csv", "./lmrun", \
        False
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--lmrun":
            lmrun = args.pop(0)
        elif a == "--markdown":
            markdown = True
        else:
            path = a
    rows = read_rows(path)
    res = evaluate(lmrun, rows)
    if markdown:
        print_markdown(res)
        print()
    else:
        print_text(path, res)
    print_medians(res)


if __name__ == "__main__":
    main()
