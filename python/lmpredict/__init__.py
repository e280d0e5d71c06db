"""lmpredict: LM-Predictor from Python.

A ctypes binding over liblmpredict (include/lmpredict.h), standard library
only. The numbers are the C library's, so they are those of lmrun, to the
byte:

    import lmpredict
    doc = lmpredict.predict("models/llama-2-7b-hf.json", batch=8,
                            seq_len=4096, hardware="a100-sxm-80gb",
                            w_bits=4, attention="flash")
    doc["summary"]["ttft_s"]        # the document `lmrun ... --format json`
    lmpredict.hardware()            # the GPUs: a list of dicts
    lmpredict.version()             # "0.2.0"

Options are lmrun's long options with '_' for '-': batch, seq_len, phase,
w_bits, a_bits, kv_bits, embed_bits, attention, hardware, engine, roofline
(True/False), output_len, tp, pp, ep, microbatches, and 8-bit format as
format_8bit= (or **{"8bit_format": "fp8"}). Values are checked as lmrun
checks them. Any error raises lmpredict.Error, which carries the located
message (file, JSON path, line, column, the text with its caret).

The library is found without LD_LIBRARY_PATH: $LMPREDICT_LIBRARY if set,
else the path written by `make install` (_install.py), else
PREFIX/lib/liblmpredict.so three directories above the installed package
(PREFIX/lib/python3/dist-packages/lmpredict), else the build tree (build/
above python/), else the linker's search path. The data (module_db.json,
generated_modules/, hardware.json) is found by the library itself, from
its own location, as lmrun finds it; Data(...) takes other paths.

One library and one default Data (the JIT-compiled modules) per process,
opened on first use. A Data is used by one thread at a time (a lock).
"""

import ctypes
import ctypes.util
import json
import os
import threading
import warnings

__all__ = ["Data", "Error", "PredictionWarning", "hardware", "predict",
           "version", "library_path"]

_LIB_NAMES = ("liblmpredict.so", "liblmpredict.so.0")


class Error(Exception):
    """An error from liblmpredict, located where possible.

    file, where (the JSON path), line and column (1-based, 0 if unknown),
    message (the bare message) and text (the whole error as lmrun prints it
    after "lmrun: ", with the source line and a caret). str(e) is text.
    """

    def __init__(self, text, message=None, file="", where="", line=0,
                 column=0):
        super().__init__(text)
        self.text = text
        self.message = message if message is not None else text
        self.file = file
        self.where = where
        self.line = line
        self.column = column


class PredictionWarning(UserWarning):
    """A warning lmrun would print (a sequence longer than the model was
    trained for, formulas awaiting review)."""


class _CError(ctypes.Structure):
    # struct lmp_error of lmpredict.h (LMP_ERROR_TEXT = 4096)
    _fields_ = [("set", ctypes.c_int),
                ("file", ctypes.c_char * 512),
                ("where", ctypes.c_char * 512),
                ("line", ctypes.c_int),
                ("column", ctypes.c_int),
                ("message", ctypes.c_char * 1024),
                ("text", ctypes.c_char * 4096)]

    def exception(self):
        def s(b):
            return b.decode("utf-8", "replace")
        text = s(self.text).rstrip("\n") or s(self.message)
        return Error(text, s(self.message), s(self.file), s(self.where),
                     self.line, self.column)


_lock = threading.Lock()          # loading the library
_default_lock = threading.Lock()  # opening the default Data
_lib = None
_lib_path = None
_default = None


def _candidates():
    env = os.environ.get("LMPREDICT_LIBRARY")
    if env:  # absolute, so that the library finds its data from its path
        yield os.path.abspath(env) if os.sep in env else env
        return
    try:
        from . import _install  # written by make install
        yield _install.LIBRARY
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.join(here, "..", "..", ".."),          # installed: lib/
            os.path.join(here, "..", "..", "build"),       # build tree
            os.path.join(here, "..", "..")]
    for d in dirs:
        for name in _LIB_NAMES:
            yield os.path.normpath(os.path.join(d, name))
    found = ctypes.util.find_library("lmpredict")
    if found:
        yield found


