"""Every pruning method behind the shared interface: budgets, determinism, and what each one keeps."""

from __future__ import annotations

import math

import pytest
import torch

from fastvid_cli.pruning import (
    METHODS,
    DyCokeConfig,
    FastVIDConfig,
    PruningMethod,
    UniformConfig,
    VisionZipConfig,
    anchor_counts,
    cluster_segments,
    fixed_segments,
    make_method,
    method_for_family,
    method_label,
)

SPECS = [
    "fastvid",
    "fastvid:segmentation=fixed",
    "fastvid:segmentation=cluster",
    "fastvid:d=0",
    "fastvid:d=1",
    "uniform",
    "visionzip",
    "dycoke",
]


def inputs(frames=12, tokens=49, dim=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(frames, tokens, dim, generator=gen),
        torch.randn(frames, 8, generator=gen),
        torch.rand(frames, tokens, generator=gen),
    )


@pytest.mark.parametrize("spec", SPECS)
def test_exact_budget_and_ascending_indices(spec):
    x, g, s = inputs()
    for r in [0.02, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 1.0]:
        result = make_method(spec, r)(x, g, s)
        want = 12 * max(1, math.floor(49 * r))
        if spec == "dycoke" and want < 3 * 49:  # 12 frames = 3 windows of 4: first frames are the floor
            assert result.tokens.shape[0] == 3 * 49 and "first frame" in result.note
        else:
            assert result.tokens.shape[0] == want, (spec, r)
            assert result.note is None
        assert torch.all(result.indices[1:] > result.indices[:-1])
        assert result.tokens.shape[1] == 16 and sum(result.segment_lengths) == 12


@pytest.mark.parametrize("spec", SPECS)
def test_deterministic_and_full_retention_is_identity(spec):
    x, g, s = inputs(seed=3)
    a, b = make_method(spec, 0.3)(x, g, s), make_method(spec, 0.3)(x, g, s)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.indices, b.indices)
    full = make_method(spec, 1.0)(x, g, s)
    assert torch.equal(full.indices, torch.arange(12 * 49))
    torch.testing.assert_close(full.tokens, x.reshape(-1, 16))


@pytest.mark.parametrize("name", list(METHODS))
def test_shape_errors_and_docstring_cites_paper(name):
    x, g, s = inputs()
    with pytest.raises(ValueError, match="saliency"):
        make_method(name, 0.1)(x, g, s[:, :3])
    if name != "uniform":  # the naive baseline has no paper
        assert "arXiv" in METHODS[name].__doc__, "each method's docstring cites its paper"


def test_uniform_keeps_evenly_spaced_positions():
    x, g, s = inputs(frames=2, tokens=196)
    result = UniformConfig(retention_ratio=0.5)(x, g, s)
    first = result.indices[:98].tolist()
    assert first == list(range(1, 196, 2))
    assert result.indices[98:].tolist() == [196 + i for i in first], "same positions in every frame"
    ten = UniformConfig(retention_ratio=0.05)(x, g, s).indices[:9].tolist()  # 9 of 196
    rows = {i // 14 for i in ten}
    assert len(rows) == 9 and min(rows) <= 1 and max(rows) >= 12, "spread over the whole grid"


def test_visionzip_dominant_by_saliency_and_contextual_merge():
    # one frame, 10 tokens: saliency picks 0..4; the rest are two tight groups around 6 and 9
    x = torch.zeros(1, 10, 3)
    x[0, :5] = torch.randn(5, 3)
    x[0, 5:8] = torch.tensor([1.0, 0, 0]) + 0.01 * torch.arange(3.0)[:, None]
    x[0, 8:] = torch.tensor([0, 1.0, 0]) + 0.01 * torch.arange(2.0)[:, None]
    s = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6, 0, 0, 0, 0, 0]])
    result = VisionZipConfig(retention_ratio=0.7, dominant_share=5 / 7)(x, torch.ones(1, 2), s)
    assert result.indices.tolist() == [0, 1, 2, 3, 4, 5, 7]  # targets at stride 2 among 5..9: 5 and 7
    torch.testing.assert_close(result.tokens[:5], x[0, :5])
    # 6 joins 5 (same group); 8 and 9 are closest to 7 by cosine? 7 is in group A too: check by rule
    others = x[0, [6, 8, 9]]
    targets = x[0, [5, 7]]
    sim = torch.nn.functional.normalize(others, dim=-1) @ torch.nn.functional.normalize(targets, dim=-1).T
    assign = sim.argmax(1)
    for t in range(2):
        members = others[assign == t]
        want = targets[t] + (members.mean(0) if len(members) else 0)
        torch.testing.assert_close(result.tokens[5 + t], want)
    assert result.anchor_mask.tolist() == [False] * 5 + [True, True]


