#!/bin/bash
# Helpers shared by the TIPC scripts (sourced, never run on its own).
#
# A config line is "key:value". Values hold alternatives separated by "|";
# an alternative may be "MODE=value" to apply to one MODE only. "null" as a
# key or a value means "leave this flag out".

# The part of a config line before the first ":".
function func_parser_key(){
    local line=$1
    echo "${line%%:*}"
}

# The part of a config line after the first ":" (a value may itself hold
# ":", e.g. a URL, so only the first one splits).
function func_parser_value(){
    local line=$1
    if [[ "${line}" != *:* ]]; then
        echo ""
        return
    fi
    echo "${line#*:}"
}

# The value a line gives to MODE: "k:lite_train_lite_infer=1|whole_train_whole_infer=60"
# gives "1" for lite_train_lite_infer and "" for a mode it does not name.
function func_parser_params(){
    local line=$1
    local mode=$2
    local value item
    value=$(func_parser_value "${line}")
    local IFS="|"
    for item in ${value}; do
        if [[ "${item%%=*}" == "${mode}" ]]; then
            echo "${item#*=}"
            return
        fi
    done
    echo ""
}

# "key=value" for the command line, or " " when the key or the value is null
# or empty (the flag is then left out).
function func_set_params(){
    local key=$1
    local value=$2
    if [[ "${key}" == "null" || -z "${key}" ]]; then
        echo " "
    elif [[ "${value}" == "null" || -z "${value// /}" ]]; then
        echo " "
    else
        echo "${key}=${value}"
    fi
}

# Append the outcome of one step to the results log (and the console).
# Lines read "Run successfully with command - CMD!" or "Run failed with command - CMD!".
function status_check(){
    local last_status=$1
    local run_command=$2
    local run_log=$3
    if [[ ${last_status} -eq 0 ]]; then
        echo -e "\033[33m Run successfully with command - ${run_command}!  \033[0m"
        echo "Run successfully with command - ${run_command}!" >> "${run_log}"
    else
        echo -e "\033[33m Run failed with command - ${run_command}!  \033[0m"
        echo "Run failed with command - ${run_command}!" >> "${run_log}"
    fi
}

# Record a step that was not run, with the reason. Such a line counts neither
# as a success nor as a failure.
function status_skip(){
    local reason=$1
    local run_command=$2
    local run_log=$3
    echo -e "\033[36m Run skipped (${reason}) with command - ${run_command}!  \033[0m"
    echo "Run skipped (${reason}) with command - ${run_command}!" >> "${run_log}"
}

# How many CUDA devices PYTHON's paddle can use (0 on a CPU build or without a
# GPU); -1 when PYTHON cannot import paddle at all.
function func_gpu_count(){
    local _python=$1
    local n
    n=$(GLOG_minloglevel=3 ${_python} -c "
import warnings
warnings.filterwarnings('ignore')
import paddle
print(paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0)
" 2>/dev/null | tail -n 1)
    if [[ "${n}" =~ ^[0-9]+$ ]]; then
        echo "${n}"
    else
        echo -1
    fi
}

# Number of cards named by a gpu_list entry: "-1" (CPU) -> 0, "0" -> 1, "0,1" -> 2,
# "ip1,ip2;0,1" (several machines) -> cards per machine.
function func_card_count(){
    local entry=$1
    if [[ "${entry}" == *";"* ]]; then
        entry=${entry#*;}
    fi
    if [[ "${entry}" == "-1" || -z "${entry}" ]]; then
        echo 0
        return
    fi
    local IFS=","
    local cards=(${entry})
    echo "${#cards[@]}"
}

# A command line with its runs of blanks squeezed to one space.
function func_squeeze(){
    local -a words
    read -r -a words <<< "$1"
    echo "${words[*]}"
}

# Print the last lines of a per-step log, so a failure shows its cause.
function func_show_log(){
    local log=$1
    local lines=${2:-20}
    if [[ -f "${log}" ]]; then
        echo "----- last ${lines} lines of ${log} -----"
        tail -n "${lines}" "${log}"
        echo "-----"
    fi
}

# Run one step, its output to LOG and its outcome to the caller's
# ${status_log}. The command is split into words (no globbing, no eval), so a
# config value cannot run shell code.
function run_step(){
    local -a words
    read -r -a words <<< "$1"
    local log=$2
    "${words[@]}" > "${log}" 2>&1
    local status=$?
    if [[ ${status} -ne 0 ]]; then
        func_show_log "${log}" 30
    else
        func_show_log "${log}" 5
    fi
    status_check ${status} "${words[*]} > ${log} 2>&1" "${status_log}"
    return ${status}
}

# ---- the preamble every chain script shares ----

# Check a chain's arguments: at least MIN_ARGS given, CONFIG (the first) a file.
# Exits 2 with USAGE otherwise.
#   func_check_args MIN_ARGS "USAGE" "$@"
function func_check_args(){
    local min_args=$1
    local usage=$2
    shift 2
    if [[ $# -lt ${min_args} ]]; then
        echo "usage: ${usage}" >&2
        exit 2
    fi
    if [[ ! -f "$1" ]]; then
        echo "error: config not found: $1" >&2
        exit 2
    fi
}

# Read the first COUNT lines of CONFIG into the array "lines" (0-based), "\r"
# dropped so a config saved with Windows line ends still parses.
function func_read_config(){
    mapfile -t lines < <(sed -n "1,$2p" "$1" | tr -d '\r')
}

# Set NAME_key and NAME_value (NAME_SUFFIX with a third argument, e.g.
# "list") from config line LINE (no eval: printf -v).
function func_parse_key_value(){
    printf -v "$1_key" '%s' "$(func_parser_key "$2")"
    printf -v "$1_${3:-value}" '%s' "$(func_parser_value "$2")"
}

# Create the results log if needed and remember how many failures it held,
# so the chain's exit status counts only its own.
function func_open_status_log(){
    status_log=$1
    [[ -f "${status_log}" ]] || : > "${status_log}"
    failed_before=$(grep -c "Run failed" "${status_log}")
}

# Print where the results are (SHOWN, default the log's path) and exit 1 if
# this chain added a failure, else 0.
function func_finish(){
    local shown=${1:-${status_log}}
    local failed_after
    failed_after=$(grep -c "Run failed" "${status_log}")
    echo "results: ${shown}"
    if [[ ${failed_after} -gt ${failed_before} ]]; then
        echo "$((failed_after - failed_before)) step(s) failed"
        exit 1
    fi
    exit 0
}
