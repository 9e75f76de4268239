#!/usr/bin/env bash
# The main job, end to end on the embedded default corpus (Chit-Chat) and encoder (all-MiniLM-L6-v2):
# install, prepare the corpus, fine-tune DR-BERT on a subsample, print the re-rank table
# (zero-shot vs trained), then train 256-bit Hash-BERT heads on it and print the hashing table
# (float vs LSH vs sign vs Hash-BERT). About 20 minutes on 2 CPU cores. Rerunning resumes/reuses
# what is done.
#   TRAIN_PAIRS=4000 bash run_main.sh        # how many training pairs to subsample (default 4000)
#   HASH_PAIRS=20000 bash run_main.sh        # pairs whose cached vectors train the hashing heads
#   DEVICE=cuda TRAIN_PAIRS=0 bash run_main.sh   # the full-size run on a GPU
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
RUNS="${RUNS:-runs}"
TRAIN_PAIRS="${TRAIN_PAIRS:-4000}"
HASH_PAIRS="${HASH_PAIRS:-20000}"
DEVICE="${DEVICE:-auto}"
hb=.venv/bin/hashbert

[ -f "$RUNS/chitchat/meta.json" ] || $hb data prepare chitchat --out "$RUNS/chitchat"
$hb train dual --train "$RUNS/chitchat/train.txt" --valid "$RUNS/chitchat/valid.txt" \
    --out "$RUNS/dr-bert" --max-train-pairs "$TRAIN_PAIRS" --batch-size 32 --epochs 1 \
    --lr 5e-5 --save-every 50 --device "$DEVICE"
$hb evaluate rerank --test "$RUNS/chitchat/test.txt" --zero-shot \
    --model "$RUNS/dr-bert/model" --name "DR-BERT (ours, ${TRAIN_PAIRS} pairs)" \
    --csv "$RUNS/rerank.csv" --json "$RUNS/rerank.json" \
    --seed-table 1 --seed-models BERT,SA-BERT,BERT-FP,DR-BERT --no-progress
[ -f "$RUNS/hash-bert-256/model/config.json" ] || $hb train hash --dual-encoder "$RUNS/dr-bert/model" \
    --train "$RUNS/chitchat/train.txt" --valid "$RUNS/chitchat/valid.txt" --max-valid-groups 200 \
    --max-train-pairs "$HASH_PAIRS" --cache-dir "$RUNS/hashing/cache" --n-bits 256 --device "$DEVICE" \
    --out "$RUNS/hash-bert-256"
$hb evaluate hashing --test "$RUNS/chitchat/test.txt" --dual-encoder "$RUNS/dr-bert/model" --bits 256 \
    --model "$RUNS/hash-bert-256/model" --name "Hash-BERT(256)" --cache-dir "$RUNS/hashing/cache" \
    --out "$RUNS/hashing-main" --seed-table 0 --no-progress
