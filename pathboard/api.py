"""Everything a pathboard plugin needs, in one import: ``from pathboard.api import ...``.

This is the public surface for plugin authors, and the only part of pathboard the built-in plugins import:
models, datasets and tasks (the three things a plugin registers through the ``pathboard`` entry-point
group), the library code the built-in plugins use (zero-shot classifiers, metrics with bootstrap CIs,
splits, few-shot classifiers, tiling, masks, pictures), and the errors that reach users as one line.
Importing it loads no model library (torch, open_clip, transformers): those are imported when a model
is loaded, and the ABMIL helpers (:func:`abmil_predict`) import torch when first used. Offline test helpers and
contract checks are in :mod:`pathboard.testing`.

The surface only grows: a name here stays. :data:`API_VERSION` counts its contract changes (see
``docs/writing-a-plugin.md#api-versions``); a plugin that breaks a contract is named in one line.
"""
from pathboard.adapters import HFCLIPSpec, OpenCLIPSpec
from pathboard.adapters.bert_text import CONTEXT as BERT_CONTEXT
from pathboard.adapters.bert_text import BertCLIPModel, imagenet_transform, load_strict, wordpiece_tokenizer
from pathboard.adapters.bert_text import bert as bert_model
from pathboard.adapters.bert_text import require_files as require_weight_files
from pathboard.core.errors import DatasetNotFoundError, PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.contracts import API_VERSION
from pathboard.core.interfaces.dataset import (
    IMAGE_EXTENSIONS,
    Annotation,
    Dataset,
    DatasetFactory,
    ImageFolderDataset,
    Manifest,
    Record,
    SlideDataset,
    found,
    image_files,
    layout_error,
    say_empty_classes,
)
from pathboard.core.interfaces.hookspecs import hookimpl
from pathboard.core.interfaces.model import (
    EmbeddingModel,
    ModelCard,
    ModelSpec,
    PatchEncoderModel,
    Runtime,
    TorchCLIPModel,
    l2_normalise,
)
from pathboard.core.interfaces.options import Option
from pathboard.core.interfaces.prompts import PLACEHOLDER, PromptSet, packaged_prompts
from pathboard.core.interfaces.protocols import PackDataset, ProtocolPack, packaged_protocols
from pathboard.core.interfaces.slide_model import SlideEncoder, SlideModelSpec, TorchSlideEncoder, describe_tiling
from pathboard.core.interfaces.task import (
    FACTS,
    TILING_OPTIONS,
    Artifact,
    CellContext,
    Inputs,
    Predictions,
    SlideTask,
    Task,
    TaskResult,
)
from pathboard.core.interfaces.weights import Weights, config_path, from_hub, hub_folder, offline
from pathboard.core.media.download import Download
from pathboard.core.media.figures import heatmap, save_panels
from pathboard.core.media.images import open_rgb, orientation, turned
from pathboard.core.media.masks import IGNORE, mask_to_grid, rasterize_polygons, truth_from_annotations
from pathboard.core.media.tiling import Tiling, open_slide, tile_stride
from pathboard.core.paths import cache_root, safe_name, write_cached
from pathboard.core.science.calibration import RELIABILITY, calibration_metrics, reliability_bins, softmax_probs
from pathboard.core.science.compare import paired_bootstrap
from pathboard.core.science.grouping import near_duplicate_groups
from pathboard.core.science.linear_probe import convergence_note, linear_probe_classifier, probe_convergence
from pathboard.core.science.metrics import (
    MIN_UNITS,
    N_BOOT,
    SEED,
    Metric,
    bootstrap_indices,
    bootstrap_label,
    classification_metrics,
    confusion_matrices,
    estimate,
    iqr_metrics,
    mean_metric,
    median_metrics,
    normalised,
    percentile_ci,
    scores_from_confusion,
    units_of,
)
from pathboard.core.science.perturb import DEFAULT as DEFAULT_PERTURBATIONS
from pathboard.core.science.perturb import PERTURBATIONS
from pathboard.core.science.prototype import prototype_classifier
from pathboard.core.science.rankings import family as prompt_family
from pathboard.core.science.retrieval import (
    caption_pairs,
    first_hit_ranks,
    hit_rates,
    pairs_index,
    retrieval_metrics,
)
from pathboard.core.science.screening import screened_vote, screening_bank
from pathboard.core.science.segmentation import (
    OVERLAP as SEGMENTATION_OVERLAP,
)
from pathboard.core.science.segmentation import (
    average_scores,
    image_scores,
    predict_mask,
    segmentation_metrics,
    tile_cells,
)
from pathboard.core.science.shots import (
    DRAWS,
    K_MAX,
    draw_support,
    fewshot_headline,
    predict_all,
    shot_counts,
    torch_seed,
    with_spread,
)
from pathboard.core.science.slide_retrieval import slide_retrieval_metrics
from pathboard.core.science.splits import evaluated_items, group_hash_split, item_groups, official_split, split_rule
from pathboard.core.science.zeroshot import (
    TOPK_HEADLINE,
    TOPK_VALUES,
    predict,
    similarities,
    topk_pool,
    zero_shot_classifier,
)


