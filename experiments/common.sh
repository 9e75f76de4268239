# Shared by the experiment scripts: run from the repository root with the project's venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
HB=${HB:-.venv/bin/hashbert}
DATA=${DATA:-runs/chitchat}
DR=runs/dr-bert/model
PAIRS="--train $DATA/train.txt --valid $DATA/valid.txt --max-train-pairs 20000"
