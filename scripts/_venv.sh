# Shared by the two README commands: make .venv and install a requirements file into it.
# Usage: source scripts/_venv.sh <requirements-file>
#
# Prints one line per step; pip itself only speaks on errors (-qq), so the set-up reads
# as steps rather than pages of build-backend notices.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${FORGE_VENV:-$ROOT/.venv}"
setup_started=$(date +%s)
step() { printf '==> %s\n' "$*"; }
if [ ! -x "$VENV/bin/python" ]; then
    step "creating the virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -qq)
step "upgrading pip and setuptools"
"${PIP[@]}" install --upgrade pip setuptools
if grep -qs '^torch' "$ROOT/requirements/torch.txt" 2>/dev/null; then
    # torch first and pinned: the CPU build, never an unpinned multi-GB CUDA one.
    step "installing $(grep '^torch' "$ROOT/requirements/torch.txt") (requirements/torch.txt)"
    "${PIP[@]}" install -r "$ROOT/requirements/torch.txt"
fi
# llama.cpp is compiled by pip (llama-cpp-python): build it for portable x86-64 (AVX2)
# rather than -march=native, whose AMX repacking crashes on some virtual machines, and
# only the libraries the bindings load: without the multimodal (mtmd/llava) library and
# without llama.cpp's "common" helpers (scripts/llama_cpp_libraries_only.cmake).
# 209 s instead of 527 s on the 2-core machine.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_INCLUDE='$ROOT/scripts/llama_cpp_libraries_only.cmake'}"
requirements_name="$(basename "$(dirname "$1")")/$(basename "$1")"
if "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    step "installing $requirements_name"
else
    # pip's wheel cache ignores CMAKE_ARGS: never reuse a llama.cpp wheel built another way.
    "${PIP[@]}" cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
    step "installing $requirements_name (pip compiles llama.cpp: about 4 minutes on 2 cores)"
fi
"${PIP[@]}" install -r "$1"
step "set-up done in $(( $(date +%s) - setup_started )) s"
export PATH="$VENV/bin:$PATH"
