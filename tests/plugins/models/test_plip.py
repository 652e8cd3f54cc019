"""PLIP (transformers CLIPModel) in its real HF-cache layout, through the model contract."""
import pytest
from support.model_contract import check_model
from support.tiny import OPENAI_MEAN, OPENAI_STD
from support.tokens import GOLDEN, hf_ids


@pytest.mark.slow
def test_plip(tiny_hub, shared_data, tmp_path):
    check_model("plip", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=hf_ids, golden=GOLDEN)
