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
    for row in lmpredict.sweep("models/llama-2-7b-hf.json",
                               batch=range(1, 257), tp=[1, 2],
                               seq_len="512..8192x2"):
        row["ttft_s"]               # one dict per configuration, streaming
    lmpredict.best("models/llama-2-7b-hf.json", slo="ttft=500ms,tpot=30ms",
                   maximize="throughput-per-gpu", batch="1..256x2",
                   output_len=256)  # lmrun --slo ... --format json

Options are lmrun's long options with '_' for '-': batch, seq_len, phase,
w_bits, a_bits, kv_bits, embed_bits, attention, hardware, engine, roofline
(True/False), output_len, tp, pp, ep, microbatches, and 8-bit format as
format_8bit= (or **{"8bit_format": "fp8"}). Values are checked as lmrun
checks them (a float as repr writes it: expert_balance=0.5). Any error
raises lmpredict.Error, which carries the located message (file, JSON path,
line, column, the text with its caret). A model is anything lmrun takes: a
model file, a config.json, a snapshot directory or a Hub id.

Everything lmrun does: sweep() (lists, ranges, lmrun's "1..256x2"; one dict
or lmrun line per configuration), best() (--slo, --maximize),
sweep_report() (a sweep's whole output, html too), report(format=),
explain(), tree(), hardware() and hardware_text() (--list-hardware);
output=PATH on report and sweep_report writes atomically (-o).

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
import tempfile
import threading
import warnings
import weakref

__all__ = ["Data", "Error", "PredictionWarning", "Sweep", "best",
           "explain", "hardware", "hardware_text", "library_path", "predict",
           "report", "sweep", "sweep_report", "tree", "version"]

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
            ("lmp_hardware_text", P, [P]),
            ("lmp_sweep_new", P, [P, P, P]),
            ("lmp_sweep_values", I, [P, S, S, E]),
            ("lmp_sweep_size", ctypes.c_double, [P]),
            ("lmp_sweep_next", I, [P, ctypes.POINTER(P), E]),
            ("lmp_sweep_error_row", P, [P, S, E]),
            ("lmp_sweep_free", None, [P]),
            ("lmp_result_summary_row", P, [P, S]),
            ("lmp_row_header", P, [S]),
            ("lmp_slo_new", P, [S, S, E]),
            ("lmp_slo_offer", I, [P, P]),
            ("lmp_slo_offer_error", None, [P, E]),
            ("lmp_slo_result", P, [P, S]),
            ("lmp_slo_free", None, [P]),
            ("lmp_sweep_page_new", P, [P]),
            ("lmp_sweep_page_add", None, [P, P, I]),
            ("lmp_sweep_page_html", P, [P, P]),
            ("lmp_sweep_page_free", None, [P]),
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
    if isinstance(v, float):  # expert_balance=0.5; repr reads back exactly
        return repr(v).encode("utf-8")
    raise TypeError("option %s: expected a number or a string, not %s"
                    % (name, type(v).__name__))


def _write_atomic(path, text):
    """lmrun -o: the whole text or nothing (a temporary file in the same
    directory, flushed to disk, renamed over path)."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".lmpredict-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_ALIASES = {"format_8bit": "8bit-format"}

_DIGITS = "0123456789"

# Options a sweep does not vary (lmrun's): one value each.
_NOT_SWEPT = ("phase", "format", "max-batch", "max_batch")


def _values(name, v):
    """A sweep's value list as lmp_sweep_values reads it, and the list
    items' offsets (to name the item an error's column points at); None
    for a single value. A list or tuple: its items joined with ','; a
    range with step 1: "lo..hi" (constant size, whatever its length); any
    other range: its items; a str with ',' or a numeric "lo..hi[xk]":
    lmrun's own list."""
    if isinstance(v, range):
        if len(v) == 0:
            raise Error("option %s: the range is empty" % name)
        if v.step == 1:
            return ("%d..%d" % (v[0], v[-1])).encode(), None
        v = list(v)
    if isinstance(v, (list, tuple)):
        if not v:
            raise Error("option %s: the list is empty" % name)
        items = [_value(name, x) for x in v]
        offs, at = [], 1
        for it in items:
            offs.append(at)
            at += len(it) + 1
        return b",".join(items), (offs, list(v))
    if isinstance(v, str) and name not in _NOT_SWEPT and _is_list(v):
        return v.encode("utf-8"), None
    return None


