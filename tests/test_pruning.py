"""FastVID pruning core: budgets, DySeg, ATS, DTM, against a plain-loop reference of the spec."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from fastvid_cli.pruning import (
    FastVIDConfig,
    FrameBudget,
    Segmentation,
    anchor_counts,
    density_merge,
    density_scores,
    dtm,
    dyseg,
    fastvid_prune,
    select_salient,
)


def random_inputs(frames=8, tokens=16, dim=8, feat_dim=6, seed=0, scenes=None):
    """Video tokens, frame features (``scenes`` distinct scenes when given) and saliency."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(frames, tokens, dim, generator=gen)
    if scenes:
        base = torch.randn(scenes, feat_dim, generator=gen)
        g = base.repeat_interleave(math.ceil(frames / scenes), 0)[:frames]
        g = g + 0.01 * torch.randn(frames, feat_dim, generator=gen)
    else:
        g = torch.randn(frames, feat_dim, generator=gen)
    s = torch.rand(frames, tokens, generator=gen)
    return x, g, s


# --- a plain-loop reference of ../shared/FASTVID_SPEC.md, written independently of the package ---


def ref_segments(g, c, tau):
    frames = g.shape[0]
    sim = [float(torch.nn.functional.cosine_similarity(g[i], g[i + 1], dim=0)) for i in range(frames - 1)]
    k = min(c - 1, frames - 1)
    cuts = set(sorted(range(frames - 1), key=lambda i: (sim[i], i))[:k]) | {i for i in range(frames - 1) if sim[i] < tau}
    segments, start = [], 0
    for i in range(frames):
        if i in cuts or i == frames - 1:
            segments.append(list(range(start, i + 1)))
            start = i + 1
    return segments


def ref_density(x):
    n, dim = x.shape
    dist = [[float((x[i] - x[j]).norm()) / math.sqrt(dim) if i != j else 0.0 for j in range(n)] for i in range(n)]
    rho = [math.exp(-sum(sorted(d * d for d in dist[i])[: min(4, n)]) / min(4, n)) for i in range(n)]
    largest = max(max(row) for row in dist)
    scores = []
    for i in range(n):
        denser = [dist[i][j] for j in range(n) if rho[j] > rho[i] or (rho[j] == rho[i] and j < i)]
        scores.append(rho[i] * (min(denser) if denser else largest))
    return scores


def ref_prune(x, g, s, cfg):
    frames, tokens, _ = x.shape
    retain = max(1, math.floor(tokens * cfg.retention_ratio))
    context = math.floor(retain * cfg.d)
    salient = retain - context
    kept, rest = {}, {}
    for f in range(frames):
        order = sorted(range(tokens), key=lambda j: (-float(s[f, j]), j))
        for j in order[:salient]:
            kept[f * tokens + j] = x[f, j]
        rest[f] = sorted(order[salient:])
    segments = ref_segments(g, cfg.c, cfg.tau)
    if context == 0:
        return kept, segments
    available = tokens - salient
    flat = x.reshape(-1, x.shape[-1])
    for seg in segments:
        length, p = len(seg), cfg.p
        anchor_frames = [seg[-1] - k * p for k in range(math.ceil(length / p))]  # latest first
        base, rem = divmod(context * length, len(anchor_frames))
        quota = {f: base + (1 if r < rem else 0) for r, f in enumerate(anchor_frames)}
        overflow = sum(max(0, q - available) for q in quota.values())
        quota = {f: min(q, available) for f, q in quota.items()}
        for f in reversed(seg):
            if f not in anchor_frames and overflow > 0:
                quota[f] = min(overflow, available)
                overflow -= quota[f]
        anchors = {}
        for f, q in quota.items():
            if q == 0:
                continue
            scores = ref_density(x[f, rest[f]])
            best = sorted(range(available), key=lambda i: (-scores[i], i))[:q]
            anchors[f] = [f * tokens + rest[f][i] for i in sorted(best)]
        assigned = {a: [] for group in anchors.values() for a in group}
        seg_tokens = [f * tokens + j for f in seg for j in rest[f]]
        for af, group in anchors.items():
            for t in seg_tokens:
                if p == 1 and t // tokens != af:
                    continue
                if t in group:
                    target = t
                else:
                    sims = [float(torch.nn.functional.cosine_similarity(flat[t], flat[a], dim=0)) for a in group]
                    target = group[sims.index(max(sims))]
                assigned[target].append(t)
        for a, members in assigned.items():
            w = max(cfg.beta, 1 / (len(members) + 1))
            kept[a] = w * flat[a] + (1 - w) * flat[members].mean(0)
    return kept, segments


