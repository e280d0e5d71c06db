#!/usr/bin/env python3
"""measure_gpu.py: time GEMMs, norms, element-wise kernels and attention on
the GPU this runs on, and write the kernel CSV that `lmcalib --fit` reads.

    python3 tools/measure_gpu.py --hw-id h100-sxm -o h100.csv
    ./lmcalib --fit h100.csv --hardware h100-sxm --source "measured by ..."

--hw-id is the GPU's id in hardware.json (lmrun --list-hardware). Kernel
times are CUDA-event times of --reps back-to-back launches after --warmup
launches, divided by --reps, median of --trials trials ("kernel" timing:
launch cost included, no host synchronisation per call). Shapes: the
projections of Llama-class models (hidden 4096 and 8192, token counts 1 to
16384) plus square sweeps; RMSNorm, residual add, SiLU-and-multiply, RoPE,
softmax, embedding gather; FlashAttention (torch's scaled_dot_product_attention,
causal) for prefill and decode, and eager batched matmuls.

Format (DESIGN.md section 12): one header line, then
  hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,overhead_us,measured_us
with flops and bytes per kernel, counted as the tool counts them (for
attention: the work the kernel really does, after causal skipping).

--dry-run writes the same rows with synthetic times from a simple model
(no torch, no GPU): it exists so the test suite can check this script's
output against lmcalib's reader.
"""
import argparse
import csv
import json
import math
import os
import sys

HEADER = ["hw_id", "source", "timing", "op", "kind", "kernels", "m", "n",
          "k", "flops", "bytes", "overhead_us", "measured_us"]
A = 2  # bytes per element (fp16/bf16)

TOKENS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
          16384]
GEMM_SHAPES = [  # (k, n): Llama-2-7B / Llama-3-8B / Llama-2-70B projections
    (4096, 12288), (4096, 4096), (4096, 22016), (11008, 4096),
    (4096, 6144), (4096, 28672), (14336, 4096),
    (8192, 10240), (8192, 8192), (8192, 57344), (28672, 8192)]
HIDDEN = [4096, 8192]


def cases():
    """Every kernel to time: (op, kind, m, n, k, flops, bytes, spec)."""
    out = []
    for k, n in GEMM_SHAPES:
        for m in TOKENS:
            out.append(("matmul", "gemm", m, n, k, 2 * m * n * k,
                        A * (m * k + k * n + m * n), ("gemm", m, n, k)))
    for s in [256, 512, 1024, 2048, 4096, 8192]:
        out.append(("matmul_square", "gemm", s, s, s, 2 * s ** 3,
                    A * 3 * s * s, ("gemm", s, s, s)))
    for h in HIDDEN:
        for t in TOKENS:
            out.append(("rmsnorm", "norm", 0, 0, 0, 4 * t * h + 3 * t,
                        A * (2 * t * h + h), ("rmsnorm", t, h)))
            out.append(("add", "add", 0, 0, 0, t * h, A * 3 * t * h,
                        ("add", t, h)))
            inter = h * 11008 // 4096
            out.append(("silu_and_mul", "act", 0, 0, 0, 5 * t * inter,
                        A * 3 * t * inter, ("silu_mul", t, inter)))
            heads = h // 128
            out.append(("rope", "rope", 0, 0, 0, 3 * t * 2 * heads * 128,
                        A * 2 * t * 2 * heads * 128 + A * t * 128,
                        ("rope", t, heads)))
            out.append(("embedding", "gather", 0, 0, 0, 0,
                        8 * t + A * 2 * t * h, ("embedding", t, h)))
    for rows in [32, 256, 2048, 16384]:
        for cols in [128, 1024, 4096, 16384]:
            e = rows * cols
            out.append(("softmax", "softmax", 0, 0, 0, 5 * e, A * 2 * e,
                        ("softmax", rows, cols)))
    for s in [512, 1024, 2048, 4096, 8192]:
        b, h, d = 1, 32, 128
        # causal flash prefill: the work the kernel really does (attention
        # rows count after causal skipping: query tile j of 128 rows
        # attends (j + 1) * 128 keys, (s + 128) / 2 on average) and K, V
        # read once (their re-reads hit in L2)
        fl = (4 * b * h * s * s * d + 5 * b * h * s * s) * (s + 128) // (2 * s)
        by = A * 4 * b * h * s * d
        # k: the head size, which the softmax's units need (DESIGN.md
        # section 12.1); m, n stay 0 (no wave term)
        out.append(("flash_prefill", "attention", 0, 0, d, fl, by,
                    ("flash", b, h, s, s)))
        # decode: one query over s keys, batch 8
        b = 8
        fl = 4 * b * h * s * d + 5 * b * h * s
        by = A * (2 * b * h * d + 2 * b * h * s * d)
        out.append(("flash_decode", "attention", 0, 0, d, fl, by,
                    ("flash", b, h, 1, s)))
        # eager qk^T as a batched GEMM
        b = 1
        out.append(("bmm_qk", "bgemm", b * h * s, s, d, 2 * b * h * s * s * d,
                    A * b * h * (2 * s * d + s * s), ("bmm", b * h, s, s, d)))
    return out


