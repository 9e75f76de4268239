#!/bin/bash
# The hashing table on the test split: float, LSH/sign at every b, ITQ and Hash-BERT at every b, BPR.
source "$(dirname "$0")/common.sh"
args=(--test $DATA/test.txt --dual-encoder $DR --out runs/hashing/table --cache-dir runs/hashing/cache --seed-table 2)
for b in 128 256 512 1024 2048 4096; do args+=(--model runs/hashing/itq/itq-$b --name "ITQ($b)"); done
for b in 128 256 512 1024 2048 4096; do args+=(--model runs/hashing/hb-$b/model --name "Hash-BERT($b)"); done
args+=(--model runs/hashing/bpr-256/model --name "BPR(256)")
$HB evaluate hashing "${args[@]}"
