#!/bin/bash
# TIPC serving chain: convert the inference model, start the Paddle Serving
# pipeline service, send the client's request(s), stop the service.
#
#   bash test_tipc/test_serving_infer_python.sh CONFIG [MODE]
#
# MODE defaults to serving_infer. Run test_tipc/prepare.sh CONFIG serving_infer
# first (it exports the model and creates the serving environment). Results go
# to test_tipc/output/<model>/<MODE>/results_serving.log in the format of
# results_python.log. The service listens on free ports picked at start (the
# ports of config.yml may be taken); TIPC_SERVING_HTTP_PORT and
# TIPC_SERVING_RPC_PORT choose them instead.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
source test_tipc/common_func.sh

func_check_args 1 "bash test_tipc/test_serving_infer_python.sh CONFIG [MODE]" "$@"
FILENAME=$1
MODE=${2:-serving_infer}

func_read_config "${FILENAME}" 18

model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
trans_model_py=$(func_parser_value "${lines[3]}")
func_parse_key_value infer_model_dir "${lines[4]}"
func_parse_key_value model_filename "${lines[5]}"
func_parse_key_value params_filename "${lines[6]}"
func_parse_key_value serving_server "${lines[7]}"
func_parse_key_value serving_client "${lines[8]}"
serving_dir_value=$(func_parser_value "${lines[9]}")
web_service_py=$(func_parser_value "${lines[10]}")
func_parse_key_value web_use_gpu "${lines[11]}" list
web_key1=$(func_parser_key "${lines[12]}")
web_value1=$(func_parser_value "${lines[12]}")
web_key2=$(func_parser_key "${lines[13]}")
web_value2=$(func_parser_value "${lines[13]}")
web_key3=$(func_parser_key "${lines[14]}")
web_value3=$(func_parser_value "${lines[14]}")
web_key4=$(func_parser_key "${lines[15]}")
web_value4=$(func_parser_value "${lines[15]}")
pipeline_py=$(func_parser_value "${lines[16]}")
func_parse_key_value image_dir "${lines[17]}"