def synthetic(kind, flops, nbytes, m, n, d=0, gpu=None):
    """The --dry-run time: a roofline at 300 TFLOP/s and 2 TB/s with 80%
    of each and a 4 us launch; an attention kernel's softmax on the GPU's
    special-function units and FP32 cores as lmcalib prices it (calib.c:
    attn_tc, hardware.json fp32_tflops, sfu_tops)."""
    t = nbytes / (2e12 * 0.8)
    if kind in ("gemm", "bgemm", "attention"):
        tc = flops / (300e12 * 0.8)
        gpu = gpu or {}
        if (kind == "attention" and d > 0 and gpu.get("sfu_tops")
                and gpu.get("fp32_tflops")):
            e = flops / (4 * d + 5)
            mm = 4 * d * e / (300e12 * 0.8)
            vec = e / (gpu["sfu_tops"] * 1e12) + \
                4 * e / (gpu["fp32_tflops"] * 1e12 / 2)
            tc = mm + vec - gpu.get("attn_softmax_hidden", 0) * min(mm, vec)
        t = max(t, tc)
    return 4e-6 + t


def measure(spec, warmup, reps, trials):
    import torch  # only when measuring
    import torch.nn.functional as F
    dev = "cuda"
    dt = torch.float16
    kind = spec[0]
    if kind == "gemm":
        _, m, n, k = spec
        x = torch.randn(m, k, device=dev, dtype=dt)
        w = torch.randn(k, n, device=dev, dtype=dt)
        fn = lambda: torch.matmul(x, w)
    elif kind == "bmm":
        _, bh, m, n, k = spec
        x = torch.randn(bh, m, k, device=dev, dtype=dt)
        w = torch.randn(bh, k, n, device=dev, dtype=dt)
        fn = lambda: torch.bmm(x, w)
    elif kind == "rmsnorm":
        _, t, h = spec
        x = torch.randn(t, h, device=dev, dtype=dt)
        g = torch.ones(h, device=dev, dtype=dt)
        if hasattr(F, "rms_norm"):
            fn = lambda: F.rms_norm(x, (h,), g, 1e-5)
        else:
            fn = lambda: x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True)
                                         + 1e-5).to(dt) * g
    elif kind == "add":
        _, t, h = spec
        x = torch.randn(t, h, device=dev, dtype=dt)
        y = torch.randn(t, h, device=dev, dtype=dt)
        fn = lambda: x + y
    elif kind == "silu_mul":
        _, t, inter = spec
        gu = torch.randn(t, 2 * inter, device=dev, dtype=dt)
        fn = lambda: F.silu(gu[:, :inter]) * gu[:, inter:]
    elif kind == "rope":
        _, t, heads = spec
        q = torch.randn(t, heads, 128, device=dev, dtype=dt)
        kk = torch.randn(t, heads, 128, device=dev, dtype=dt)
        cos = torch.randn(t, 1, 64, device=dev, dtype=dt)
        sin = torch.randn(t, 1, 64, device=dev, dtype=dt)

        def fn():
            for z in (q, kk):
                a, b = z[..., :64], z[..., 64:]
                torch.cat((a * cos - b * sin, b * cos + a * sin), -1)
    elif kind == "embedding":
        _, t, h = spec
        table = torch.randn(32000, h, device=dev, dtype=dt)
        ids = torch.randint(0, 32000, (t,), device=dev)
        fn = lambda: F.embedding(ids, table)
    elif kind == "softmax":
        _, r, c = spec
        x = torch.randn(r, c, device=dev, dtype=dt)
        fn = lambda: torch.softmax(x, -1)
    elif kind == "flash":
        _, b, h, tq, tk = spec
        q = torch.randn(b, h, tq, 128, device=dev, dtype=dt)
        kk = torch.randn(b, h, tk, 128, device=dev, dtype=dt)
        v = torch.randn(b, h, tk, 128, device=dev, dtype=dt)
        causal = tq > 1
        fn = lambda: F.scaled_dot_product_attention(q, kk, v, is_causal=causal)
    else:
        raise ValueError(kind)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(trials):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e-3 / reps)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hw-id", required=True,
                    help="the GPU's id in hardware.json")
    ap.add_argument("-o", "--out", required=True, help="CSV to write")
    ap.add_argument("--source", default="measure_gpu.py",
                    help="the source column (who measured, where)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--dry-run", action="store_true",
                    help="synthetic times, no torch (for tests)")
    ap.add_argument("--limit-s", type=float, default=0,
                    help="stop measuring after this many seconds (0: no limit)")
    a = ap.parse_args()
    if not a.hw_id or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789-"
                          for c in a.hw_id):
        sys.exit("measure_gpu: --hw-id is a hardware.json id")
    gpu = None
    if a.dry_run:
        hw = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                          "hardware.json")
        with open(hw) as f:
            gpu = {g["id"]: g for g in json.load(f)["gpus"]}.get(a.hw_id)
    rows = []
    import time
    start = time.time()
    for op, kind, m, n, k, fl, by, spec in cases():
        if a.limit_s and time.time() - start > a.limit_s:
            print("measure_gpu: time limit reached after %d kernels" % len(rows),
                  file=sys.stderr)
            break
        if a.dry_run:
            t = synthetic(kind, fl, by, m, n, k if kind == "attention" else 0,
                          gpu)
        else:
            t = measure(spec, a.warmup, a.reps, a.trials)
        rows.append([a.hw_id, a.source, "kernel", op, kind, 1, m, n, k, fl, by,
                     0, "%.4f" % (t * 1e6)])
    tmp = a.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write("# lm-predictor kernel timings v1 (DESIGN.md section 12); "
                "tools/measure_gpu.py%s\n" % (" --dry-run" if a.dry_run else ""))
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.out)
    print("measure_gpu: %d kernels written to %s" % (len(rows), a.out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
