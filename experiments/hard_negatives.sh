#!/bin/bash
# The hard-candidates table: zero-shot, DR-BERT in-batch only and DR-BERT + BM25 hard negatives, scored on the
# random test split, the BM25 test split and ConveRT's 1-of-100 (docs/results/hard-negatives.md).
# Both DR-BERT runs use the README's budget: 4,000 seeded training pairs, batch 32, 1 epoch (125 steps), lr 5e-5.
source "$(dirname "$0")/common.sh"
OUT=runs/hard-negatives
RECIPE="--train $DATA/train.txt --valid $DATA/valid.txt --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
  --save-every 50"

# 1. the BM25 split beside the random one (train/valid/test and the pool come out byte-identical; equal-score BM25
#    hits in pool order since stop 28, so the split is the same on every CPU: meta.json records its sha256)
$HB data prepare chitchat --out $DATA --negatives bm25

# 2. DR-BERT, in-batch negatives only, and with one BM25 negative per context (from its top 10 eligible)
$HB train dual $RECIPE --out $OUT/dr-inbatch
$HB train dual $RECIPE --out $OUT/dr-bm25 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10

# 3. the three test protocols (R100@1 draws 99 other test responses per context, seeded by --seed 0)
MODELS="--zero-shot --model $OUT/dr-inbatch/model --name DR-BERT-in-batch --model $OUT/dr-bm25/model \
  --name DR-BERT+BM25-negatives"
$HB evaluate rerank --test $DATA/test.txt $MODELS --csv $OUT/eval/random.csv --json $OUT/eval/random.json
$HB evaluate rerank --test $DATA/test_bm25.txt $MODELS --csv $OUT/eval/bm25.csv --json $OUT/eval/bm25.json
$HB evaluate rerank --test $DATA/test.txt --one-of-n 100 $MODELS --csv $OUT/eval/r100.csv --json $OUT/eval/r100.json

# the random split, the BM25 split and 1-of-100 for one model: evaluate_three MODEL_DIR JSON_PREFIX
evaluate_three() {
  $HB evaluate rerank --test $DATA/test.txt --model $1 --json $2-random.json
  $HB evaluate rerank --test $DATA/test_bm25.txt --model $1 --json $2-bm25.json
  $HB evaluate rerank --test $DATA/test.txt --one-of-n 100 --model $1 --json $2-r100.json
}

# 4. gentler variants: BM25 negatives from the top 100, and the model's own top 100 re-mined every 50 steps
$HB train dual $RECIPE --out $OUT/dr-bm25-d100 --hard-negatives bm25 --hard-per-context 1 --hard-depth 100
$HB train dual $RECIPE --out $OUT/dr-model-d100 --hard-negatives model --hard-per-context 1 --hard-depth 100 \
  --hard-refresh-every 50 --hard-pool-size 20000
for run in dr-bm25-d100 dr-model-d100; do
  evaluate_three $OUT/$run/model $OUT/eval/$run
done
# 5. HDR-BERT-Trs-MV (experiments/hdr_layers.sh trains runs/hdr-layers/l3 and l1) on the BM25 split and 1-of-100
for L in 3 1; do
  $HB evaluate rerank --test $DATA/test_bm25.txt --model runs/hdr-layers/l$L/model \
    --json runs/hdr-layers/eval/l$L-bm25.json
  $HB evaluate rerank --test $DATA/test.txt --one-of-n 100 --model runs/hdr-layers/l$L/model \
    --json runs/hdr-layers/eval/l$L-r100.json
done
# 6. HDR-BERT-Trs-MV (1-layer) with one BM25 negative per context from its top 10, the in-batch l1's recipe
$HB train hdr --aggregator trs-mv --layers 1 --dual-encoder $OUT/dr-inbatch/model --train $DATA/train.txt \
  --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
  --save-every 25 --threads 2 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 \
  --out runs/hdr-layers/l1-bm25
evaluate_three runs/hdr-layers/l1-bm25/model runs/hdr-layers/eval/l1-bm25
# 6b. the same with the in-batch DR-BERT as a teacher of its in-batch scores (KL, weight 1)
$HB train hdr --aggregator trs-mv --layers 1 --dual-encoder $OUT/dr-inbatch/model --train $DATA/train.txt \
  --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
  --save-every 25 --threads 2 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 --distill-weight 1 \
  --out runs/hdr-layers/l1-bm25-kd
evaluate_three runs/hdr-layers/l1-bm25-kd/model runs/hdr-layers/eval/l1-bm25-kd
# 6c. where HDR loses the BM25 split (stop 29): more vectors per utterance for the aggregator (m = 16, 48; the
# in-batch l1 recipe, side by side, one thread each), then DR-BERT and HDR scored on each context's newest 1, 2, 3
# turns only (--newest-turns), both splits
HDR1="--aggregator trs-mv --layers 1 --dual-encoder $OUT/dr-inbatch/model --train $DATA/train.txt \
  --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
  --save-every 25 --threads 1"
