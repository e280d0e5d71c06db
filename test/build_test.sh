#!/usr/bin/env bash
# build_test.sh: the build system's promises to a new user (make test runs
# it from the repository root after the build; it builds nothing).
#
# - a plain `make` on a machine without a build package names it and the
#   command that installs it, and stops before the compiler runs;
# - `make deps` without root and without sudo says in one line what to run;
# - objects depend on the headers they include, not on every header;
# - --version prints the Makefile's VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "build_test: FAIL: $*" >&2; exit 1; }
ok() { echo "build_test: ok: $*"; }
NOPKG=lmp-test-no-such-package

set +e
out=$(make --no-print-directory all BUILD_DEBS="gcc $NOPKG" 2>&1); st=$?
set -e
[ $st -ne 0 ] || fail "make with a missing package succeeded"
grep -q "missing packages: $NOPKG\." <<<"$out" || fail "no missing-package message: $out"
grep -q "make deps" <<<"$out" || fail "the message does not name make deps: $out"
grep -q "apt-get install --no-install-recommends $NOPKG" <<<"$out" \
  || fail "the message does not give the apt-get line: $out"
grep -q "^cc \|cc: " <<<"$out" && fail "the compiler ran: $out"
ok "plain make names the missing package, make deps and the apt-get line"

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
if [ "$(id -u)" -eq 0 ] && ! command -v sudo >/dev/null 2>&1 &&
   as_nobody test -r "$PWD/Makefile" 2>/dev/null; then
  set +e
  out=$(as_nobody make --no-print-directory deps DEBS="gcc $NOPKG" 2>&1); st=$?
  set -e
  [ $st -ne 0 ] || fail "make deps as a user without sudo succeeded"
  [ "$(grep -c "^deps:" <<<"$out")" -eq 1 ] || fail "make deps: not one line: $out"
  grep -q "^deps: .*apt-get install --no-install-recommends $NOPKG$" <<<"$out" \
    || fail "make deps without root or sudo: $out"
  ok "make deps without root or sudo says in one line what to install"
else
  echo "build_test: (make deps without root and sudo: not checked here: needs root," \
       "no sudo, and a checkout user nobody can read)"
fi

# -W: what if this header changed (touches nothing)
compiled() { make -n --no-print-directory -W "$1" all | grep -o -- ' -c [^ ]*\.c' | sort -u; }
lmp=$(compiled include/lmpredict.h)
for f in runtime/lmpredict.c runtime/lmrun.c agents/lmgen.c; do
  grep -q " $f" <<<"$lmp" || fail "$f includes lmpredict.h but is not rebuilt"
done
grep -q " common/buf.c" <<<"$lmp" && fail "common/buf.c rebuilt for lmpredict.h it does not include"
agents=$(compiled include/agents.h)
grep -q " runtime/" <<<"$agents" && fail "runtime/ rebuilt for agents.h: $agents"
grep -q " agents/agent.c" <<<"$agents" || fail "agents/agent.c not rebuilt for agents.h"
ok "objects depend on the headers they include (-MMD -MP), not on every header"

v=$(sed -n 's/^VERSION *= *//p' Makefile)
[ -n "$v" ] || fail "no VERSION in the Makefile"
[ "$(./lmrun --version)" = "lmrun $v" ] || fail "lmrun --version is not $v"
[ "$(./lmgen --version)" = "lmgen $v" ] || fail "lmgen --version is not $v"
ok "lmrun/lmgen --version print the Makefile's VERSION ($v)"
echo "build_test: all passed"
