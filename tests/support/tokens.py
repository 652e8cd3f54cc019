

# open_clip's bundled BPE and PLIP's CLIP BPE agree on these ids
GOLDEN = ("an H&E image of adipose tissue.", [49406, 550, 327, 261, 324, 2867, 539, 2486, 4230, 15368, 269, 49407])


def open_clip_ids(model, prompt):
    ids = model.tokenizer([prompt])[0].tolist()
    return ids[: ids.index(49407) + 1]


def hf_ids(model, prompt):
    return model.tokenizer(prompt)["input_ids"]
