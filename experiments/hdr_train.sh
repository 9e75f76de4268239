#!/bin/bash
# HDR-BERT with every aggregator on DR-BERT's 4,000 pairs and budget, then hash codes on it.
source "$(dirname "$0")/common.sh"
for agg in trs trs-mv colbert gpt-mv; do
  $HB train hdr --aggregator $agg --dual-encoder $DR --train $DATA/train.txt --valid $DATA/valid.txt \
    --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 --save-every 25 --out runs/hdr-$agg
done
for agg in trs-mv colbert; do $HB train hdr-lsh --hdr runs/hdr-$agg/model --bits 256,1024 --out runs/hdr-lsh/$agg; done
heads() { $HB train hdr-hash --hdr runs/hdr-$1/model --recipe $2 --n-bits $3 --train $DATA/train.txt --valid $DATA/valid.txt \
  --max-valid-groups 200 --max-train-pairs 4000 --cache-dir runs/hdr-hash/cache-$1 --out runs/hdr-hash/$1-$2-$3; }
heads trs bpr 256; heads trs bpr 512; heads trs-mv bpr 512; heads trs-mv similarity 512; heads trs-mv vae 512