# The service and the client run from serving_dir: paths they get (and the
# interpreter, when given as a path) are made relative to it.
LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
# absolute: steps run from serving_dir append to it too
func_open_status_log "${ROOT}/${LOG_PATH#./}/results_serving.log"
SRV_LOG_PATH=$(realpath -ms --relative-to="${serving_dir_value}" "${LOG_PATH}")
srv_python=${python}
if [[ "${python}" == */* ]]; then
    srv_python=$(realpath -ms --relative-to="${serving_dir_value}" "${python}")
fi

if ! "${python}" -c "import paddle_serving_server" >/dev/null 2>&1; then
    echo "error: ${python} has no Paddle Serving: run 'bash test_tipc/prepare.sh ${FILENAME} ${MODE}' first" \
        "(it creates deploy/serving/.env)" >&2
    exit 2
fi

# A free TCP port on 127.0.0.1 (called from serving_dir, hence srv_python).
function free_port(){
    "${srv_python}" -c "
import socket
s = socket.socket()
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1])
s.close()"
}

server_pgid=""

# Stop the service: its whole process group (Paddle Serving forks op
# processes and a Go gateway), TERM first, KILL after 15 s. 0 when gone.
function stop_server(){
    [[ -n "${server_pgid}" ]] || return 0
    kill -TERM -- "-${server_pgid}" 2>/dev/null
    local waited=0
    while kill -0 -- "-${server_pgid}" 2>/dev/null; do
        if [[ ${waited} -ge 15 ]]; then
            kill -KILL -- "-${server_pgid}" 2>/dev/null
            sleep 1
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    if kill -0 -- "-${server_pgid}" 2>/dev/null; then
        return 1
    fi
    server_pgid=""
    return 0
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# Wait until the pipeline answers a request (a deliberately empty one, which
# the op refuses with a non-zero err_no) or the server dies. 0 when ready.
function wait_ready(){
    local port=$1 timeout=$2 waited=0 reply
    while [[ ${waited} -lt ${timeout} ]]; do
        if ! kill -0 -- "-${server_pgid}" 2>/dev/null; then
            return 1
        fi
        reply=$(curl -s -m 5 -X POST -H "Content-Type: application/json" \
            -d '{"key": ["image"], "value": [""]}' "http://127.0.0.1:${port}/${model_name,,}/prediction" 2>/dev/null)
        if [[ "${reply}" == *err_no* ]]; then
            return 0
        fi
        sleep 1
        waited=$((waited + 1))
    done
    return 1
}

echo "################### ${model_name} ${MODE} ###################"

# 1. conversion to serving_server/ + serving_client/
set_dirname=$(func_set_params "${infer_model_dir_key}" "${infer_model_dir_value}")
set_model_filename=$(func_set_params "${model_filename_key}" "${model_filename_value}")
set_params_filename=$(func_set_params "${params_filename_key}" "${params_filename_value}")
set_serving_server=$(func_set_params "${serving_server_key}" "${serving_server_value}")
set_serving_client=$(func_set_params "${serving_client_key}" "${serving_client_value}")
trans_model_cmd="${python} ${trans_model_py} ${set_dirname} ${set_model_filename} ${set_params_filename} ${set_serving_server} ${set_serving_client}"
rm -rf "${serving_server_value}" "${serving_client_value}"
run_step "${trans_model_cmd}" "${LOG_PATH}/convert.log"
convert_status=$?
# model_config is read relative to config.yml, which lives in serving_dir
serving_server_rel=$(realpath -ms --relative-to="${serving_dir_value}" "${serving_server_value}")

GPU_COUNT=$(func_gpu_count "${python}")
IFS='|' read -r -a device_values <<< "${web_use_gpu_list}"

cd "${serving_dir_value}" || exit 1
for devices in "${device_values[@]}"; do
    if [[ -z "${devices}" || "${devices}" == '""' || "${devices}" == "''" || "${devices}" == "null" ]]; then
        device_label=cpu
        devices_arg='""'
    else
        device_label=gpu
        devices_arg=${devices}
    fi
    http_port=${TIPC_SERVING_HTTP_PORT:-$(free_port)}
    rpc_port=${TIPC_SERVING_RPC_PORT:-$(free_port)}
    if [[ ! "${http_port}" =~ ^[0-9]+$ || ! "${rpc_port}" =~ ^[0-9]+$ ]]; then
        echo "error: could not pick free ports with ${srv_python}" >&2
        exit 1
    fi
    for _ in 1 2 3 4 5; do
        [[ "${rpc_port}" != "${http_port}" ]] && break
        rpc_port=$(free_port)
    done

    web_args="${web_service_py} --opt ${web_use_gpu_key}=${devices_arg}"
    for pair in "${web_key1}=${web_value1}" "${web_key2}=${web_value2}" "${web_key3}=${web_value3}" "${web_key4}=${web_value4}"; do
        extra=$(func_set_params "${pair%%=*}" "${pair#*=}")
        [[ -n "${extra// /}" ]] && web_args="${web_args} ${extra}"
    done
    web_args="${web_args} op.${model_name,,}.local_service_conf.model_config=${serving_server_rel}"
    web_args="${web_args} http_port=${http_port} rpc_port=${rpc_port} --log_dir=${SRV_LOG_PATH}/serving_logs_${device_label}"
    server_log="${SRV_LOG_PATH}/server_${device_label}.log"
    read -r -a web_words <<< "${srv_python} ${web_args}"
    web_service_cmd="cd ${serving_dir_value} && setsid ${web_words[*]} > ${server_log} 2>&1 &"

    _save_log_path="${SRV_LOG_PATH}/server_infer_${device_label}_${pipeline_py%_client*}_batchsize_1.log"
    set_image_dir=$(func_set_params "${image_dir_key}" "${image_dir_value}")
    pipeline_cmd="${srv_python} ${pipeline_py} ${set_image_dir} --url=http://127.0.0.1:${http_port}/${model_name,,}/prediction --output_dir=${SRV_LOG_PATH}/results_${device_label}"
    stop_cmd="kill -TERM -- -<service process group>"

    skip_reason=""
    if [[ ${convert_status} -ne 0 ]]; then
        skip_reason="the conversion failed"
    elif [[ "${device_label}" == "gpu" && ${GPU_COUNT} -lt 1 ]]; then
        skip_reason="no GPU usable by the serving environment"
    fi
    if [[ -n "${skip_reason}" ]]; then
        status_skip "${skip_reason}" "${web_service_cmd}" "${status_log}"
        status_skip "${skip_reason}" "$(func_squeeze "${pipeline_cmd}") > ${_save_log_path} 2>&1" "${status_log}"
        status_skip "${skip_reason}" "${stop_cmd}" "${status_log}"
        continue
    fi

    # 2. start the service in its own session: its op processes can then be
    # stopped as one process group, and nothing else is signalled.
    setsid "${web_words[@]}" > "${server_log}" 2>&1 < /dev/null &
    server_pgid=$!
    # setsid runs the service as the leader of a new process group unless it
    # had to fork (caller already a group leader): then find the group.
    sleep 0.2
    pgid=$(ps -o pgid= -p "${server_pgid}" 2>/dev/null | tr -d ' ')
    if [[ -n "${pgid}" && "${pgid}" != "${server_pgid}" ]]; then
        echo "warning: service pid ${server_pgid} is in process group ${pgid}, not its own" >&2
    fi
    stop_cmd="kill -TERM -- -${server_pgid}"
    echo "service: process group ${server_pgid}, http ${http_port}, rpc ${rpc_port}, log ${server_log}"
    wait_ready "${http_port}" 120
    start_status=$?
    if [[ ${start_status} -ne 0 ]]; then
        func_show_log "${server_log}" 30
    fi
    status_check ${start_status} "${web_service_cmd}" "${status_log}"

    # 3. the client
    if [[ ${start_status} -eq 0 ]]; then
        run_step "${pipeline_cmd}" "${_save_log_path}"
    else
        status_skip "the service did not start" "$(func_squeeze "${pipeline_cmd}") > ${_save_log_path} 2>&1" "${status_log}"
    fi

    # 4. stop it
    stop_server
    status_check $? "${stop_cmd}" "${status_log}"
done
cd "${ROOT}" || exit 1

func_finish "${LOG_PATH}/results_serving.log"
