"""Tests of the Python binding's sweeps (lmpredict.sweep, best,
sweep_report, hardware_text) over the build tree's liblmpredict.so. Run by
`make test` (check-python).

Expected values come from elsewhere than the sweep itself: the row count is
the cross product counted by hand, each checked row is compared with the
single prediction of its configuration (lmpredict.predict, a separate call
path in the library), the SLO's pick with a brute-force search written here
in Python over the sweep's rows, and the text outputs with what lmrun
prints for the same command line.
"""

import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.pop("LMPREDICT_LIBRARY", None)
os.environ.pop("LM_PREDICTOR_HOME", None)

import lmpredict  # noqa: E402

MODEL = os.path.join(ROOT, "models", "llama-2-7b-hf.json")
LMRUN = os.path.join(ROOT, "lmrun")

# summary row key -> where the single prediction's document has it
SUMMARY = {"ttft_s": ("ttft_s",), "tpot_s": ("tpot_s",),
           "tpot_mean_s": ("tpot_mean_s",),
           "e2e_latency_s": ("e2e_latency_s",),
           "tokens_per_s": ("tokens_per_s",),
           "throughput_tokens_per_s": ("throughput_tokens_per_s",),
           "throughput_per_gpu_tokens_per_s":
               ("throughput_per_gpu_tokens_per_s",),
           "gpus": ("gpus",),
           "weight_bytes": ("memory", "weight_bytes"),
           "kv_cache_bytes": ("memory", "kv_cache_bytes"),
           "activation_bytes": ("memory", "activation_bytes"),
           "total_bytes": ("memory", "total_bytes"),
           "capacity_bytes": ("memory", "capacity_bytes"),
           "fits": ("memory", "fits")}


