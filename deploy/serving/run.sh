#!/usr/bin/env bash
# Start or stop the MIRNet denoising service (Paddle Serving pipeline).
#
#   bash deploy/serving/run.sh start --model_dir=DIR [--port=18080] [--rpc_port=PORT]
#                                    [--host=127.0.0.1] [--devices=""] [--run_dir=DIR] [--netns=False]
#                                    [--timeout=300] [--opt=KEY=VALUE ...]
#   bash deploy/serving/run.sh stop   [--run_dir=DIR]
#   bash deploy/serving/run.sh status [--run_dir=DIR]
#
# start: creates the serving environment if missing (setup_env.sh), converts
#   the exported model (DIR with inference.pdmodel + inference.pdiparams) into
#   RUN_DIR/serving_server unless that conversion is already up to date, starts
#   web_service.py in its own session in the background and returns once the
#   service answers on http://HOST:PORT/mirnet/prediction. Both ports listen
#   on --host only (default 127.0.0.1; 0.0.0.0: every interface).
#   --netns=True runs it in a private network namespace (unshare -n): only
#   processes entered into it (nsenter --net=/proc/PID/ns/net) can reach it.
#   --opt overrides a key of config.yml (repeatable), e.g.
#   --opt=op.mirnet.processing.tile=256.
# stop: terminates the service's whole process group and waits until nothing
#   of it is left.
# RUN_DIR (default deploy/serving/output) keeps the converted model, the pid
#   file, server.log and Paddle Serving's PipelineServingLogs/.
set -euo pipefail
set +m  # no job control: the background service is not made a group leader here

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "error: $*" >&2; exit 1; }
log() { echo "[run.sh] $*" >&2; }

is_true() {
    case "$(echo "$1" | tr '[:upper:]' '[:lower:]')" in
        true|1|yes|y|on) return 0 ;;
        false|0|no|n|off|none|null|"") return 1 ;;
        *) die "expected True or False, got '$1'" ;;
    esac
}

ACTION="${1:-}"
[ -n "$ACTION" ] || { usage >&2; exit 2; }
shift
MODEL_DIR=""
PORT=18080
HOST=127.0.0.1
RPC_PORT=""
DEVICES=""
RUN_DIR="${HERE}/output"
NETNS=False
TIMEOUT=300
OPTS=()
while [ $# -gt 0 ]; do
    arg="$1"; shift
    case "$arg" in
        --*=*) key="${arg%%=*}"; val="${arg#*=}" ;;
        --*) key="$arg"; [ $# -gt 0 ] || die "flag $arg needs a value"; val="$1"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unexpected argument: $arg" ;;
    esac
    case "$key" in
        --model_dir) MODEL_DIR="$val" ;;
        --host) HOST="$val" ;;
        --port) PORT="$val" ;;
        --rpc_port) RPC_PORT="$val" ;;
        --devices) DEVICES="$val" ;;
        --run_dir) RUN_DIR="$val" ;;
        --netns) NETNS="$val" ;;
        --timeout) TIMEOUT="$val" ;;
        --opt) OPTS+=("$val") ;;
        --help) usage; exit 0 ;;
        *) die "unknown flag: $key (see: bash $0 --help)" ;;
    esac
done
for n in "$PORT" "$TIMEOUT" ${RPC_PORT:+"$RPC_PORT"}; do
    [[ "$n" =~ ^[0-9]+$ ]] || die "not a number: $n"
done
[ -n "$RPC_PORT" ] || RPC_PORT=$((PORT + 5))
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
PID_FILE="${RUN_DIR}/server.pid"
LOG_FILE="${RUN_DIR}/server.log"

# Process group of the running service, or nothing.
running_pgid() {
    [ -f "$PID_FILE" ] || return 1
    local pgid
    pgid="$(cat "$PID_FILE")"
    [[ "$pgid" =~ ^[0-9]+$ ]] || return 1
    pgrep -g "$pgid" >/dev/null 2>&1 || return 1
    echo "$pgid"
}

do_stop() {
    local pgid i
    if ! pgid="$(running_pgid)"; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    kill -TERM -- "-${pgid}" 2>/dev/null || true
    for i in $(seq 1 100); do
        pgrep -g "$pgid" >/dev/null 2>&1 || break
        sleep 0.1
    done
    if pgrep -g "$pgid" >/dev/null 2>&1; then
        log "still running after SIGTERM; sending SIGKILL to process group ${pgid}"
        kill -KILL -- "-${pgid}" 2>/dev/null || true
        for i in $(seq 1 50); do
            pgrep -g "$pgid" >/dev/null 2>&1 || break
            sleep 0.1
        done
    fi
    pgrep -g "$pgid" >/dev/null 2>&1 && die "process group ${pgid} did not stop"
    rm -f "$PID_FILE"
    log "stopped (process group ${pgid})"
}

# Fingerprint of the exported model, to convert again only when it changed.
model_stamp() {
    (cd "$MODEL_DIR" && sha256sum inference.pdmodel inference.pdiparams)
}

