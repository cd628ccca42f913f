#!/bin/bash
# Stage what a TIPC MODE needs, under test_tipc/data/<model>/ (git-ignored):
#
#   bash test_tipc/prepare.sh CONFIG MODE
#
#   config.yaml    the training config the chain runs, as a _base_ reference to
#                  configs/mirnet_lite.yaml (lite modes) or configs/mirnet_sidd.yaml;
#                  for MIRNet_SR configs/mirnet_lite_sr.yaml or configs/mirnet_realsr_x4.yaml,
#                  for MIRNetV2 configs/mirnetv2_lite.yaml or configs/mirnetv2_sidd.yaml
#   infer_images/  the images the inference steps denoise
#   inference_model/ (serving_infer, paddle2onnx_infer) the lite model exported
#                  in both program formats (.json and the legacy .pdmodel that
#                  Paddle Serving reads)
#   deploy_images/ (serving_infer, paddle2onnx_infer, openvino_infer) the images they restore
#   deploy_weights.pdparams (openvino_infer) the lite weights the chain exports for OpenVINO
#
# Lite modes make their data locally (tools/make_lite_data.py: nothing is
# downloaded). The whole modes read the real data (data/SIDD/, or
# data/RealSR/x4/ for MIRNet_SR) and stop with a message saying what to put
# where when it is missing.
# The project's Python is "python3" on PATH unless TIPC_PYTHON names another.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source test_tipc/common_func.sh

FILENAME=$1
MODE=$2
MODES="lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer serving_infer paddle2onnx_infer openvino_infer"

if [[ $# -lt 2 ]]; then
    echo "usage: bash test_tipc/prepare.sh CONFIG MODE" >&2
    echo "MODE is one of: ${MODES}" >&2
    exit 2
fi
if [[ ! -f "${FILENAME}" ]]; then
    echo "error: config not found: ${FILENAME}" >&2
    exit 2
fi
if [[ " ${MODES} " != *" ${MODE} "* ]]; then
    echo "error: unknown MODE '${MODE}'; expected one of: ${MODES}" >&2
    exit 2
fi

model_name=$(func_parser_value "$(sed -n 2p "${FILENAME}" | tr -d '\r')")
PYTHON=${TIPC_PYTHON:-python3}
STAGE="test_tipc/data/${model_name}"

# MIRNet: denoising (lite set and SIDD); MIRNet_SR: RealSR x4 super-resolution
# (lite x4 set and RealSR version 1), the same network on another task;
# MIRNetV2: the second network on the denoising data.
SIDD_WEIGHTS=pretrained/mirnet_sidd.pdparams
SIDD_CHECKPOINT=model_denoising.pth
case ${model_name} in
    MIRNet_SR)
        LITE_DATA=data/lite_sr_x4
        LITE_DATA_ARGS="--task=sr --scale=4"
        LITE_CONFIG=configs/mirnet_lite_sr.yaml
        WHOLE_CONFIG=configs/mirnet_realsr_x4.yaml
        ;;
    MIRNetV2)
        LITE_DATA=data/lite
        LITE_DATA_ARGS=""
        LITE_CONFIG=configs/mirnetv2_lite.yaml
        WHOLE_CONFIG=configs/mirnetv2_sidd.yaml
        SIDD_WEIGHTS=pretrained/mirnetv2_sidd.pdparams
        SIDD_CHECKPOINT=real_denoising.pth
        ;;
    *)
        LITE_DATA=data/lite
        LITE_DATA_ARGS=""
        LITE_CONFIG=configs/mirnet_lite.yaml
        WHOLE_CONFIG=configs/mirnet_sidd.yaml
        ;;
esac
SIDD_TRAIN=data/SIDD/train
SIDD_VAL=data/SIDD/val
REALSR_TRAIN=data/RealSR/x4/train
REALSR_TEST=data/RealSR/x4/test
REALSR_WEIGHTS=pretrained/mirnet_realsr_x4.pdparams
# Images per folder the lite inference and serving steps use: a few keep the
# chain quick on CPU.
LITE_INFER_IMAGES=2

function die(){
    echo "error: $*" >&2
    exit 1
}

function require_python(){
    if ! ${PYTHON} -c "import paddle, ppmirnet" >/dev/null 2>&1; then
        die "'${PYTHON}' cannot import paddle and ppmirnet: activate the project environment" \
            "(e.g. 'source .venv/bin/activate') or set TIPC_PYTHON to its python"
    fi
}

function make_lite_data(){
    if [[ -d ${LITE_DATA}/train/input && -d ${LITE_DATA}/val/input ]] \
        && [[ -n "$(ls -A ${LITE_DATA}/train/input 2>/dev/null)" ]]; then
        echo "lite data: ${LITE_DATA} (already there)"
        return
    fi
    echo "lite data: generating ${LITE_DATA}"
    ${PYTHON} tools/make_lite_data.py --out=${LITE_DATA} ${LITE_DATA_ARGS} \
        || die "tools/make_lite_data.py failed"
}