# --- the dense DTM this package had before the block-wise one (float64 density, one (tokens x anchors)
# similarity over the whole video); kept here only as a reference for the block-wise version ---


def dense_density_scores(tokens, k=4):
    x = tokens.double()
    num = x.shape[1]
    sq_norm = (x * x).sum(-1)
    sq_dist = (sq_norm[:, :, None] + sq_norm[:, None, :] - 2 * x @ x.transpose(1, 2)).clamp_min(0)
    scale = torch.maximum(sq_norm[:, :, None], sq_norm[:, None, :])
    sq_dist = sq_dist.masked_fill(sq_dist <= 1e-12 * scale, 0.0) / x.shape[-1]
    dist = sq_dist.sqrt()
    rho = torch.exp(-sq_dist.topk(min(k, num), dim=-1, largest=False).values.mean(-1))
    index = torch.arange(num)
    denser = (rho[:, None, :] > rho[:, :, None]) | ((rho[:, None, :] == rho[:, :, None]) & (index[None, :] < index[:, None]))
    delta = dist.masked_fill(~denser, float("inf")).amin(-1)
    delta = torch.where(torch.isinf(delta), dist.flatten(1).amax(-1, keepdim=True).expand_as(delta), delta)
    return rho * delta


def dense_density_merge(tokens, segmentation, context, p, beta, eligible=None):
    """(positions, merged tokens, pairs sorted by token then anchor) as the dense version computed them."""
    num_frames, available, dim = tokens.shape
    counts = anchor_counts(segmentation, context, p, available, eligible)
    frames = counts.nonzero().flatten()
    scores = dense_density_scores(tokens[frames])
    rank = torch.empty_like(scores, dtype=torch.long)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank.scatter_(1, order, torch.arange(available).expand_as(order))
    local_frame, local_pos = (rank < counts[frames][:, None]).nonzero(as_tuple=True)
    anchor_frame = frames[local_frame]
    positions = anchor_frame * available + local_pos
    flat = tokens.reshape(-1, dim).float()
    unit = torch.nn.functional.normalize(flat, dim=-1)
    sim = unit @ unit[positions].T
    num_anchors = positions.numel()
    sim[positions, torch.arange(num_anchors)] = float("inf")
    seg = segmentation.segment_ids
    token_frame = torch.arange(num_frames).repeat_interleave(available)
    allowed = seg[token_frame][:, None] == seg[anchor_frame][None, :]
    if p == 1:
        allowed &= token_frame[:, None] == anchor_frame[None, :]
    sim = sim.masked_fill(~allowed, float("-inf"))
    group = anchor_frame.expand(flat.shape[0], num_anchors)
    best = torch.full((flat.shape[0], num_frames), float("-inf")).scatter_reduce(1, group, sim, "amax")
    hit = (sim == best.gather(1, group)) & allowed
    column = torch.arange(num_anchors).expand_as(hit)
    first = torch.full((flat.shape[0], num_frames), num_anchors).scatter_reduce(
        1, group, torch.where(hit, column, num_anchors), "amin"
    )
    assign = hit & (column == first.gather(1, group))
    weights = assign.T.to(flat.dtype)
    assigned = weights.sum(1, keepdim=True)
    w = torch.clamp(1.0 / (assigned + 1.0), min=beta)
    mean = (weights @ flat) / assigned
    merged = w * flat[positions] + (1 - w) * mean
    token_pos, anchor_col = assign.nonzero(as_tuple=True)
    return positions, merged.to(tokens.dtype), torch.stack([token_pos, positions[anchor_col]])


