"""One run config per command: everything a ``hashbert <group> <command>`` invocation is told.

Each run embeds the concern configs it needs; their fields become the command's flags (flat), and
a command's own defaults (e.g. the hashing heads' larger learning rate) are the embedded defaults
here, so ``--help`` shows what a run will really use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hashbert.config.cross import CrossEncoderConfig, LanguageModelConfig, NegativeSamplingConfig, PostTrainConfig
from hashbert.config.encoder import BASE_MODEL, DualEncoderConfig
from hashbert.config.evaluation import EvalDataConfig, FullRankSettings, SeedTableConfig
from hashbert.config.fields import Config, embedded, option, required
from hashbert.config.hashing import BprConfig, HashConfig, HashEncoderConfig, HashLossConfig, check_n_bits
from hashbert.config.hdr import HdrConfig, HdrHashTrainConfig, HdrInitConfig
from hashbert.config.inference import InferenceConfig
from hashbert.config.serving import ServeConfig
from hashbert.config.training import DataConfig, DistillConfig, HardNegativeConfig, TrainConfig

_OUT_HELP = "output directory (the command's description says what it holds)"


@dataclass(frozen=True)
class OutputConfig(Config):
    """Where a command writes."""

    out: str = required(_OUT_HELP)
    overwrite: bool = option(False, "replace an existing output that hashbert did not write (or of another kind)")


@dataclass(frozen=True)
class PrepareChitchatRun(Config):
    """The embedded Chit-Chat corpus -> train/valid/test + pool.

    Join each sender's consecutive messages into turns, split by conversation (90/5/5, seeded), and write
    train.txt (one line per dialogue; training expands every prefix), valid.txt and test.txt (10 candidates per
    context: the true next turn + 9 turns of other conversations), *.speakers sidecars, responses.txt (the full-
    rank pool) and meta.json into --out.
    """

    output: OutputConfig
    seed: int = option(0, "split and negative-sampling seed")
    contexts_per_dialogue: int = option(5, "test/valid contexts cut from each dialogue", minimum=1)
    max_dialogues: int = option(0, "use only the first N conversations, for quick runs (0: all)", minimum=0)
    negatives: Literal["random", "bm25"] = option(
        "random", "bm25: also write valid_bm25.txt and test_bm25.txt, the same contexts with the 9 turns of other "
        "conversations that BM25 ranks highest for the last 2 context turns (the last counted twice) as negatives"
    )


@dataclass(frozen=True)
class TrainDualRun(Config):
    """Train DR-BERT, the dual-encoder, with in-batch negatives (and optional per-context hard negatives).

    Fine-tune a context encoder and a response encoder so that a context's dot product with its true response
    beats the other responses of the batch (softmax cross-entropy over in-batch negatives). --hard-negatives bm25
    or model adds --hard-per-context negatives per context from its BM25 or model top-k over the training turns
    (never a turn of its own conversation nor a near-copy of its response); --teacher keeps an in-batch model's
    ranking of the batch alongside (a KL term towards its in-batch scores). Checkpoints go to
    --out/checkpoints: rerun the same command to resume an interrupted run exactly. The trained model is saved to
    --out/model, the run's record to --out/run.json and --out/loss.png.
    """

    output: OutputConfig
    data: DataConfig
    model: DualEncoderConfig = embedded(DualEncoderConfig)
    train: TrainConfig = embedded(TrainConfig)
    negatives: HardNegativeConfig = embedded(HardNegativeConfig)
    distill: DistillConfig = embedded(DistillConfig)


@dataclass(frozen=True)
class TrainHashRun(Config):
    """Train Hash-BERT hashing heads on a trained DR-BERT.

    Encode the training pairs once with the DR-BERT (cached under --cache-dir, keyed by a fingerprint of model,
    data and pair selection), then train a hashing head per side (MLP -> n_bits) with similarity preservation,
    quantization and reconstruction losses. Seed variants: 'tanh' = --relax tanh --quantization-weight 0; 'no-kl'
    = --reconstruction-weight 0; 'multi_tower_dim' = --hidden; 'dr-bert normalization' = --normalize-input.
    --hard-negatives model adds, per context, --hard-per-context responses from the heads' own Hamming top
    --hard-depth over the cached training responses (never its own conversation nor a near-copy of its response),
    re-mined with the current heads every --hard-refresh-every steps; every context of the batch scores them
    (the pool is every cached response: --hard-pool-size is not used).
    Checkpoints go to --out/checkpoints: rerun the same command to resume an interrupted run exactly. The model
    goes to --out/model, the record to --out/run.json.
    """

    output: OutputConfig
    data: DataConfig
    encoder: HashEncoderConfig
    # Defaults = the best of the 256-bit ablation (docs/results/hashing.md): linear heads started from
    # ITQ, straight-through signs, softmax similarity, a light reconstruction term.
    hash: HashConfig = embedded(lambda: HashConfig(init="itq", hidden=0, relax="ste"))
    loss: HashLossConfig = embedded(lambda: HashLossConfig(quantization_weight=0.0))
    train: TrainConfig = embedded(
        lambda: TrainConfig(lr=1e-4, batch_size=128, epochs=5, warmup_ratio=0.05, save_every=1000, eval_every=500)
    )
    negatives: HardNegativeConfig = embedded(HardNegativeConfig)


@dataclass(frozen=True)
class TrainBprRun(Config):
    """Train BPR: encoder and linear hashing layers jointly (slow on CPU).

    Fine-tune both towers of the base encoder with a linear hashing layer per side: tanh(beta h) with beta =
    sqrt(1 + gamma * step), or a straight-through sign; a margin ranking loss on codes (candidate generation) plus
    cross-entropy of the float context against the response codes (re-rank). Saved as a hash_bert model with the
    encoder embedded, to --out/model. Checkpoints go to --out/checkpoints: rerun the same command to resume an
    interrupted run exactly.
    """

    output: OutputConfig
    data: DataConfig
    bpr: BprConfig = embedded(BprConfig)
    train: TrainConfig = embedded(TrainConfig)


@dataclass(frozen=True)
class TrainItqRun(Config):
    """Fit ITQ (PCA + learned rotation) baselines on DR-BERT training vectors.

    Fit one ITQ model per code length on the DR-BERT vectors of the training pairs (the same cache as 'train hash'
    with the same --train/--max-train-pairs/--seed), saved to --out/itq-<bits>.
    """

    output: OutputConfig
    data: DataConfig
    dual_encoder: str = required("trained DR-BERT model directory")
    bits: tuple[int, ...] = option((128, 256, 512, 1024, 2048, 4096), "code lengths, one ITQ model each")
    cache_dir: str = option("", "vector cache directory (default: --out/cache)")
    seed: int = option(42, "pair subsample and rotation seed (42 as in training: shares the cache with 'train hash')")
    progress: bool = option(True, "show progress bars")

    def validate(self) -> None:
        for n_bits in self.bits:
            check_n_bits(n_bits)


@dataclass(frozen=True)
class TrainHdrRun(Config):
    """Train HDR-BERT: utterances encoded alone, cached, combined by an aggregator.

    Encode each context utterance on its own (--utterance-length tokens, m = --vectors-per-utterance vectors
    kept), add a turn-position embedding, combine the newest --max-context-turns utterances with a small
    Transformer (--aggregator trs, trs-mv, colbert or gpt-mv) and merge its output with the newest utterance's own
    vector. In-batch softmax on cosine (MaxSim for colbert). --dual-encoder starts both encoders from a trained
    DR-BERT. Same data, checkpoints and resume as 'train dual' (--max-context-length is not used: utterances are
    short). --hard-negatives bm25 adds --hard-per-context BM25 negatives per context, as 'train dual' does.
    """

    output: OutputConfig
    data: DataConfig
    model: HdrConfig = embedded(HdrConfig)
    init: HdrInitConfig = embedded(HdrInitConfig)
    train: TrainConfig = embedded(TrainConfig)
    negatives: HardNegativeConfig = embedded(HardNegativeConfig)


@dataclass(frozen=True)
class TrainHdrHashRun(Config):
    """Train hashing heads on a frozen HDR-BERT (BPR, similarity or VAE recipe).

    Encode the training pairs once with the frozen HDR model (cached), then train a hashing head per side:
    --recipe bpr (tanh(beta h), beta = sqrt(1 + gamma * step), margin ranking on codes + float context . codes
    cross-entropy), similarity (the similarity-preserving loss) or vae (similarity + quantization + decoder MSE,
    the seed's VAELoss). Single-vector HDR variants only (trs, trs-mv, gpt-mv). Saved to --out/model.
    """

    output: OutputConfig
    data: DataConfig
    recipe: HdrHashTrainConfig
    hash: HashConfig = embedded(lambda: HashConfig(relax="scaled_tanh"))
    train: TrainConfig = embedded(
        lambda: TrainConfig(lr=1e-3, batch_size=128, epochs=20, warmup_ratio=0.05, save_every=1000, eval_every=500)
    )


@dataclass(frozen=True)
class TrainHdrLshRun(Config):
    """Save HDR-BERT + LSH models (random hyperplanes over HDR vectors).

    Nothing is trained: each model holds n_bits seeded Gaussian hyperplanes and a checked reference to the HDR
    model; codes are the signs of the projections (colbert: every context and response vector is hashed and scored
    by MaxSim over Hamming similarity). Saved to --out/lsh-<bits>.
    """

    output: OutputConfig
    hdr: str = required("trained HDR model directory")
    bits: tuple[int, ...] = option((256, 1024), "code lengths, one LSH model each")
    seed: int = option(0, "seed of the hyperplanes")

    def validate(self) -> None:
        for n_bits in self.bits:
            check_n_bits(n_bits)


@dataclass(frozen=True)
class TrainCrossRun(Config):
    """Train a cross-encoder (BERT; SA-BERT with --speakers; BERT-FP with --init).

    Score [CLS] context [SEP] response [SEP] with a linear layer on a pair vector, trained with binary cross-
    entropy on each training context's true response plus --negatives responses drawn from other pairs. The pair
    vector is [CLS] (--pooling cls, BERT's), the mean token vector (mean), or the product of the context's and the
    response's unit-length mean vectors (segments: the layer starts as a scaled cosine, so a sentence-embedding
    backbone such as all-MiniLM-L6-v2 ranks well from the first step; on a CPU budget it is the one that learns).
    The context is truncated from the left, the response from the right, --max-length tokens in all. --speakers
    adds SA-BERT's speaker embedding (speakers from the corpus's .speakers sidecar, else alternating); --init
    starts from a post-trained encoder ('train post' writes one: BERT-FP). --max-train-pairs counts contexts.
    Checkpoints go to --out/checkpoints: rerun the same command to resume an interrupted run exactly. Saved to
    --out/model.
    """

    output: OutputConfig
    data: DataConfig
    model: CrossEncoderConfig = embedded(CrossEncoderConfig)
    negatives: NegativeSamplingConfig = embedded(NegativeSamplingConfig)
    train: TrainConfig = embedded(TrainConfig)


@dataclass(frozen=True)
class TrainPostRun(Config):
    """BERT-FP post-training: masked LM + 3-way utterance relevance on the dialogues.

    Draw --examples (short context, candidate) pairs from the training dialogues: the true next utterance (p
    0.25), a random utterance of the same dialogue (0.25) or of another dialogue (0.5), classified 3-way on the
    pair vector (--pooling, as for 'train cross'), while 15% of the tokens are masked and predicted. Writes
    --out/encoder (a Hugging Face directory): start a cross-encoder from it with 'train cross --init', a dual-
    encoder with 'train dual --init'.
    """

    output: OutputConfig
    data: DataConfig
    post: PostTrainConfig = embedded(PostTrainConfig)
    train: TrainConfig = embedded(TrainConfig)


@dataclass(frozen=True)
class TrainLmRun(Config):
    """Train the PPL-100 judge: a small GPT-2 on the training dialogues.

    A GPT2LMHeadModel (--layers blocks, the encoder's tokenizer; its tied embeddings start from the encoder's word
    embeddings) trained on context [SEP] response [SEP] of the training pairs. Reports the validation perplexity
    of the true responses (response tokens only, as PPL-100 counts them). Saved to --out/lm, a Hugging Face
    directory that 'evaluate fullrank --lm' reads (any local causal-LM directory works there).
    """

    output: OutputConfig
    data: DataConfig
    lm: LanguageModelConfig = embedded(LanguageModelConfig)
    train: TrainConfig = embedded(lambda: TrainConfig(lr=1e-3, batch_size=16))


@dataclass(frozen=True)
class ResultFilesConfig(Config):
    """Where a table is also written."""

    csv: str = option("", "also write the rows as CSV here")
    json: str = option("", "also write the rows as JSON here")


@dataclass(frozen=True)
class EvaluateRerankRun(Config):
    """Re-rank protocol: R10@1, R10@2, R10@5, MRR, P@1, MAP (Rn@k for n candidates per context).

    Score each test context's candidates (10 in the standard files) with every model and print the seed's table
    (percentages, two decimals). Ties count against the positives: a positive ranks after every negative with an
    equal score. Contexts without a positive are skipped.
    """

    data: EvalDataConfig
    model: tuple[str, ...] = option((), "a saved model directory; repeat for several rows", repeat=True)
    name: tuple[str, ...] = option((), "row name for each --model, in order", repeat=True)
    zero_shot: bool = option(False, "add a row for the untrained base encoder (shared towers)")
    base_model: str = option(BASE_MODEL, "base encoder of the zero-shot row")
    scoring: tuple[Literal["symmetric", "asymmetric"], ...] = option(
        ("symmetric",), "hashing models: symmetric (Hamming), asymmetric (float context . code), or both "
        "comma-separated"
    )
    one_of_n: int = option(
        0, "ConveRT's 1-of-N instead of the file's candidates: each positive against N-1 other test responses "
        "(seeded by --seed), e.g. 100 for R100@1; 0 keeps the file's candidates", minimum=0
    )
    newest_turns: int = option(
        0, "score each context by its newest N turns only (a history ablation: how much the earlier turns weigh "
        "in a model's ranking); 0 keeps every turn the file has", minimum=0
    )
    seeds: SeedTableConfig = embedded(SeedTableConfig)
    files: ResultFilesConfig = embedded(ResultFilesConfig)
    inference: InferenceConfig = embedded(InferenceConfig)

    def validate(self) -> None:
        if not self.model and not self.zero_shot:
            raise ValueError("give at least one --model DIR, or --zero-shot")
        if self.one_of_n == 1:
            raise ValueError("one_of_n (--one-of-n) must be 0 (off) or >= 2, got 1")


@dataclass(frozen=True)
class EvaluateFullRankRun(Config):
    """Full-rank protocol: search the whole response pool.

    Every test context searches the whole pool (the training responses, plus each test gold so that it is
    retrievable). Reports Recall@1/10/100/1000 and MRR (ties count against the gold), index bytes per response,
    encode ms per context and search ms per query (batch 1 and 256) for float DR-BERT, LSH and ITQ at each --bits
    and every --hash-model, each without and with the two-stage re-rank (Hamming top-l, then the float context
    against the candidates' +-1 codes).
    """

    settings: FullRankSettings
    csv: str = option("", "also write the table as CSV here")
    plot: str = option("", "also plot Recall@100 against bytes per response to this PNG")


@dataclass(frozen=True)
class EvaluateHashingRun(Config):
    """Hashing methods x code lengths on the re-rank protocol, one table.

    DR-BERT (float) first, then LSH at every --bits, sign binarisation, and every --model (Hash-BERT, BPR, ITQ),
    each scored symmetrically (Hamming; ties count against the positives) and asymmetrically (float context . ±1
    response code), with bytes per response and retention of R10@1. Writes hashing.csv/.json/.md and hashing.png
    (R10@1 against bits) to --out, and prints the seed's table beneath.
    """

    data: EvalDataConfig
    dual_encoder: str = required("the trained DR-BERT (float row; vectors for LSH, sign, ITQ and the heads)")
    output: OutputConfig = required("where hashing.csv, hashing.json, hashing.md and hashing.png go")
    model: tuple[str, ...] = option((), "a saved hash_bert/itq model directory; repeat", repeat=True)
    name: tuple[str, ...] = option((), "row name for each --model, in order", repeat=True)
    bits: tuple[int, ...] = option((128, 256, 512, 1024, 2048, 4096), "LSH code lengths")
    cache_dir: str = option("", "cache of the test vectors (default: no cache)")
    seeds: SeedTableConfig = embedded(lambda: SeedTableConfig(seed_table=(2,)))


@dataclass(frozen=True)
class EncodeRun(Config):
    """Encode a file of texts (one per line) into a .npy of float32 vectors."""

    model: str = required("saved model directory (e.g. runs/dr-bert/model)")
    input: str = required("UTF-8 file, one text per line (contexts: turns separated by tabs)")
    out: str = required("output .npy file (rows follow the input lines)")
    side: Literal["response", "context"] = option("response", "which tower encodes")
    batch_size: int = option(128, "encoding batch size", minimum=1)
    progress: bool = option(True, "show a progress bar")
    inference: InferenceConfig = embedded(InferenceConfig)


@dataclass(frozen=True)
class ServeRun(Config):
    """Serve a bundle over HTTP: search, sessions, metrics and a demo page.

    A FastAPI app under uvicorn. POST /v1/search ranks the pool for a whole context; POST /v1/sessions starts a
    conversation whose turns (POST /v1/sessions/{id}/turns) are committed to --sessions-db with their cached
    HDR states before the reply, so a turn encodes one utterance and sessions survive restarts. Concurrent
    requests are encoded together (--batch-window-ms, --max-batch). GET /v1/info, /healthz, /readyz (503 until
    the model is loaded), /metrics (Prometheus), /openapi.json; the demo page is at /. With --api-key-file, /v1
    and /metrics need the header X-API-Key. Several --workers share the sessions database; each loads the model.
    """

    bundle: str = required("bundle directory ('hashbert index build' writes one)")
    serve: ServeConfig = embedded(ServeConfig)
