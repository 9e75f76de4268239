#!/bin/bash
# ITQ and Hash-BERT (the `train hash` defaults) at every code length on 20,000 cached pairs; BPR at 256 bits.
source "$(dirname "$0")/common.sh"
$HB train itq --dual-encoder $DR $PAIRS --cache-dir runs/hashing/cache --out runs/hashing/itq
for b in 128 256 512 1024 2048 4096; do
  $HB train hash --dual-encoder $DR $PAIRS --max-valid-groups 200 --cache-dir runs/hashing/cache --n-bits $b \
    --save-every 0 --eval-every 0 --out runs/hashing/hb-$b
done
$HB train bpr --train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 \
  --batch-size 32 --epochs 1 --lr 5e-5 --save-every 25 --eval-every 0 --n-bits 256 --out runs/hashing/bpr-256
