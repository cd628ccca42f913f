#!/usr/bin/env bash
# Create (or reuse) the Paddle Serving environment in deploy/serving/.env.
#
# Paddle Serving 0.9.0 needs Python 3.8 or 3.9 (paddle-serving-client has no
# wheels for newer Pythons), so the environment is a separate venv made from
# such an interpreter: $SERVING_PYTHON if set, else python3.9 / python3.8 on
# PATH, else the newest 3.9 / 3.8 under pyenv. The environment is reused while
# it is complete and built from the current requirements.txt.
#
# Usage: bash deploy/serving/setup_env.sh [--force]
# Prints the environment's python on the last line of stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_DIR="${HERE}/.env"
REQ="${HERE}/requirements.txt"
STAMP="${ENV_DIR}/.ready"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force|--force=True|--force=true) FORCE=1 ;;
        --force=False|--force=false) FORCE=0 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "[setup_env] $*" >&2; }

# Accept an interpreter only if it really runs and is 3.8 or 3.9 (a pyenv
# shim exists on PATH even when its version cannot be selected).
usable() {
    "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info[:2] in ((3, 8), (3, 9)) else 1)' >/dev/null 2>&1
}

find_python() {
    local cand
    if [ -n "${SERVING_PYTHON:-}" ]; then
        usable "$SERVING_PYTHON" && echo "$SERVING_PYTHON"
        return
    fi
    for cand in python3.9 python3.8; do
        if command -v "$cand" >/dev/null 2>&1 && usable "$(command -v "$cand")"; then
            command -v "$cand"; return 0
        fi
    done
    local root="${PYENV_ROOT:-}"
    if [ -z "$root" ] && command -v pyenv >/dev/null 2>&1; then root="$(pyenv root 2>/dev/null || true)"; fi
    [ -z "$root" ] && root="${HOME}/.pyenv"
    for cand in $(ls -d "$root"/versions/3.9.* "$root"/versions/3.8.* 2>/dev/null | sort -t. -k2,2nr -k3,3nr); do
        if usable "$cand/bin/python"; then echo "$cand/bin/python"; return 0; fi
    done
    for cand in /usr/bin/python3.9 /usr/local/bin/python3.9 /usr/bin/python3.8 /usr/local/bin/python3.8; do
        if usable "$cand"; then echo "$cand"; return 0; fi
    done
    return 1
}

req_hash() { sha256sum "$REQ" | cut -d' ' -f1; }

is_ready() {
    [ -x "${ENV_DIR}/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(req_hash)" ]
}

# One setup at a time (run.sh and the tests may start at once).
LOCK="${TMPDIR:-/tmp}/ppmirnet-serving-env-$(echo "$ENV_DIR" | sha256sum | cut -c1-12).lock"
exec 9>"$LOCK"
flock 9

if [ "$FORCE" = 0 ] && is_ready; then
    log "reusing ${ENV_DIR}"
    echo "${ENV_DIR}/bin/python"
    exit 0
fi

if ! PY="$(find_python)"; then
    if [ -n "${SERVING_PYTHON:-}" ]; then
        echo "error: SERVING_PYTHON=$SERVING_PYTHON is not a working Python 3.8 or 3.9" >&2
        exit 3
    fi
    echo "error: Paddle Serving 0.9.0 needs Python 3.8 or 3.9 and none was found" \
         "(looked at \$SERVING_PYTHON, python3.9/python3.8 on PATH and pyenv versions);" \
         "install one, e.g. 'pyenv install 3.9.18', or set SERVING_PYTHON=/path/to/python3.9" >&2
    exit 3
fi

log "creating ${ENV_DIR} from ${PY} ($("$PY" -V 2>&1)); about 1 GB, a minute or two"
PIP_LOG="${HERE}/setup_env.log"
: > "$PIP_LOG"
rm -rf "$ENV_DIR"
run_logged() {
    if ! "$@" >>"$PIP_LOG" 2>&1; then
        tail -n 25 "$PIP_LOG" >&2
        echo "error: setting up the serving environment failed at: $*; full log: $PIP_LOG" >&2
        exit 4
    fi
}
run_logged "$PY" -m venv "$ENV_DIR"
VPY="${ENV_DIR}/bin/python"
run_logged "$VPY" -m pip install --upgrade "pip<25"
run_logged "$VPY" -m pip install -r "$REQ"
# paddle-serving-app pins an opencv-python that no longer builds; its other
# requirements are in requirements.txt, so it is installed without them.
run_logged "$VPY" -m pip install --no-deps paddle-serving-app==0.9.0
run_logged "$VPY" -c "import paddle, cv2, numpy, yaml, paddle_serving_server, paddle_serving_client, paddle_serving_app"
req_hash > "$STAMP"
log "ready: $("$VPY" -c 'import paddle, sys; print("python", sys.version.split()[0], "paddle", paddle.__version__)' 2>/dev/null)"
echo "$VPY"
