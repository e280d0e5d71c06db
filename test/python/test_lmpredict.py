"""Tests of the Python binding (python/lmpredict) over the build tree's
liblmpredict.so. Run from the repository root by `make test`:

    python3 -m unittest discover -s test/python -t .

Expected values are derived by hand (the KV cache of Llama-2-7B) or are the
document lmrun prints for the same options (the binding must not change a
byte of it); errors are checked for their location fields.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.pop("LMPREDICT_LIBRARY", None)
os.environ.pop("LM_PREDICTOR_HOME", None)

import lmpredict  # noqa: E402

MODEL = os.path.join(ROOT, "models", "llama-2-7b-hf.json")
LMRUN = os.path.join(ROOT, "lmrun")


def lmrun_json(*args):
    out = subprocess.run([LMRUN, MODEL, "--format", "json"] + list(args),
                         check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def kv_bytes(batch, seq, bits):
    # Llama-2-7B: 32 layers, hidden 4096 (= 32 heads x 128), K and V for
    # every position of every sequence
    return 2 * 32 * 4096 * seq * batch * bits // 8


class TestPredict(unittest.TestCase):
    def test_default_is_lmruns_document(self):
        self.assertEqual(lmpredict.predict(MODEL), lmrun_json())

    def test_options_map_to_lmrun_options(self):
        got = lmpredict.predict(MODEL, batch=4, seq_len=1024, w_bits=4,
                                kv_bits=8, attention="flash",
                                hardware="a100-sxm-80gb", phase="decode")
        want = lmrun_json("-B", "4", "-S", "1024", "--w-bits", "4",
                          "--kv-bits", "8", "--attention", "flash",
                          "--hardware", "a100-sxm-80gb", "--phase", "decode")
        self.assertEqual(got, want)
        self.assertEqual(got["batch_size"], 4)
        self.assertEqual(got["seq_len"], 1024)
        self.assertEqual(got["w_bits"], 4)
        self.assertEqual(got["attention"], "flash")
        self.assertEqual(got["hardware"]["id"], "a100-sxm-80gb")
        self.assertEqual([p["phase"] for p in got["phases"]], ["decode"])
        self.assertEqual(got["summary"]["memory"]["kv_cache_bytes"],
                         kv_bytes(4, 1024, 8))

    def test_kv_cache_by_hand(self):
        doc = lmpredict.predict(MODEL, batch=2, seq_len=2048)
        self.assertEqual(doc["summary"]["memory"]["kv_cache_bytes"],
                         kv_bytes(2, 2048, 16))  # 2 GiB

    def test_engine_and_roofline_flag(self):
        self.assertEqual(lmpredict.predict(MODEL, engine="hf-eager"),
                         lmrun_json("--engine", "hf-eager"))
        self.assertEqual(lmpredict.predict(MODEL, roofline=True),
                         lmrun_json("--roofline"))
        self.assertEqual(lmpredict.predict(MODEL, roofline=False),
                         lmrun_json())

    def test_dashes_underscores_and_8bit_format(self):
        a = lmpredict.predict(MODEL, w_bits=8, format_8bit="fp8")
        b = lmpredict.predict(MODEL, **{"w-bits": "8", "8bit_format": "fp8"})
        self.assertEqual(a, b)
        self.assertEqual(a, lmrun_json("--w-bits", "8", "--8bit-format",
                                       "fp8"))

    def test_path_like_model(self):
        import pathlib
        self.assertEqual(lmpredict.predict(pathlib.Path(MODEL), seq_len=16),
                         lmpredict.predict(MODEL, seq_len=16))

    def test_long_sequence_warns(self):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            lmpredict.predict(MODEL, seq_len=8192)
        self.assertTrue(any(issubclass(x.category,
                                       lmpredict.PredictionWarning) and
                            "max_position_embeddings" in str(x.message)
                            for x in w), [str(x.message) for x in w])


class TestErrors(unittest.TestCase):
    def test_report_explain_tree_are_lmruns(self):
        def lmrun(*args):
            return subprocess.run([LMRUN, MODEL] + list(args), check=True,
                                  stdout=subprocess.PIPE).stdout.decode()
        self.assertEqual(lmpredict.report(MODEL, 4, phase="decode"),
                         lmrun("-B", "4", "--phase", "decode", "--format",
                               "html"))
        self.assertEqual(lmpredict.report(MODEL, format="markdown"),
                         lmrun("--format", "markdown"))
        text = lmpredict.explain(MODEL, "qk_matmul", roofline=True,
                                 phase="decode")
        self.assertEqual(text, lmrun("--roofline", "--phase", "decode",
                                     "--explain", "qk_matmul"))
        # 2 x B x heads x T x L x head_dim = 2 x 1 x 32 x 1 x 2048 x 128
        self.assertIn("        = 16777216 (16.8 M)\n", text)
        self.assertEqual(lmpredict.tree(MODEL), lmrun("--tree"))
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.explain(MODEL, "q_prj")
        self.assertIn("did you mean:\n  model.layers.self_attn.q_proj",
                      cm.exception.message)

    def test_missing_model(self):
        path = os.path.join(ROOT, "models", "no-such-model.json")
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.predict(path)
        e = cm.exception
        self.assertEqual(os.path.abspath(e.file), path)
        self.assertIn("cannot open", e.message)
        self.assertIn("no-such-model.json", str(e))

    def test_malformed_model_is_located(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json",
                                         delete=False) as f:
            f.write('{\n  "model": "x",\n  "config": [1, 2,,]\n}\n')
        try:
            with self.assertRaises(lmpredict.Error) as cm:
                lmpredict.predict(f.name)
        finally:
            os.unlink(f.name)
        e = cm.exception
        self.assertEqual(os.path.abspath(e.file), f.name)
        self.assertEqual(e.line, 3)          # the second comma
        self.assertGreater(e.column, 0)
        self.assertIn("^", e.text)           # the caret line
        self.assertIn('"config": [1, 2,,]', e.text)

    def test_unknown_option(self):
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.predict(MODEL, colour="red")
        self.assertIn("colour", str(cm.exception))

    def test_bad_option_values(self):
        for kw, text in (({"batch": 0}, "-B must be at least 1"),
                         ({"seq_len": "2k"}, "whole number"),
                         ({"w_bits": 3}, "16, 8 or 4"),
                         ({"attention": "sparse"}, "eager or flash")):
            with self.subTest(kw=kw):
                with self.assertRaises(lmpredict.Error) as cm:
                    lmpredict.predict(MODEL, **kw)
                self.assertIn(text, str(cm.exception))

    def test_wrong_type(self):
        with self.assertRaises(lmpredict.Error):  # True is "yes"
            lmpredict.predict(MODEL, batch=True)
        # a float is written as lmrun reads it (expert_balance=0.5), so a
        # fractional count is lmrun's error
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.predict(MODEL, batch=1.5)
        self.assertEqual(cm.exception.message,
                         "-B expects a whole number, not '1.5'")
        with self.assertRaises(TypeError):  # lists are for sweep()
            lmpredict.predict(MODEL, batch=[1, 2])
        with self.assertRaises(TypeError):
            lmpredict.predict(42)

    def test_unknown_gpu(self):
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.predict(MODEL, hardware="tpu-v9")
        # the file as lmrun names it (relative to the working directory)
        self.assertEqual(os.path.abspath(cm.exception.file),
                         os.path.join(ROOT, "hardware.json"))
        self.assertIn("tpu-v9", cm.exception.message)
        self.assertIn("h100-sxm", cm.exception.message)  # the known ones

    def test_bad_data_path(self):
        with self.assertRaises(lmpredict.Error) as cm:
            lmpredict.Data(module_db=os.path.join(ROOT, "nope.json"))
        self.assertTrue(cm.exception.file.endswith("nope.json"))

    def test_closed_data(self):
        d = lmpredict.Data()
        d.close()
        with self.assertRaises(lmpredict.Error):
            d.predict(MODEL)


class TestHardwareAndVersion(unittest.TestCase):
    def test_hardware_lists_hardware_json(self):
        with open(os.path.join(ROOT, "hardware.json")) as f:
            want = json.load(f)["gpus"]
        got = lmpredict.hardware()
        self.assertEqual([g["id"] for g in got], [g["id"] for g in want])
        self.assertEqual(got, want)  # every figure and its source

    def test_version_is_the_commands(self):
        out = subprocess.run([LMRUN, "--version"], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
        self.assertEqual(out, "lmrun %s\n" % lmpredict.version())
        self.assertEqual(lmpredict.__version__, lmpredict.version())

    def test_library_from_build_tree(self):
        self.assertTrue(os.path.realpath(lmpredict.library_path())
                        .startswith(os.path.realpath(ROOT) + os.sep))


if __name__ == "__main__":
    unittest.main()
