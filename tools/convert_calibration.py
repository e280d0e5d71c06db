#!/usr/bin/env python3
"""convert_calibration.py: published kernel timings -> lmcalib's kernel CSV.

Reads the measurement CSVs of test/data/calibration/ (Vidur's and
LLMCompass's, columns described in test/data/calibration/README.md) and the
model files of models/ (for the Llama shapes), and writes the kernel CSV that
`lmcalib --fit` reads (format: DESIGN.md section 12):

  hw_id,source,timing,op,kind,kernels,m,n,k,flops,bytes,overhead_us,measured_us

Every row is one measurement of `kernels` identical kernels; flops and bytes
are per kernel, derived below from the shapes (16-bit elements, 2 bytes), the
same counting conventions as module_db.json (DESIGN.md section 9).

  python3 tools/convert_calibration.py OUT.csv IN.csv... [--models DIR]

Standard library only. Rows that are not kernels the tool models
(all-reduces) are skipped and counted on stderr.
"""
import csv
import json
import os
import sys

HEADER = ["hw_id", "source", "timing", "op", "kind", "kernels", "m", "n",
          "k", "flops", "bytes", "overhead_us", "measured_us"]
A = 2  # bytes per 16-bit element


def gemm(m, n, k):
    """One GEMM (m x k) @ (k x n): 2mnk FLOPs, A, B read once, C written."""
    return dict(cls="gemm", m=m, n=n, k=k, flops=2 * m * n * k,
                bytes=A * (m * k + k * n + m * n))


def bgemm(batch, m, n, k):
    """A batched GEMM (attention score/value products): each of `batch`
    problems reads its own operands. m counts rows over the batch."""
    return dict(cls="bgemm", m=batch * m, n=n, k=k, flops=2 * batch * m * n * k,
                bytes=A * batch * (m * k + k * n + m * n))


def small(kind, flops, nbytes):
    return dict(cls=kind, m=0, n=0, k=0, flops=flops, bytes=nbytes)


def vidur_row(op, n, c):
    h, inter = c["hidden_size"], c["intermediate_size"]
    H, Hkv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    if op == "attn_pre_proj":      # fused q, k, v projection
        return gemm(n, (H + 2 * Hkv) * d, h)
    if op == "attn_post_proj":     # o_proj
        return gemm(n, h, H * d)
    if op == "mlp_up_proj":        # fused gate and up projection
        return gemm(n, 2 * inter, h)
    if op == "mlp_down_proj":
        return gemm(n, h, inter)
    if op == "mlp_act":            # SiLU-and-multiply: gate, up read; product written
        return small("act", 5 * n * inter, A * 3 * n * inter)
    if op in ("input_layernorm", "post_attention_layernorm"):  # fused RMSNorm
        return small("norm", 4 * n * h + 3 * n, A * (2 * n * h + h))
    if op == "add":                # residual add: two read, one written
        return small("add", n * h, A * 3 * n * h)
    if op == "attn_rope":          # vLLM rotary, in place on q and k; cos/sin row
        return small("rope", 3 * n * (H + Hkv) * d,
                     A * 2 * n * (H + Hkv) * d + A * n * d + 8 * n)
    if op == "emb":                # gather: ids, rows read, rows written
        return small("gather", 0, 8 * n + A * 2 * n * h)
    raise ValueError("unknown Vidur op " + op)


# GPT-3 175B layer on 4 GPUs (TP4, per GPU): d = 12288, 96/4 = 24 heads of
# 128, FFN 4d/4 = d per GPU. LLMCompass times each kernel separately.
D, HEADS, DH = 12288, 24, 128


