#!/bin/bash
# HDR-BERT-Trs-MV with a 3-layer and a 1-layer aggregator on the same budget, each scored on torch, ONNX Runtime
# fp32 and ONNX Runtime int8, then the turn latency of both (docs/results/turn-latency.md).
# Both start from the README recipe's DR-BERT ($DR); trained side by side, one thread each.
source "$(dirname "$0")/common.sh"
OUT=runs/hdr-layers
for L in 3 1; do
  $HB train hdr --aggregator trs-mv --layers $L --dual-encoder $DR --train $DATA/train.txt --valid $DATA/valid.txt \
    --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 --save-every 25 --threads 1 \
    --out $OUT/l$L &
done
wait
# the lighter turn: the 1-layer aggregator over a 3-layer utterance encoder (its layers 0, 4 and 5)
$HB train hdr --aggregator trs-mv --layers 1 --utterance-layers 3 --dual-encoder $DR --train $DATA/train.txt \
  --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
  --save-every 25 --threads 1 --out $OUT/l1-u3
# both 1-layer variants again with the DR-BERT as a teacher (a KL term on the in-batch scores, weight 1), side by side
for U in "" 3; do
  $HB train hdr --aggregator trs-mv --layers 1 ${U:+--utterance-layers $U} --dual-encoder $DR --train $DATA/train.txt \
    --valid $DATA/valid.txt --max-valid-groups 200 --max-train-pairs 4000 --batch-size 32 --epochs 1 --lr 5e-5 \
    --save-every 25 --threads 1 --distill-weight 1 --out $OUT/l1${U:+-u$U}-kd &
done
wait
for L in 3 1 1-u3 1-kd 1-u3-kd; do
  $HB export onnx --model $OUT/l$L/model --quantize int8
  for runtime in torch onnx; do
    $HB evaluate rerank --test $DATA/test.txt --model $OUT/l$L/model --name "HDR-Trs-MV $L-layer $runtime" \
      --runtime $runtime --json $OUT/eval/l$L-$runtime.json
  done
  $HB evaluate rerank --test $DATA/test.txt --model $OUT/l$L/model --name "HDR-Trs-MV $L-layer onnx int8" \
    --runtime onnx --onnx-precision int8 --json $OUT/eval/l$L-onnx-int8.json
done
# latency does not depend on training: the base all-MiniLM-L6-v2 stands in for DR-BERT (saved and exported to
# runs/onnx/dual-base by --export when missing)
.venv/bin/python benchmarks/turn_latency.py --dual-encoder runs/onnx/dual-base --hdr $OUT/l3/model \
  --hdr $OUT/l1/model --hdr $OUT/l1-u3/model --hdr $OUT/l1-kd/model --hdr $OUT/l1-u3-kd/model --dialogues 5 --repeats 10 --pool-encode 512 --export
