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
# The host-side perl (the kernel-rules reader where python3 is missing), with warnings on.
for f in $(git ls-files '*.pl'); do
	out=$(perl -wc "$f" 2>&1) || out="$out (perl -wc failed)"
	if [ "$out" != "$f syntax OK" ]; then printf '%s\n' "$out" >&2; exit 1; fi
done