def _is_list(v):
    """lmrun's test: a ',' or digits either side of ".." ("../x" is a
    path)."""
    if "," in v:
        return True
    i = v.find("..")
    while i >= 0:
        if 0 < i and i + 2 < len(v) and v[i - 1] in _DIGITS \
                and v[i + 2] in _DIGITS:
            return True
        i = v.find("..", i + 1)
    return False


class Data:
    """The module database, the JIT-compiled generated modules and the GPU
    database: lmrun's --db, --modules and --hardware-db (None: the install's,
    found as lmrun finds them). Opening compiles every module, so keep one;
    the module-level functions share a default one."""

    def __init__(self, module_db=None, modules_dir=None, hardware_db=None):
        lib = _load()
        err = _CError()
        self._lib = lib
        # reentrant: a Sweep dropped (its __del__) while this thread holds
        # the lock frees its handles under it
        self._lock = threading.RLock()
        self._sweeps = weakref.WeakSet()  # open sweeps, freed by close()
        self._h = lib.lmp_open(_path(module_db, "module_db"),
                               _path(modules_dir, "modules_dir"),
                               _path(hardware_db, "hardware_db"),
                               ctypes.byref(err))
        if not self._h:
            raise err.exception()

    def close(self):
        """Free the data (the JIT code too). Further use raises Error."""
        with self._lock:
            for sw in list(self._sweeps):  # they refer to the data
                sw._orphaned = True
                sw.close()
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
               output=None, **options):
        """What lmrun MODEL ... --format FORMAT prints, as str: "html"
        (one self-contained page), "markdown", "table", "csv" or "json".
        output=PATH also writes it there atomically (lmrun -o)."""
        options["format"] = format
        text = self._run(model, batch, seq_len, options,
                         lambda lib, r, ep: lib.lmp_result_text(r))
        if output is not None:
            _write_atomic(output, text)
        return text

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

    def hardware_text(self):
        """What lmrun --list-hardware prints, as str."""
        with self._lock:
            return _take_string(
                self._lib, self._lib.lmp_hardware_text(self._handle()))

    def sweep(self, model, format=None, **options):
        """A sweep, as lmrun MODEL --OPTION LIST ... runs it: an iterator
        (a Sweep) over the cross product of the options' values, one
        configuration evaluated per step into the library's buffers
        (constant memory whatever the size). A value is a list or tuple
        of values, a range (range(1, 257): every integer, kept as
        "1..256"), lmrun's list string ("1,2,4", "1..256", "1..256x2",
        "1,3,16..64x2") or a single value. The first option given varies
        slowest, the last fastest. max_batch is "no" unless given (as in
        lmrun's sweeps).

        Each step yields the configuration's summary row as a dict: the
        JSON line lmrun ... --format json prints (model, hardware,
        attention, engine, roofline, batch_size, seq_len, output_len, tp,
        pp, ep, microbatches, w_bits, a_bits, kv_bits, then ttft_s,
        tpot_s, tpot_mean_s, e2e_latency_s, tokens_per_s,
        throughput_tokens_per_s, throughput_per_gpu_tokens_per_s, gpus,
        weight_bytes, kv_cache_bytes, activation_bytes, total_bytes,
        capacity_bytes, fits, max_batch); a configuration that cannot be
        predicted yields its configuration and "error" (the message), and
        the sweep goes on. With format "json", "csv" or "table" it yields
        lmrun's lines instead (str, each ending with a newline; the header
        line first for csv and table).

        A bad option or list raises Error at once; for an item of a list,
        e.column is its 1-based offset in the list as lmrun reads it and
        e.item its value (e.index its position for a Python list)."""
        if format not in (None, "json", "csv", "table"):
            raise Error("sweep rows are json, csv or table, not %r "
                        "(sweep_report for the HTML page)" % (format,))
        return Sweep(self, model, options, format)

    def best(self, model, slo, maximize=None, format=None, **options):
        """lmrun MODEL --slo SLO [--maximize M] --OPTION LIST ...: the
        best of a sweep's configurations that fit and meet the targets.
        slo is lmrun's string ("ttft=200ms,tpot=30ms"; e2e=10s; units s,
        ms, us) or a dict {"ttft": 0.2, "tpot": "30ms"} (numbers in
        seconds); maximize "throughput" (default, total tokens/s) or
        "throughput-per-gpu". Options as for sweep(). Returns the document
        lmrun --format json prints, as a dict: {"slo": {...}, "maximize",
        "configurations", "met", "lost": {"does_not_fit", "ttft", "tpot",
        "e2e", "invalid"}, "best": {configuration..., "summary": {...}} or
        None}; format="table" returns lmrun's text instead."""
        text = self.sweep_report(model, format=format or "json", slo=slo,
                                 maximize=maximize, **options)
        return json.loads(text) if format is None else text

    def sweep_report(self, model, format="table", slo=None, maximize=None,
                     output=None, **options):
        """Everything lmrun prints for a sweep (or, with slo, the best
        configuration), as str: the rows in format "table", "csv" or
        "json" (one object per line), or "html" (one page: TTFT, TPOT and
        throughput against the first numeric option swept, with the SLO's
        frontier and best). Options as for sweep(). output=PATH also
        writes it there atomically (lmrun -o), once the sweep is done."""
        spec = _slo_spec(slo)
        if maximize is not None and spec is None:
            raise Error("--maximize needs --slo")
        with Sweep(self, model, options, None) as sw:  # freed after the
            text = sw._report(format, spec, maximize)     # SLO and page
        if output is not None:
            _write_atomic(output, text)
        return text

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