def assert_same_merge(result, reference):
    positions, merged, pairs = reference
    assert torch.equal(result.positions, positions)
    assert torch.equal(result.pairs, pairs)
    torch.testing.assert_close(result.tokens, merged, atol=1e-5, rtol=1e-5)


# --- tests ---


@pytest.mark.parametrize(
    "cfg",
    [
        FastVIDConfig(retention_ratio=0.25),
        FastVIDConfig(retention_ratio=0.25, c=3, tau=0.5),
        FastVIDConfig(retention_ratio=0.5, p=1),
        FastVIDConfig(retention_ratio=0.75, d=0.5, c=2, tau=-1.0),  # long segments: anchor frames overflow
        FastVIDConfig(retention_ratio=0.3, d=1.0, p=2),
        FastVIDConfig(retention_ratio=0.2, d=0.0),
        FastVIDConfig(retention_ratio=0.4, p=3, beta=0.0),
    ],
    ids=lambda c: f"R{c.retention_ratio}-c{c.c}-tau{c.tau}-d{c.d}-p{c.p}-b{c.beta}",
)
@pytest.mark.parametrize("scenes", [None, 2, 3])
def test_matches_plain_loop_reference(cfg, scenes):
    x, g, s = random_inputs(frames=10, tokens=16, dim=8, seed=7, scenes=scenes)
    expected, segments = ref_prune(x, g, s, cfg)
    result = fastvid_prune(x, g, s, cfg)
    assert result.segment_lengths == [len(seg) for seg in segments]
    assert result.indices.tolist() == sorted(expected)
    want = torch.stack([expected[i] for i in sorted(expected)])
    torch.testing.assert_close(result.tokens, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("frames,tokens", [(1, 196), (3, 196), (32, 196), (16, 169), (7, 10)])
@pytest.mark.parametrize("d,p", [(0.4, 4), (0.0, 4), (1.0, 4), (0.4, 1), (0.7, 2)])
def test_exact_budget_for_every_ratio(frames, tokens, d, p):
    x, g, s = random_inputs(frames, tokens, dim=16, seed=frames + tokens, scenes=2 if frames > 2 else None)
    step = 40 if frames * tokens < 3000 else 8  # every 1/40 on small inputs, every 1/8 on large ones
    ratios = [i / step for i in range(1, step + 1)] + [0.001, 0.0999, 0.333, 0.999]
    for r in ratios:
        result = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=r, d=d, p=p))
        want = frames * max(1, math.floor(tokens * r))
        assert result.tokens.shape == (want, 16), r
        assert result.indices.dtype == torch.int64
        assert torch.all(result.indices[1:] > result.indices[:-1]), "indices ascending and unique"
        assert 0 <= int(result.indices.min()) and int(result.indices.max()) < frames * tokens
        assert sum(result.segment_lengths) == frames


def test_paper_budget_llava_onevision():
    budget = FrameBudget.from_config(196, FastVIDConfig(retention_ratio=0.1))
    assert (budget.retain, budget.salient, budget.context) == (19, 12, 7)
    x, g, s = random_inputs(32, 196, dim=32, seed=1)
    result = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.1))
    assert result.tokens.shape[0] == 608
    assert int((~result.anchor_mask).sum()) == 32 * 12


def test_retention_one_is_identity():
    x, g, s = random_inputs(6, 20, dim=8, seed=3, scenes=2)
    result = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=1.0))
    assert torch.equal(result.tokens, x.reshape(-1, 8))
    assert torch.equal(result.indices, torch.arange(120))
    assert not result.anchor_mask.any()


def test_deterministic_and_input_untouched():
    x, g, s = random_inputs(12, 30, dim=8, seed=5, scenes=3)
    x0 = x.clone()
    a = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.3))
    b = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.3))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.indices, b.indices)
    assert a.segment_lengths == b.segment_lengths
    assert torch.equal(x, x0)


