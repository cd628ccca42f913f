#!/bin/bash
# TIPC basic chain: train -> eval -> export -> Paddle Inference grid.
#
#   bash test_tipc/test_train_inference_python.sh CONFIG MODE [GPU_ID]
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_infer |
#       whole_train_whole_infer. Run test_tipc/prepare.sh CONFIG MODE first.
# Every step appends "Run successfully with command - ...!" or
# "Run failed with command - ...!" to test_tipc/output/<model>/<MODE>/results_python.log;
# a step this machine cannot run (GPU, several cards, TensorRT) appends
# "Run skipped (<reason>) with command - ...!" instead. The exit status is 1
# when a step failed.

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
source test_tipc/common_func.sh

FILENAME=$1
MODE=$2
GPUID=$3

MODES="lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer"
func_check_args 2 "bash test_tipc/test_train_inference_python.sh CONFIG MODE [GPU_ID]
MODE is one of: ${MODES}" "$@"
if [[ " ${MODES} " != *" ${MODE} "* ]]; then
    echo "error: unknown MODE '${MODE}'; expected one of: ${MODES}" >&2
    exit 2
fi

# Lines are read by number (0-based below).
func_read_config "${FILENAME}" 51

# train params
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
gpu_list=$(func_parser_value "${lines[3]}")
func_parse_key_value train_use_gpu "${lines[4]}"
func_parse_key_value autocast "${lines[5]}" list
epoch_key=$(func_parser_key "${lines[6]}")
epoch_num=$(func_parser_params "${lines[6]}" "${MODE}")
save_model_key=$(func_parser_key "${lines[7]}")
train_batch_key=$(func_parser_key "${lines[8]}")
train_batch_value=$(func_parser_params "${lines[8]}" "${MODE}")
func_parse_key_value pretrain_model "${lines[9]}"
train_model_name=$(func_parser_value "${lines[10]}")
train_infer_img_dir=$(func_parser_value "${lines[11]}")
train_param_key1=$(func_parser_key "${lines[12]}")
train_param_value1=$(func_parser_value "${lines[12]}")

trainer_list=$(func_parser_value "${lines[14]}")
trainer_norm=$(func_parser_key "${lines[15]}")
norm_trainer=$(func_parser_value "${lines[15]}")
pact_key=$(func_parser_key "${lines[16]}")
pact_trainer=$(func_parser_value "${lines[16]}")
fpgm_key=$(func_parser_key "${lines[17]}")
fpgm_trainer=$(func_parser_value "${lines[17]}")
distill_key=$(func_parser_key "${lines[18]}")
distill_trainer=$(func_parser_value "${lines[18]}")
trainer_key1=$(func_parser_key "${lines[19]}")
trainer_value1=$(func_parser_value "${lines[19]}")
trainer_key2=$(func_parser_key "${lines[20]}")
trainer_value2=$(func_parser_value "${lines[20]}")

# eval params
eval_py=$(func_parser_value "${lines[23]}")
eval_key1=$(func_parser_key "${lines[24]}")
eval_value1=$(func_parser_value "${lines[24]}")

# export params
save_infer_key=$(func_parser_key "${lines[27]}")
export_weight=$(func_parser_key "${lines[28]}")
norm_export=$(func_parser_value "${lines[29]}")
pact_export=$(func_parser_value "${lines[30]}")
fpgm_export=$(func_parser_value "${lines[31]}")
distill_export=$(func_parser_value "${lines[32]}")
export_key1=$(func_parser_key "${lines[33]}")
export_value1=$(func_parser_value "${lines[33]}")
export_key2=$(func_parser_key "${lines[34]}")
export_value2=$(func_parser_value "${lines[34]}")
inference_dir=$(func_parser_value "${lines[35]}")

