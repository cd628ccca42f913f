#!/bin/bash
# CI driver for TIPC on a CPU machine: the lite train -> infer chains (MIRNet
# on denoising and super-resolution, MIRNet-v2 on denoising), the serving
# chain, the ONNX chain and the OpenVINO chain, each checked against the
# steps its config lists.
#
#   bash test_tipc/ci.sh [lite|serving|onnx|openvino|all]      (default: all)
#
# Uses the project's environment (.venv/bin first on PATH when it exists).
# Fails (exit 1) if preparation fails, if any step says "Run failed", or if
# fewer "Run successfully" lines were written than the config implies for CPU.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
WHAT=${1:-all}
case ${WHAT} in
    lite|serving|onnx|openvino|all) ;;
    *) echo "usage: bash test_tipc/ci.sh [lite|serving|onnx|openvino|all]" >&2; exit 2 ;;
esac

if [[ -x "${ROOT}/.venv/bin/python" ]]; then
    export PATH="${ROOT}/.venv/bin:${PATH}"
fi
export GLOG_minloglevel=${GLOG_minloglevel:-2}

TRAIN_CONFIG=test_tipc/configs/MIRNet/train_infer_python.txt
SR_TRAIN_CONFIG=test_tipc/configs/MIRNet_SR/train_infer_python.txt
V2_TRAIN_CONFIG=test_tipc/configs/MIRNetV2/train_infer_python.txt
SERVING_CONFIG=test_tipc/configs/MIRNet/serving_infer_python.txt
ONNX_CONFIG=test_tipc/configs/MIRNet/paddle2onnx_infer_python.txt
OPENVINO_CONFIG=test_tipc/configs/MIRNet/openvino_infer_python.txt
OUT=test_tipc/output/MIRNet
SR_OUT=test_tipc/output/MIRNet_SR
V2_OUT=test_tipc/output/MIRNetV2
status=0
summary=()

# run_chain NAME CONFIG MODE TEST_SCRIPT RESULTS_LOG [CHECK_ARGS...]
function run_chain(){
    local name=$1 config=$2 mode=$3 script=$4 log=$5
    shift 5
    local start=${SECONDS}
    echo "=============== TIPC ${name}: ${mode} ==============="
    local out_dir label=""
    out_dir=$(dirname "${log}")
    rm -rf "${out_dir:?}"
    # Chains of another model than MIRNet say whose they are in the summary.
    [[ ${config} == */MIRNet/* ]] || label="$(basename "$(dirname "${config}")") "
    if ! bash test_tipc/prepare.sh "${config}" "${mode}"; then
        summary+=("${label}${mode}: prepare.sh failed -> FAIL")
        status=1
        return
    fi
    bash "${script}" "${config}" "${mode}"
    local result
    result=$(python3 test_tipc/check_results.py --config "${config}" --mode "${mode}" --log "${log}" "$@")
    local ok=$?
    summary+=("${label}${result//$'\n'/; } ($((SECONDS - start)) s)")
    if [[ ${ok} -ne 0 ]]; then
        status=1
        grep "^Run failed" "${log}" 2>/dev/null
    fi
}

if [[ ${WHAT} == lite || ${WHAT} == all ]]; then
    run_chain lite "${TRAIN_CONFIG}" lite_train_lite_infer test_tipc/test_train_inference_python.sh \
        "${OUT}/lite_train_lite_infer/results_python.log" \
        --train_log="${OUT}/lite_train_lite_infer/norm_train_gpus_-1_autocast_null_train.log"
    # The same chain on the super-resolution task (lite x4 set, RealSR protocol).
    run_chain lite_sr "${SR_TRAIN_CONFIG}" lite_train_lite_infer test_tipc/test_train_inference_python.sh \
        "${SR_OUT}/lite_train_lite_infer/results_python.log" \
        --train_log="${SR_OUT}/lite_train_lite_infer/norm_train_gpus_-1_autocast_null_train.log"
    # The second network, MIRNet-v2, on the lite denoising set (its lite
    # recipe, stopped after its first logged iterations).
    run_chain lite_v2 "${V2_TRAIN_CONFIG}" lite_train_lite_infer test_tipc/test_train_inference_python.sh \
        "${V2_OUT}/lite_train_lite_infer/results_python.log" \
        --train_log="${V2_OUT}/lite_train_lite_infer/norm_train_gpus_-1_autocast_null_train.log"
fi
if [[ ${WHAT} == serving || ${WHAT} == all ]]; then
    run_chain serving "${SERVING_CONFIG}" serving_infer test_tipc/test_serving_infer_python.sh \
        "${OUT}/serving_infer/results_serving.log"
fi
if [[ ${WHAT} == onnx || ${WHAT} == all ]]; then
    run_chain onnx "${ONNX_CONFIG}" paddle2onnx_infer test_tipc/test_paddle2onnx.sh \
        "${OUT}/paddle2onnx_infer/results_paddle2onnx.log"
fi
if [[ ${WHAT} == openvino || ${WHAT} == all ]]; then
    run_chain openvino "${OPENVINO_CONFIG}" openvino_infer test_tipc/test_openvino.sh \
        "${OUT}/openvino_infer/results_openvino.log"
fi

echo "=============== TIPC summary ==============="
printf '%s\n' "${summary[@]}"
exit ${status}
