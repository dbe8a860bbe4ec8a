#!/usr/bin/env bash
# Print the path of a working Python interpreter named $1 (python3, python3.12,
# /opt/python/bin/python3.13, ...), or exit 1 with a message on stderr.
# A pyenv shim that exists but is not selected (pyenv's "command not found")
# does not count; then the newest matching pyenv version is used, as
# `PYENV_VERSION=3.12.1 pyenv which python3.12` would.
set -u
name=${1:-python3}
works() { "$1" -c 'import sys, venv' >/dev/null 2>&1; }
if path=$(command -v "$name" 2>/dev/null) && works "$path"; then
    if [[ $path == */.pyenv/shims/* ]]; then
        # resolve the shim, so the venv keeps working if pyenv's selection changes
        real=$(pyenv which "$name" 2>/dev/null) && path=$real
    fi
    echo "$path"; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    minor=${name##*/}; minor=${minor#python}
    for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${minor//./\\.}(\.|$)" | sort -V -r); do
        if path=$(PYENV_VERSION=$v pyenv which "${name##*/}" 2>/dev/null) && works "$path"; then
            echo "$path"; exit 0
        fi
    done
fi
echo "find_python.sh: no working '$name' (not on PATH, nor a pyenv version)." \
     "Install it, or pass PYTHON=/path/to/python3.X" >&2
exit 1