def _slo_spec(slo):
    """An SLO as lmp_slo_new reads it: lmrun's string, or a dict of
    targets (numbers in seconds, or strings with their unit)."""
    if slo is None or isinstance(slo, str):
        return slo
    if isinstance(slo, dict):
        parts = []
        for k, v in slo.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = "%rs" % float(v)
            elif not isinstance(v, str):
                raise TypeError("slo %s: expected seconds or a string such "
                                "as '30ms', not %s" % (k, type(v).__name__))
            parts.append("%s=%s" % (k, v))
        return ",".join(parts)
    raise TypeError("slo: expected a string such as 'ttft=200ms,tpot=30ms' "
                    "or a dict, not %s" % type(slo).__name__)


class Sweep:
    """An open sweep (Data.sweep): an iterator over its rows that holds the
    library's lmp_sweep, its model and its options. Its handles are freed
    when it is exhausted, closed (close(), a with block), dropped (a loop
    left with break) or when its Data is closed. len() is the number of
    configurations; size too, as a float (a cross product may pass
    2^63)."""

    def __init__(self, data, model, options, format):
        self._data = data
        self._lib = lib = data._lib
        self._format = format
        self._s = self._m = None
        self._header = None
        self._orphaned = False
        err = _CError()
        ep = ctypes.byref(err)
        path = _path(model, "model")
        given = [(_ALIASES.get(k, k), v) for k, v in options.items()
                 if v is not None]
        names = {k.replace("_", "-") for k, _ in given}
        if "max-batch" not in names:
            given.insert(0, ("max-batch", "no"))  # lmrun's sweep default
        with data._lock:
            d = data._handle()
            o = lib.lmp_options_new()
            try:
                lists = []
                for k, v in given:
                    vl = _values(k, v)
                    if vl is not None:
                        lists.append((k, vl))
                    elif lib.lmp_options_set(o, k.encode("utf-8"),
                                             _value(k, v), ep) != 0:
                        raise err.exception()
                m = lib.lmp_model_load(d, path, ep)
                if not m:
                    raise err.exception()
                self._m = m
                self._s = lib.lmp_sweep_new(d, m, o)
                data._sweeps.add(self)
                for k, (text, items) in lists:
                    if lib.lmp_sweep_values(self._s, k.encode("utf-8"), text,
                                            ep) != 0:
                        raise _item_error(err, text, items)
            except BaseException:
                self.close()
                raise
            finally:
                lib.lmp_options_free(o)
            self.size = lib.lmp_sweep_size(self._s)
        if format in ("csv", "table"):
            self._header = _take_string(lib, lib.lmp_row_header(
                format.encode()))

    def __len__(self):
        return int(self.size)

    def __iter__(self):
        return self

    def __next__(self):
        if self._header is not None:
            h, self._header = self._header, None
            return h
        k, r, err = self._step()
        if k == 0:  # done: free the handles now
            self.close()
            raise StopIteration
        fmt = self._format or "json"
        lib = self._lib
        with self._data._lock:
            self._alive()
            p = (lib.lmp_sweep_error_row(self._s, fmt.encode(),
                                         ctypes.byref(err)) if k < 0
                 else lib.lmp_result_summary_row(r, fmt.encode()))
            row = _take_string(lib, p)
        return json.loads(row) if self._format is None else row

    def _alive(self):
        if not self._s:
            raise Error("this lmpredict sweep is closed")

    def _step(self):
        """lmp_sweep_next: (1, result, err), (-1, None, err) or at the
        end (0, None, None), the handles kept (an SLO's best and a page
        refer to the model until they are freed)."""
        err = _CError()
        r = ctypes.c_void_p()
        with self._data._lock:
            if self._orphaned:
                raise Error("this lmpredict sweep's Data is closed")
            if not self._s:  # done or closed, as a generator
                raise StopIteration
            k = self._lib.lmp_sweep_next(self._s, ctypes.byref(r),
                                         ctypes.byref(err))
        return (k, r, err) if k != 0 else (0, None, None)

    def _report(self, format, slo_spec, maximize):
        """lmrun's run_sweep: the whole output as str."""
        lib = self._lib
        err = _CError()
        ep = ctypes.byref(err)
        slo = page = None
        out = []
        try:
            if slo_spec is not None:
                slo = lib.lmp_slo_new(slo_spec.encode("utf-8"),
                                      maximize.encode("utf-8")
                                      if maximize else None, ep)
                if not slo:
                    raise err.exception()
            if format == "html":
                page = lib.lmp_sweep_page_new(self._s)
            elif not slo:
                out.append(_take_string(lib, lib.lmp_row_header(
                    format.encode())))
            while True:
                k, r, e = self._step()
                if k == 0:
                    break
                with self._data._lock:
                    v = -1
                    if slo and k < 0:
                        lib.lmp_slo_offer_error(slo, ctypes.byref(e))
                    elif slo:
                        v = lib.lmp_slo_offer(slo, r)
                    if page and k > 0:
                        lib.lmp_sweep_page_add(page, r, v)
                    if not slo and not page:
                        out.append(_take_string(
                            lib, lib.lmp_sweep_error_row(
                                self._s, format.encode(), ctypes.byref(e))
                            if k < 0 else lib.lmp_result_summary_row(
                                r, format.encode())))
            if page:
                out.append(_take_string(lib, lib.lmp_sweep_page_html(page,
                                                                     slo)))
            elif slo:
                out.append(_take_string(lib, lib.lmp_slo_result(
                    slo, format.encode())))
        finally:
            if page:
                lib.lmp_sweep_page_free(page)
            if slo:
                lib.lmp_slo_free(slo)
        return "".join(out)

    def close(self):
        """Free the library's sweep and model (idempotent)."""
        data = getattr(self, "_data", None)
        if data is None:
            return
        with data._lock:
            if self._s:
                self._lib.lmp_sweep_free(self._s)
                self._s = None
            if self._m:
                self._lib.lmp_model_free(self._m)
                self._m = None
            data._sweeps.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _item_error(err, text, items):
    """The Error of lmp_sweep_values, with the list item its column points
    at: e.item (its text, or the Python value) and e.index (its position
    in a Python list; None for lmrun's string)."""
    e = err.exception()
    e.item = e.index = None
    if e.column > 0:
        at = e.column - 1
        e.item = text[at:].split(b",", 1)[0].decode("utf-8", "replace")
        if items is not None and e.column in items[0]:
            e.index = items[0].index(e.column)
            e.item = items[1][e.index]
    return e


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


