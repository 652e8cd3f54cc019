"""The plugin's own tests: pathboard's contract checks, imported from pathboard.testing only."""
import os
from pathlib import Path

from pbfull._net import save_random
from pbfull.datasets import register_datasets
from pbfull.models import register_models
from pbfull.tasks import TopKZeroShot

from pathboard.api import Weights
from pathboard.testing import check_dataset, check_model, check_task, synthetic_context


def registered(hook):
    found = []
    hook(register=found.append)
    return found[0]


def test_model(tmp_path):
    check_model(registered(register_models), Weights(save_random(tmp_path / "w.pt"), "test"), dim=16)


def test_dataset():
    manifest = check_dataset(registered(register_datasets), Path(os.environ["PBFULL_DATA"]))
    assert len(manifest) == 600


def test_task_and_its_option():
    task = TopKZeroShot()
    result = check_task(task, synthetic_context(task, n_per_class=(10, 10, 10), prompt_mode="single",
                                                options={"k": 3}))
    assert [m.name for m in result[""]] == ["top3_accuracy"] and result[""][0].value == 1.0  # k = every class
