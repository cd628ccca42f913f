#!/bin/bash
# TIPC ONNX chain: convert the inference model with paddle2onnx, then restore
# images with onnxruntime.
#
#   bash test_tipc/test_paddle2onnx.sh CONFIG [MODE]
#
# MODE defaults to paddle2onnx_infer; run test_tipc/prepare.sh CONFIG
# paddle2onnx_infer first. Results go to
# test_tipc/output/<model>/<MODE>/results_paddle2onnx.log.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source test_tipc/common_func.sh

func_check_args 1 "bash test_tipc/test_paddle2onnx.sh CONFIG [MODE]" "$@"
FILENAME=$1
MODE=${2:-paddle2onnx_infer}

func_read_config "${FILENAME}" 13
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
paddle2onnx_cmd=$(func_parser_value "${lines[3]}")
func_parse_key_value infer_model_dir "${lines[4]}"
func_parse_key_value model_filename "${lines[5]}"
func_parse_key_value params_filename "${lines[6]}"
func_parse_key_value save_file "${lines[7]}"
func_parse_key_value opset_version "${lines[8]}"
func_parse_key_value enable_onnx_checker "${lines[9]}"
inference_py=$(func_parser_value "${lines[10]}")
func_parse_key_value onnx_file "${lines[11]}"
func_parse_key_value image_dir "${lines[12]}"

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
func_open_status_log "${LOG_PATH}/results_paddle2onnx.log"

echo "################### ${model_name} ${MODE} ###################"
# A converter given as a script runs under the config's python; a command
# (e.g. the paddle2onnx CLI) runs as it is.
if [[ "${paddle2onnx_cmd}" == *.py ]]; then
    paddle2onnx_cmd="${python} ${paddle2onnx_cmd}"
fi
set_dirname=$(func_set_params "${infer_model_dir_key}" "${infer_model_dir_value}")
set_model_filename=$(func_set_params "${model_filename_key}" "${model_filename_value}")
set_params_filename=$(func_set_params "${params_filename_key}" "${params_filename_value}")
set_save_model=$(func_set_params "${save_file_key}" "${save_file_value}")
set_opset_version=$(func_set_params "${opset_version_key}" "${opset_version_value}")
set_enable_onnx_checker=$(func_set_params "${enable_onnx_checker_key}" "${enable_onnx_checker_value}")
rm -f "${save_file_value}"
trans_model_cmd="${paddle2onnx_cmd} ${set_dirname} ${set_model_filename} ${set_params_filename} ${set_save_model} ${set_opset_version} ${set_enable_onnx_checker}"
run_step "${trans_model_cmd}" "${LOG_PATH}/paddle2onnx_convert.log"

set_onnx_file=$(func_set_params "${onnx_file_key}" "${onnx_file_value}")
set_image_dir=$(func_set_params "${image_dir_key}" "${image_dir_value}")
infer_model_cmd="${python} ${inference_py} ${set_onnx_file} ${set_image_dir} --output_dir=${LOG_PATH}/results --benchmark=True"
run_step "${infer_model_cmd}" "${LOG_PATH}/paddle2onnx_infer_cpu.log"

func_finish