def abmil_predict(support, y, classes, test, seed: int):
    """Gated-attention MIL (ABMIL) trained on the ``support`` bags ([T_i, D] tile embeddings, labels ``y``):
    the class positions (into ``classes``) it predicts for the ``test`` bags. See
    :mod:`pathboard.core.science.abmil`; torch is imported on the first call, not with this module."""
    from pathboard.core.science.abmil import abmil_predict as train_and_predict

    return train_and_predict(support, y, classes, test, seed)


def abmil_fit(support, y, classes, seed: int):
    """The trained ABMIL model of :func:`abmil_predict`, to classify test bags with :func:`abmil_classify` together
    with other models (each test bag is then read once for all of them). Imports torch on the first call."""
    from pathboard.core.science.abmil import abmil_fit as fit

    return fit(support, y, classes, seed)


def abmil_classify(models, test, device: str = "cpu"):
    """[models, test bags] class positions (into the ``classes`` the models were fitted with) that the
    :func:`abmil_fit` models predict for the ``test`` bags, each bag read once for all of them, on ``device``
    (a task passes ``ctx.device``, the run's: the models move there)."""
    from pathboard.core.science.abmil import abmil_classify as classify

    return classify(models, test, device)


__all__ = [
    "API_VERSION",
    # registering
    "hookimpl",
    # models
    "EmbeddingModel", "HFCLIPSpec", "ModelCard", "ModelSpec", "OpenCLIPSpec", "Runtime", "TorchCLIPModel", "Weights",
    "from_hub", "hub_folder", "l2_normalise", "config_path", "offline",
    # models with a BERT text tower (KEP, KEEP)
    "BERT_CONTEXT", "BertCLIPModel", "bert_model", "imagenet_transform", "load_strict", "require_weight_files",
    "wordpiece_tokenizer",
    # datasets
    "Annotation", "Dataset", "DatasetFactory", "Download", "ImageFolderDataset", "Manifest", "PromptSet", "Record",
    "SlideDataset", "found", "image_files", "layout_error", "packaged_prompts", "IMAGE_EXTENSIONS",
    "say_empty_classes", "cache_root", "write_cached", "safe_name", "near_duplicate_groups", "open_rgb",
    "orientation", "turned",
    "IGNORE", "mask_to_grid", "rasterize_polygons", "truth_from_annotations",
    # tasks
    "FACTS", "Artifact", "CellContext", "Inputs", "Option", "Predictions", "Task", "TaskResult", "Tiling",
    "SlideTask", "TILING_OPTIONS", "open_slide", "tile_stride", "PLACEHOLDER",
    # splits and groups: one rule for every task
    "evaluated_items", "item_groups", "official_split", "group_hash_split", "split_rule",
    # metrics and intervals
    "Metric", "MIN_UNITS", "estimate", "units_of", "N_BOOT", "SEED", "bootstrap_indices", "bootstrap_label",
    "calibration_metrics", "classification_metrics",
    "confusion_matrices", "iqr_metrics", "mean_metric", "median_metrics", "normalised", "percentile_ci",
    "reliability_bins", "RELIABILITY", "scores_from_confusion", "softmax_probs", "paired_bootstrap",
    # zero-shot
    "predict", "similarities", "zero_shot_classifier", "topk_pool", "TOPK_VALUES", "TOPK_HEADLINE", "prompt_family",
    "screened_vote", "screening_bank",
    "PERTURBATIONS", "DEFAULT_PERTURBATIONS",
    # few-shot: the k-shot draws and one file per classifier
    "DRAWS", "K_MAX", "shot_counts", "draw_support", "fewshot_headline", "predict_all", "with_spread", "torch_seed",
    "prototype_classifier", "linear_probe_classifier", "probe_convergence", "convergence_note", "abmil_predict",
    "abmil_fit", "abmil_classify",
    # retrieval and segmentation
    "first_hit_ranks", "hit_rates", "pairs_index", "caption_pairs", "retrieval_metrics", "SEGMENTATION_OVERLAP",
    "tile_cells", "average_scores",
    "predict_mask", "image_scores", "segmentation_metrics",
    # pictures
    "heatmap", "save_panels",
    # protocol packs: a paper's evaluation protocol as data (plugin API 5)
    "PackDataset", "ProtocolPack", "packaged_protocols",
    # slide-level models: a slide encoder over a patch encoder's tile features (plugin API 6)
    "SlideEncoder", "SlideModelSpec", "TorchSlideEncoder", "PatchEncoderModel", "describe_tiling",
    "slide_retrieval_metrics",
    # errors that reach the user as one line
    "DatasetNotFoundError", "PathboardError", "WeightsNotFoundError",
]
