#!/usr/bin/env bash
# Create bench/.peer-venv holding the peer, the `face_recognition` package's CLI, idempotently.
#
# Why a venv of its own: face_recognition depends on source `dlib` (a long compile) and on
# face_recognition_models, whose __init__ imports pkg_resources, which setuptools >= 81 no longer
# ships. Installing it into the product's .venv would mean pinning an old setuptools there; here it
# is installed with --no-deps over the prebuilt dlib-bin wheel and a setuptools that still has
# pkg_resources, and the product's venv stays as its pyproject makes it.
#
# Usage: bench/peer_env.sh            prints the venv's bin directory on the last line
#        PEER_VENV=/elsewhere bench/peer_env.sh
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${PEER_VENV:-$bench/.peer-venv}"
product_python="$bench/../.venv/bin/python"
# Same interpreter as the product's venv when there is one, so both sides run the same Python.
python="${PYTHON:-$( [ -x "$product_python" ] && echo "$product_python" || command -v python3 )}"

# Same dlib and model wheel versions as the product, so both sides compute identical vectors.
version_of() {
  "$product_python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}
dlib_pin="$(version_of dlib-bin)"
dlib_pin="${dlib_pin:+==$dlib_pin}"
# With the OpenBLAS build in .venv, the same dlib release of dlib-bin (its post releases too).
if [ -z "$dlib_pin" ]; then dlib_pin="$(version_of dlib)"; dlib_pin="${dlib_pin:+==$dlib_pin.*}"; fi
models_version="$(version_of face-recognition-models)"
requirements=(
  "dlib-bin$dlib_pin"
  "face_recognition_models${models_version:+==$models_version}"
  "setuptools<81"  # last line of setuptools that ships pkg_resources
  "Click>=6.0"
  "Pillow"
  "numpy"
)
peer="face_recognition==1.3.0"
stamp="$venv/.peer-installed"
wanted="${requirements[*]} $peer"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] \
   && "$venv/bin/python" -c "import face_recognition" 2>/dev/null; then
  echo "peer venv up to date: $venv" >&2
else
  echo "creating peer venv at $venv with $python" >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${requirements[@]}"
  # --no-deps: its declared dependency is source `dlib`; dlib-bin provides the same module.
  "$venv/bin/python" -m pip install --quiet --no-deps "$peer"
  "$venv/bin/python" -W ignore -c "import face_recognition" >&2
  echo "$wanted" > "$stamp"
fi
echo "$venv/bin"
