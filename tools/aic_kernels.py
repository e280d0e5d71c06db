#!/usr/bin/env python3
"""aic_kernels.py: NVIDIA AIConfigurator's measured kernel tables as rows of
lmcalib's kernel CSV (DESIGN.md section 12.3), to validate the calibrated
time model against a source it was not fitted on, or to fit a GPU this
project has no measurements of.

    python3 tools/aic_kernels.py --hw-id ID --source aic/vllm-0.14.0 \\
        [--gemm FILE] [--context-attention FILE] [--generation-attention FILE]
        [--q-tile 128] [--hardware-db hardware.json] [-o OUT.csv]

AIConfigurator (github.com/ai-dynamo/aiconfigurator) ships per GPU, engine
and version the tables its collectors measured (collector/<engine>/
collect_gemm.py, collect_attn.py: CUDA events around CUDA-graph replays,
latency in ms): systems/data/<gpu>/gemm/<engine>/<version>/gemm_perf and
.../attention/.../context_attention_perf, generation_attention_perf. A FILE
is one of those tables as CSV (the older releases' *_perf.txt files are CSV
already; a .parquet table is read with pyarrow when it is installed, else
export it first: python3 -c "import pandas as p;
p.read_parquet('gemm_perf.parquet').to_csv('gemm_perf.csv', index=False)").
Nothing of AIConfigurator is copied into this project.

Rows, counted as lmrun counts them (FLOPs and HBM bytes of one kernel):
- gemm_perf, 16-bit rows (bfloat16, float16; other dtypes are skipped and
  counted): kind gemm, m n k, flops 2mnk, bytes 2(mk + kn + mn).
- context_attention_perf (16-bit attention): causal prefill of isl tokens,
  kind attention, k = head_dim (the softmax's units, DESIGN.md section
  12.1): flops (4 b h t l d + 5 b h t l) x the causal fraction ((t + Br) /
  2 of t keys per query tile, Br = --q-tile), bytes Q and O (2 bytes), the
  float32 LSE, K and V once when the K/V of the heads in flight fit in L2,
  else once per query tile (calib.c: flash), plus the new tokens' K and V
  written to the cache (the collector times the backend's cache write with
  the kernel: one more launch, which the row does not count).
- generation_attention_perf: one query over step + 1 keys, the same
  without causal skipping; K/V at the table's kv_cache_dtype (fp8: 1 byte).
Latency (ms) becomes measured_us; timing kernel, overhead 0.
"""
import argparse
import csv
import json
import math
import os
import sys

HEADER = ["hw_id", "source", "timing", "op", "kind", "kernels", "m", "n",
          "k", "flops", "bytes", "overhead_us", "measured_us"]
SIXTEEN = ("bfloat16", "float16", "fp16", "bf16")


def read_table(path):
    if path.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            sys.exit("aic_kernels.py: %s: reading parquet needs pyarrow; "
                     "export the table to CSV first (see --help)" % path)
        t = pq.read_table(path).to_pylist()
        return [{k: "" if v is None else str(v) for k, v in r.items()}
                for r in t]
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(l for l in f
                                       if not l.startswith("#")))
    except OSError as e:
        sys.exit("aic_kernels.py: %s: cannot read: %s" % (path, e.strerror))


def need(row, keys, path):
    for k in keys:
        if k not in row or row[k] in ("", None):
            sys.exit("aic_kernels.py: %s: a row lacks column '%s' "
                     "(expected AIConfigurator's table)" % (path, k))


def gemm_rows(path, hw, src, skipped):
    out = []
    for r in read_table(path):
        need(r, ["gemm_dtype", "m", "n", "k", "latency"], path)
        if r["gemm_dtype"] not in SIXTEEN:
            skipped[r["gemm_dtype"]] = skipped.get(r["gemm_dtype"], 0) + 1
            continue
        m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
        out.append([hw, src, "kernel", "gemm", "gemm", 1, m, n, k,
                    2 * m * n * k, 2 * (m * k + k * n + m * n), 0,
                    "%.6g" % (float(r["latency"]) * 1000)])
    return out


def kv_bytes(dtype):
    return 1 if "fp8" in dtype or "int8" in dtype else 2


