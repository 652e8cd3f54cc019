"""Everything a pathboard plugin needs, in one import: ``from pathboard.api import ...``.

This is the public surface for plugin authors: models, datasets and tasks (the three things a plugin
registers through the ``pathboard`` entry-point group), the library code the built-in plugins use
(zero-shot classifier, metrics with bootstrap CIs, tiling), and the errors that reach users as one
line. Importing it loads no model library (torch, open_clip, transformers): those are imported when a
model is loaded. Offline test helpers and contract checks are in :mod:`pathboard.testing`.
"""
from pathboard.adapters import HFCLIPSpec, OpenCLIPSpec
from pathboard.core.errors import DatasetNotFoundError, PathboardError, WeightsNotFoundError
from pathboard.core.interfaces.dataset import (
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
)
from pathboard.core.interfaces.hookspecs import hookimpl
from pathboard.core.interfaces.model import EmbeddingModel, ModelCard, ModelSpec, Runtime, TorchCLIPModel, l2_normalise
from pathboard.core.interfaces.options import Option
from pathboard.core.interfaces.prompts import PromptSet, packaged_prompts
from pathboard.core.interfaces.task import (
                                    FACTS,
                                    Artifact,
                                    CellContext,
                                    Inputs,
                                    Predictions,
                                    Task,
                                    TaskResult,
                                    evaluated_items,
)
from pathboard.core.interfaces.weights import Weights, from_hub
from pathboard.core.media.download import Download
from pathboard.core.media.tiling import Tiling
from pathboard.core.science.calibration import calibration_metrics, softmax_probs
from pathboard.core.science.metrics import (
                                    Metric,
                                    bootstrap_indices,
                                    classification_metrics,
                                    iqr_metrics,
                                    mean_metric,
                                    median_metrics,
                                    normalised,
                                    percentile_ci,
)
from pathboard.core.science.zeroshot import predict, similarities, zero_shot_classifier

__all__ = [
    # registering
    "hookimpl",
    # models
    "EmbeddingModel", "HFCLIPSpec", "ModelCard", "ModelSpec", "OpenCLIPSpec", "Runtime", "TorchCLIPModel", "Weights",
    "from_hub", "l2_normalise",
    # datasets
    "Annotation", "Dataset", "DatasetFactory", "Download", "ImageFolderDataset", "Manifest", "PromptSet", "Record",
    "SlideDataset", "found", "image_files", "layout_error", "packaged_prompts",
    # tasks
    "FACTS", "Artifact", "CellContext", "Inputs", "Option", "Predictions", "Task", "TaskResult", "Tiling",
    "evaluated_items",
    # library code the built-in tasks use
    "Metric", "bootstrap_indices", "calibration_metrics", "classification_metrics", "iqr_metrics", "mean_metric",
    "median_metrics", "normalised", "percentile_ci", "predict", "similarities", "softmax_probs",
    "zero_shot_classifier",
    # errors that reach the user as one line
    "DatasetNotFoundError", "PathboardError", "WeightsNotFoundError",
]
