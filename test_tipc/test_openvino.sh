#!/bin/bash
# TIPC OpenVINO chain: export the lite weights as the program OpenVINO reads,
# then restore images with OpenVINO.
#
#   bash test_tipc/test_openvino.sh CONFIG [MODE]
#
# MODE defaults to openvino_infer; run test_tipc/prepare.sh CONFIG
# openvino_infer first. Results go to
# test_tipc/output/<model>/<MODE>/results_openvino.log.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source test_tipc/common_func.sh

func_check_args 1 "bash test_tipc/test_openvino.sh CONFIG [MODE]" "$@"
FILENAME=$1
MODE=${2:-openvino_infer}

func_read_config "${FILENAME}" 12
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
export_py=$(func_parser_value "${lines[3]}")
func_parse_key_value config "${lines[4]}"
func_parse_key_value weights "${lines[5]}"
func_parse_key_value save_dir "${lines[6]}"
func_parse_key_value for_openvino "${lines[7]}"
inference_py=$(func_parser_value "${lines[8]}")
func_parse_key_value model "${lines[9]}"
func_parse_key_value image_dir "${lines[10]}"
func_parse_key_value cpu_threads "${lines[11]}"

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
func_open_status_log "${LOG_PATH}/results_openvino.log"

echo "################### ${model_name} ${MODE} ###################"
rm -rf "${save_dir_value}"
if [[ $(func_squeeze "${export_py}") != "null" ]]; then
    export_cmd="${python} ${export_py} ${config_key} ${config_value} ${weights_key}=${weights_value} \
$(func_set_params "${save_dir_key}" "${save_dir_value}") $(func_set_params "${for_openvino_key}" "${for_openvino_value}")"
    run_step "${export_cmd}" "${LOG_PATH}/openvino_export.log"
fi

set_model=$(func_set_params "${model_key}" "${model_value}")
set_image_dir=$(func_set_params "${image_dir_key}" "${image_dir_value}")
set_threads=$(func_set_params "${cpu_threads_key}" "${cpu_threads_value}")
infer_model_cmd="${python} ${inference_py} ${set_model} ${set_image_dir} ${set_threads} --output_dir=${LOG_PATH}/results --benchmark=True"
run_step "${infer_model_cmd}" "${LOG_PATH}/openvino_infer_cpu.log"

func_finish