# Where a client on this machine reaches the service.
url_host() {
    case "$HOST" in
        0.0.0.0|::) echo 127.0.0.1 ;;
        *:*) echo "[${HOST}]" ;;
        *) echo "$HOST" ;;
    esac
}

# One request that only a fully started service answers with err_no 5001
# (empty image): it has passed the gateway, the pipeline and the op.
probe() {
    local enter=()
    if is_true "$NETNS"; then enter=(nsenter "--net=/proc/$1/ns/net"); fi
    "${enter[@]}" "$PY" - "$PORT" "$(url_host)" <<'EOF' >/dev/null 2>&1
import json, sys, urllib.request
req = urllib.request.Request(
    "http://%s:%s/mirnet/prediction" % (sys.argv[2], sys.argv[1]),
    data=json.dumps({"key": ["image"], "value": [""]}).encode(),
    headers={"Content-Type": "application/json"})
reply = json.loads(urllib.request.urlopen(req, timeout=5).read())
sys.exit(0 if reply.get("err_no") == 5001 else 1)
EOF
}

do_start() {
    [ -n "$MODEL_DIR" ] || die "start needs --model_dir=<exported inference model folder>"
    [ -d "$MODEL_DIR" ] || die "model folder not found: $MODEL_DIR"
    MODEL_DIR="$(cd "$MODEL_DIR" && pwd)"
    for f in inference.pdmodel inference.pdiparams; do
        [ -f "${MODEL_DIR}/$f" ] || die "${MODEL_DIR}/$f not found (Paddle Serving needs the legacy program: export with legacy_format=True)"
    done
    local pgid
    if pgid="$(running_pgid)"; then
        die "already running (process group ${pgid}, ${PID_FILE}); stop it first: bash $0 stop --run_dir=${RUN_DIR}"
    fi
    PY="$(bash "${HERE}/setup_env.sh" | tail -n 1)"
    [ -x "$PY" ] || die "the serving environment could not be set up"

    local server="${RUN_DIR}/serving_server" stamp="${RUN_DIR}/serving_server.source"
    if [ -f "${server}/serving_server_conf.prototxt" ] && [ -f "$stamp" ] && \
       [ "$(cat "$stamp")" = "$(model_stamp)" ]; then
        log "model already converted: ${server}"
    else
        log "converting ${MODEL_DIR} -> ${server}"
        rm -f "$stamp"
        GLOG_minloglevel=2 "$PY" "${HERE}/convert.py" --dirname="$MODEL_DIR" \
            --model_filename=inference.pdmodel --params_filename=inference.pdiparams \
            --serving_server="$server" --serving_client="${RUN_DIR}/serving_client" >&2
        model_stamp > "$stamp"
    fi

    local cmd=("$PY" "${HERE}/web_service.py" --config="${HERE}/config.yml" --log_dir="$RUN_DIR"
               --opt "host=${HOST}" "http_port=${PORT}" "rpc_port=${RPC_PORT}"
               "op.mirnet.local_service_conf.model_config=${server}"
               "op.mirnet.local_service_conf.devices=${DEVICES}" ${OPTS[@]+"${OPTS[@]}"})
    if is_true "$NETNS"; then
        unshare -n true 2>/dev/null || die "--netns=True needs 'unshare -n' (root or user namespaces)"
        command -v ip >/dev/null || die "--netns=True needs the 'ip' command to bring up loopback"
        cmd=(unshare -n sh -c 'ip link set lo up && exec "$@"' sh "${cmd[@]}")
    fi
    # Own session and process group: stop kills all of it, and LocalPredictor
    # (which kills its process group when a predictor cannot be created)
    # cannot take the caller down.
    GLOG_minloglevel="${GLOG_minloglevel:-2}" setsid "${cmd[@]}" </dev/null >"$LOG_FILE" 2>&1 &
    local pid=$!
    echo "$pid" > "$PID_FILE"
    log "starting (pid ${pid}, log ${LOG_FILE})"

    local deadline=$((SECONDS + TIMEOUT))
    until probe "$pid"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG_FILE" >&2 || true
            do_stop
            die "the service exited while starting; log: ${LOG_FILE}"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$LOG_FILE" >&2 || true
            do_stop
            die "the service did not answer within ${TIMEOUT} s; log: ${LOG_FILE}"
        fi
        sleep 0.5
    done
    local where="listening on ${HOST} only"
    case "$HOST" in 0.0.0.0|::) where="listening on all interfaces" ;; esac
    where="${where}: HTTP ${PORT}, gRPC ${RPC_PORT}"
    is_true "$NETNS" && where="${where}; in the network namespace of pid ${pid}"
    echo "mirnet service ready: http://$(url_host):${PORT}/mirnet/prediction (${where}; pid ${pid}; log ${LOG_FILE})"
}

case "$ACTION" in
    start) do_start ;;
    stop) do_stop ;;
    status)
        if pgid="$(running_pgid)"; then echo "running (process group ${pgid})"; else echo "not running"; exit 3; fi ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
