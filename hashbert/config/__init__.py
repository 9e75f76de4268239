"""Typed, frozen configuration dataclasses, grouped by concern, and the machinery that saves them with
every artefact and generates every command-line flag from them (``fields``)."""

from hashbert.config.cross import (
    CROSS_POOLINGS,
    CrossEncoderConfig,
    LanguageModelConfig,
    NegativeSamplingConfig,
    PostTrainConfig,
)
from hashbert.config.encoder import BASE_MODEL, BackboneConfig, DualEncoderConfig, EncoderConfig, PairInputConfig
from hashbert.config.evaluation import EvalDataConfig, FullRankSettings, SeedTableConfig
from hashbert.config.fields import (
    Config,
    add_config_arguments,
    config_from_args,
    config_from_dict,
    config_to_dict,
    option,
    required,
)
from hashbert.config.hashing import (
    RELAX_MODES,
    SIMILARITY_FORMS,
    BprConfig,
    HashBertConfig,
    HashConfig,
    HashEncoderConfig,
    HashLossConfig,
    check_n_bits,
)
from hashbert.config.hdr import (
    HDR_AGGREGATORS,
    HDR_HASH_RECIPES,
    HdrConfig,
    HdrHashConfig,
    HdrHashTrainConfig,
    HdrInitConfig,
)
from hashbert.config.serving import BundleManifest
from hashbert.config.training import DataConfig, DistillConfig, HardNegativeConfig, TrainConfig, check_device

__all__ = [
    "BASE_MODEL", "CROSS_POOLINGS", "HDR_AGGREGATORS", "HDR_HASH_RECIPES", "RELAX_MODES", "SIMILARITY_FORMS",
    "BackboneConfig", "BprConfig", "BundleManifest", "Config",
    "CrossEncoderConfig", "DataConfig", "DistillConfig", "DualEncoderConfig", "EncoderConfig",
    "EvalDataConfig", "FullRankSettings", "HashBertConfig", "HashConfig", "HashEncoderConfig", "HashLossConfig",
    "HardNegativeConfig", "HdrConfig", "HdrHashConfig", "HdrHashTrainConfig", "HdrInitConfig", "LanguageModelConfig",
    "NegativeSamplingConfig", "PairInputConfig", "PostTrainConfig", "SeedTableConfig", "TrainConfig",
    "add_config_arguments", "check_device", "check_n_bits", "config_from_args", "config_from_dict", "config_to_dict",
    "option", "required",
]
