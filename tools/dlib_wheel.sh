#!/usr/bin/env bash
# Build (once per machine) a dlib wheel linked against OpenBLAS and print its cache folder.
#
#   tools/dlib_wheel.sh PYTHON      -> prints the folder holding a wheel for PYTHON, exit 0
#                                      exit 1 when it cannot be built here (the caller falls back)
#
# The wheel is cached outside the clone, keyed by dlib version and the CPU's flags, because the
# build is compiled for this CPU (AVX/SSE4) and takes 10-20 minutes on 2 cores.
set -euo pipefail

PYTHON="${1:?usage: dlib_wheel.sh PYTHON}"
DLIB_VERSION="${FACELEDGER_DLIB_VERSION:-20.0.1}"
CACHE_ROOT="${FACELEDGER_WHEEL_CACHE:-$HOME/.cache/faceledger/wheels}"
CPU_FLAGS="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
# dlib's CMake enables AVX (as in dlib-bin) but not AVX2: with AVX alone, Debian's gcc 12 makes
# HOG's integer SIMD about 2x slower than dlib-bin's; with AVX2 and FMA it is faster than dlib-bin.
EXTRA_CXXFLAGS=""
if [[ " $CPU_FLAGS " == *" avx2 "* && " $CPU_FLAGS " == *" fma "* ]]; then
  EXTRA_CXXFLAGS="-mavx2 -mfma"
fi
# The key covers the CPU and the compile flags, so a wheel is never used where it cannot run.
FLAGS_HASH="$(printf '%s\n%s\n' "$CPU_FLAGS" "$EXTRA_CXXFLAGS" | sha256sum | cut -c1-12)"
DIR="$CACHE_ROOT/dlib-$DLIB_VERSION-openblas-$FLAGS_HASH"
PYTAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"

log() { echo "dlib_wheel: $*" >&2; }

have_wheel() { ls "$DIR"/dlib-"$DLIB_VERSION"-"$PYTAG"-*.whl >/dev/null 2>&1; }

if have_wheel; then
  echo "$DIR"
  exit 0
fi
mkdir -p "$DIR"
# One build at a time per machine: a second `make` waits for the first and then uses its wheel.
if command -v flock >/dev/null; then
  exec 9>"$DIR/.lock"
  flock 9
  if have_wheel; then echo "$DIR"; exit 0; fi
fi
# A build that failed here once fails again: don't make every fresh venv pay 10-20 minutes.
if [ -f "$DIR/build-failed-$PYTAG" ]; then
  log "an earlier build failed (see $DIR/build.log); delete $DIR/build-failed-$PYTAG to retry"
  exit 1
fi

# Debian's OpenBLAS and a compiler; install them where we may (root, apt), else give up cleanly.
have_openblas() {
  pkg-config --exists openblas 2>/dev/null || ls /usr/include/*/cblas.h /usr/include/cblas.h \
    >/dev/null 2>&1
}
if ! have_openblas || ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    log "installing libopenblas-dev, cmake and build-essential with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        libopenblas-dev liblapack-dev cmake build-essential pkg-config; } >/dev/null \
      || { log "apt-get failed"; exit 1; }
  else
    log "needs libopenblas-dev and a C++ compiler (apt-get install libopenblas-dev build-essential)"
    exit 1
  fi
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/faceledger-dlib.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log "building dlib $DLIB_VERSION against OpenBLAS (first time on this machine: 10-20 minutes; log: $DIR/build.log)"
# --no-binary dlib (not :all:): the build requirements (cmake, setuptools) come as wheels;
# --no-cache-dir: pip would otherwise reuse a wheel it built earlier with other flags.
# dlib 20.0.1's setup.py passes DLIB_* environment variables to CMake as -D options (its --set
# flag no longer gets past setuptools); CMake takes CXXFLAGS as its initial CMAKE_CXX_FLAGS.
# A Release build; dlib's CMake adds -mavx / -msse4 when this CPU runs them.
CXXFLAGS="${CXXFLAGS:-} $EXTRA_CXXFLAGS" DLIB_USE_BLAS=ON DLIB_USE_LAPACK=ON DLIB_USE_CUDA=OFF \
  nice -n 19 "$PYTHON" -m pip wheel -v --no-cache-dir --no-deps --no-binary dlib \
    --wheel-dir "$TMP" "dlib==$DLIB_VERSION" >"$DIR/build.log" 2>&1 \
  || { log "the build failed; the last lines of $DIR/build.log:"; tail -n 15 "$DIR/build.log" >&2
       touch "$DIR/build-failed-$PYTAG"; exit 1; }
mv "$TMP"/dlib-*.whl "$DIR"/
echo "$DIR"
