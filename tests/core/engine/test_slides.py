"""How slide models enter a plan: the remote-code opt-in, their patch encoder and tiling, the whole-slide tasks
only, and --features checked against them."""
import numpy as np
import pytest

from pathboard.api import hookimpl
from pathboard.core.engine import plugins
from pathboard.core.engine.plan import RunConfig, plan
from pathboard.core.engine.run import execute
from pathboard.core.errors import PathboardError
from pathboard.testing import write_trident_features

pytestmark = pytest.mark.usefixtures("slide_hub")


def cfg(root, **kw):
    return RunConfig(**{"datasets": "tcga-cesc", "data_root": str(root), **kw})


def test_without_the_opt_in_a_slide_model_is_skipped_in_one_line_naming_the_flag(slides_root):
    p = plan(cfg(slides_root, models="titan,plip"))
    lines = [s for s in p.skip_lines() if s.startswith("titan:")]
    assert len(lines) == 1 and "--trust-remote-code titan" in lines[0] and "trust_remote_code" in lines[0]
    assert {c.model.id for c in p.cells} == {"plip"}


def test_a_slide_model_scores_the_whole_slide_tasks_at_its_own_tiling(slides_root):
    p = plan(cfg(slides_root, models="titan,plip", trust_remote_code=("titan",)))
    titan = [c for c in p.cells if c.model.id == "titan"]
    assert {c.task.id for c in titan} == {"zeroshot-wsi", "fewshot-wsi", "report-retrieval", "slide-retrieval",
                                          "prompt-sensitivity"}
    assert {c.task.id for c in p.cells if c.model.id == "plip"} >= {c.task.id for c in titan}
    assert {(c.inputs.tiles.size, c.inputs.tiles.magnification) for c in titan} == {(512, 20.0)}
    assert p.patch_encoders["titan"].id == "conch-v1.5" and "conch-v1.5" in p.weights  # resolved, not scored
    assert "conch-v1.5" not in {c.model.id for c in p.cells}


def test_a_slide_model_is_said_once_to_skip_patch_datasets(slides_root, shared_data):
    lung = shared_data / "lung_colon_image_set" / "lung_image_sets"
    p = plan(cfg(slides_root, models="titan", datasets=f"tcga-cesc,folder:{lung}", trust_remote_code=("titan",)))
    lines = [s for s in p.skipped if s.startswith("titan: a slide encoder")]
    assert len(lines) == 1 and "on 1 dataset(s)" in lines[0] and "zeroshot" in lines[0]


def test_features_of_another_encoder_or_magnification_are_refused_in_one_line(slides_root, tmp_path):
    virchow = write_trident_features(tmp_path / "v", "s", np.zeros((2, 4)), np.zeros((2, 2)), 448, encoder="virchow",
                                     patch_size=224)
    with pytest.raises(PathboardError) as refused:
        plan(cfg(slides_root, models="titan", trust_remote_code=("titan",), features=(str(virchow),)))
    assert "holds virchow features, which no slide model of this run reads (titan reads conch_v15)" in \
        str(refused.value)
    # each slide model reads the folder of its own encoder; one without a folder embeds its tiles
    both = plan(cfg(slides_root, models="titan,prism", trust_remote_code=("titan", "prism"),
                    features=(str(virchow),)))
    assert {c.model.id for c in both.cells} == {"titan", "prism"} and "conch-v1.5" in both.weights
    low = write_trident_features(tmp_path / "c", "s", np.zeros((2, 4)), np.zeros((2, 2)), 2048, encoder="conch_v15",
                                 magnification=10.0)
    with pytest.raises(PathboardError, match="holds conch_v15 features at 10x, 512 px"):
        plan(cfg(slides_root, models="titan", trust_remote_code=("titan",), features=(f"tcga-cesc={low}",)))
    ok = write_trident_features(tmp_path / "ok", "s", np.zeros((2, 4)), np.zeros((2, 2)), 1024, encoder="conch_v15")
    read = plan(cfg(slides_root, models="titan", trust_remote_code=("titan",), features=(str(ok),)))
    assert read.features[("*", "conch_v15")].root == ok
    with pytest.raises(PathboardError, match="a second folder of conch_v15 features for every dataset"):
        plan(cfg(slides_root, models="titan", trust_remote_code=("titan",), features=(str(ok), str(low))))
    unread = plan(cfg(slides_root, models="plip", features=(str(ok),))).skip_lines()
    assert any(line.startswith("--features: no slide model of this run reads them") for line in unread)
    with pytest.raises(PathboardError, match="dataset nope is not in this run"):
        plan(cfg(slides_root, models="titan", trust_remote_code=("titan",), features=(f"nope={ok}",)))


class UntrustedWrapper:
    """A third party's slide model without remote code of its own, over a patch encoder that has it."""

    @staticmethod
    @hookimpl
    def register_models(register):
        from dataclasses import dataclass

        from pathboard.plugins.models.titan import TitanSpec

        @dataclass
        class Wrapper(TitanSpec):
            remote_code: bool = False

        register(Wrapper(id="wrapper"))


def test_a_patch_encoders_remote_code_needs_the_opt_in_too(slides_root):
    pm = plugins.plugin_manager()
    pm.register(UntrustedWrapper, name="third-party:wrapper")
    plugins.registry.cache_clear()
    try:
        p = plan(cfg(slides_root, models="wrapper,plip"))
        line = next(s for s in p.skipped if s.startswith("wrapper: its patch encoder conch-v1.5: it runs model code"))
        assert "--trust-remote-code conch-v1.5" in line and {c.model.id for c in p.cells} == {"plip"}
        assert {c.model.id for c in plan(cfg(slides_root, models="wrapper", trust_remote_code=("conch-v1.5",))).cells} \
            == {"wrapper"}
    finally:
        pm.unregister(name="third-party:wrapper")
        plugins.registry.cache_clear()


class SecondSlideModel:
    """A third party's slide model over TITAN's patch encoder (registered through the same hook)."""

    @staticmethod
    @hookimpl
    def register_models(register):
        from pathboard.plugins.models.titan import TitanSpec

        register(TitanSpec(id="titan-b"))


@pytest.fixture()
def second_slide_model():
    pm = plugins.plugin_manager()
    pm.register(SecondSlideModel, name="third-party:titan-b")
    plugins.registry.cache_clear()
    yield
    pm.unregister(name="third-party:titan-b")
    plugins.registry.cache_clear()


@pytest.mark.slow
def test_a_second_slide_model_on_the_same_slides_embeds_no_tile(slides_root, tmp_path, fresh_cache,
                                                                 second_slide_model):
    def run(model):
        c = cfg(slides_root, models=model, trust_remote_code=(model,), tasks="zeroshot-wsi", prompt_modes="single",
                db=str(tmp_path / "pb.duckdb"), workers=0, weights=(f"{model}={titan}",))
        return execute(plan(c), c)

    titan = plugins.get("model", "titan").resolve().path
    first, second = run("titan"), run("titan-b")
    assert sum(c["tiles"] for c in first.costs) > 0 and first.image_forwards > 0
    assert sum(c["tiles"] for c in second.costs) == 0 and second.image_forwards == 0
    assert {c["model"] for c in second.cells} == {"titan-b"} and len(second.cells) == len(first.cells)
