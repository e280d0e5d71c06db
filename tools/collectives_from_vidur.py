#!/usr/bin/env python3
"""Reduce Vidur's measured NCCL collective times to calibration/collectives.json.

Usage: collectives_from_vidur.py VIDUR_CHECKOUT > calibration/collectives.json

Reads data/profiling/network/{h100_dgx,a100_dgx}/{all_reduce,send_recv}.csv
of github.com/microsoft/vidur (commit 7d47513363ec447a741ac5e47241580b47724fbf):
one row per message size (2 KiB to 64 MiB of fp16, 994 sizes) and group
(num_workers GPUs, devices_per_node of them per node), with the median CUDA
time of the NCCL kernel in milliseconds (Vidur's CollectiveWrapper: kineto,
kernels named nccl*, torch.distributed on one buffer, CUDA graphs off).

Reduction (DESIGN.md section 15.2, "Calibrated collectives"): the sizes are
binned by octave, [2^k, 2^(k+1)) bytes; each bin gives one point, the median
size and the median of its rows' median times (integer bytes, microseconds
to 0.1). The points are then made non-decreasing in time (pool adjacent
violators weighted by the bins' row counts: a larger message never takes
less time; small-message timings scatter by 2x with launch skew between
ranks). Only groups the tool's topology can express are kept: every GPU in
one node (devices_per_node = num_workers), or 16 GPUs as two nodes of 8.
"""
import csv
import json
import math
import statistics
import sys

COMMIT = "7d47513363ec447a741ac5e47241580b47724fbf"
SETS = [
    ("h100_dgx", ["h100-sxm", "h200"]),
    ("a100_dgx", ["a100-sxm-80gb", "a100-sxm-40gb"]),
]
FILES = [("all_reduce", "all_reduce"), ("send_recv", "send")]


def pav(points):
    """Non-decreasing least-squares fit of [size, time, weight] points."""
    blocks = []  # [time, weight, count]
    for _, t, w in points:
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            t2, w2, n2 = blocks.pop()
            t1, w1, n1 = blocks.pop()
            blocks.append([(t1 * w1 + t2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    out = []
    for t, _, n in blocks:
        out += [t] * n
    return [[p[0], round(t, 1)] for p, t in zip(points, out)]


def tables(root):
    for folder, hw in SETS:
        for fname, coll in FILES:
            path = "data/profiling/network/%s/%s.csv" % (folder, fname)
            rows = list(csv.DictReader(open("%s/%s" % (root, path))))
            groups = {}
            for r in rows:
                key = (int(r["num_workers"]), int(r["devices_per_node"]))
                t = float(r["time_stats.%s.median" % fname]) * 1e3
                groups.setdefault(key, []).append((int(r["size"]), t))
            for (n, dpn), g in sorted(groups.items()):
                if coll == "send":
                    span = "node" if dpn == n else "nodes" if dpn == 1 else None
                else:
                    span = "node" if dpn == n else "nodes" if dpn == 8 else None
                if span is None:
                    continue
                bins = {}
                for s, t in g:
                    bins.setdefault(int(math.log2(s)), []).append((s, t))
                pts = []
                for k in sorted(bins):
                    v = bins[k]
                    pts.append([int(statistics.median(x[0] for x in v)),
                                statistics.median(x[1] for x in v), len(v)])
                yield {
                    "hardware": hw,
                    "collective": coll,
                    "gpus": n,
                    "span": span,
                    "from": "%s (%d sizes, %d per node)" % (path, len(g), dpn),
                    "points": pav(pts),
                }


def main():
    doc = {
        "format": "lm-predictor-collectives",
        "description": "Measured NCCL collective times per message size for the calibrated (non --roofline) time of communication rows: each table gives [message bytes, microseconds] points for one collective over a group of GPUs on one kind of board; between points the time is interpolated linearly in bytes, below the first it is the first point's, above the last it grows at the last point's achieved bandwidth (bytes / time). all_gather, reduce_scatter and all_to_all of b bytes use the all_reduce table at b / 2 bytes (the same bytes on each link: b (n-1)/n). A collective without a table here keeps the datasheet bound (latency x steps + bytes x factor / bandwidth). See DESIGN.md section 15.2.",
        "source": "Vidur (github.com/microsoft/vidur @ %s), data/profiling/network/<board>/{all_reduce,send_recv}.csv: median CUDA kernel time of NCCL's all_reduce and send/recv through torch.distributed on fp16 buffers of 2 KiB to 64 MiB (994 sizes), on a DGX H100 and a DGX A100; reduced by tools/collectives_from_vidur.py (per octave of size: the median size and median time; then non-decreasing by pool adjacent violators)" % COMMIT,
        "tables": list(tables(sys.argv[1])),
    }
    text = json.dumps(doc, indent=2)
    # one point per line: [bytes, us]
    import re
    text = re.sub(r"\[\s+(\d+),\s+([\d.]+)\s+\]", r"[\1, \2]", text)
    text = re.sub(r'"hardware": \[\s+("[^"]+"),\s+("[^"]+")\s+\]',
                  r'"hardware": [\1, \2]', text)
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