# inference params
infer_model_dir_list=$(func_parser_value "${lines[36]}")
infer_export_list=$(func_parser_value "${lines[37]}")
infer_is_quant=$(func_parser_value "${lines[38]}")
inference_py=$(func_parser_value "${lines[39]}")
func_parse_key_value use_gpu "${lines[40]}" list
func_parse_key_value use_mkldnn "${lines[41]}" list
func_parse_key_value cpu_threads "${lines[42]}" list
func_parse_key_value batch_size "${lines[43]}" list
func_parse_key_value use_trt "${lines[44]}" list
func_parse_key_value precision "${lines[45]}" list
infer_model_key=$(func_parser_key "${lines[46]}")
image_dir_key=$(func_parser_key "${lines[47]}")
infer_img_dir=$(func_parser_value "${lines[47]}")
func_parse_key_value save_log "${lines[48]}"
func_parse_key_value benchmark "${lines[49]}"
infer_key1=$(func_parser_key "${lines[50]}")
infer_value1=$(func_parser_value "${lines[50]}")


orig_cuda_visible_devices=${CUDA_VISIBLE_DEVICES-__unset__}

# Put CUDA_VISIBLE_DEVICES back as the caller had it.
function restore_cuda_visible_devices(){
    if [[ "${orig_cuda_visible_devices}" == "__unset__" ]]; then
        unset CUDA_VISIBLE_DEVICES
    else
        export CUDA_VISIBLE_DEVICES=${orig_cuda_visible_devices}
    fi
}

# Split "a|b|c" into the named array.
function split_alternatives(){
    local -n _out=$1
    IFS='|' read -r -a _out <<< "$2"
}

# Record a step this machine cannot run.
function skip_step(){
    status_skip "$1" "$(func_squeeze "$2") > $3 2>&1" "${status_log}"
}

