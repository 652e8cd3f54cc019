"""The contract for the foundation models: QuiltNet-B-32 (HF cache, open_clip) and PLIP (transformers)."""
from model_contract import check_model
from tiny import OPENAI_MEAN, OPENAI_STD

# open_clip's bundled BPE and PLIP's CLIP BPE agree on these ids
GOLDEN = ("an H&E image of adipose tissue.", [49406, 550, 327, 261, 324, 2867, 539, 2486, 4230, 15368, 269, 49407])


def open_clip_ids(model, prompt):
    ids = model.tokenizer([prompt])[0].tolist()
    return ids[: ids.index(49407) + 1]


def hf_ids(model, prompt):
    return model.tokenizer(prompt)["input_ids"]


def test_quiltnet_b32(tiny_hub, shared_data, tmp_path):
    check_model("quiltnet-b32", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=open_clip_ids, golden=GOLDEN)


def test_plip(tiny_hub, shared_data, tmp_path):
    check_model("plip", size=224, mean=OPENAI_MEAN, std=OPENAI_STD, dim=32, shared_data=shared_data,
                tmp_path=tmp_path, tokenize=hf_ids, golden=GOLDEN)
