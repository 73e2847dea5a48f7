#!/usr/bin/env bash
# The venv the CompreFace compatibility test drives the real compreface-sdk from.
#
# compreface-sdk pins requests-toolbelt 0.9, which needs urllib3<2; faceledger's own venv has
# urllib3 2, so the SDK gets a venv of its own holding nothing else. Idempotent: a venv whose
# stamp says it is complete is left as it is. Usage: tools/compreface_venv.sh [PYTHON] [DIR]
set -euo pipefail
python="${1:-python3}"
dir="${2:-$(cd "$(dirname "$0")/.." && pwd)/.venv-compreface}"
stamp="$dir/.installed"
want="compreface-sdk==0.6.0 urllib3<2"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check compreface-sdk==0.6.0 'urllib3<2'
# Imported from outside the venv's site-packages (the SDK's 'collections' package shadows the
# standard one when run from inside it).
(cd / && "$dir/bin/python" -c 'from compreface import CompreFace')
echo "$want" > "$stamp"
