#!/usr/bin/env bash
# The two claims of the seed talk, measured: lateral inhibition keeps neurons from learning the
# same thing; patches give stroke-like fields and better accuracy per neuron.
# Runs event STDP with and without patches, with and without inhibition, at the same total
# number of excitatory neurons, then the comparison table.
#
#   scripts/event_stdp_ablation.sh [NEURONS] [TRAIN_DIGITS] [RESULTS_DIR]
#   scripts/event_stdp_ablation.sh 400 10000 results/ablation
set -euo pipefail
neurons=${1:-400}
train=${2:-10000}
out=${3:-results/ablation}
if (( neurons % 16 )); then
  echo "usage: $0 [NEURONS (a multiple of 16)] [TRAIN_DIGITS <= 50000] [RESULTS_DIR]" >&2
  exit 2
fi
config="$(dirname "$0")/configs/event-stdp-patches-10px.toml"
common=(--set "network.n_excitatory=$neurons" --set "data.train_digits=$train")
whole=(--set encoding.patch_size_px=28 --set encoding.patch_stride_px=28
       --set learning.weight_sum=78.0)
for inhibition in true false; do
  tag=$([ "$inhibition" = true ] && echo inh || echo noinh)
  stdp-pipeline run "$out/patches-$tag" --config "$config" "${common[@]}" \
    --set "network.inhibition=$inhibition"
  stdp-pipeline run "$out/whole-$tag" --config "$config" "${common[@]}" "${whole[@]}" \
    --set "network.inhibition=$inhibition"
done
stdp-pipeline compare "$out" --out "$out/comparison"
echo "results: $out/*/metrics.json; fields: $out/*/fields.png; table: $out/comparison/comparison.md"
