"""Everything a pathboard plugin needs, in one import: ``from pathboard.api import ...``.

This is the public surface for plugin authors: models, datasets and tasks (the three things a plugin
registers through the ``pathboard`` entry-point group), the library code the built-in plugins use
(zero-shot classifier, metrics with bootstrap CIs, tiling), and the errors that reach users as one
line. Importing it loads no model library (torch, open_clip, transformers): those are imported when a
model is loaded. Offline test helpers and contract checks are in :mod:`pathboard.testing`.
"""
from pathboard.adapters import HFCLIPSpec, OpenCLIPSpec
from pathboard.core.calibration import calibration_metrics, softmax_probs
from pathboard.core.dataset import (
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
from pathboard.core.download import Download
from pathboard.core.errors import DatasetNotFoundError, PathboardError, WeightsNotFoundError
from pathboard.core.hookspecs import hookimpl
from pathboard.core.metrics import (
                                    Metric,
                                    bootstrap_indices,
                                    classification_metrics,
                                    iqr_metrics,
                                    mean_metric,
                                    median_metrics,
                                    normalised,
                                    percentile_ci,
)
from pathboard.core.model import EmbeddingModel, ModelCard, ModelSpec, Runtime, TorchCLIPModel, l2_normalise
from pathboard.core.options import Option
from pathboard.core.prompts import PromptSet, packaged_prompts
from pathboard.core.task import FACTS, Artifact, CellContext, Inputs, Predictions, Task, TaskResult, evaluated_items
from pathboard.core.tiling import Tiling
from pathboard.core.weights import Weights, from_hub
from pathboard.core.zeroshot import predict, similarities, zero_shot_classifier

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
