#!/bin/bash
# The cross-encoder tables: the cross-encoders in the re-rank table (the seed's table 1 beneath), then the
# full-rank judges (Top-100, Relevance-100, PPL-100) and the retrieve-then-rerank rows.
source "$(dirname "$0")/common.sh"
OUT=runs/cross
$HB evaluate rerank --test $DATA/test.txt --zero-shot --model $DR --name "DR-BERT (ours, 4000 pairs)" \
  --model $OUT/bert/model --name "BERT (ours, 6000 contexts)" --model $OUT/sa-bert/model --name "SA-BERT (ours, 6000 contexts)" \
  --model $OUT/bert-fp/model --name "BERT-FP (ours, 4000 post + 6000 contexts)" \
  --seed-table 1 --seed-models BERT,SA-BERT,BERT-FP,DR-BERT \
  --csv $OUT/rerank.csv --json $OUT/rerank.json
$HB evaluate fullrank --model $DR --pool $DATA/responses.txt --test $DATA/test.txt \
  --bits 256 --hash-model runs/hashing/hb-256/model --relevance-judge $OUT/judge/model --lm $OUT/lm/lm --judge-queries 100 \
  --cross-encoder $OUT/bert/model --cross-method "Hash-BERT(256)" --cross-depths 20,50,100 --cross-queries 200 \
  --csv $OUT/fullrank-judges.csv