def report(model, batch=1, seq_len=2048, format="html", output=None,
           **options):
    """lmrun's output in another format as str (default: the HTML page);
    output=PATH writes it there too, atomically (lmrun -o)."""
    return _data().report(model, batch, seq_len, format, output, **options)


def explain(model, op, batch=1, seq_len=2048, **options):
    """Where every number of one operation comes from (lmrun --explain)."""
    return _data().explain(model, op, batch, seq_len, **options)


def tree(model, batch=1, seq_len=2048, **options):
    """The model's layers as the walk sees them (lmrun --tree)."""
    return _data().tree(model, batch, seq_len, **options)


def sweep(model, format=None, **options):
    """A sweep's rows, one dict per configuration, streaming (Data.sweep):
    for row in lmpredict.sweep(model, batch=range(1, 65),
    hardware=["h100-sxm", "a100-sxm-80gb"]): ..."""
    return _data().sweep(model, format, **options)


def best(model, slo, maximize=None, format=None, **options):
    """The best configuration of a sweep under an SLO, with the counts of
    why the others lost (lmrun --slo ... --maximize ...; Data.best)."""
    return _data().best(model, slo, maximize, format, **options)


def sweep_report(model, format="table", slo=None, maximize=None,
                 output=None, **options):
    """Everything lmrun prints for a sweep, as str (Data.sweep_report)."""
    return _data().sweep_report(model, format, slo, maximize, output,
                                **options)


def hardware_text():
    """The GPU list lmrun --list-hardware prints."""
    return _data().hardware_text()


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
