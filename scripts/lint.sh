#!/bin/sh
# The habits CI keeps (run after `sh scripts/setup.sh --test`, which puts ruff and mypy in .venv): ruff lint
# and format, the type checker on the package, and shellcheck on every host-side and helper script (POSIX sh).
set -eu
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "lint.sh: no .venv here; run sh scripts/setup.sh --test first" >&2; exit 2; }
"$python" -m ruff check .
"$python" -m ruff format --check .
"$python" -m mypy  # --strict on the package (pyproject.toml [tool.mypy])
# Every tracked shell script; rendered host-side scripts are checked in selftests/unit/test_host_scripts_shellcheck.py.
git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck -s sh
