#!/bin/bash
# The cross-encoder models: the BERT, SA-BERT and BERT-FP cross-encoders, BERT-FP's post-training, the
# separately trained dual-encoder judge (Relevance-100) and the GPT-2 judge (PPL-100).
# Measured as two one-thread streams side by side (this file's order: BERT, LM, SA-BERT | judge, post, BERT-FP).
source "$(dirname "$0")/common.sh"
OUT=runs/cross
CROSS="--train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 100 --max-train-pairs 6000 --negatives 1
  --batch-size 32 --lr 1e-4 --epochs 1 --max-length 160 --max-response-length 32 --pooling segments --threads 1"
$HB train cross $CROSS --out $OUT/bert
$HB train cross $CROSS --speakers --out $OUT/sa-bert
$HB train post --train $DATA/train.txt --examples 4000 --batch-size 32 --lr 5e-5 --max-length 128 \
  --max-response-length 32 --max-context-turns 3 --pooling segments --threads 1 --out $OUT/post
$HB train cross $CROSS --init $OUT/post/encoder --out $OUT/bert-fp
# The Relevance-100 judge: DR-BERT's recipe on another seeded 4,000 pairs (seed 7), so never the retriever under test.
$HB train dual --train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 \
  --batch-size 32 --lr 5e-5 --seed 7 --threads 1 --out $OUT/judge
$HB train lm --train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 3200 \
  --batch-size 16 --lr 1e-3 --layers 2 --threads 1 --out $OUT/lm