def test_dtype_and_bfloat16():
    x, g, s = random_inputs(8, 20, dim=8, seed=2)
    result = fastvid_prune(x.bfloat16(), g.bfloat16(), s, FastVIDConfig(retention_ratio=0.25))
    assert result.tokens.dtype == torch.bfloat16
    assert result.tokens.shape[0] == 8 * 5


def test_scene_cut_is_cut_and_nothing_else_without_forced_cuts():
    x, _, s = random_inputs(12, 10, seed=4)
    a, b = torch.zeros(12, 6), torch.zeros(12, 6)
    g = torch.zeros(12, 6)
    g[:5, 0] = 1.0  # scene A: frames 0-4
    g[5:, 1] = 1.0  # scene B: frames 5-11 (orthogonal: similarity 0)
    g += 0.001 * torch.randn(12, 6, generator=torch.Generator().manual_seed(0))
    seg = dyseg(g, c=1, tau=0.9)
    assert seg.as_list() == [5, 7]
    assert seg.cuts.tolist() == [4]
    assert fastvid_prune(x, g, s, FastVIDConfig(c=1, retention_ratio=0.5)).segment_lengths == [5, 7]
    del a, b


def test_scene_cut_is_among_forced_cuts():
    g = torch.ones(16, 4)
    g[9:] = torch.tensor([1.0, -1.0, 1.0, -1.0])  # one sharp transition after frame 8
    seg = dyseg(g, c=2, tau=0.0)
    assert seg.as_list() == [9, 7]


def test_identical_frames_give_c_segments():
    g = torch.randn(1, 8).expand(32, 8).clone()
    for c in (1, 2, 8, 20):
        assert len(dyseg(g, c=c, tau=0.9).as_list()) == c


def test_single_frame_and_fewer_frames_than_c():
    x, g, s = random_inputs(1, 196, dim=8, seed=0)
    result = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.1))
    assert result.segment_lengths == [1] and result.tokens.shape[0] == 19
    x, g, s = random_inputs(5, 196, dim=8, seed=0)
    result = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.1, c=8, tau=-2.0))
    assert result.segment_lengths == [1] * 5 and result.tokens.shape[0] == 95


def test_salient_ties_prefer_lower_index():
    salient, rest = select_salient(torch.ones(2, 6), 2)
    assert salient.tolist() == [[0, 1], [0, 1]]
    assert rest.tolist() == [[2, 3, 4, 5], [2, 3, 4, 5]]


def test_salient_tokens_kept_unchanged_and_anchors_keep_their_own_index():
    x, g, s = random_inputs(8, 24, dim=8, seed=11, scenes=2)
    cfg = FastVIDConfig(retention_ratio=0.25)
    result = fastvid_prune(x, g, s, cfg)
    flat = x.reshape(-1, 8)
    budget = FrameBudget.from_config(24, cfg)
    top = torch.sort(s, dim=1, descending=True, stable=True).indices[:, : budget.salient]
    salient_flat = sorted((top + torch.arange(8)[:, None] * 24).flatten().tolist())
    assert result.indices[~result.anchor_mask].tolist() == salient_flat
    torch.testing.assert_close(result.tokens[~result.anchor_mask], flat[salient_flat], rtol=0, atol=0)
    anchors = result.indices[result.anchor_mask]
    assert not set(anchors.tolist()) & set(salient_flat)
    # an anchor's merged value is a convex mix dominated by itself: w >= beta
    mixed = result.tokens[result.anchor_mask]
    own = flat[anchors]
    assert ((mixed - own).norm(dim=1) <= (1 - cfg.beta) * 2 * flat.norm(dim=1).max()).all()
    # merge pairs: each anchor lists itself among what it absorbed
    pairs = set(map(tuple, result.merge_pairs.T.tolist()))
    assert all((a, a) in pairs for a in anchors.tolist())