def _load():
    global _lib, _lib_path
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            if os.path.isabs(path) and not os.path.exists(path):
                tried.append(path)
                continue
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
                continue
            _declare(lib)
            _lib, _lib_path = lib, path
            return lib
        raise Error("cannot find liblmpredict.so; tried: " + ", ".join(tried)
                    + " (set LMPREDICT_LIBRARY to its path)")


def _declare(lib):
    P, S, I, E = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, \
        ctypes.POINTER(_CError)
    for name, res, args in (
            ("lmp_version", S, []),
            ("lmp_open", P, [S, S, S, E]),
            ("lmp_close", None, [P]),
            ("lmp_hardware_json", P, [P]),
            ("lmp_model_load", P, [P, S, E]),
            ("lmp_model_free", None, [P]),
            ("lmp_options_new", P, []),
            ("lmp_options_set", I, [P, S, S, E]),
            ("lmp_options_free", None, [P]),
            ("lmp_predict", P, [P, P, P, E]),
            ("lmp_result_json", P, [P]),
            ("lmp_result_text", P, [P]),
            ("lmp_explain", P, [P, S, E]),
            ("lmp_result_tree", P, [P]),
            ("lmp_result_warnings", S, [P]),
            ("lmp_result_free", None, [P]),
            ("lmp_free", None, [P])):
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def _take_string(lib, p):
    """A char * the library returned, as str; freed."""
    if not p:
        raise MemoryError("liblmpredict returned no string")
    try:
        return ctypes.string_at(p).decode("utf-8")
    finally:
        lib.lmp_free(p)


def _path(p, what):
    if p is None:
        return None
    try:
        return os.fsencode(p)
    except TypeError:
        raise TypeError("%s must be a path, not %s" % (what, type(p).__name__))


def _value(name, v):
    if isinstance(v, bool):  # a flag such as roofline=True
        return b"yes" if v else b"no"
    if isinstance(v, (int, str)):
        return str(v).encode("utf-8")
    raise TypeError("option %s: expected a number or a string, not %s"
                    % (name, type(v).__name__))


_ALIASES = {"format_8bit": "8bit-format"}


