#!/bin/sh
# The habits CI keeps (run after `sh scripts/setup.sh --test`): ruff lint and format, the type
# checker on the package, and shellcheck on every host-side and helper script (POSIX sh).
set -eu
cd "$(dirname "$0")/.."
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy  # --strict on the package (pyproject.toml [tool.mypy])
# Every tracked shell script; rendered host-side scripts are checked in selftests/unit/test_host_scripts_shellcheck.py.
git ls-files -z '*.sh' .ci/run | xargs -0 shellcheck -s sh
