"""QuiltNet-B-32 (open_clip) in its real HF-cache layout, through the model contract."""
import pytest
from support.model_contract import check_model
from support.tiny import OPENAI_MEAN, OPENAI_STD
from support.tokens import GOLDEN, open_clip_ids


@pytest.mark.slow
def test_quiltnet_b32(tiny_hub, shared_data, tmp_path):
    check_model("quiltnet-b32", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=open_clip_ids, golden=GOLDEN)