def test_dycoke_drops_tokens_that_repeat_the_window_first_frame():
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(1, 20, 8, generator=gen)
    x = base.repeat(4, 1, 1)
    moving = [3, 11, 17]
    x[1:, moving] = torch.randn(3, 3, 8, generator=gen)  # these tokens change after frame 0
    result = DyCokeConfig(retention_ratio=0.4)(x, torch.randn(4, 2), torch.rand(4, 20))  # 4 x 8 = 32 tokens
    kept = set(result.indices.tolist())
    assert set(range(20)) <= kept, "the window's first frame is kept whole"
    assert {f * 20 + t for f in (1, 2, 3) for t in moving} <= kept, "changed tokens kept"
    assert len(kept) == 32
    floor = DyCokeConfig(retention_ratio=0.1)(x, torch.randn(4, 2), torch.rand(4, 20))
    assert floor.indices.tolist() == list(range(20)) and "25.0%" in floor.note


def test_fixed_and_cluster_segmentations():
    g = torch.randn(10, 4)
    assert fixed_segments(g, 4).as_list() == [4, 4, 2]
    scenes = torch.eye(4)[[0, 0, 1, 1, 0, 0, 2, 2, 2, 0]]  # scene 0 comes back: one cluster, not contiguous
    seg = cluster_segments(scenes, c=3)
    assert seg.segment_ids.tolist() == [0, 0, 1, 1, 0, 0, 2, 2, 2, 0]
    assert seg.as_list() == [5, 2, 3]
    counts = anchor_counts(seg, context=2, p=2, available=5)
    # cluster 0 = frames 0,1,4,5,9: anchor frames 9, 4, 0 (every 2nd from its last), budget 10 -> 4,3,3
    assert counts[[9, 4, 0]].tolist() == [4, 3, 3] and counts[[1, 5]].tolist() == [0, 0]
    x, _, s = inputs(frames=10, tokens=20)
    result = FastVIDConfig(retention_ratio=0.3, segmentation="cluster", c=3)(x, scenes, s)
    assert result.tokens.shape[0] == 10 * 6 and result.segment_lengths == [5, 2, 3]


def test_ablations_d_zero_and_one():
    x, g, s = inputs(seed=5)
    ats = make_method("fastvid:d=0", 0.2)(x, g, s)
    assert not ats.anchor_mask.any(), "d = 0 keeps only salient tokens"
    dtm = make_method("fastvid:d=1", 0.2)(x, g, s)
    assert dtm.anchor_mask.all(), "d = 1 keeps only merged anchors"


