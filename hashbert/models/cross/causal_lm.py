"""Causal language models for PPL-100: a small GPT-2 over the encoder's tokenizer, and scoring of responses.

A sequence is ``[CLS] turn_1 [SEP] ... turn_n [SEP] response [SEP]`` (``PairTokenizer``'s layout; a
tokenizer without [CLS]/[SEP], such as GPT-2's, uses its end-of-text token for both). The response's
loss is the mean negative log-likelihood of its tokens given everything before them; the closing
[SEP] and the context are not counted.

References: SPEC "Full-rank protocol" (PPL-100); Radford et al. 2019 (GPT-2).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hashbert.config import LanguageModelConfig, config_from_dict, config_to_dict
from hashbert.io import atomic_directory, read_json, write_checksums, write_json
from hashbert.models.encoder import load_backbone, load_tokenizer, resolve_model_dir
from hashbert.models.modes import eval_mode
from hashbert.models.pair_tokens import PairTokenizer, longest_first

logger = logging.getLogger(__name__)


def new_gpt2(config: LanguageModelConfig) -> tuple[nn.Module, object]:
    """A randomly initialised GPT2LMHeadModel on the tokenizer of ``config.tokenizer`` (and that tokenizer).

    With ``init_embeddings`` (and equal sizes) the tied token embeddings start from the encoder's word
    embeddings, so the tiny LM does not have to learn 30k token vectors from a few minutes of text.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = resolve_model_dir(config.tokenizer)
    tokenizer = load_tokenizer(model_dir)
    gpt2_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.input.max_length, n_embd=config.hidden, n_layer=config.layers,
        n_head=config.heads, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(gpt2_config)
    if config.init_embeddings:
        words = load_backbone(model_dir).get_input_embeddings().weight
        if tuple(words.shape) == tuple(model.transformer.wte.weight.shape):
            with torch.no_grad():
                model.transformer.wte.weight.copy_(words)
        else:
            logger.warning(
                "encoder embeddings %s do not fit the LM's %s; left random", tuple(words.shape), config.hidden
            )
    return model, tokenizer


def save_causal_lm(model: nn.Module, tokenizer, directory: str | Path, config: LanguageModelConfig) -> Path:
    """Write a Hugging Face causal-LM directory (safetensors, tokenizer, ``lm_config.json``, checksums), atomically."""
    directory = Path(directory)
    with atomic_directory(directory, kind="causal-lm") as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        write_json(tmp / "lm_config.json", config_to_dict(config))
        write_checksums(tmp, [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file()])
    return directory


def response_token_mask(token_type_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the response's own tokens (sentence B without its closing [SEP], which ends each row)."""
    lengths = attention_mask.sum(1, keepdim=True)  # (B, 1)
    positions = torch.arange(attention_mask.shape[1]).unsqueeze(0)  # (1, T)
    return (token_type_ids == 1) & (positions < lengths - 1)


def response_nll(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor):
    """Summed negative log-likelihood of the masked tokens of each row, and their count.

    Args:
        input_ids, attention_mask, response_mask: (B, T); token p is predicted from the logits at p - 1.
    Returns: (nll_sum (B,) float64, n_tokens (B,) int64).
    """
    # Only the positions that predict a counted token go through the vocabulary projection: the
    # response is a small part of each row, and for a small LM the projection is most of the cost.
    # (base model + output embeddings is the forward pass of GPT-2-style heads; a model whose forward
    # post-processes its logits would need the full forward instead.)
    outputs = model.base_model(input_ids=input_ids, attention_mask=attention_mask)
    hidden = outputs.last_hidden_state[:, :-1]  # (B, T-1, H)
    counted = response_mask[:, 1:].bool()  # (B, T-1)
    logits = model.get_output_embeddings()(hidden[counted]).float()  # (M, V)
    token_nll = nn.functional.cross_entropy(logits, input_ids[:, 1:][counted], reduction="none")  # (M,)
    rows = counted.nonzero()[:, 0]
    nll = torch.zeros(input_ids.shape[0], dtype=torch.float64).index_add_(0, rows, token_nll.double())
    return nll, counted.sum(1)


@torch.inference_mode()
def pair_response_losses(
    model: nn.Module, pair_tokenizer: PairTokenizer, contexts: Sequence[Sequence[str]], responses: Sequence[str],
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) float64 summed response-token NLL and (N,) int64 response-token counts of each (context, response).

    Pairs are batched longest first (less padding); results come back in the input order. The model
    is left in the train/eval mode it had.
    """
    nll, counts = np.zeros(len(contexts)), np.zeros(len(contexts), dtype=np.int64)
    order = longest_first(contexts, responses)
    with eval_mode(model):
        for start in range(0, len(contexts), batch_size):
            part = order[start : start + batch_size]
            batch = pair_tokenizer.batch([contexts[i] for i in part], [responses[i] for i in part])
            mask = response_token_mask(batch["token_type_ids"], batch["attention_mask"])
            part_nll, part_counts = response_nll(model, batch["input_ids"], batch["attention_mask"], mask)
            nll[part], counts[part] = part_nll.numpy(), part_counts.numpy()
    return nll, counts


class CausalLmScorer:
    """Any local causal-LM directory scoring responses.

    Either a ``train lm`` output or a GPT-2 saved with ``save_pretrained``.

    Args:
        directory: the model directory (``config.json`` + weights + tokenizer files).
        max_length, max_response_length, max_context_turns: how a (context, response) pair is cut; None
            takes the value the LM was trained with (its ``lm_config.json``) or ``LanguageModelConfig``'s
            default. The length never exceeds the model's positions.
    """

    def __init__(
        self, directory: str | Path, max_length: int | None = None, max_response_length: int | None = None,
        max_context_turns: int | None = None,
    ) -> None:
        if not Path(directory).is_dir():
            raise ValueError(f"{directory}: not a language-model directory")
        tokenizer = load_tokenizer(directory)  # also puts transformers offline before the model loads
        from transformers import AutoModelForCausalLM

        self.name = str(directory)
        self.model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True).eval()
        trained = Path(directory) / "lm_config.json"
        config = (
            config_from_dict(LanguageModelConfig, read_json(trained)) if trained.is_file() else LanguageModelConfig()
        )
        model_config = self.model.config
        positions = getattr(model_config, "n_positions", None) or getattr(model_config, "max_position_embeddings", 0)
        length = min(max_length or config.input.max_length, positions or max_length or config.input.max_length)
        self.pair_tokenizer = PairTokenizer(
            tokenizer, length, max_response_length or config.input.max_response_length,
            config.input.max_context_turns if max_context_turns is None else max_context_turns,
        )

    def response_losses(self, contexts: Sequence[Sequence[str]], responses: Sequence[str], batch_size: int = 32):
        """(N,) float64 summed response-token NLL and (N,) int64 response-token counts of each pair."""
        return pair_response_losses(self.model, self.pair_tokenizer, contexts, responses, batch_size)