# The inference grid for one model directory.
#   func_inference PYTHON SCRIPT MODEL_DIR LOG_DIR IMAGE_DIR IS_QUANT
function func_inference(){
    local _python=$1 _script=$2 _model_dir=$3 _log_path=$4 _img_dir=$5 _flag_quant=$6
    local use_gpu use_mkldnn threads batch_size precision use_trt
    local gpu_values mkldnn_values thread_values batch_values precision_values trt_values
    split_alternatives gpu_values "${use_gpu_list}"
    split_alternatives mkldnn_values "${use_mkldnn_list}"
    split_alternatives thread_values "${cpu_threads_list}"
    split_alternatives batch_values "${batch_size_list}"
    split_alternatives precision_values "${precision_list}"
    split_alternatives trt_values "${use_trt_list}"

    local set_infer_data set_benchmark set_model_dir set_infer_params0 set_infer_params1
    set_infer_data=$(func_set_params "${image_dir_key}" "${_img_dir}")
    set_benchmark=$(func_set_params "${benchmark_key}" "${benchmark_value}")
    set_model_dir=$(func_set_params "${infer_model_key}" "${_model_dir}")
    set_infer_params0=$(func_set_params "${save_log_key}" "${save_log_value}")
    set_infer_params1=$(func_set_params "${infer_key1}" "${infer_value1}")

    for use_gpu in "${gpu_values[@]}"; do
        if [[ "${use_gpu}" == "False" || "${use_gpu}" == "cpu" ]]; then
            for use_mkldnn in "${mkldnn_values[@]}"; do
                if [[ "${use_mkldnn}" == "False" && "${_flag_quant}" == "True" ]]; then
                    continue
                fi
                for threads in "${thread_values[@]}"; do
                    for batch_size in "${batch_values[@]}"; do
                        for precision in "${precision_values[@]}"; do
                            # Half precision exists only through TensorRT on a GPU;
                            # int8 only for a quantised model.
                            if [[ "${precision}" == "fp16" ]]; then
                                continue
                            fi
                            if [[ "${_flag_quant}" == "True" && "${precision}" != "int8" ]] \
                                || [[ "${_flag_quant}" != "True" && "${precision}" == "int8" ]]; then
                                continue
                            fi
                            local _save_log_path="${_log_path}/python_infer_cpu_usemkldnn_${use_mkldnn}_threads_${threads}_precision_${precision}_batchsize_${batch_size}.log"
                            local set_precision set_batchsize set_mkldnn set_cpu_threads
                            set_precision=$(func_set_params "${precision_key}" "${precision}")
                            set_batchsize=$(func_set_params "${batch_size_key}" "${batch_size}")
                            set_mkldnn=$(func_set_params "${use_mkldnn_key}" "${use_mkldnn}")
                            set_cpu_threads=$(func_set_params "${cpu_threads_key}" "${threads}")
                            local command="${_python} ${_script} ${use_gpu_key}=${use_gpu} ${set_mkldnn} ${set_cpu_threads} ${set_model_dir} ${set_batchsize} ${set_infer_params0} ${set_infer_data} ${set_benchmark} ${set_precision} ${set_infer_params1}"
                            run_step "${command}" "${_save_log_path}"
                        done
                    done
                done
            done
        elif [[ "${use_gpu}" == "True" || "${use_gpu}" == "gpu" ]]; then
            for use_trt in "${trt_values[@]}"; do
                for precision in "${precision_values[@]}"; do
                    if [[ "${_flag_quant}" != "True" && "${precision}" == "int8" ]]; then
                        continue
                    fi
                    if [[ "${precision}" == "fp16" || "${precision}" == "int8" ]] && [[ "${use_trt}" == "False" ]]; then
                        continue
                    fi
                    if [[ "${_flag_quant}" == "True" ]] && [[ "${use_trt}" == "False" || "${precision}" != "int8" ]]; then
                        continue
                    fi
                    for batch_size in "${batch_values[@]}"; do
                        local _save_log_path="${_log_path}/python_infer_gpu_usetrt_${use_trt}_precision_${precision}_batchsize_${batch_size}.log"
                        local set_tensorrt set_precision set_batchsize
                        set_tensorrt=$(func_set_params "${use_trt_key}" "${use_trt}")
                        set_precision=$(func_set_params "${precision_key}" "${precision}")
                        set_batchsize=$(func_set_params "${batch_size_key}" "${batch_size}")
                        local command="${_python} ${_script} ${use_gpu_key}=${use_gpu} ${set_tensorrt} ${set_precision} ${set_model_dir} ${set_batchsize} ${set_infer_data} ${set_benchmark} ${set_infer_params0} ${set_infer_params1}"
                        if [[ ${GPU_COUNT} -lt 1 ]]; then
                            skip_step "no GPU on this machine" "${command}" "${_save_log_path}"
                            continue
                        fi
                        run_step "${command}" "${_save_log_path}"
                    done
                done
            done
        else
            echo "unsupported ${use_gpu_key} value '${use_gpu}': expected True/False (or gpu/cpu)"
        fi
    done
}