def test_merge_follows_eq5_on_a_constructed_frame():
    # One frame, 6 tokens: 2 salient, 4 left; one anchor absorbs all four (w = max(beta, 1/5)).
    x = torch.tensor([[9.0, 0, 0], [0, 9, 0], [1.0, 0.1, 0], [1.0, 0.0, 0.1], [1.0, 0.05, 0.05], [1.0, -0.1, 0]])[None]
    s = torch.tensor([[1.0, 0.9, 0.1, 0.1, 0.1, 0.1]])
    g = torch.ones(1, 2)
    cfg = FastVIDConfig(retention_ratio=0.5, d=1 / 3, beta=0.6)  # retain 3 = 2 salient + 1 anchor
    result = fastvid_prune(x, g, s, cfg)
    assert result.indices.tolist()[:2] == [0, 1]
    anchor = int(result.indices[2])
    members = x[0, 2:]
    expected = 0.6 * x[0, anchor] + 0.4 * members.mean(0)
    torch.testing.assert_close(result.tokens[2], expected)
    # the densest, most central token is the anchor: token 4 sits between the others
    assert anchor == 4


def test_density_scores_pick_cluster_centres():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0]])
    points = torch.cat(
        [centres[0] + 0.3 * torch.randn(10, 2, generator=gen), centres[1] + 0.3 * torch.randn(10, 2, generator=gen)]
    )
    scores = density_scores(points[None])[0]
    top2 = scores.topk(2).indices.tolist()
    assert {i // 10 for i in top2} == {0, 1}, "one peak per cluster"


def test_anchor_counts_sum_to_segment_budget_and_overflow_latest_first():
    seg = dyseg(torch.eye(4).repeat_interleave(torch.tensor([9, 1, 4, 2]), 0), c=1, tau=0.5)
    assert seg.as_list() == [9, 1, 4, 2]
    counts = anchor_counts(seg, context=3, p=4, available=10)
    # segment 1 (frames 0-8): anchor frames 8, 4, 0 share 27 -> 9 each
    assert counts[:9].tolist() == [9, 0, 0, 0, 9, 0, 0, 0, 9]
    assert counts[9].item() == 3
    # segment 3 (frames 10-13): one anchor frame (13) wants 12 > 10: 2 go to frame 12
    assert counts[10:14].tolist() == [0, 0, 2, 10]
    assert counts[14:].tolist() == [0, 6]
    remainder = anchor_counts(dyseg(torch.ones(7, 3), c=1, tau=0.5), context=2, p=3, available=10)
    assert remainder.tolist() == [4, 0, 0, 5, 0, 0, 5], "14 over 3 anchor frames: remainder to the latest"


def test_pruning_core_does_not_import_transformers():
    code = "import sys, fastvid_cli.pruning; sys.exit('transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_shape_errors():
    x, g, s = random_inputs(4, 10)
    with pytest.raises(ValueError, match="saliency"):
        fastvid_prune(x, g, s[:, :5])
    with pytest.raises(ValueError, match="frame_features"):
        fastvid_prune(x, g[:3], s)
    with pytest.raises(ValueError, match="video_tokens"):
        fastvid_prune(x[0], g, s)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"retention_ratio": 0.0}, "retention"),
        ({"retention_ratio": 1.01}, "retention"),
        ({"retention_ratio": -0.5}, "retention"),
        ({"retention_ratio": float("nan")}, "retention"),
        ({"c": 0}, "c must"),
        ({"p": 0}, "p must"),
        ({"d": -0.1}, "d must"),
        ({"d": 1.5}, "d must"),
        ({"beta": 2.0}, "beta must"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FastVIDConfig(**kwargs)


def test_split_tau_moves_anchor_frames_to_run_ends():
    # one DySeg segment of 8 frames; the second threshold splits it into runs 0-2, 3-6, 7
    g = torch.tensor([[1.0, 0.0]] * 3 + [[1.0, 0.3]] * 4 + [[1.0, 0.6]])
    seg = dyseg(g, c=1, tau=0.5)
    assert seg.as_list() == [8]
    eligible = torch.ones(8, dtype=torch.bool)
    eligible[:-1] = seg.transition_similarity < 0.99
    assert eligible.nonzero().flatten().tolist() == [2, 6, 7]
    counts = anchor_counts(seg, context=3, p=2, available=10, eligible=eligible)
    # eligible frames counted back from the end: 7 (anchor), 6, 2 (anchor): 24 anchors over frames 7 and 2
    assert counts.tolist() == [0, 0, 10, 0, 0, 0, 4, 10]  # 12 each, capped at 10: 4 overflow to the latest other frame
    assert int(counts.sum()) == 3 * 8
    x, _, s = random_inputs(8, 20, dim=8, seed=1)
    plain = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.5, c=1, tau=0.5, d=0.5, p=2))
    split = fastvid_prune(x, g, s, FastVIDConfig(retention_ratio=0.5, c=1, tau=0.5, d=0.5, p=2, split_tau=0.99))
    assert split.tokens.shape == plain.tokens.shape == (80, 8)
    frames_with_anchors = sorted(set((split.indices[split.anchor_mask] // 20).tolist()))
    assert frames_with_anchors == [2, 6, 7]
    assert sorted(set((plain.indices[plain.anchor_mask] // 20).tolist())) == [1, 3, 5, 7]


def test_identical_tokens_are_exactly_zero_apart():
    # 4 distinct tokens and 6 copies of one (a flat letterbox region), large bf16 values
    gen = torch.Generator().manual_seed(0)
    distinct = 3 * torch.randn(4, 3584, generator=gen)
    copy = 3 * torch.randn(1, 3584, generator=gen)
    frame = torch.cat([distinct, copy.expand(6, -1)]).bfloat16()[None]
    scores = density_scores(frame)[0]
    assert (scores[5:] == 0).all(), "a copy of a denser identical token has delta 0"
    assert scores[4] > 0 and (scores[:4] > 0).all()
    top6 = torch.sort(scores, descending=True, stable=True).indices[:6].sort().values.tolist()
    assert top6 == [0, 1, 2, 3, 4, 5], "one copy, then the next copy by index, never noise-ranked copies"


def segments_of(lengths):
    labels = torch.arange(len(lengths)).repeat_interleave(torch.tensor(lengths))
    return Segmentation.from_labels(labels, torch.zeros(labels.numel() - 1))


@pytest.mark.parametrize("p", [4, 1])
def test_blockwise_merge_equals_dense_on_512_frames(p):
    # 512 frames, segments from 1 to 150 frames; the dense reference's (tokens x anchors) similarity
    # over the whole video is why N and D are small here (at N = 196 it alone needs several GB)
    frames, tokens, dim = 512, 64, 64
    x, _, s = random_inputs(frames, tokens, dim, seed=12)
    seg = segments_of([1, 3, 64, 2, 100, 37, 5, 1, 1, 150, 12, 88, 48])
    budget = FrameBudget.from_config(tokens, FastVIDConfig(retention_ratio=0.1))
    _, rest = select_salient(s, budget.salient)
    gathered = torch.gather(x, 1, rest[:, :, None].expand(-1, -1, dim))
    reference = dense_density_merge(gathered, seg, budget.context, p, 0.6)
    assert_same_merge(density_merge(x, seg, budget.context, p, 0.6, index=rest), reference)
    assert_same_merge(density_merge(gathered, seg, budget.context, p, 0.6), reference)


@pytest.mark.parametrize("block", [1 << 22, 3000, 1])
@pytest.mark.parametrize(
    "lengths,context,p,split",
    [
        ([7, 1, 12, 4, 4, 9, 3], 3, 4, False),
        ([7, 1, 12, 4, 4, 9, 3], 9, 4, False),  # anchor frames overflow into the segment's other frames
        ([7, 1, 12, 4, 4, 9, 3], 3, 3, True),  # split_tau: anchor frames at the ends of runs, uneven groups
        ([7, 1, 12, 4, 4, 9, 3], 4, 1, True),
        (None, 2, 2, False),  # clusters: segments of frames that are not consecutive
    ],
)
def test_blockwise_merge_equals_dense_in_every_block_layout(monkeypatch, block, lengths, context, p, split):
    # tiny blocks: batches of units, a unit cut into chunks of rows, and single rows per block
    monkeypatch.setattr(dtm, "BLOCK_ELEMENTS", block)
    x, _, _ = random_inputs(40, 12, 8, seed=context + p)
    if lengths is None:
        seg = Segmentation.from_labels(
            torch.arange(40) % 3 * (torch.arange(40) < 30) + 3 * (torch.arange(40) >= 30), torch.zeros(39)
        )
    else:
        seg = segments_of(lengths)
    eligible = (torch.arange(40) % 3 == 0) if split else None
    result = density_merge(x, seg, context, p, 0.6, eligible)
    assert_same_merge(result, dense_density_merge(x, seg, context, p, 0.6, eligible))


def test_many_copies_tie_by_index_and_keep_exact_zero_distances():
    # 3 distinct tokens and 20 copies of one (more copies than neighbours and candidates), bf16, -0.0 vs 0.0
    gen = torch.Generator().manual_seed(1)
    copy = 3 * torch.randn(1, 896, generator=gen)
    copy[0, :5] = 0.0
    frame = torch.cat([3 * torch.randn(3, 896, generator=gen), copy.expand(20, -1)]).bfloat16()
    frame[10, :5] = -0.0
    frame = frame[None].clone()
    before = frame.clone()
    scores = density_scores(frame)[0]
    assert scores.dtype == torch.float32 and torch.equal(frame, before)
    assert (scores[4:] == 0).all() and scores[3] > 0
    top = torch.sort(scores, descending=True, stable=True).indices[:5].tolist()
    assert sorted(top) == [0, 1, 2, 3, 4], "the first copy, then the next copy by index"
    merged = density_merge(frame, segments_of([1]), 5, 1, 0.6)
    assert merged.positions.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("lengths, most", [([5, 12, 3, 40], 8), ([64], 32), ([1, 1, 30], 7), ([9, 9], 1)])
def test_split_long_segments_bounds_every_segment_in_near_equal_parts(lengths, most):
    from fastvid_cli.pruning.segmentation import Segmentation, split_long_segments

    cut = torch.zeros(sum(lengths) - 1, dtype=torch.bool)
    cut[torch.tensor(lengths[:-1], dtype=torch.long).cumsum(0) - 1] = True
    seg = Segmentation.from_cut_mask(cut, torch.rand(cut.numel()))
    split = split_long_segments(seg, most)
    assert int(split.lengths.max()) <= most and int(split.lengths.sum()) == sum(lengths)
    assert set(seg.cuts.tolist()) <= set(split.cuts.tolist())  # DySeg's cuts all stay
    expected = []
    for length in lengths:  # the fewest parts that fit, lengths differing by at most one
        parts = math.ceil(length / most)
        expected += [length // parts + (k < length % parts) for k in range(parts)]
    assert sorted(split.lengths.tolist()) == sorted(expected)
    torch.testing.assert_close(split.transition_similarity, seg.transition_similarity)


def test_max_segment_bounds_dyseg_and_leaves_short_videos_alone():
    gen = torch.Generator().manual_seed(3)
    frames = 96
    tokens = torch.randn(frames, 196, 32, generator=gen)
    features = torch.randn(2, 64, generator=gen)[torch.arange(frames) * 2 // frames] + 0.01 * torch.randn(
        frames, 64, generator=gen
    )
    saliency = torch.rand(frames, 196, generator=gen)
    plain = fastvid_prune(tokens, features, saliency, FastVIDConfig(retention_ratio=0.1))
    bounded = fastvid_prune(tokens, features, saliency, FastVIDConfig(retention_ratio=0.1, max_segment=16))
    assert max(plain.segment_lengths) > 16 >= max(bounded.segment_lengths)
    assert bounded.indices.numel() == plain.indices.numel()  # the budget does not change
    short = fastvid_prune(tokens[:32], features[:32], saliency[:32], FastVIDConfig(retention_ratio=0.1, max_segment=32))
    same = fastvid_prune(tokens[:32], features[:32], saliency[:32], FastVIDConfig(retention_ratio=0.1))
    assert torch.equal(short.indices, same.indices) and torch.equal(short.tokens, same.tokens)
    with pytest.raises(ValueError, match="max_segment"):
        FastVIDConfig(max_segment=0)