def gpt3_row(part, bs, s, kv):
    prefill = part.startswith("gpt3_layer_prefill")
    name = part.split(":")[1]
    m = bs * s if prefill else bs          # token rows
    q = s if prefill else 1                # queries per sequence
    if name == "Q_K_V":
        return gemm(m, D // 4, D), 3       # three separate d x d/4 GEMMs
    if name == "Wo_proj":
        return gemm(m, D, D // 4), 1
    if name in ("W1_proj", "W2_proj"):
        return gemm(m, D, D), 1
    if name == "Q_mul_K":
        return bgemm(bs * HEADS, q, kv, DH), 1
    if name == "A_mul_V":
        return bgemm(bs * HEADS, q, DH, kv), 1
    if name == "Softmax":
        e = bs * HEADS * q * kv
        return small("softmax", 5 * e, A * 2 * e), 1
    if name.startswith("LayerNorm"):
        return small("norm", 7 * m * D, A * (2 * m * D + 2 * D)), 1
    if name == "GeLU":
        return small("elementwise", 8 * m * D, A * 2 * m * D), 1
    return None, 0                         # AllReduce: communication


def shape(s):
    return {kv.split("=")[0]: int(kv.split("=")[1]) for kv in s.split(";")}


def llmcompass_row(r):
    op = r["op"]
    if op == "matmul":
        p = shape(r["shape"])
        return gemm(p["M"], p["N"], p["K"]), 1
    if op == "softmax":
        p = shape(r["shape"])
        e = p["M"] * p["N"]
        return small("softmax", 5 * e, A * 2 * e), 1
    if op == "layernorm":
        p = shape(r["shape"])
        return small("norm", 7 * p["M"] * p["N"],
                     A * (2 * p["M"] * p["N"] + 2 * p["N"])), 1
    if op == "gelu":
        e = shape(r["shape"])["elements"]
        return small("elementwise", 8 * e, A * 2 * e), 1
    if op.startswith("gpt3_layer"):
        kv = int(r["kv_len"])
        return gpt3_row(op, int(r["batch"]), int(r["tokens"]) if op.startswith(
            "gpt3_layer_prefill") else 1, kv)
    raise ValueError("unknown LLMCompass op " + op)


def family(r):
    """The sweep a wall-clock row belongs to: rows of one sweep share the
    harness's fixed cost (launch from Python plus synchronize)."""
    op = r["op"]
    if op.startswith("gpt3_layer"):
        name = op.split(":")[1]
        if name.startswith("LayerNorm"):
            return "layernorm"
        if name == "GeLU":
            return "gelu"
        if name == "Softmax":
            return "softmax"
        return "matmul"
    return op


def main(argv):
    models = "models"
    args = []
    it = iter(argv[1:])
    for a in it:
        if a == "--models":
            models = next(it)
        else:
            args.append(a)
    if len(args) < 2:
        sys.exit(__doc__)
    out, inputs = args[0], args[1:]
    rows, skipped, configs = [], 0, {}
    for path in inputs:
        with open(path, newline="") as f:
            src = list(csv.DictReader(f))
        # The harness floor of each wall-clock sweep: its smallest time
        # (the flat part of the sweep is launch + sync, not the kernel).
        floor = {}
        for r in src:
            if r["timing"] == "wall-clock" and not r["op"].startswith("gpt3"):
                k = (r["source"], r["hw_id"], family(r))
                floor[k] = min(floor.get(k, 1e30), float(r["measured_us"]))
        for r in src:
            if r["source"] == "vidur":
                tm = r["tool_model"]
                if tm not in configs:
                    with open(os.path.join(models, tm + ".json")) as f:
                        configs[tm] = json.load(f)["config"]
                k = vidur_row(r["op"], int(r["tokens"]), configs[tm])
                nk = 1
            else:
                k, nk = llmcompass_row(r)
                if k is None:
                    skipped += 1
                    continue
            over = 0.0
            timing = "kernel" if r["timing"] == "kernel-sum" else r["timing"]
            net = r["op"].startswith("gpt3_layer_prefill:LayerNorm")
            if timing == "wall-clock" and not net:
                over = floor.get((r["source"], r["hw_id"], family(r)), 0.0)
            if net:
                timing = "kernel"  # the authors subtracted the launch overhead
            # the source column names the model too ("vidur/llama-2-7b-hf"):
            # lmcalib --validate holds out sources (before the '/') and
            # models within a source
            src = r["source"] + ("/" + r["tool_model"] if r["tool_model"] else "")
            rows.append([r["hw_id"], src, timing, r["op"], k["cls"], nk,
                         k["m"], k["n"], k["k"], k["flops"], k["bytes"],
                         "%g" % over, r["measured_us"]])
    tmp = out + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write("# lm-predictor kernel timings v1 (DESIGN.md section 12); "
                "made by tools/convert_calibration.py from %s\n"
                % " ".join(os.path.basename(p) for p in inputs))
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    print("convert_calibration: %d rows written to %s (%d skipped: not "
          "modelled kernels)" % (len(rows), out, skipped), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
