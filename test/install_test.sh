#!/usr/bin/env bash
# install_test.sh: make install / make uninstall, end to end (make test runs
# it once, from the repository root, after the build).
#
# Installs into a temporary PREFIX, then from another working directory and
# with no LM_PREDICTOR_HOME / LD_LIBRARY_PATH: the installed lmrun prints the
# same JSON as the build tree's; pkg-config finds lmpredict; examples/predict.c
# built against the installed library (shared, then static) prints the same
# document; the installed Python package returns it too; both man pages
# render without warnings; a copy of the whole tree still works (nothing
# depends on the prefix but the Python package's hint, which has a fallback);
# make uninstall removes every file; DESTDIR stages without writing the
# staging path into any file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
unset LM_PREDICTOR_HOME LD_LIBRARY_PATH LMPREDICT_LIBRARY PKG_CONFIG_PATH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lmp-install.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
ok() { echo "install_test: ok: $*"; }

P=$tmp/prefix
ARGS=(-B 2 -S 1024 --format json)
make -s --no-print-directory install PREFIX="$P" >/dev/null
./lmrun models/llama-2-7b-hf.json "${ARGS[@]}" > "$tmp/want.json"
VERSION=$(./lmrun --version | sed 's/^lmrun //')
[ -s "$tmp/want.json" ] || fail "no document from the build tree's lmrun"

# the installed commands, from elsewhere
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
"$P/bin/lmrun" "$P/share/lm-predictor/models/llama-2-7b-hf.json" "${ARGS[@]}" \
  > "$tmp/got.json" || fail "installed lmrun failed"
cmp -s "$tmp/want.json" "$tmp/got.json" || fail "installed lmrun prints another document"
[ "$("$P/bin/lmrun" --version)" = "lmrun $VERSION" ] || fail "lmrun --version"
[ "$("$P/bin/lmgen" --version)" = "lmgen $VERSION" ] || fail "lmgen --version"
"$P/bin/lmgen" --check --all >/dev/null 2>&1 || fail "installed lmgen --check --all"
ok "installed lmrun from another directory: same JSON; lmgen --check clean"

# a Hugging Face config.json goes through the installed templates
# (share/lm-predictor/models/arch/)
"$P/bin/lmrun" "$ROOT/test/data/configs/qwen2.5-0.5b.json" -S 64 \
  > "$tmp/cfg.txt" 2>&1 || fail "installed lmrun on a config.json: $(cat "$tmp/cfg.txt")"
grep -q "family qwen2, 494032768 parameters" "$tmp/cfg.txt" \
  || fail "installed lmrun: no family/parameters line for a config.json"
ok "installed lmrun reads a config.json through the installed templates"

# lmgen on an install it cannot write to (root's, here made read-only; as
# root, run as nobody): refuses before any write, --check still works
chmod -R a-w "$P/share/lm-predictor"
chmod 755 "$tmp" "$tmp/elsewhere"
as_user() { if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; else "$@"; fi; }
set +e
msg=$(as_user "$P/bin/lmgen" SiLU 2>&1); st=$?
set -e
[ $st -eq 1 ] || fail "lmgen on a read-only install: exit $st, not 1"
grep -q "cannot write to $P/share/lm-predictor" <<<"$msg" || fail "lmgen's message: $msg"
grep -q -- "--db DIR/module_db.json --out DIR/generated_modules" <<<"$msg" || fail "lmgen's hint: $msg"
[ -z "$(find "$P/share/lm-predictor" -newer "$tmp/want.json" ! -type d)" ] \
  || fail "lmgen wrote into a read-only install"
as_user "$P/bin/lmgen" --check --all >/dev/null 2>&1 || fail "lmgen --check on a read-only install"
chmod -R u+w "$P/share/lm-predictor"
ok "lmgen refuses to write into a read-only install, with the way out; --check works"

# pkg-config, and the example against the installed library
export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --modversion lmpredict)" = "$VERSION" ] || fail "pkg-config --modversion"
flags=$(pkg-config --cflags --libs lmpredict) || fail "pkg-config --cflags --libs lmpredict"
case "$flags" in *"-I$P/include"*"-L$P/lib"*"-llmpredict"*) ;;
  *) fail "pkg-config flags: $flags" ;; esac
cc -o "$tmp/predict" "$ROOT/examples/predict.c" $flags -Wl,-rpath,"$P/lib" \
  || fail "examples/predict.c does not build against the installed library"
"$tmp/predict" "$P/share/lm-predictor/models/llama-2-7b-hf.json" 2 1024 > "$tmp/got.json" \
  || fail "predict (shared) failed"
