#!/bin/bash
# Hash-BERT(256) heads trained alone on cached vectors vs together with the DR-BERT's transformer layers (the
# encoder learns vectors whose codes rank well), both from the same ITQ start, on the hard-candidates table's
# in-batch DR-BERT (experiments/hard_negatives.sh, 4,000 pairs) and the same 4,000 training pairs; scored on the
# random and the BM25 test splits (docs/results/hashing.md).
source "$(dirname "$0")/common.sh"
OUT=runs/hashing-joint
DUAL=runs/hard-negatives/dr-inbatch/model
SELECTION="--dual-encoder $DUAL --train $DATA/train.txt --valid $DATA/valid.txt --max-train-pairs 4000 \
  --cache-dir $OUT/cache --n-bits 256 --save-every 0"
LAYERS=${LAYERS:-6}
# the train hash defaults: 5 epochs of batch 128 on the cached vectors (linear heads from ITQ, straight-through signs)
$HB train hash $SELECTION --out $OUT/frozen
# the heads and the top $LAYERS layers of both towers, one epoch at DR-BERT's batch and learning rate
$HB train hash $SELECTION --unfreeze-layers $LAYERS --batch-size 32 --epochs 1 --lr 5e-5 --out $OUT/joint-l$LAYERS
models=(--model $OUT/frozen/model --name "Hash-BERT(256), heads alone")
models+=(--model $OUT/joint-l$LAYERS/model --name "Hash-BERT(256), heads + $LAYERS layers")
for split in test test_bm25; do
  $HB evaluate hashing --test $DATA/$split.txt --dual-encoder $DUAL --bits 256 "${models[@]}" \
    --cache-dir $OUT/cache --seed-table 0 --out $OUT/table-$split
  # the jointly trained encoder's own float vectors (and LSH on them)
  $HB evaluate hashing --test $DATA/$split.txt --dual-encoder $OUT/joint-l$LAYERS/model/dual_encoder --bits 256 \
    --cache-dir $OUT/cache --seed-table 0 --out $OUT/table-$split-joint-l$LAYERS-float
done