for M in 16 48; do
  $HB train hdr $HDR1 --vectors-per-utterance $M --out runs/hdr-m/l1-m$M &
done
wait
for split in test test_bm25; do
  $HB evaluate rerank --test $DATA/$split.txt --model runs/hdr-m/l1-m16/model --name l1-m16 \
    --model runs/hdr-m/l1-m48/model --name l1-m48 --json runs/hdr-m/eval/$split-l1-m16-l1-m48.json
  for n in 1 2 3; do
    $HB evaluate rerank --test $DATA/$split.txt --newest-turns $n --model $OUT/dr-inbatch/model \
      --name "DR-BERT in-batch, newest $n" --model runs/hdr-m/l1-m16/model --name "HDR m16, newest $n" \
      --json runs/hdr-m/eval/newest$n-$split.json
  done
done
# 6d. step 6b with the teacher's KL term over each context's mined BM25 negatives too (--distill-negatives: the
# in-batch DR-BERT's response tower scores them), beside step 6b and the in-batch l1 retrained (one thread each)
$HB train hdr $HDR1 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 --distill-weight 1 \
  --distill-negatives --out runs/hdr-layers/l1-bm25-kdneg
evaluate_three runs/hdr-layers/l1-bm25-kdneg/model runs/hdr-layers/eval/l1-bm25-kdneg
for split in test test_bm25; do  # step 6b's model on each context's newest 1, 2, 3 turns
  for n in 1 2 3; do
    $HB evaluate rerank --test $DATA/$split.txt --newest-turns $n --model runs/hdr-layers/l1-bm25-kd/model \
      --name "HDR + BM25 + teacher, newest $n" --json runs/hdr-layers/eval/l1-bm25-kd-newest$n-$split.json
  done
done
# 6e. step 6b with the utterance encoder frozen (--freeze-utterance-encoder, two threads, alone): the hard negatives
# can then only be learnt by the aggregator, through the history
$HB train hdr ${HDR1/--threads 1/--threads 2} --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 \
  --distill-weight 1 --freeze-utterance-encoder --out runs/hdr-layers/l1-bm25-kd-frozen
evaluate_three runs/hdr-layers/l1-bm25-kd-frozen/model runs/hdr-layers/eval/l1-bm25-kd-frozen
for split in test test_bm25; do
  $HB evaluate rerank --test $DATA/$split.txt --newest-turns 1 --model runs/hdr-layers/l1-bm25-kd-frozen/model \
    --name "frozen newest 1 $split" --json runs/hdr-layers/eval/l1-bm25-kd-frozen-newest1-$split.json
done
# 7. denoised BM25 negatives: the in-batch DR-BERT of step 2 drops each mined negative it scores at or above the
# context's own response (one run, one thread, beside the HDR run of experiments/hdr_layers.sh)
$HB train dual $RECIPE --threads 1 --out $OUT/dr-bm25-denoised --hard-negatives bm25 --hard-per-context 1 \
  --hard-depth 10 --hard-denoise-model $OUT/dr-inbatch/model
evaluate_three $OUT/dr-bm25-denoised/model $OUT/eval/dr-bm25-denoised
# 7b. BM25 negatives with the in-batch DR-BERT of step 2 as a teacher of its in-batch scores (KL, weight W = 1, 2,
# 3), so the hard negatives do not cost the random split (the BM25 hits and the teacher's vectors that step 6b
# cached are reused); then the five DR-BERT models on the validation splits
for W in 1 2 3; do
  RUN=$OUT/dr-bm25-kd$([ $W = 1 ] || echo $W)
  mkdir -p $RUN && cp -rn runs/hdr-layers/l1-bm25-kd/cache $RUN/ 2>/dev/null || true
  $HB train dual $RECIPE --out $RUN --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 \
    --teacher $OUT/dr-inbatch/model --distill-weight $W
  evaluate_three $RUN/model $OUT/eval/$(basename $RUN)
done
for split in valid valid_bm25; do
  $HB evaluate rerank --test $DATA/$split.txt --model $OUT/dr-inbatch/model --name in-batch --model \
    $OUT/dr-bm25/model --name bm25 --model $OUT/dr-bm25-kd/model --name kd1 --model $OUT/dr-bm25-kd2/model \
    --name kd2 --model $OUT/dr-bm25-kd3/model --name kd3 --json $OUT/eval/kd-sweep-$split.json
