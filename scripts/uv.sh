#!/usr/bin/env bash
# uv with the arguments given: every venv of the project is made with it (`make install`, the
# reference venvs of scripts/). uv installs the dev extra in ~10 s (~35 s with its bytecode
# compiled) where pip takes ~2 min on two cores.
#
# uv is taken from $UV if set, else installed once (pinned) into .tools/uv with the host's
# pip; concurrent callers wait for that one install. Its defaults here: the host's CA store
# (a TLS-intercepting proxy's CA is often only there; uv's own roots would refuse it) and
# never a downloaded interpreter (venvs use the Python they are given).
#
# Callers pass --compile-bytecode, as pip compiles at install: uv leaves it to the first
# import, and where PYTHONDONTWRITEBYTECODE is set (this machine, the reference servers'
# environment) nothing would ever be cached and every start would compile SciPy again.
#
# uv does not read pip's configuration: an index of your own goes in UV_INDEX_URL (or
# UV_DEFAULT_INDEX), not PIP_INDEX_URL.
#
# usage: scripts/uv.sh ARGS...   e.g. scripts/uv.sh pip install --python .venv/bin/python x
set -euo pipefail
version=0.13.9
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/.tools/uv"
uv=${UV:-$tool/bin/uv}

if [ -z "${UV:-}" ] && ! "$uv" --version 2>/dev/null | grep -q "^uv $version "; then
  mkdir -p "$root/.tools"
  (
    flock 9
    if ! "$uv" --version 2>/dev/null | grep -q "^uv $version "; then
      echo "uv: installing uv $version into .tools/uv" >&2
      rm -rf "$tool"
      python3 -m venv "$tool"
      "$tool/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$version"
    fi
  ) 9>"$root/.tools/uv.lock"
fi
export UV_NATIVE_TLS=${UV_NATIVE_TLS:-1} UV_PYTHON_DOWNLOADS=${UV_PYTHON_DOWNLOADS:-never}
exec "$uv" "$@"
