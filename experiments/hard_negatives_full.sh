#!/bin/bash
# The hard-candidates table at the full budget, on one CUDA GPU (docs/results/hard-negatives.md, "every pair"):
# DR-BERT in-batch only, + BM25 negatives (from the top 10 and the top 100), all 118,779 training pairs, batch 32,
# one epoch, lr 5e-5; then, from the in-batch DR-BERT on the same pairs, HDR-BERT-Trs-MV (1-layer aggregator)
# and the hashing rows (LSH, ITQ and Hash-BERT at 128, 256 and 512 bits; `train hash` defaults on cached vectors).
# Each DR/HDR model is scored on the random and the BM25 test splits and ConveRT's 1-of-100; the hashing table
# (`evaluate hashing`: symmetric and asymmetric, retention of the float R10@1) on both splits.
# HDR-BERT also trains with BM25 negatives (top 10), and (part hdr-kd, not in the default) with them plus the
# in-batch DR-BERT as a teacher of its in-batch scores (--distill-weight 1); part dr-kd (not in the default
# either) trains DR-BERT + top-10 BM25 negatives with that teacher (--teacher). The runs share the GPU side by
# side; the top-10 BM25 runs share one cache of BM25 hits ($BM25_CACHE: mined once, ~4 min on 2 cores; a cache mined
# elsewhere can be copied there). bm25-d10-half draws half of the extra negatives from the top 10 and half at
# random (--hard-fraction 0.5). PARTS picks what runs (default: all of
# "bm25-d10 bm25-d10-half bm25-d100 hdr hashing"); the in-batch DR-BERT always trains.
# MODEL overrides the base encoder (a local copy of all-MiniLM-L6-v2 where its package is not installed),
# OUT_DIR where runs go.
source "$(dirname "$0")/common.sh"
OUT=${OUT_DIR:-runs/hard-negatives-full}
MODEL=${MODEL:-all-MiniLM-L6-v2}
BM25_CACHE=${BM25_CACHE:-$OUT/bm25-cache}
PARTS=" ${PARTS:-bm25-d10 bm25-d10-half bm25-d100 hdr hashing} "
RECIPE="--train $DATA/train.txt --batch-size 32 --epochs 1 --lr 5e-5 --save-every 1000 --device ${DEVICE:-cuda}"
RECIPE="$RECIPE --no-progress"

score() {  # score RUN: the three test protocols of $OUT/RUN/model
  local run=$1
  $HB evaluate rerank --test $DATA/test.txt --model $OUT/$run/model --name $run --no-progress \
    --json $OUT/eval/$run-random.json
  $HB evaluate rerank --test $DATA/test_bm25.txt --model $OUT/$run/model --name $run --no-progress \
    --json $OUT/eval/$run-bm25.json
  $HB evaluate rerank --test $DATA/test.txt --one-of-n 100 --model $OUT/$run/model --name $run --no-progress \
    --json $OUT/eval/$run-r100.json
}
want() { [[ $PARTS == *" $1 "* ]]; }
train_hdr() {  # train_hdr RUN FLAGS...: HDR-BERT-Trs-MV (1-layer aggregator) from the in-batch DR-BERT, scored
  local run=$1
  shift
  $HB train hdr --aggregator trs-mv --layers 1 --dual-encoder $OUT/dr-inbatch/model $RECIPE --out $OUT/$run "$@" &&
    score $run
}
train_dual() {  # train_dual RUN FLAGS...: train $OUT/RUN, then score it
  local run=$1
  shift
  $HB train dual $RECIPE --model $MODEL --out $OUT/$run "$@" && score $run
}
hashing_table() {  # hashing_table NAME MODELS...: the hashing table of $OUT/dr-inbatch on both test splits
  local name=$1 split
  shift
  for split in test test_bm25; do
    $HB evaluate hashing --test $DATA/$split.txt --dual-encoder $OUT/dr-inbatch/model --bits 128,256,512 "$@" \
      --cache-dir $OUT/cache --seed-table 0 --no-progress --out $OUT/$name-$split
  done
}
hashing() {  # Hash-BERT 256 first (it encodes the training vectors into the cache), then 128, 512 and ITQ
  local b args=()
  for b in 256 128 512; do
    $HB train hash --dual-encoder $OUT/dr-inbatch/model --train $DATA/train.txt --n-bits $b --cache-dir $OUT/cache \
      --device ${DEVICE:-cuda} --save-every 0 --no-progress --out $OUT/hb-$b
    args+=(--model $OUT/hb-$b/model --name "Hash-BERT($b)")
    [ $b = 256 ] && hashing_table hashing-hb256 "${args[@]}"
  done
  $HB train itq --dual-encoder $OUT/dr-inbatch/model --train $DATA/train.txt --bits 128,256,512 \
    --cache-dir $OUT/cache --no-progress --out $OUT/itq
  for b in 128 256 512; do args+=(--model $OUT/itq/itq-$b --name "ITQ($b)"); done
  hashing_table hashing "${args[@]}"
}

TOP10="--hard-negatives bm25 --hard-per-context 1 --hard-depth 10 --hard-cache-dir $BM25_CACHE"
mkdir -p $OUT/eval
want bm25-d10 && { train_dual dr-bm25-d10 $TOP10 & }
want bm25-d10-half && { train_dual dr-bm25-d10-half $TOP10 --hard-fraction 0.5 & }
want bm25-d100 && { train_dual dr-bm25-d100 --hard-negatives bm25 --hard-per-context 1 --hard-depth 100 & }
$HB train dual $RECIPE --model $MODEL --out $OUT/dr-inbatch
score dr-inbatch &
# HDR and the hashing rows start from the in-batch DR-BERT while the BM25 runs go on
want hashing && { hashing & }
want hdr && { train_hdr hdr-l1 & train_hdr hdr-l1-bm25 $TOP10 & }
want hdr-kd && { train_hdr hdr-l1-bm25-kd $TOP10 --distill-weight 1 & }
want dr-kd && { train_dual dr-bm25-d10-kd $TOP10 --teacher $OUT/dr-inbatch/model & }
wait