def lmrun(*args):
    return subprocess.run([LMRUN, MODEL] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout.decode()


def bits(x):
    """A number as its IEEE-754 bits (float.hex): equal iff bit-for-bit."""
    return float(x).hex() if not isinstance(x, bool) else x


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                 "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use():
    """glibc's bytes in use by malloc (mallinfo2().uordblks + mmapped
    blocks); None where there is no mallinfo2."""
    libc = ctypes.CDLL(None)
    f = getattr(libc, "mallinfo2", None)
    if f is None:
        return None
    f.restype = _Mallinfo2
    m = f()
    return m.uordblks + m.hblkhd


class TestSweepRows(unittest.TestCase):
    def test_count_order_and_rows_equal_single_predictions(self):
        # 2 GPUs x 4 batches (range(1, 5): 1..4) x 3 sequence lengths
        # ("128..512x2": 128, 256, 512) = 24 configurations; the first
        # option given varies slowest: row i is GPU i // 12, batch
        # 1 + i // 3 % 4, S = 128 * 2^(i % 3)
        gpus = ["h100-sxm", "a100-sxm-80gb"]
        sw = lmpredict.sweep(MODEL, hardware=gpus, batch=range(1, 5),
                             seq_len="128..512x2", output_len=16)
        self.assertEqual(len(sw), 24)
        rows = list(sw)
        self.assertEqual(len(rows), 24)
        for i, row in enumerate(rows):
            self.assertEqual(row["hardware"], gpus[i // 12])
            self.assertEqual(row["batch_size"], 1 + i // 3 % 4)
            self.assertEqual(row["seq_len"], 128 * 2 ** (i % 3))
            self.assertEqual(row["output_len"], 16)
        for i in (0, 5, 13, 23):  # a few rows against single predictions
            row = rows[i]
            doc = lmpredict.predict(MODEL, batch=row["batch_size"],
                                    seq_len=row["seq_len"],
                                    hardware=row["hardware"], output_len=16,
                                    max_batch="no")
            for key, where in SUMMARY.items():
                want = doc["summary"]
                for k in where:
                    want = want[k]
                self.assertEqual(bits(row[key]), bits(want),
                                 "row %d %s" % (i, key))

    def test_single_values_and_defaults(self):
        # no list at all: one configuration, lmrun's defaults (B 1, S 2048)
        rows = list(lmpredict.sweep(MODEL, w_bits=4, kv_bits=8))
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["batch_size"], rows[0]["seq_len"],
                          rows[0]["w_bits"], rows[0]["kv_bits"]),
                         (1, 2048, 4, 8))
        # a range with a step is its items: 1, 4, 7
        got = [r["batch_size"] for r in lmpredict.sweep(MODEL,
                                                         batch=range(1, 8, 3))]
        self.assertEqual(got, [1, 4, 7])

    def test_configuration_that_cannot_be_predicted_is_a_row(self):
        # microbatches 2 does not divide B = 3 (lmrun prints an error row)
        rows = list(lmpredict.sweep(MODEL, batch=[2, 3], pp=2,
                                    microbatches=2))
        self.assertEqual(len(rows), 2)
        self.assertNotIn("error", rows[0])
        self.assertIn("error", rows[1])
        self.assertEqual(rows[1]["batch_size"], 3)

    def test_text_rows_are_lmruns(self):
        args = dict(batch="1..4", hardware=["h100-sxm", "a100-sxm-80gb"],
                    output_len=8)
        cli = ["-B", "1..4", "--hardware", "h100-sxm,a100-sxm-80gb",
               "-O", "8"]
        for fmt in ("csv", "table", "json"):
            want = lmrun(*cli, "--format", fmt)
            self.assertEqual("".join(lmpredict.sweep(MODEL, format=fmt,
                                                     **args)), want)
            self.assertEqual(lmpredict.sweep_report(MODEL, format=fmt,
                                                    **args), want)
        self.assertEqual(lmpredict.sweep_report(MODEL, format="html", **args),
                         lmrun(*cli, "--format", "html"))


class TestBest(unittest.TestCase):
    def brute_force(self, rows, ttft, tpot, key):
        """The SLO by hand: fits, TTFT <= ttft, mean TPOT (-O given) <=
        tpot; the first row with the largest key wins (a later equal one
        is not better); losses counted by their first reason."""
        best, lost = None, {"does_not_fit": 0, "ttft": 0, "tpot": 0,
                            "e2e": 0, "invalid": 0}
        for r in rows:
            if "error" in r:
                lost["invalid"] += 1
            elif not r["fits"]:
                lost["does_not_fit"] += 1
            elif not r["ttft_s"] <= ttft:
                lost["ttft"] += 1
            elif not r["tpot_mean_s"] <= tpot:
                lost["tpot"] += 1
            elif best is None or r[key] > best[key]:
                best = r
        return best, lost

    def test_pick_equals_brute_force(self):
        opts = dict(hardware=["h100-sxm", "a100-sxm-80gb"], tp=[1, 2],
                    batch="1..64x2", seq_len=[512, 4096], output_len=32)
        rows = list(lmpredict.sweep(MODEL, **opts))
        self.assertEqual(len(rows), 2 * 2 * 7 * 2)
        picks = []
        for maximize, key in (("throughput", "throughput_tokens_per_s"),
                              ("throughput-per-gpu",
                               "throughput_per_gpu_tokens_per_s")):
            got = lmpredict.best(MODEL, slo="ttft=2s,tpot=14ms",
                                 maximize=maximize, **opts)
            want, lost = self.brute_force(rows, 2.0, 0.014, key)
            picks.append((want["tp"], want["batch_size"]))
            self.assertIsNotNone(want)
            self.assertEqual(got["configurations"], len(rows))
            self.assertEqual(got["lost"], lost)
            self.assertEqual(got["met"], len(rows) - sum(lost.values()))
            b = got["best"]
            for k in ("hardware", "tp", "batch_size", "seq_len"):
                self.assertEqual(b[k], want[k], maximize)
            self.assertEqual(bits(b["summary"][key]), bits(want[key]))
        # the losses are not all of one kind and the two objectives pick
        # different rows (the test can tell them apart)
        self.assertTrue(lost["does_not_fit"] > 0 and lost["ttft"] > 0
                        and lost["tpot"] > 0)
        self.assertNotEqual(picks[0], picks[1])

    def test_dict_slo_and_text_are_lmruns(self):
        opts = dict(batch="1..32x2", output_len=64)
        a = lmpredict.best(MODEL, slo={"tpot": 0.02, "ttft": "800ms"}, **opts)
        b = lmpredict.best(MODEL, slo="tpot=0.02s,ttft=800ms", **opts)
        self.assertEqual(a, b)
        self.assertEqual(a["slo"], {"ttft_s": 0.8, "tpot_s": 0.02})
        cli = ["-B", "1..32x2", "-O", "64", "--slo", "ttft=800ms,tpot=20ms"]
        self.assertEqual(lmpredict.best(MODEL, slo="ttft=800ms,tpot=20ms",
                                        format="table", **opts), lmrun(*cli))
        self.assertEqual(a, json.loads(lmrun(*cli, "--format", "json")))

    def test_nothing_meets(self):
        got = lmpredict.best(MODEL, slo="ttft=1us", batch=[1, 2])
        self.assertIsNone(got["best"])
        self.assertEqual(got["lost"]["ttft"], 2)


class TestErrors(unittest.TestCase):
    def test_bad_list_value_is_located(self):
        # "1,2,0": the third item starts at column 5
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.sweep(MODEL, batch=[1, 2, 0])
        e = c.exception
        self.assertEqual(e.message, "-B must be at least 1")
        self.assertEqual((e.column, e.index, e.item), (5, 2, 0))
        self.assertEqual((e.file, e.line), ("", 0))
        # "eager,fast": the second item at column 7
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.sweep(MODEL, attention=("eager", "fast"))
        self.assertEqual((c.exception.column, c.exception.index,
                          c.exception.item), (7, 1, "fast"))
        self.assertIn("'fast'", c.exception.message)
        # lmrun's string: "8,16..4x2", the empty range at column 3
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.sweep(MODEL, batch="8,16..4x2")
        self.assertEqual((c.exception.column, c.exception.index,
                          c.exception.item), (3, None, "16..4x2"))

    def test_other_errors(self):
        for kw, words in ((dict(format="html", batch=[1, 2]), "sweep_report"),
                          (dict(phase=["prefill", "decode"]), "phase"),
                          (dict(batch=[]), "empty"),
                          (dict(batch=range(3, 3)), "empty")):
            with self.assertRaises(lmpredict.Error) as c:
                lmpredict.sweep(MODEL, **kw)
            self.assertIn(words, str(c.exception))
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.best(MODEL, slo="ttft=fast", batch=[1, 2])
        self.assertIn("'ttft=fast' is not a target", c.exception.message)
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.sweep_report(MODEL, maximize="throughput", batch=[1, 2])
        self.assertIn("--maximize needs --slo", str(c.exception))
        with self.assertRaises(lmpredict.Error) as c:
            lmpredict.sweep(os.path.join(ROOT, "no-such-model.json"),
                            batch=[1, 2])
        self.assertIn("no-such-model.json", str(c.exception))


class TestLifetime(unittest.TestCase):
    def test_abandoned_sweeps_free_their_iterators(self):
        data = lmpredict.Data()
        self.addCleanup(data.close)

        def abandon(n):
            for _ in range(n):
                for i, _row in enumerate(data.sweep(MODEL, batch="1..1000")):
                    if i == 2:
                        break  # the Sweep is dropped here: freed
        abandon(20)  # warm: the model's plans, Python's own caches
        gc.collect()
        self.assertEqual(len(data._sweeps), 0)
        before = heap_in_use()
        abandon(200)
        gc.collect()
        after = heap_in_use()
        self.assertEqual(len(data._sweeps), 0)
        if before is None:
            self.skipTest("no mallinfo2: the open-sweep count only")
        # what 200 sweeps left open hold, measured the same way: the test
        # can tell a leak from noise
        lib = data._lib
        held = []
        m = lib.lmp_model_load(data._h, os.fsencode(MODEL), None)
        o = lib.lmp_options_new()
        lib.lmp_options_set(o, b"max-batch", b"no", None)
        base = heap_in_use()
        r = ctypes.c_void_p()
        for _ in range(200):
            s = lib.lmp_sweep_new(data._h, m, o)
            lib.lmp_sweep_next(s, ctypes.byref(r), None)
            held.append(s)
        leak = heap_in_use() - base
        for s in held:
            lib.lmp_sweep_free(s)
        lib.lmp_options_free(o)
        lib.lmp_model_free(m)
        self.assertGreater(leak, 200 * 1000)  # each holds its result
        self.assertLess(after - before, leak / 10,
                        "abandoned sweeps: %d bytes more (200 open sweeps "
                        "hold %d)" % (after - before, leak))

    def test_close_and_data_close(self):
        data = lmpredict.Data()
        sw = data.sweep(MODEL, batch="1..10")
        self.assertEqual(next(sw)["batch_size"], 1)
        sw.close()
        self.assertEqual(list(sw), [])  # closed: done, as a generator
        with data.sweep(MODEL, batch="1..10") as sw2:
            next(sw2)
        self.assertEqual(len(data._sweeps), 0)
        sw3 = data.sweep(MODEL, batch="1..10")
        next(sw3)
        data.close()  # frees the open sweep before the data
        self.assertEqual(len(data._sweeps), 0)
        with self.assertRaises(lmpredict.Error):
            next(sw3)

    def test_predict_inside_a_sweep(self):
        # one thread: a prediction between two rows (the lock is taken per
        # row, not held across the loop)
        data = lmpredict.Data()
        self.addCleanup(data.close)
        for row in data.sweep(MODEL, batch=[1, 2], max_batch="no"):
            doc = data.predict(MODEL, batch=row["batch_size"],
                               max_batch="no")
            self.assertEqual(bits(doc["summary"]["ttft_s"]),
                             bits(row["ttft_s"]))


class TestParity(unittest.TestCase):
    """lmrun options the binding did not take before: a float option, -o,
    a Hub id."""

    def test_float_option(self):
        # --expert-balance F: 0.5 is written "0.5" (repr reads back exactly)
        want = json.loads(lmrun("--expert-balance", "0.5", "--format",
                                "json"))
        self.assertEqual(lmpredict.predict(MODEL, expert_balance=0.5), want)

    def test_output_is_written_atomically(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.csv")
            text = lmpredict.sweep_report(MODEL, format="csv", batch=[1, 2],
                                          output=out)
            with open(out) as f:
                self.assertEqual(f.read(), text)
            self.assertEqual(text, lmrun("-B", "1,2", "--format", "csv"))
            page = os.path.join(d, "p.md")
            text = lmpredict.report(MODEL, format="markdown", output=page)
            with open(page) as f:
                self.assertEqual(f.read(), text)
            # an error: nothing written, no temporary left behind
            bad = os.path.join(d, "bad.csv")
            with self.assertRaises(lmpredict.Error):
                lmpredict.sweep_report(MODEL, format="csv", batch=[1, 0],
                                       output=bad)
            self.assertEqual(sorted(os.listdir(d)), ["p.md", "r.csv"])

    def test_hub_id_from_the_cache(self):
        # huggingface_hub's layout under $HF_HUB_CACHE, offline: the id
        # reads the cached config.json, as lmrun reads it
        commit = "0123456789abcdef0123456789abcdef01234567"
        with tempfile.TemporaryDirectory() as d:
            repo = os.path.join(d, "models--Qwen--Qwen2.5-0.5B")
            snap = os.path.join(repo, "snapshots", commit)
            os.makedirs(snap)
            os.makedirs(os.path.join(repo, "refs"))
            with open(os.path.join(repo, "refs", "main"), "w") as f:
                f.write(commit)
            with open(os.path.join(ROOT, "test", "data", "configs",
                                   "qwen2.5-0.5b.json")) as f:
                config = f.read()
            with open(os.path.join(snap, "config.json"), "w") as f:
                f.write(config)
            env = {"HF_HUB_CACHE": d, "HF_HUB_OFFLINE": "1"}
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                got = lmpredict.predict("Qwen/Qwen2.5-0.5B", seq_len=64)
                rows = list(lmpredict.sweep("Qwen/Qwen2.5-0.5B",
                                            batch=[1, 2], seq_len=64))
                want = json.loads(subprocess.run(
                    [LMRUN, "Qwen/Qwen2.5-0.5B", "-S", "64", "--format",
                     "json"], check=True, stdout=subprocess.PIPE,
                    env=dict(os.environ)).stdout)
                with self.assertRaises(lmpredict.Error) as c:
                    lmpredict.predict("Qwen/not-cached")
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        self.assertEqual(got, want)
        self.assertEqual(got["model"], "Qwen/Qwen2.5-0.5B")
        self.assertEqual([r["model"] for r in rows], ["Qwen/Qwen2.5-0.5B"] * 2)
        self.assertEqual(bits(rows[0]["ttft_s"]),
                         bits(got["summary"]["ttft_s"]))
        self.assertIn("HF_HUB_OFFLINE", str(c.exception))


class TestHardwareText(unittest.TestCase):
    def test_is_lmruns_list(self):
        self.assertEqual(lmpredict.hardware_text(),
                         subprocess.run([LMRUN, "--list-hardware"],
                                        check=True, stdout=subprocess.PIPE)
                         .stdout.decode())


if __name__ == "__main__":
    unittest.main()