cmp -s "$tmp/want.json" "$tmp/got.json" || fail "predict (shared) prints another document"
static=$(pkg-config --static --libs lmpredict | sed 's/-llmpredict//')
cc -o "$tmp/predict-static" "$ROOT/examples/predict.c" \
  $(pkg-config --cflags lmpredict) "$P/lib/liblmpredict.a" $static \
  || fail "examples/predict.c does not build against liblmpredict.a"
# a static program outside PREFIX has no library next to the data: it is
# told where the data is (DESIGN.md §13)
LM_PREDICTOR_HOME=$P/share/lm-predictor "$tmp/predict-static" \
  "$P/share/lm-predictor/models/llama-2-7b-hf.json" 2 1024 > "$tmp/got.json" \
  || fail "predict (static) failed"
cmp -s "$tmp/want.json" "$tmp/got.json" || fail "predict (static) prints another document"
unset PKG_CONFIG_PATH
ok "pkg-config lmpredict; examples/predict.c, shared and static: same JSON"

# Python
pycheck() { # $1: dist-packages dir; $2: prefix the library must come from
  PYTHONPATH=$1 python3 - "$2" "$tmp/want.json" \
    "$2/share/lm-predictor/models/llama-2-7b-hf.json" <<'PY'
import json, os, sys
import lmpredict
prefix, want, model = sys.argv[1:]
lib = os.path.realpath(lmpredict.library_path())
assert lib.startswith(os.path.realpath(prefix) + "/"), lib
got = lmpredict.predict(model, batch=2, seq_len=1024)
assert got == json.load(open(want)), "another document"
assert any(g["id"] == "h100-sxm" for g in lmpredict.hardware())
PY
}
pycheck "$P/lib/python3/dist-packages" "$P" || fail "installed Python package"
ok "PYTHONPATH=PREFIX/lib/python3/dist-packages: import lmpredict gives the same JSON"

# man pages
for m in lmrun lmgen lmcalib; do
  page=$P/share/man/man1/$m.1
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff $m.1"
  [ -z "$warn" ] || fail "$m.1: $warn"
  if command -v man >/dev/null 2>&1; then
    out=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $m.1"
  else
    out=$(groff -man -Tutf8 "$page" 2>&1) || fail "groff $m.1"
  fi
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT FILES \
           EXAMPLES "SEE ALSO" "$VERSION"; do
    grep -q "$s" <<<"$out" || fail "$m.1 lacks $s"
  done
  # every long option the command's --help shows is in its page
  for o in $("$P/bin/$m" --help | grep -o -- '--[a-z0-9-]*[a-z0-9]' | sort -u); do
    grep -q -- "$o" <<<"$(sed 's/\\-/-/g' "$page")" || fail "$m.1 lacks $o"
  done
done
ok "man -l renders lmrun.1, lmgen.1 and lmcalib.1 (no groff warnings, every option)"

# a moved tree still works (lmrun: relative data; Python: relative library)
mv "$P" "$tmp/moved"
M=$tmp/moved
rm "$M/lib/python3/dist-packages/lmpredict/_install.py"
"$M/bin/lmrun" "$M/share/lm-predictor/models/llama-2-7b-hf.json" "${ARGS[@]}" \
  > "$tmp/got.json" || fail "moved lmrun failed"
cmp -s "$tmp/want.json" "$tmp/got.json" || fail "moved lmrun prints another document"
pycheck "$M/lib/python3/dist-packages" "$M" || fail "moved Python package"
mv "$M" "$P"
ok "a moved install still finds its data and library"

# uninstall removes every file it installed
cd "$ROOT"
make -s --no-print-directory uninstall PREFIX="$P" >/dev/null
left=$(find "$P" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
ok "make uninstall removes every file"

# DESTDIR: staged under DESTDIR, the final PREFIX in every file
S=$tmp/stage
make -s --no-print-directory install DESTDIR="$S" PREFIX=/opt/lmp >/dev/null
[ -x "$S/opt/lmp/bin/lmrun" ] || fail "DESTDIR: no $S/opt/lmp/bin/lmrun"
grep -q '^prefix=/opt/lmp$' "$S/opt/lmp/lib/pkgconfig/lmpredict.pc" || fail "DESTDIR: .pc prefix"
! grep -rqF "$S" "$S" || fail "DESTDIR: the staging path is written into a file"
make -s --no-print-directory uninstall DESTDIR="$S" PREFIX=/opt/lmp >/dev/null
left=$(find "$S" ! -type d)
[ -z "$left" ] || fail "DESTDIR uninstall left: $left"
ok "DESTDIR staging and uninstall"
echo "install_test: all passed"
