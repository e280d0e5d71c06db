#!/usr/bin/env python3
"""Write calibration/custom_all_reduce.json: measured times of vLLM's own
all-reduce kernel (csrc/custom_all_reduce.cuh, one-shot below 512/256 KiB,
two-shot above, over NVLink peer memory), the kernel engines/vllm.json's
all_reduce chooses for small tensor-parallel all-reduces.

Usage: custom_all_reduce_tables.py > calibration/custom_all_reduce.json

The figures are transcribed from two SGLang pull requests that timed vLLM's
kernel (vllm._custom_ops.all_reduce on a registered buffer) against their
own, with sgl-kernel/tests/test_trt_reduce.py: torch.float32 tensors of
`test_size` elements (bytes = 4 x elements), 5000 back-to-back calls timed
on rank 0 with time.time(), milliseconds per call, no CUDA graph:
  - sgl-project/sglang PR #2904 (2025-01-15), "unit test performance in
    H100 (without cuda graph)", the "vllm" table, TP 2/4/8;
  - sgl-project/sglang PR #2688 (2024-12-31), "performance result in
    a100", the "vllm time" of TP 2 and 4 (its TP 8 lines are cut short).
Reduction (DESIGN.md section 15.2): microseconds; then non-decreasing in
time by pool adjacent violators with equal weights (a larger message never
takes less time; the smallest sizes scatter by 10 %), as
tools/collectives_from_vidur.py does for NCCL's tables.
"""
import json

ELEMS_2904 = [512, 4096, 32768, 262144, 524288, 1048576]
ELEMS_2688 = [512, 4096, 32768, 262144, 524288, 1048576, 2097152]
# (hardware ids, source, elements, {gpus: ms per call})
SETS = [
    (["h100-sxm", "h200"],
     "sgl-project/sglang PR #2904 (2025-01-15), H100 without CUDA graph, "
     "table 'vllm' (tp size 2/4/8, data size in float32 elements)",
     ELEMS_2904,
     {2: [0.0095, 0.0088, 0.0087, 0.0129, 0.0177, 0.0266],
      4: [0.0091, 0.0085, 0.0092, 0.0206, 0.0269, 0.0402],
      8: [0.0101, 0.0093, 0.0118, 0.0241, 0.0304, 0.0450]}),
    (["a100-sxm-80gb", "a100-sxm-40gb"],
     "sgl-project/sglang PR #2688 (2024-12-31), A100, 'vllm time' "
     "(test_size in float32 elements)",
     ELEMS_2688,
     {2: [0.0130, 0.0113, 0.0121, 0.0176, 0.0223, 0.0325, 0.0553],
      4: [0.0135, 0.0121, 0.0135, 0.0239, 0.0313, 0.0471]}),
]


def pav(ts):
    """Non-decreasing least-squares fit, equal weights."""
    blocks = []  # [mean, count]
    for t in ts:
        blocks.append([t, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            t2, n2 = blocks.pop()
            t1, n1 = blocks.pop()
            blocks.append([(t1 * n1 + t2 * n2) / (n1 + n2), n1 + n2])
    out = []
    for t, n in blocks:
        out += [t] * n
    return out


def tables():
    for hw, src, elems, by_gpus in SETS:
        for gpus, ms in sorted(by_gpus.items()):
            us = pav([m * 1e3 for m in ms])
            pts = [[4 * e, round(t, 2)] for e, t in zip(elems, us)]
            yield {"hardware": hw, "kernel": "vllm_custom",
                   "collective": "all_reduce", "gpus": gpus, "span": "node",
                   "from": "%s: %s us as published" % (
                       src, ", ".join("%.1f" % (m * 1e3) for m in ms)),
                   "points": pts}


def main():
    doc = {
        "format": "lm-predictor-collectives",
        "description": "Measured times of vLLM's custom all-reduce kernel "
        "(kernel 'vllm_custom': csrc/custom_all_reduce.cuh, one-shot or "
        "two-shot over NVLink peer memory), for the all-reduces "
        "engines/vllm.json's all_reduce rules give it; the same format and "
        "interpolation as collectives.json (DESIGN.md section 15.2). Back-"
        "to-back calls, so no wait for a late rank is included, unlike "
        "Vidur's NCCL medians.",
        "source": "tools/custom_all_reduce_tables.py: SGLang pull requests "
        "#2904 (H100) and #2688 (A100), vLLM's kernel timed by "
        "sgl-kernel/tests/test_trt_reduce.py; made non-decreasing by pool "
        "adjacent violators",
        "tables": list(tables()),
    }
    text = json.dumps(doc, indent=2)
    # one point per line, as collectives.json
    import re
    text = re.sub(r"\[\n\s+(\d+),\n\s+([\d.]+)\n\s+\]", r"[\1, \2]", text)
    text = re.sub(r'\[\n\s+("[^"\n]+")(,\n\s+("[^"\n]+"))?\n\s+\]',
                  lambda m: "[" + m.group(1) +
                  (", " + m.group(3) if m.group(3) else "") + "]", text)
    print(text)


if __name__ == "__main__":
    main()