def attention_rows(path, hw, src, gpu, q_tile, decode, skipped):
    out = []
    l2 = gpu["l2_mib"] * 1048576.0
    sms = gpu["sm_count"]
    for r in read_table(path):
        need(r, ["batch_size", "isl", "num_heads", "num_key_value_heads",
                 "head_dim", "attn_dtype", "kv_cache_dtype", "latency"]
             + (["step"] if decode else []), path)
        if r["attn_dtype"] not in SIXTEEN:
            skipped["attention " + r["attn_dtype"]] = \
                skipped.get("attention " + r["attn_dtype"], 0) + 1
            continue
        b, h = int(r["batch_size"]), int(r["num_heads"])
        hkv, d = int(r["num_key_value_heads"]), int(r["head_dim"])
        kvb = kv_bytes(r["kv_cache_dtype"])
        if decode:
            # the collector's step: the tokens already in the cache (its
            # seq_lens = step + 1, the query included)
            t, l = 1, int(r["step"]) + 1
        else:
            t = l = int(r["isl"])
        frac = 1.0
        if t > 1:
            frac = min(1.0, (l - t + (t + q_tile) / 2.0) / l)
        flops = (4 * b * h * t * l * d + 5 * b * h * t * l) * frac
        # K and V: once per query tile, the KV heads' query heads packed
        kv = 2 * b * hkv * math.ceil(t * (h / hkv) / q_tile) * l * d * kvb
        kv *= frac
        tiles = math.ceil(t * (h / hkv) / q_tile)
        heads = min(math.ceil(sms / tiles), b * hkv)
        once = 2 * b * hkv * l * d * kvb
        if heads * 2 * l * d * kvb <= l2 and once < kv:
            kv = once
        q_o = 2 * b * h * t * d * 2 + 4 * b * h * t
        cache = 2 * b * hkv * t * d * (2 + kvb)
        out.append([hw, src, "kernel",
                    "decode_attention" if decode else "prefill_attention",
                    "attention", 1, 0, 0, d, "%.17g" % flops,
                    "%.17g" % (q_o + kv + cache), 0,
                    "%.6g" % (float(r["latency"]) * 1000)])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hw-id", required=True)
    ap.add_argument("--source", default="aic",
                    help="the source column: aic/<engine>-<version>")
    ap.add_argument("--gemm")
    ap.add_argument("--context-attention")
    ap.add_argument("--generation-attention")
    ap.add_argument("--q-tile", type=int, default=128,
                    help="the flash kernel's query tile (engines/*.json)")
    ap.add_argument("--hardware-db", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "hardware.json"))
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    if not (a.gemm or a.context_attention or a.generation_attention):
        ap.error("give at least one of --gemm, --context-attention, "
                 "--generation-attention")
    if "," in a.source or "," in a.hw_id:
        ap.error("--source and --hw-id must not contain a comma")
    with open(a.hardware_db) as f:
        gpus = {g["id"]: g for g in json.load(f)["gpus"]}
    if a.hw_id not in gpus:
        ap.error("unknown --hw-id '%s' (hardware.json has: %s)"
                 % (a.hw_id, ", ".join(sorted(gpus))))
    gpu = gpus[a.hw_id]
    skipped, rows = {}, []
    if a.gemm:
        rows += gemm_rows(a.gemm, a.hw_id, a.source, skipped)
    if a.context_attention:
        rows += attention_rows(a.context_attention, a.hw_id, a.source, gpu,
                               a.q_tile, False, skipped)
    if a.generation_attention:
        rows += attention_rows(a.generation_attention, a.hw_id, a.source,
                               gpu, a.q_tile, True, skipped)
    text = ["# lm-predictor kernel timings v1 (DESIGN.md section 12); made "
            "by tools/aic_kernels.py from AIConfigurator's tables"]
    out = open(a.output + ".tmp", "w", newline="") if a.output else sys.stdout
    out.write(text[0] + "\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    if a.output:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        os.replace(a.output + ".tmp", a.output)
    for k, v in sorted(skipped.items()):
        print("aic_kernels.py: skipped %d rows of dtype %s (lmcalib fits "
              "16-bit kernels)" % (v, k), file=sys.stderr)
    print("aic_kernels.py: %d rows" % len(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