done
# 7c. a second seed (other 4,000 pairs, order and draws): in-batch, + BM25 negatives, + BM25 negatives + this
# seed's in-batch model as the teacher (W = 2)
S43="$RECIPE --seed 43"
$HB train dual $S43 --out $OUT/seed43/dr-inbatch
$HB train dual $S43 --out $OUT/seed43/dr-bm25 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10
$HB train dual $S43 --out $OUT/seed43/dr-bm25-kd2 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 \
  --teacher $OUT/seed43/dr-inbatch/model --distill-weight 2
for run in dr-inbatch dr-bm25 dr-bm25-kd2; do
  evaluate_three $OUT/seed43/$run/model $OUT/eval/seed43-$run
done
# 7d. twice the budget (8,000 pairs, 250 steps), both seeds, one thread per run, the seeds side by side: in-batch,
# + BM25 negatives, and + BM25 negatives + that seed's 8,000-pair in-batch model as the teacher (W = 2, as at 4,000)
for SEED in 42 43; do
  (
    R8="${RECIPE/--max-train-pairs 4000/--max-train-pairs 8000} --seed $SEED --threads 1"
    $HB train dual $R8 --out $OUT/p8000-s$SEED/dr-inbatch
    $HB train dual $R8 --out $OUT/p8000-s$SEED/dr-bm25 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10
    $HB train dual $R8 --out $OUT/p8000-s$SEED/dr-bm25-kd2 --hard-negatives bm25 --hard-per-context 1 \
      --hard-depth 10 --teacher $OUT/p8000-s$SEED/dr-inbatch/model --distill-weight 2
    for run in dr-inbatch dr-bm25 dr-bm25-kd2; do
      evaluate_three $OUT/p8000-s$SEED/$run/model $OUT/eval/p8000-s$SEED-$run
    done
  ) &
done
wait
# 7e. the teacher at W = 1 (between 7d's plain BM25 run and W = 2) on the same 8,000 pairs, both seeds side by side
for SEED in 42 43; do
  (
    R8="${RECIPE/--max-train-pairs 4000/--max-train-pairs 8000} --seed $SEED --threads 1"
    $HB train dual $R8 --out $OUT/p8000-s$SEED/dr-bm25-kd1 --hard-negatives bm25 --hard-per-context 1 \
      --hard-depth 10 --teacher $OUT/p8000-s$SEED/dr-inbatch/model --distill-weight 1
    evaluate_three $OUT/p8000-s$SEED/dr-bm25-kd1/model $OUT/eval/p8000-s$SEED-dr-bm25-kd1
  ) &
done
wait
# 7f. a third seed (44): its 8,000-pair in-batch model, then BM25 negatives + that model as the teacher at W = 1
R8="${RECIPE/--max-train-pairs 4000/--max-train-pairs 8000} --seed 44"
$HB train dual $R8 --out $OUT/p8000-s44/dr-inbatch
$HB train dual $R8 --out $OUT/p8000-s44/dr-bm25-kd1 --hard-negatives bm25 --hard-per-context 1 --hard-depth 10 \
  --teacher $OUT/p8000-s44/dr-inbatch/model --distill-weight 1
for run in dr-inbatch dr-bm25-kd1; do
  evaluate_three $OUT/p8000-s44/$run/model $OUT/eval/p8000-s44-$run
done
# 7g. the three seeds' in-batch and W = 1 models on the validation splits (874 contexts each), one call per split
MODELS8=""
for SEED in 42 43 44; do
  MODELS8="$MODELS8 --model $OUT/p8000-s$SEED/dr-inbatch/model --name s$SEED-in-batch"
  MODELS8="$MODELS8 --model $OUT/p8000-s$SEED/dr-bm25-kd1/model --name s$SEED-bm25-kd1"
done
$HB evaluate rerank --test $DATA/valid.txt $MODELS8 --json $OUT/eval/p8000-valid-random.json
$HB evaluate rerank --test $DATA/valid_bm25.txt $MODELS8 --json $OUT/eval/p8000-valid-bm25.json
# 8. the BERT cross-encoder on the same compute (12,000 labelled pairs): random negatives vs random + BM25 ones
CROSS="--train $DATA/train.txt --valid $DATA/valid.txt --max-valid-groups 100 --negatives 1 --batch-size 32 \
  --lr 1e-4 --max-length 160 --max-response-length 32 --pooling segments --threads 1"
$HB train cross $CROSS --max-train-pairs 6000 --out runs/cross/bert &
$HB train cross $CROSS --max-train-pairs 4000 --bm25-negatives 1 --bm25-depth 10 --out runs/cross/bert-bm25 &
wait
for run in bert bert-bm25; do
  $HB evaluate rerank --test $DATA/test.txt --model runs/cross/$run/model --json runs/cross/eval/$run-random.json
  $HB evaluate rerank --test $DATA/test_bm25.txt --model runs/cross/$run/model --json runs/cross/eval/$run-bm25.json
done
