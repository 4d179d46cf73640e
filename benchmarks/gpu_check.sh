#!/usr/bin/env bash
# The GPU check of issue 19, a few minutes on one GPU (about 4 on an H100 / H200):
#
#   1. paper 003 Table 2's headline cells: one wav2vec2-base pre-training step
#      (contrastive objective, and the bare backbone) at 5 s and 15 s,
#      batch 8, fp32 and bf16: seconds per step, CUDA peak memory, FLOPs of the
#      step and MFU against the device's dense peak
#      (python -m speechbrain_ext.analysis.resources), plus the FLOPs of a 15 s
#      over a 1 s clip (paper 003: "about 15x");
#   2. the contrastive step against transformers' Wav2Vec2ForPreTraining and
#      SpeechBrain's wav2vec2 lobes on the same GPU, same config, batch and
#      precision, at 15 s and 5 s (benchmarks/pretrain_throughput.py).
#
# Everything it prints and writes goes under $OUT (default results/gpu_check):
# env.txt (GPU, driver, torch), the commands and their logs, the sweep's CSV /
# Markdown, throughput_*.json. Each part runs under its own `timeout` so the
# whole script ends within its budget even if a part hangs; a part that fails
# is reported and the script goes on.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh
#   GPU_CHECK_DRY=1 OUT=/tmp/gpu_dry bash benchmarks/gpu_check.sh   # CPU, micro model, tiny sizes
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=${OUT:-results/gpu_check}
mkdir -p "$OUT"

if [ -n "${GPU_CHECK_DRY:-}" ]; then
    # the same commands at a size the CPU runs in seconds (checks the script, not the GPU);
    # clips of 2 s at least: SpeechBrain's w2v_mask_collate_fn fails on some 1 s clips
    DEVICE=cpu; MODEL=w2v2_micro; SIZE=micro; BATCH=2; LONG=3; SHORT=2
    WARMUP=1; REPEATS=2; T_SWEEP=150; T_LONG=120; T_SHORT=120; RATIO_LENGTHS="1 3"
    MEMORY=--no-memory  # CPU memory probes are subprocesses; on CUDA memory is read in-process
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
    # budget: about 230 s of commands, plus the start of the interpreters
    DEVICE=cuda; MODEL=w2v2_base; SIZE=base; BATCH=8; LONG=15; SHORT=5
    WARMUP=1; REPEATS=3; T_SWEEP=120; T_LONG=70; T_SHORT=45; RATIO_LENGTHS="1 15"
    MEMORY=
fi
export PYTHONUNBUFFERED=1  # a part cut by its timeout still leaves its lines in the log
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
status=0

run_part() {  # name, timeout seconds, command...
    local name=$1 limit=$2
    shift 2
    echo "\$ $*" | tee -a "$SUMMARY"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 60 "$OUT/$name.log" >> "$SUMMARY"
    echo "[$name: exit $rc after $((SECONDS - start)) s]" | tee -a "$SUMMARY"
    [ "$rc" -eq 0 ] || status=1
}

{
    date -u
    hostname
    if command -v nvidia-smi > /dev/null; then nvidia-smi; fi
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >> "$SUMMARY"

run_part sweep "$T_SWEEP" "$PY" -m speechbrain_ext.analysis.resources \
    --device "$DEVICE" --isolate none --parts pretrain ratio --model "$MODEL" \
    --objective contrastive backbone --lengths "$SHORT" "$LONG" --batches "$BATCH" \
    --precisions fp32 bf16 --warmup "$WARMUP" --repeats "$REPEATS" \
    --ratio_model "$MODEL" --ratio_lengths $RATIO_LENGTHS \
    --no_figures --out "$OUT" --tag "${MODEL}_${DEVICE}"

for part in "$LONG:$T_LONG" "$SHORT:$T_SHORT"; do
    seconds=${part%%:*}
    run_part "throughput_${seconds}s" "${part##*:}" "$PY" benchmarks/pretrain_throughput.py \
        --device "$DEVICE" --size "$SIZE" --batch "$BATCH" --seconds "$seconds" \
        --precision fp32 bf16 --repeats "$REPEATS" $MEMORY \
        --models backbone contrast contrast_pre hf sb \
        --json "$OUT/throughput_${seconds}s.json"
done

echo "gpu_check: done, exit $status; outputs in $OUT" | tee -a "$SUMMARY"
exit "$status"
