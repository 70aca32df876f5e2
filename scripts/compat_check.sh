#!/usr/bin/env bash
# Run ftx's test suite against another torch, in a throwaway venv.
#
#   bash scripts/compat_check.sh 2.15.0            # set up the venv (if needed) and test
#   bash scripts/compat_check.sh 2.4.1 --setup-only
#   FTX_SLOW_ROUTES=1 bash scripts/compat_check.sh 2.15.0   # with every fast route off
#
# The venv lives in ${COMPAT_DIR:-/tmp/ftx-compat}/torch-<version>; PyPI's newer torch
# releases are CUDA builds of several GB (they run on the CPU too). A pip constraint
# file that caps torch (PIP_CONSTRAINT, /etc/xdg/pip) is ignored for this venv only.
# Extra arguments after the version go to pytest (e.g. -rfE, or test paths). The full log
# is written next to the venv, as the run goes.
#
#   FTX_SRC=/tmp/ftx-snapshot bash scripts/compat_check.sh 2.15.0   # test another checkout
#   COMPAT_WORKERS=1 bash scripts/compat_check.sh 2.15.0            # pytest -n 1 (default 2)
#
# FTX_SRC (default: this checkout) is the source tree that is tested: the run happens
# there with FTX_SRC first on PYTHONPATH, so a snapshot (`git clone` of a commit) is
# tested, not whatever the venv's editable install points at.
set -euo pipefail
ver=${1:?usage: compat_check.sh TORCH_VERSION [--setup-only] [pytest args...]}
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$(cd "${FTX_SRC:-$root}" && pwd)"
workers=${COMPAT_WORKERS:-2}
dir="${COMPAT_DIR:-/tmp/ftx-compat}/torch-$ver"
log="$dir.log"
setup_only=0
if [ "${1:-}" = "--setup-only" ]; then setup_only=1; shift; fi
export PIP_CONSTRAINT="" PIP_CONFIG_FILE=/dev/null
if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c "import torch, ftx" 2>/dev/null; then
  python -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip
  "$dir/bin/python" -m pip install --quiet "torch==$ver"
  # numpy < 2 for torch builds compiled against numpy 1.x
  case "$ver" in 2.[0-2].*) "$dir/bin/python" -m pip install --quiet "numpy<2" ;; esac
  "$dir/bin/python" -m pip install --quiet -e "$root[test]" "torch==$ver"
fi
if [ "$setup_only" = 1 ]; then echo "venv ready: $dir"; exit 0; fi
cd "$src"
export PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}"
# The whole output goes to the log as it comes (a run stopped early keeps what it did);
# the terminal gets its last 40 lines.
{
  echo "torch $("$dir/bin/python" -c 'import torch; print(torch.__version__)') on $(uname -m)," \
       "FTX_SLOW_ROUTES=${FTX_SLOW_ROUTES:-0}, ftx $(git rev-parse --short HEAD) in $src," \
       "pytest -n $workers, load $(cut -d' ' -f1-3 /proc/loadavg), started $(date -u +%FT%TZ)"
  rc=0
  "$dir/bin/python" -m pytest -q -n "$workers" -p no:cacheprovider "$@" 2>&1 || rc=$?
  echo "finished $(date -u +%FT%TZ), pytest exit $rc, load $(cut -d' ' -f1-3 /proc/loadavg)"
  exit "$rc"
} | tee "$log" | tail -40