class Data:
    """The module database, the JIT-compiled generated modules and the GPU
    database: lmrun's --db, --modules and --hardware-db (None: the install's,
    found as lmrun finds them). Opening compiles every module, so keep one;
    the module-level functions share a default one."""

    def __init__(self, module_db=None, modules_dir=None, hardware_db=None):
        lib = _load()
        err = _CError()
        self._lib = lib
        self._lock = threading.Lock()
        self._h = lib.lmp_open(_path(module_db, "module_db"),
                               _path(modules_dir, "modules_dir"),
                               _path(hardware_db, "hardware_db"),
                               ctypes.byref(err))
        if not self._h:
            raise err.exception()

    def close(self):
        """Free the data (the JIT code too). Further use raises Error."""
        with self._lock:
            if self._h:
                self._lib.lmp_close(self._h)
                self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None):
            try:
                self.close()
            except Exception:
                pass

    def _handle(self):
        if not self._h:
            raise Error("this lmpredict.Data is closed")
        return self._h

    def hardware(self):
        """The GPUs: a list of dicts with every figure of hardware.json."""
        with self._lock:
            return json.loads(_take_string(
                self._lib, self._lib.lmp_hardware_json(self._handle())))

    def predict(self, model, batch=1, seq_len=2048, **options):
        """The prediction for a model file: the document lmrun MODEL -B
        batch -S seq_len --OPTION VALUE ... --format json prints, as a
        dict."""
        return json.loads(self._run(model, batch, seq_len, options,
                                    lambda lib, r, ep: lib.lmp_result_json(r)))

    def report(self, model, batch=1, seq_len=2048, format="html",
               **options):
        """What lmrun MODEL ... --format FORMAT prints, as str: "html"
        (one self-contained page), "markdown", "table", "csv" or "json"."""
        options["format"] = format
        return self._run(model, batch, seq_len, options,
                         lambda lib, r, ep: lib.lmp_result_text(r))

    def explain(self, model, op, batch=1, seq_len=2048, **options):
        """What lmrun MODEL ... --explain OP prints: where every number of
        the operation OP (a path or a leaf name) comes from. An unknown or
        ambiguous OP raises Error listing the candidates."""
        name = op.encode("utf-8")
        return self._run(model, batch, seq_len, options,
                         lambda lib, r, ep: lib.lmp_explain(r, name, ep))

    def tree(self, model, batch=1, seq_len=2048, **options):
        """What lmrun MODEL ... --tree prints: the model's layers as the
        walk sees them."""
        return self._run(model, batch, seq_len, options,
                         lambda lib, r, ep: lib.lmp_result_tree(r))

    def _run(self, model, batch, seq_len, options, take):
        """Predict, then take (lib, result, error pointer) -> char * as
        str; warnings as PredictionWarning."""
        lib = self._lib
        err = _CError()
        ep = ctypes.byref(err)
        path = _path(model, "model")
        opts = [("batch", batch), ("seq-len", seq_len)]
        for k, v in options.items():
            if v is not None:
                opts.append((_ALIASES.get(k, k), v))
        with self._lock:
            d = self._handle()
            o = lib.lmp_options_new()
            m = r = None
            try:
                for k, v in opts:
                    if lib.lmp_options_set(o, k.encode("utf-8"),
                                           _value(k, v), ep) != 0:
                        raise err.exception()
                m = lib.lmp_model_load(d, path, ep)
                if not m:
                    raise err.exception()
                r = lib.lmp_predict(d, m, o, ep)
                if not r:
                    raise err.exception()
                p = take(lib, r, ep)
                if not p:
                    raise err.exception()
                doc = _take_string(lib, p)
                warns = lib.lmp_result_warnings(r) or b""
            finally:
                if r:
                    lib.lmp_result_free(r)
                if m:
                    lib.lmp_model_free(m)
                lib.lmp_options_free(o)
        for line in warns.decode("utf-8", "replace").splitlines():
            if line:
                warnings.warn(line, PredictionWarning, stacklevel=3)
        return doc


def _data():
    global _default
    with _default_lock:
        if _default is None:
            _default = Data()
        return _default


def predict(model, batch=1, seq_len=2048, **options):
    """The prediction for a model file as a dict: the document
    `lmrun MODEL -B batch -S seq_len ... --format json` prints. Options:
    lmrun's long options with '_' for '-' (hardware=, w_bits=, a_bits=,
    kv_bits=, embed_bits=, attention=, phase=, engine=, roofline=True,
    format_8bit=). Raises Error
    with the located message on a bad model file, option or GPU."""
    return _data().predict(model, batch, seq_len, **options)


def report(model, batch=1, seq_len=2048, format="html", **options):
    """lmrun's output in another format as str (default: the HTML page)."""
    return _data().report(model, batch, seq_len, format, **options)


def explain(model, op, batch=1, seq_len=2048, **options):
    """Where every number of one operation comes from (lmrun --explain)."""
    return _data().explain(model, op, batch, seq_len, **options)


def tree(model, batch=1, seq_len=2048, **options):
    """The model's layers as the walk sees them (lmrun --tree)."""
    return _data().tree(model, batch, seq_len, **options)


def hardware():
    """The GPUs of the hardware database: a list of dicts."""
    return _data().hardware()


def version():
    """The library's version (the Makefile's VERSION)."""
    return _load().lmp_version().decode("ascii")


def library_path():
    """The liblmpredict this package loaded."""
    _load()
    return _lib_path


def __getattr__(name):
    if name == "__version__":
        return version()
    raise AttributeError("module 'lmpredict' has no attribute %r" % name)