# The staged config only points at the real one (_base_ is read relative to
# the file naming it), so the chain runs exactly what users run.
function stage_config(){
    local src=$1
    [[ -f "${src}" ]] || die "training config not found: ${src}"
    mkdir -p "${STAGE}"
    {
        echo "# Written by test_tipc/prepare.sh for ${MODE}: the TIPC chain trains, evaluates"
        echo "# and exports with ${src}."
        echo "_base_: $(realpath -ms --relative-to="${STAGE}" "${src}")"
    } > "${STAGE}/config.yaml"
    echo "config: ${STAGE}/config.yaml -> ${src}"
}

# Copy the first N images of folder SRC into DST (emptied first).
function stage_images(){
    local src=$1 dst=$2 count=$3
    local files
    mapfile -t files < <(find "${src}" -maxdepth 1 -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.bmp' -o -iname '*.tif' -o -iname '*.tiff' \) | sort | head -n "${count}")
    [[ ${#files[@]} -gt 0 ]] || die "no images in ${src}"
    rm -rf "${dst}"
    mkdir -p "${dst}"
    cp "${files[@]}" "${dst}/"
    echo "images: ${#files[@]} from ${src} -> ${dst}"
}

function check_sidd_val(){
    if [[ ! -f ${SIDD_VAL}/ValidationNoisyBlocksSrgb.mat || ! -f ${SIDD_VAL}/ValidationGtBlocksSrgb.mat ]]; then
        die "the SIDD validation blocks are missing. Put ValidationNoisyBlocksSrgb.mat and" \
            "ValidationGtBlocksSrgb.mat (from the SIDD site, sRGB validation data) in ${SIDD_VAL}/"
    fi
}

function check_sidd_train(){
    if [[ -z "$(ls -A ${SIDD_TRAIN}/input 2>/dev/null)" || -z "$(ls -A ${SIDD_TRAIN}/groundtruth 2>/dev/null)" ]]; then
        die "the SIDD training patches are missing. Download SIDD-Medium (sRGB) and cut it into" \
            "patches with 'python tools/prepare_sidd.py' so that ${SIDD_TRAIN}/input/ and" \
            "${SIDD_TRAIN}/groundtruth/ hold the noisy and clean patches under the same names"
    fi
}

function check_sidd_weights(){
    if [[ ! -f ${SIDD_WEIGHTS} ]]; then
        die "the trained ${model_name} weights are missing: convert the official SIDD checkpoint with" \
            "'python tools/convert_weights.py --src ${SIDD_CHECKPOINT} --dst ${SIDD_WEIGHTS}'"
    fi
}

function check_realsr_test(){
    if [[ -z "$(ls -A ${REALSR_TEST}/input 2>/dev/null)" || -z "$(ls -A ${REALSR_TEST}/groundtruth 2>/dev/null)" ]]; then
        die "the RealSR x4 test pairs are missing. Download RealSR version 1 and run" \
            "'python tools/prepare_data.py --dataset realsr --scale 4 --split Test --src RealSR_V1" \
            "--out ${REALSR_TEST} --whole' (${REALSR_TEST}/input/ and ${REALSR_TEST}/groundtruth/)"
    fi
}

function check_realsr_train(){
    if [[ -z "$(ls -A ${REALSR_TRAIN}/input 2>/dev/null)" ]]; then
        die "the RealSR x4 training patches are missing: run 'python tools/prepare_data.py" \
            "--dataset realsr --scale 4 --src RealSR_V1 --out ${REALSR_TRAIN}'"
    fi
}

function check_realsr_weights(){
    if [[ ! -f ${REALSR_WEIGHTS} ]]; then
        die "the trained MIRNet x4 weights are missing: convert the official checkpoint with" \
            "'python tools/convert_weights.py --src model_SR_x4.pth --dst ${REALSR_WEIGHTS}'"
    fi
}

# The data each whole mode needs, per task.
function check_whole_eval(){
    if [[ ${model_name} == MIRNet_SR ]]; then check_realsr_test; else check_sidd_val; fi
}
function check_whole_train(){
    if [[ ${model_name} == MIRNet_SR ]]; then check_realsr_train; else check_sidd_train; fi
}
function check_whole_weights(){
    if [[ ${model_name} == MIRNet_SR ]]; then check_realsr_weights; else check_sidd_weights; fi
}
function stage_whole_infer_images(){
    if [[ ${model_name} == MIRNet_SR ]]; then
        stage_images ${REALSR_TEST}/input "${STAGE}/infer_images" 1000
    else
        stage_sidd_infer_images
    fi
}

# One noisy block per SIDD validation image (40 PNGs) for the whole inference.
function stage_sidd_infer_images(){
    local dst="${STAGE}/infer_images"
    rm -rf "${dst}"
    ${PYTHON} test_tipc/sidd_blocks_to_png.py --mat=${SIDD_VAL}/ValidationNoisyBlocksSrgb.mat \
        --out_dir="${dst}" --blocks_per_image=1 || die "could not read the SIDD validation blocks"
}

# An inference model in both program formats for the deployment chains, from
# the weights of the lite chain when it ran, else from a one-epoch lite training.
# Sets "weights": the lite chain's weights, or the lite model trained for one epoch.
function find_deploy_weights(){
    weights="test_tipc/output/${model_name}/lite_train_lite_infer/norm_train_gpus_-1_autocast_null/latest"
    if [[ ! -f "${weights}.pdparams" ]]; then
        local train_dir="${STAGE}/deploy_train"
        weights="${train_dir}/latest"
        [[ -f "${weights}.pdparams" ]] && return
        echo "inference model: no lite chain weights, training the lite model for one epoch"
        ${PYTHON} tools/train.py -c configs/mirnet_lite.yaml -o Global.device=cpu -o Global.epochs=1 \
            -o Global.output_dir="${train_dir}" > "${STAGE}/deploy_train.log" 2>&1 \
            || { tail -n 20 "${STAGE}/deploy_train.log"; die "lite training for the inference model failed"; }
    fi
}

function stage_deploy_weights(){
    local weights
    find_deploy_weights
    cp "${weights}.pdparams" "${STAGE}/deploy_weights.pdparams" || die "cannot copy ${weights}.pdparams"
    echo "deploy weights: ${weights}.pdparams -> ${STAGE}/deploy_weights.pdparams"
}

function stage_deploy_model(){
    local weights
    find_deploy_weights
    if [[ -f "${STAGE}/inference_model/inference.pdmodel" \
        && "${STAGE}/inference_model/inference.pdmodel" -nt "${weights}.pdparams" ]]; then
        echo "inference model: ${STAGE}/inference_model (already exported from ${weights})"
        return
    fi
    rm -rf "${STAGE}/inference_model"
    ${PYTHON} tools/export_model.py -c configs/mirnet_lite.yaml -o Global.pretrained_model="${weights}" \
        --save_dir="${STAGE}/inference_model" --legacy_format > "${STAGE}/deploy_export.log" 2>&1 \
        || { tail -n 20 "${STAGE}/deploy_export.log"; die "export of the inference model failed"; }
    [[ -f "${STAGE}/inference_model/inference.pdmodel" ]] \
        || die "export wrote no ${STAGE}/inference_model/inference.pdmodel"
    echo "inference model: ${weights} -> ${STAGE}/inference_model"
}

# setup_env.sh reuses a complete environment in seconds and builds one
# (about a minute, 1 GB) otherwise.
function ensure_serving_env(){
    echo "serving environment: deploy/serving/.env (bash deploy/serving/setup_env.sh)"
    bash deploy/serving/setup_env.sh > /dev/null || die "deploy/serving/setup_env.sh failed"
}

require_python
case ${MODE} in
    lite_train_lite_infer)
        make_lite_data
        stage_config ${LITE_CONFIG}
        stage_images ${LITE_DATA}/val/input "${STAGE}/infer_images" ${LITE_INFER_IMAGES}
        ;;
    lite_train_whole_infer)
        check_whole_eval
        make_lite_data
        stage_config ${LITE_CONFIG}
        stage_whole_infer_images
        ;;
    whole_infer)
        check_whole_eval
        check_whole_weights
        stage_config ${WHOLE_CONFIG}
        stage_whole_infer_images
        ;;
    whole_train_whole_infer)
        check_whole_train
        check_whole_eval
        stage_config ${WHOLE_CONFIG}
        stage_whole_infer_images
        ;;
    serving_infer)
        make_lite_data
        mkdir -p "${STAGE}"
        stage_images ${LITE_DATA}/val/input "${STAGE}/deploy_images" ${LITE_INFER_IMAGES}
        stage_deploy_model
        ensure_serving_env
        ;;
    paddle2onnx_infer)
        make_lite_data
        mkdir -p "${STAGE}"
        stage_images ${LITE_DATA}/val/input "${STAGE}/deploy_images" ${LITE_INFER_IMAGES}
        stage_deploy_model
        ;;
    openvino_infer)
        make_lite_data
        mkdir -p "${STAGE}"
        stage_images ${LITE_DATA}/val/input "${STAGE}/deploy_images" ${LITE_INFER_IMAGES}
        stage_deploy_weights
        ;;
esac
case ${MODE} in
    serving_infer|paddle2onnx_infer|openvino_infer) ;;
    # test_train_inference_python.sh checks it runs the mode staged here
    *) echo "${MODE}" > "${STAGE}/prepared_train_mode" ;;
esac
echo "prepared ${MODE} in ${STAGE}"
