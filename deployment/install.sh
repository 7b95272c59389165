#!/bin/sh
# Installs Aftercare into a new virtualenv, as the container image does (deployment/Dockerfile
# runs this script; tests/deployment/test_image_install.py runs it too, into a temporary folder).
#
#   sh deployment/install.sh VENV        (from the repository root)
#
# 1. torch alone, first, and without its dependencies: the CPU build at the exact version
#    constraints.txt names, from PyTorch's CPU index (TORCH_SOURCE overrides where pip looks,
#    e.g. "--no-index --find-links /opt/wheels"), so no multi-GB CUDA build is pulled in.
# 2. The project itself, as a wheel (not editable: the image holds no source tree), with
#    every optional-dependency group except `dev` (the cloud SDKs and the local models, so
#    one image serves every provider the settings can choose), and every version pinned by
#    constraints.txt; torch's own dependencies come from PyPI here, pinned too.
set -eu

venv="${1:?usage: sh deployment/install.sh VENV}"
python="${PYTHON:-python3}"
torch_source="${TORCH_SOURCE:---index-url https://download.pytorch.org/whl/cpu}"

torch_pin=$(grep -E '^torch==' constraints.txt)
extras=$("$python" -c 'import tomllib
with open("pyproject.toml", "rb") as f:
    groups = tomllib.load(f)["project"]["optional-dependencies"]
print(",".join(sorted(g for g in groups if g != "dev")))')

"$python" -m venv "$venv"
pip="$venv/bin/pip"
# shellcheck disable=SC2086 # TORCH_SOURCE holds several arguments
"$pip" install --no-cache-dir --disable-pip-version-check --no-deps $torch_source "$torch_pin"
"$pip" install --no-cache-dir --disable-pip-version-check -c constraints.txt ".[$extras]"
"$pip" check
