#!/usr/bin/env bash
# Reproduce one network size of Diehl & Cook (2015) end to end, then draw and compare.
#
#   scripts/reproduce_diehl_cook.sh SIZE [RESULTS_DIR]
#
# SIZE is 100, 400, 1600 or 6400 (the presets diehl-cook-SIZE); the run goes to
# RESULTS_DIR/dcSIZE (RESULTS_DIR defaults to results). Steps: check the data, encode, train,
# assign, evaluate, then the receptive fields (final model and every checkpoint), the
# reconstructions, the learning curves and the comparison table of every run under RESULTS_DIR.
#
# Rerunning the script continues an interrupted run: stages already finished are skipped (until
# one has to run again, after which every later stage runs too) and training resumes from its
# newest checkpoint.
#
# Environment: STDP_DATA_DIR  folder with the MNIST IDX files (else ./data/mnist)
#              STDP_PIPELINE  the command to run [default: stdp-pipeline]
#              PYTHON         a Python 3 to read the manifest with [default: python3]
set -euo pipefail

usage() {
    echo "usage: $0 100|400|1600|6400 [RESULTS_DIR]" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
SIZE=$1
case "$SIZE" in
    100 | 400 | 1600 | 6400) ;;
    *)
        echo "error: network size '$SIZE' is not one of Diehl & Cook's: 100, 400, 1600, 6400" >&2
        usage
        ;;
esac
RESULTS=${2:-results}
RUN="$RESULTS/dc$SIZE"
read -r -a PIPE <<< "${STDP_PIPELINE:-stdp-pipeline}"
PY=${PYTHON:-python3}

# stage_done NAME: whether RUN's manifest records stage NAME as finished.
stage_done() {
    [[ -f "$RUN/manifest.json" ]] || return 1
    "$PY" - "$RUN/manifest.json" "$1" <<'EOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as fh:
    sys.exit(0 if sys.argv[2] in json.load(fh).get("stages", {}) else 1)
EOF
}

rerun=0  # once a stage runs, every later stage runs too
step() {
    local name=$1
    shift
    if [[ $rerun -eq 0 ]] && stage_done "$name"; then
        echo "== $name: already done in $RUN, skipped"
        return 0
    fi
    rerun=1
    echo "== $name"
    "${PIPE[@]}" "$@"
}

echo "== data check"
"${PIPE[@]}" data check

step encode encode "$RUN" --config "diehl-cook-$SIZE"
step train train "$RUN" --resume
step assign assign "$RUN"
step evaluate evaluate "$RUN"

echo "== fields, reconstruct, curves"
if compgen -G "$RUN/checkpoints/ckpt-*.npz" > /dev/null; then
    "${PIPE[@]}" fields "$RUN" --all-checkpoints
else
    "${PIPE[@]}" fields "$RUN"
fi
"${PIPE[@]}" reconstruct "$RUN"
"${PIPE[@]}" curves "$RUN"

echo "== compare"
"${PIPE[@]}" compare "$RESULTS" --out "$RESULTS/comparison"

cat <<EOF

Done: Diehl & Cook, $SIZE neurons.
  run directory     $RUN
  metrics           $RUN/metrics.json  (accuracy per voting scheme)
  confusion matrix  $RUN/confusion.png
  receptive fields  $RUN/fields.png  (and fields-<position>.png per checkpoint)
  reconstructions   $RUN/reconstruction.png, $RUN/reconstruction.csv
  learning curves   $RUN/curves.png
  comparison        $RESULTS/comparison/comparison.md, .csv, .png
EOF