def test_method_specs():
    assert make_method("fastvid:segmentation=fixed,p=2", 0.2) == FastVIDConfig(retention_ratio=0.2, segmentation="fixed", p=2)
    assert make_method("fastvid", 0.2, c=4, window=9) == FastVIDConfig(retention_ratio=0.2, c=4)
    assert make_method("dycoke", 0.3, c=4) == DyCokeConfig(retention_ratio=0.3)
    assert method_label(make_method("fastvid:d=0", 0.1)) == "fastvid (d=0)"
    for bad, match in [
        ("nope", "unknown method"),
        ("fastvid:q=1", "bad option"),
        ("fastvid:c=x", "expected int"),
        ("fastvid:segmentation=zig", "segmentation must be"),
        ("uniform:retention_ratio=1", "bad option"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_method(bad, 0.1)


def test_spec_sets_optional_fields_by_their_annotated_type():
    config = make_method("fastvid:split_tau=0.95,max_segment=32", 0.1)
    assert config.split_tau == 0.95 and config.max_segment == 32
    assert make_method("fastvid:split_tau=none", 0.1).split_tau is None
    with pytest.raises(ValueError, match="expected int"):
        make_method("fastvid:max_segment=many", 0.1)


@pytest.mark.parametrize("spec", SPECS + ["fastvid:p=1", "fastvid:split_tau=0.95", "fastvid:segmentation=fixed,beta=0.9"])
@pytest.mark.parametrize("r", [0.1, 0.3, 1.0])
def test_gather_keeps_other_features_as_the_tokens(spec, r):
    """``gather`` rebuilds every kept token (selected or merged) from the input rows and weights the
    method reports, so a second feature per token (Qwen3-VL's DeepStack) is kept and merged alike."""
    x, g, s = inputs(seed=5)
    result = make_method(spec, r)(x, g, s)
    torch.testing.assert_close(result.gather(x), result.tokens, rtol=1e-5, atol=1e-5)
    # a feature that is a linear map of the tokens is merged by the same weights: gather commutes with it
    lift = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(result.gather(x @ lift), result.tokens @ lift, rtol=1e-4, atol=1e-4)
    assert result.gather(x.to(torch.bfloat16)).dtype == torch.bfloat16


def test_gather_uses_the_merge_weights_not_the_kept_rows():
    """A merged token's DeepStack row mixes the rows merged into it: taking the anchor's own row fails."""
    x, g, s = inputs(frames=8, seed=2)
    result = FastVIDConfig(retention_ratio=0.2)(x, g, s)
    assert result.anchor_mask.any() and result.self_weight is not None
    other = torch.randn(8 * 49, 5, generator=torch.Generator().manual_seed(3))
    gathered = result.gather(other)
    plain = other[result.indices]
    kept_as_is = ~result.anchor_mask
    torch.testing.assert_close(gathered[kept_as_is], plain[kept_as_is])
    assert not torch.allclose(gathered[result.anchor_mask], plain[result.anchor_mask])
    # eq. 5 by hand for one anchor: w a + (1 - w) mean(assigned), the anchor itself among the assigned
    anchor = int(result.indices[result.anchor_mask][0])
    members = result.merge_pairs[0][result.merge_pairs[1] == anchor]
    w = max(0.6, 1 / (members.numel() + 1))
    want = w * other[anchor] + (1 - w) * other[members].mean(0)
    torch.testing.assert_close(gathered[result.indices == anchor][0], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rows"):
        result.gather(other[:10])


@pytest.mark.parametrize("cls", list(METHODS.values()))
def test_every_method_holds_its_ratio_and_check_in_the_one_base(cls):
    """R, its check, ``to_dict`` and ``name`` are the base's: a method declares only its own fields."""
    assert issubclass(cls, PruningMethod) and cls.__dataclass_params__.frozen
    assert not {"retention_ratio", "to_dict", "hyperparameters"} & set(vars(cls))  # none written again
    assert next(iter(cls.__dataclass_fields__)) == "retention_ratio" and "retention_ratio" not in cls.hyperparameters()
    assert cls().to_dict() == {"retention_ratio": 0.1, **{name: f.default for name, f in cls.hyperparameters().items()}}
    for bad in (0, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match=r"retention ratio must be in \(0, 1\]"):
            cls(retention_ratio=bad)
    with pytest.raises(TypeError):
        PruningMethod()  # abstract: only a method prunes


def test_family_defaults_then_overrides_then_the_spec():
    qwen_like = {"retention_ratio": 0.27, "tau": 0.84, "split_tau": 0.95}
    assert method_for_family(qwen_like) == FastVIDConfig(retention_ratio=0.27, tau=0.84, split_tau=0.95)
    assert method_for_family(qwen_like, {"tau": 0.9, "retention_ratio": 0.1}) == FastVIDConfig(
        retention_ratio=0.1, tau=0.9, split_tau=0.95
    )
    assert method_for_family(qwen_like, {"retention_ratio": 0.1}, retention_ratio=0.5).retention_ratio == 0.5
    assert method_for_family({}, {"d": 0.5}, "fastvid:d=0") == FastVIDConfig(d=0)
    assert method_for_family(qwen_like, {"c": 4}, "uniform") == UniformConfig(retention_ratio=0.27)  # fields it lacks
    assert method_for_family({}) == FastVIDConfig()
    with pytest.raises(ValueError, match="tau must be a finite number"):
        method_for_family(qwen_like, {"tau": float("inf")})


def test_the_torch_free_method_names_are_the_methods():
    """The command line tells a method spec from the next argument by budget.METHOD_NAMES, before torch loads."""
    from fastvid_cli.budget import METHOD_NAMES

    assert tuple(METHODS) == METHOD_NAMES
