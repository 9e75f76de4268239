#!/bin/bash
# The HDR table on the test split, symmetric (Hamming) and asymmetric scoring, the seed's tables 3 and 4 beneath.
source "$(dirname "$0")/common.sh"
$HB evaluate rerank --test $DATA/test.txt --scoring symmetric,asymmetric --seed-table 3,4 \
  --model $DR --name DR-BERT \
  --model runs/hdr-trs/model --name HDR-BERT-Trs --model runs/hdr-trs-mv/model --name HDR-BERT-Trs-MV \
  --model runs/hdr-colbert/model --name HDR-BERT-ColBERT --model runs/hdr-gpt-mv/model --name HDR-BERT-GPT-MV \
  --model runs/hdr-lsh/trs-mv/lsh-256 --name "HDR-BERT-Trs-MV+LSH(256)" --model runs/hdr-lsh/trs-mv/lsh-1024 --name "HDR-BERT-Trs-MV+LSH(1024)" \
  --model runs/hdr-lsh/colbert/lsh-256 --name "HDR-BERT-ColBERT+LSH(256)" --model runs/hdr-lsh/colbert/lsh-1024 --name "HDR-BERT-ColBERT+LSH(1024)" \
  --model runs/hdr-hash/trs-bpr-256/model --name "BPR-HDR-BERT-Trs(256)" --model runs/hdr-hash/trs-bpr-512/model --name "BPR-HDR-BERT-Trs(512)" \
  --model runs/hdr-hash/trs-mv-bpr-512/model --name "BPR-HDR-BERT-Trs-MV(512)" \
  --model runs/hdr-hash/trs-mv-similarity-512/model --name "HDR-BERT-Trs-MV+similarity heads(512)" \
  --model runs/hdr-hash/trs-mv-vae-512/model --name "HDR-BERT-Trs-MV+VAELoss heads(512)" \
  --csv runs/hdr-eval/final.csv --json runs/hdr-eval/final.json
