#!/bin/bash
# SA-BERT and BERT-FP cross-encoders with and without BM25 negatives, on the same compute (12,000 labelled pairs:
# 6,000 contexts x (1 + 1 random), or 4,000 contexts x (1 + 1 random + 1 BM25 from the top 10)), each scored on
# the random and the BM25 test splits; the BERT rows are step 8 of experiments/hard_negatives.sh.
# BERT-FP post-trains the base encoder first (experiments/cross_train.sh's recipe). The BM25 hits of the 4,000
# contexts are cached in each run's OUT/cache (both BM25 runs mine the same contexts: copy one run's cache/ to the
# other to mine once). DEVICE (default cpu), MODEL (base encoder), OUT_DIR (default runs/cross) relocate the runs;
# on a GPU the four fine-tunings run side by side.
source "$(dirname "$0")/common.sh"
OUT=${OUT_DIR:-runs/cross}
MODEL=${MODEL:-all-MiniLM-L6-v2}
DEVICE=${DEVICE:-cpu}
THREADS=$([ "$DEVICE" = cpu ] && echo 1 || echo 0)
CROSS="--train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 100 --negatives 1 --batch-size 32
  --lr 1e-4 --max-length 160 --max-response-length 32 --pooling segments --threads $THREADS --device $DEVICE
  --no-progress --model $MODEL"
BM25="--max-train-pairs 4000 --bm25-negatives 1 --bm25-depth 10"

cross() {  # cross RUN FLAGS...: train $OUT/RUN, then score it on both test splits
  local run=$1
  shift
  $HB train cross $CROSS --out $OUT/$run "$@" || return
  $HB evaluate rerank --test $DATA/test.txt --model $OUT/$run/model --no-progress --json $OUT/eval/$run-random.json
  $HB evaluate rerank --test $DATA/test_bm25.txt --model $OUT/$run/model --no-progress \
    --json $OUT/eval/$run-bm25.json
}

mkdir -p $OUT/eval
cross sa-bert --speakers --max-train-pairs 6000 &
cross sa-bert-bm25 --speakers $BM25 &
$HB train post --model $MODEL --train $DATA/train.txt --examples 4000 --batch-size 32 --lr 5e-5 --max-length 128 \
  --max-response-length 32 --max-context-turns 3 --pooling segments --threads $THREADS --device $DEVICE \
  --no-progress --out $OUT/post
cross bert-fp --init $OUT/post/encoder --max-train-pairs 6000 &
cross bert-fp-bm25 --init $OUT/post/encoder $BM25 &
wait
