#!/bin/bash
# Hash-BERT(256) heads with and without hard negatives from their own Hamming top-k (re-mined from the current
# codes every 100 steps), beside LSH and ITQ, on 20,000 cached training pairs of the hard-candidates table's
# in-batch DR-BERT (experiments/hard_negatives.sh), scored on the random and the BM25 test splits
# (docs/results/hard-negatives.md). `train hash` defaults otherwise: linear heads from ITQ, 5 epochs, batch 128.
source "$(dirname "$0")/common.sh"
OUT=runs/hashing-hn
DUAL=runs/hard-negatives/dr-inbatch/model
SELECTION="--dual-encoder $DUAL --train $DATA/train.txt --max-train-pairs 20000 --cache-dir $OUT/cache"
$HB train itq $SELECTION --bits 128,256,512 --out $OUT/itq
$HB train hash $SELECTION --n-bits 256 --save-every 0 --out $OUT/hb-256
for depth in 10 100; do
  $HB train hash $SELECTION --n-bits 256 --save-every 0 --hard-negatives model --hard-per-context 1 \
    --hard-depth $depth --hard-refresh-every 100 --out $OUT/hb-256-hamming-d$depth
done
models=(--model $OUT/hb-256/model --name "Hash-BERT(256)")
for depth in 10 100; do
  models+=(--model $OUT/hb-256-hamming-d$depth/model --name "Hash-BERT(256) + Hamming top-$depth negatives")
done
for b in 128 256 512; do models+=(--model $OUT/itq/itq-$b --name "ITQ($b)"); done
for split in test test_bm25; do
  $HB evaluate hashing --test $DATA/$split.txt --dual-encoder $DUAL --bits 128,256,512 "${models[@]}" \
    --cache-dir $OUT/cache --seed-table 0 --out $OUT/table-$split
done
# full rank over the 115,709-response pool: float, LSH(256) and the three Hash-BERT(256) heads, each with its
# codes' re-rank of the Hamming top 1,000 and the float re-rank of them
$HB evaluate fullrank --model $DUAL --pool $DATA/responses.txt --test $DATA/test.txt --bits 256 \
  --hash-model $OUT/hb-256/model --hash-name "Hash-BERT(256)" --hash-model $OUT/hb-256-hamming-d10/model \
  --hash-name "Hash-BERT(256) + Hamming top-10 negatives" --hash-name "Hash-BERT(256) + Hamming top-100 negatives" \
  --hash-model $OUT/hb-256-hamming-d100/model --float-rerank --cache-dir $OUT/cache --csv $OUT/fullrank.csv \
  --plot $OUT/fullrank.png