# The steps need the data and the training config that prepare.sh stages
# for this very MODE (lite and whole modes stage different configs and images).
stage_dir=test_tipc/data/${model_name}
if [[ "${norm_trainer} ${eval_py} ${norm_export} ${infer_export_list}" == *${stage_dir}/* ]]; then
    prepared=$(cat "${stage_dir}/prepared_train_mode" 2>/dev/null)
    if [[ "${prepared}" != "${MODE}" ]]; then
        echo "error: ${stage_dir} is not prepared for ${MODE}${prepared:+ (it is for ${prepared})}:" \
            "run 'bash test_tipc/prepare.sh ${FILENAME} ${MODE}' first" >&2
        exit 2
    fi
fi

GPU_COUNT=$(func_gpu_count "${python}")
if [[ ${GPU_COUNT} -lt 0 ]]; then
    echo "error: '${python}' cannot import paddle: activate the project environment" \
        "(e.g. 'source .venv/bin/activate')" >&2
    exit 2
fi
echo "################### ${model_name} ${MODE}: ${GPU_COUNT} GPU(s) usable by ${python} ###################"

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
mkdir -p "${LOG_PATH}"
func_open_status_log "${LOG_PATH}/results_python.log"

if [[ "${MODE}" == "whole_infer" ]]; then
    if [[ -n "${GPUID}" ]]; then
        export CUDA_VISIBLE_DEVICES=${GPUID}
    fi
    split_alternatives infer_models "${infer_model_dir_list}"
    split_alternatives infer_exports "${infer_export_list}"
    split_alternatives infer_quants "${infer_is_quant}"
    for index in "${!infer_models[@]}"; do
        infer_model=${infer_models[index]}
        infer_run_export=${infer_exports[index]:-null}
        is_quant=${infer_quants[index]:-False}
        if [[ "${infer_run_export}" != "null" ]]; then
            # weights -> inference model under the output folder
            save_infer_dir="${LOG_PATH}/$(basename "${infer_model}")_infer"
            set_export_weight=$(func_set_params "${export_weight}" "${infer_model}")
            set_save_infer_key=$(func_set_params "${save_infer_key}" "${save_infer_dir}")
            export_cmd="${python} ${infer_run_export} ${set_export_weight} ${set_save_infer_key}"
            run_step "${export_cmd}" "${LOG_PATH}/export_$(basename "${infer_model}").log"
        else
            save_infer_dir=${infer_model}
        fi
        func_inference "${python}" "${inference_py}" "${save_infer_dir}" "${LOG_PATH}" "${infer_img_dir}" "${is_quant}"
    done
else
    split_alternatives gpu_entries "${gpu_list}"
    split_alternatives device_values "${train_use_gpu_value}"
    split_alternatives autocast_values "${autocast_list}"
    split_alternatives trainers "${trainer_list}"
    for index in "${!gpu_entries[@]}"; do
        gpu=${gpu_entries[index]}
        train_use_gpu=${device_values[index]:-${device_values[0]}}
        ips=""
        nodes=1
        if [[ "${gpu}" == *";"* ]]; then
            ips=${gpu%%;*}
            gpu=${gpu#*;}
            IFS=',' read -r -a ips_array <<< "${ips}"
            nodes=${#ips_array[@]}
        fi
        cards=$(func_card_count "${gpu}")
        on_cpu=0
        if [[ ${cards} -eq 0 || "${train_use_gpu}" == "cpu" || "${train_use_gpu}" == "False" ]]; then
            on_cpu=1
        fi
        for autocast in "${autocast_values[@]}"; do
            for trainer in "${trainers[@]}"; do
                flag_quant=False
                if [[ "${trainer}" == "${pact_key}" ]]; then
                    run_train=${pact_trainer}; run_export=${pact_export}; flag_quant=True
                elif [[ "${trainer}" == "${fpgm_key}" ]]; then
                    run_train=${fpgm_trainer}; run_export=${fpgm_export}
                elif [[ "${trainer}" == "${distill_key}" ]]; then
                    run_train=${distill_trainer}; run_export=${distill_export}
                elif [[ "${trainer}" == "${trainer_key1}" ]]; then
                    run_train=${trainer_value1}; run_export=${export_value1}
                elif [[ "${trainer}" == "${trainer_key2}" ]]; then
                    run_train=${trainer_value2}; run_export=${export_value2}
                else
                    run_train=${norm_trainer}; run_export=${norm_export}
                fi
                if [[ "${run_train}" == "null" || -z "${run_train}" ]]; then
                    continue
                fi

                set_autocast=$(func_set_params "${autocast_key}" "${autocast}")
                set_epoch=$(func_set_params "${epoch_key}" "${epoch_num}")
                set_pretrain=$(func_set_params "${pretrain_model_key}" "${pretrain_model_value}")
                set_batchsize=$(func_set_params "${train_batch_key}" "${train_batch_value}")
                set_train_params1=$(func_set_params "${train_param_key1}" "${train_param_value1}")
                set_use_gpu=$(func_set_params "${train_use_gpu_key}" "${train_use_gpu}")
                if [[ ${nodes} -le 1 ]]; then
                    save_log="${LOG_PATH}/${trainer}_gpus_${gpu}_autocast_${autocast}"
                else
                    save_log="${LOG_PATH}/${trainer}_gpus_${gpu}_autocast_${autocast}_nodes_${nodes}"
                fi
                # quantisation / pruning start from the weights of the normal training
                if [[ "${trainer}" == "${pact_key}" || "${trainer}" == "${fpgm_key}" ]] && [[ ${nodes} -le 1 ]] \
                    && [[ -n "${load_norm_train_model}" ]]; then
                    set_pretrain="${load_norm_train_model}"
                fi
                set_save_model=$(func_set_params "${save_model_key}" "${save_log}")
                train_args="${set_use_gpu} ${set_save_model} ${set_epoch} ${set_pretrain} ${set_autocast} ${set_batchsize} ${set_train_params1}"
                if [[ ${on_cpu} -eq 1 || ${cards} -le 1 ]]; then
                    cmd="${python} ${run_train} ${train_args}"
                elif [[ ${nodes} -le 1 ]]; then
                    cmd="${python} -m paddle.distributed.launch --gpus=${gpu} ${run_train} ${train_args}"
                else
                    cmd="${python} -m paddle.distributed.launch --ips=${ips} --gpus=${gpu} ${run_train} ${train_args}"
                fi
                train_log="${save_log}_train.log"

                skip_reason=""
                if [[ ${on_cpu} -eq 1 ]]; then
                    if [[ "${autocast}" != "null" ]]; then
                        skip_reason="AMP (float16) needs a GPU"
                    elif [[ "${MODE}" == "whole_train_whole_infer" ]]; then
                        skip_reason="the full training is meant for GPUs; on CPU it would take weeks"
                    fi
                elif [[ ${GPU_COUNT} -lt 1 ]]; then
                    skip_reason="no GPU on this machine"
                elif [[ ${GPU_COUNT} -lt ${cards} ]]; then
                    skip_reason="needs ${cards} GPUs, this machine has ${GPU_COUNT}"
                fi
                if [[ -n "${skip_reason}" ]]; then
                    skip_step "${skip_reason}; its eval, export and inference are skipped too" \
                        "${cmd}" "${train_log}"
                    continue
                fi

                if [[ ${on_cpu} -eq 0 && ${cards} -eq 1 ]]; then
                    export CUDA_VISIBLE_DEVICES=${gpu}
                fi

                rm -rf "${save_log}"
                run_step "${cmd}" "${train_log}"

                set_eval_pretrain=$(func_set_params "${pretrain_model_key}" "${save_log}/${train_model_name}")
                if [[ "${trainer}" == "${trainer_norm}" && ${nodes} -le 1 ]]; then
                    load_norm_train_model=${set_eval_pretrain}
                fi
                if [[ "${eval_py}" != "null" && -n "${eval_py}" ]]; then
                    set_eval_params1=$(func_set_params "${eval_key1}" "${eval_value1}")
                    eval_cmd="${python} ${eval_py} ${set_eval_pretrain} ${set_use_gpu} ${set_eval_params1}"
                    run_step "${eval_cmd}" "${save_log}_eval.log"
                fi
                if [[ "${run_export}" != "null" && -n "${run_export}" ]]; then
                    save_infer_path="${save_log}"
                    set_export_weight=$(func_set_params "${export_weight}" "${save_log}/${train_model_name}")
                    set_save_infer_key=$(func_set_params "${save_infer_key}" "${save_infer_path}")
                    export_cmd="${python} ${run_export} ${set_export_weight} ${set_save_infer_key}"
                    run_step "${export_cmd}" "${save_log}_export.log"

                    if [[ "${inference_dir}" != "null" && "${inference_dir}" != "##" && -n "${inference_dir}" ]]; then
                        infer_model_dir="${save_infer_path}/${inference_dir}"
                    else
                        infer_model_dir=${save_infer_path}
                    fi
                    func_inference "${python}" "${inference_py}" "${infer_model_dir}" "${LOG_PATH}" "${train_infer_img_dir}" "${flag_quant}"
                fi
                restore_cuda_visible_devices
            done
        done
    done
fi

func_finish
