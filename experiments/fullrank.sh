#!/bin/bash
# Full-rank over the whole training pool: float DR-BERT, LSH/ITQ at 128/256/512, Hash-BERT, BPR; each +- re-rank.
source "$(dirname "$0")/common.sh"
$HB evaluate fullrank --model $DR --pool $DATA/responses.txt --test $DATA/test.txt --train $DATA/train.txt \
  --bits 128,256,512 --hash-model runs/hashing/hb-128/model --hash-model runs/hashing/hb-256/model \
  --hash-model runs/hashing/hb-512/model --hash-model runs/hashing/bpr-256/model --float-rerank --csv runs/fullrank.csv --plot runs/fullrank.png
