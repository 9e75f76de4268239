#!/bin/bash
# Hash-BERT at 256 bits: the seed's recipe and its switches, then what changed it; scored on the validation split.
source "$(dirname "$0")/common.sh"
run() { name=$1; shift; $HB train hash --dual-encoder $DR $PAIRS --max-valid-groups 0 --cache-dir runs/hashing/cache \
  --n-bits 256 --save-every 0 --eval-every 0 --out runs/hashing/ab-$name "$@"; }
SEED="--init random --hidden 1024 --relax tanh --quantization-weight 0.1 --reconstruction-weight 0.1 --lr 1e-3"
run seed $SEED
run seed-tanh $SEED --quantization-weight 0
run seed-nokl $SEED --reconstruction-weight 0
run seed-mtd512 $SEED --hidden 512
run seed-norm $SEED --normalize-input
run frobenius $SEED --similarity frobenius --reconstruction-weight 0
run itq --max-steps 1 --lr 1e-9
run best --reconstruction-weight 0
run default
run lr1e3 --lr 1e-3
run t02 --temperature 0.02
run t20 --temperature 0.2
run distill --similarity distill
run mlp --init random --hidden 1024 --lr 1e-3 --epochs 20
args=(--test $DATA/valid.txt --dual-encoder $DR --bits 256 --out runs/hashing/ablation --cache-dir runs/hashing/cache
      --seed-table 0 --model runs/hashing/itq/itq-256 --name "ITQ(256)")
for d in runs/hashing/ab-*/; do args+=(--model ${d}model --name "$(basename $d)"); done
$HB evaluate hashing "${args[@]}"
