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

FILENAME=$1
MODE=${2:-paddle2onnx_infer}
if [[ $# -lt 1 ]]; then
    echo "usage: bash test_tipc/test_paddle2onnx.sh CONFIG [MODE]" >&2
    exit 2
fi
if [[ ! -f "${FILENAME}" ]]; then
    echo "error: config not found: ${FILENAME}" >&2
    exit 2
fi

mapfile -t lines < <(sed -n '1,13p' "${FILENAME}" | tr -d '\r')
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
paddle2onnx_cmd=$(func_parser_value "${lines[3]}")
infer_model_dir_key=$(func_parser_key "${lines[4]}")
infer_model_dir_value=$(func_parser_value "${lines[4]}")
model_filename_key=$(func_parser_key "${lines[5]}")
model_filename_value=$(func_parser_value "${lines[5]}")
params_filename_key=$(func_parser_key "${lines[6]}")
params_filename_value=$(func_parser_value "${lines[6]}")
save_file_key=$(func_parser_key "${lines[7]}")
save_file_value=$(func_parser_value "${lines[7]}")
opset_version_key=$(func_parser_key "${lines[8]}")
opset_version_value=$(func_parser_value "${lines[8]}")
enable_onnx_checker_key=$(func_parser_key "${lines[9]}")
enable_onnx_checker_value=$(func_parser_value "${lines[9]}")
inference_py=$(func_parser_value "${lines[10]}")
onnx_file_key=$(func_parser_key "${lines[11]}")
onnx_file_value=$(func_parser_value "${lines[11]}")
image_dir_key=$(func_parser_key "${lines[12]}")
image_dir_value=$(func_parser_value "${lines[12]}")

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
status_log="${LOG_PATH}/results_paddle2onnx.log"
[[ -f "${status_log}" ]] || : > "${status_log}"
failed_before=$(grep -c "Run failed" "${status_log}")

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

failed_after=$(grep -c "Run failed" "${status_log}")
echo "results: ${status_log}"
if [[ ${failed_after} -gt ${failed_before} ]]; then
    echo "$((failed_after - failed_before)) step(s) failed"
    exit 1
fi
exit 0
