"""Attention that remaps positions, with no training: Self-Extend, Dual Chunk Attention and STRING.

All three keep the weights and RoPE, and change only the positions a query and a key are rotated at, per pair.
Query position i, key position j, trained context c:

Self-Extend (Jin et al. 2024, "LLM Maybe LongLM: Self-Extend LLM Context Window Without Tuning"), neighbour
window W, group size G:
    i - j <  W   plain attention at (i, j)
    i - j >= W   query at i // G + W - W // G, key at j // G
The largest distance at length L is (L - 1) // G + W - W // G, kept below c by the choice of G.

Dual Chunk Attention (An et al. 2024, "Training-Free Long-Context Scaling of Large Language Models"), largest
position C and local window w, chunk length s = C - w (ChunkLlama's defaults: C = 3c/4, w = c/16). Keys sit at
j mod s; the query at
    i mod s                for keys of its own chunk       (intra: the exact distance)
    min(s + i mod s, C)    for keys of the previous chunk  (successive: exact up to C)
    C                      for keys of earlier chunks      (inter)

STRING (An et al. 2024, "Why Does the Effective Context Length of LLMs Fall Short?"), offset S and local window W:
    i - j <  S   plain attention at (i, j)
    i - j >= S   query at i - (S - W), key at j: the distance i - j becomes i - j - S + W
so well-trained small distances overwrite the large ones that training rarely reached; the largest distance at
length L is L - 1 - S + W. The paper's defaults: S = c/3, W = 128. It helps inside the trained window, too.

transformers rotates q and k at their own positions p before it calls the attention function; rotating them
again by p' - p gives the rotation at p' (rotations compose), so no model code is replaced. Queries go in
blocks, each region scores only the keys it can reach, and one softmax runs over all regions. Where every pair
of a call is plain (shorter than W, or inside the first chunk) the call is transformers' own SDPA, so inputs that
short give bit-identical outputs. A saved folder cannot carry either method (no config key of transformers
expresses them): they are run-time options, enabled on a loaded model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import CtxextError, did_you_mean
from .attention_labels import LONG_ATTENTION, is_attention_label, parse_label

ATTENTION_NAME = "ctxext_remapped"
BLOCK = 1024  # queries per block, at most the scheme's block_limit
KEY_TILE = 2048  # keys scored at once where the score matrix is formed (off the CPU)
EXPLICIT_SCORES = False  # True: form the score matrix on a CPU too (what other devices do)
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "phi", "phi3", "gpt_neox", "olmo", "olmo2", "granite", "smollm3")


@dataclass(frozen=True)
class Region:
    """Pairs (i, j) where ``applies`` holds are scored with the query at ``query_at(i)``, the key at ``key_at(j)``."""

    query_at: Callable[[torch.Tensor], torch.Tensor]
    key_at: Callable[[torch.Tensor], torch.Tensor]
    applies: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SelfExtend:
    window: int
    group: int
    name = "self-extend"
    period = None  # no query position where the regions' layout changes

    def largest_distance(self, length: int) -> int:
        if length <= self.window:
            return length - 1
        return (length - 1) // self.group + self.window - self.window // self.group

    def is_plain(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> bool:
        return int(q_pos.max() - k_pos.clamp(min=0).min()) < self.window

    @property
    def block_limit(self) -> int:
        return self.window

    def regions(self) -> list[Region]:
        w, g = self.window, self.group
        return [
            Region(lambda i: i, lambda j: j, lambda i, j: i - j < w),
            Region(lambda i: i // g + (w - w // g), lambda j: j // g, lambda i, j: i - j >= w),
        ]

    def describe(self) -> dict:
        return {"method": self.name, "window": self.window, "group": self.group}


@dataclass(frozen=True)
class String:
    offset: int  # S: distances from S on are shifted down
    window: int  # W: a shifted distance starts again at W
    name = "string"
    period = None

    def largest_distance(self, length: int) -> int:
        return length - 1 if length - 1 < self.offset else length - 1 - self.offset + self.window

    def is_plain(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> bool:
        return int(q_pos.max() - k_pos.clamp(min=0).min()) < self.offset

    @property
    def block_limit(self) -> int:
        return self.offset

    def regions(self) -> list[Region]:
        s, shift = self.offset, self.offset - self.window
        return [
            Region(lambda i: i, lambda j: j, lambda i, j: i - j < s),
            Region(lambda i: i - shift, lambda j: j, lambda i, j: i - j >= s),
        ]

    def describe(self) -> dict:
        return {"method": self.name, "offset": self.offset, "window": self.window}


@dataclass(frozen=True)
class DualChunk:
    chunk_size: int  # C, the largest position a query is given
    local: int  # w
    name = "dca"

    @property
    def chunk_length(self) -> int:
        return self.chunk_size - self.local

    def largest_distance(self, length: int) -> int:
        return min(length - 1, self.chunk_size)

    def is_plain(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> bool:
        return int(q_pos.max()) < self.chunk_length

    @property
    def block_limit(self) -> int:
        return self.chunk_length

    @property
    def period(self) -> int:
        """Query blocks end at chunk edges: inside one chunk every region is a run of keys with no mask."""
        return self.chunk_length

    def regions(self) -> list[Region]:
        s, top = self.chunk_length, self.chunk_size
        return [
            Region(lambda i: i % s, lambda j: j % s, lambda i, j: i // s == j // s),
            Region(lambda i: (s + i % s).clamp(max=top), lambda j: j % s, lambda i, j: i // s - j // s == 1),
            Region(lambda i: torch.full_like(i, top), lambda j: j % s, lambda i, j: i // s - j // s >= 2),
        ]

    def describe(self) -> dict:
        return {
            "method": self.name,
            "chunk_size": self.chunk_size,
            "local": self.local,
            "chunk_length": self.chunk_length,
        }


def choose(method: str, context: int, target: int, **given) -> SelfExtend | DualChunk | String:
    """Parameters from the trained context unless given: Self-Extend W = c/4 and the smallest G >= 2 whose largest
    distance at ``target`` stays below c; DCA C = 3c/4, w = c/16; STRING S = c/3, W = 128 (at most S/2)."""
    if method == "string":
        offset = int(given.get("offset") or context // 3)
        scheme = String(offset, int(given.get("window") or min(128, offset // 2)))
        if not 0 < scheme.window < scheme.offset < context:
            raise CtxextError(f"string needs 0 < window < offset < the model's context {context} ({scheme.describe()})")
        if scheme.largest_distance(target) >= context:
            raise CtxextError(
                f"string with offset {scheme.offset} reaches distance {scheme.largest_distance(target)} at {target} "
                f"tokens, beyond the model's context {context}: at most {context + scheme.offset - scheme.window} "
                "tokens without a RoPE scaling (string+yarn adds one)"
            )
        return scheme
    if method == "dca":
        scheme = DualChunk(int(given.get("chunk") or context * 3 // 4), int(given.get("local") or context // 16))
        if not 0 < scheme.chunk_length < scheme.chunk_size < context:
            raise CtxextError(f"dca needs 0 < local < chunk < the model's context {context} (got {scheme.describe()})")
        return scheme
    if method != "self-extend":
        raise CtxextError(f"unknown attention method {method!r}{did_you_mean(method, LONG_ATTENTION)}")
    window = int(given.get("window") or context // 4)
    if not 0 < window < context:
        raise CtxextError(f"self-extend needs a neighbour window between 1 and {context - 1}, not {window}")
    if given.get("group"):
        scheme = SelfExtend(window, int(given["group"]))
        if scheme.group < 1 or scheme.largest_distance(target) >= context:
            raise CtxextError(
                f"self-extend with window {window} and group {scheme.group} reaches distance "
                f"{scheme.largest_distance(target)} at {target} tokens, beyond the model's context {context}"
            )
        return scheme
    return SelfExtend(window, smallest_group(window, context, target))


def smallest_group(window: int, context: int, target: int) -> int:
    """The smallest G >= 2 with (L - 1) // G + W - W // G < c, in at most W steps: every G > W has W // G = 0, and
    there the condition is (L - 1) // G <= c - W - 1, first true at G = (L - 1) // (c - W) + 1."""
    beyond = max(window + 1, (target - 1) // (context - window) + 1)
    for group in range(2, min(window, beyond - 1) + 1):
        if SelfExtend(window, group).largest_distance(target) < context:
            return group
    return max(2, beyond)


def parameters_of(labels: list[str], context: int, target: int) -> dict[str, dict]:
    """The parameters each attention label among ``labels`` runs with (recorded in eval results); a label with a
    RoPE scaling treats ``target`` as the trained context."""
    chosen = {}
    for label in labels:
        if is_attention_label(label):
            method, params, scaling = parse_label(label)
            if scaling and target <= context:
                raise CtxextError(f"{label} scales RoPE to {target} tokens, which is not above the context {context}")
            scheme = choose(method, target if scaling else context, target, **params).describe()
            chosen[label] = {**scheme, "scaling": scaling} if scaling else scheme
    return chosen


def defaults_note(context: int, target: int) -> str:
    """What ``self-extend``, ``dca`` and ``string`` would use at ``target`` (printed by ``ctxext inspect --to``);
    a method whose defaults this context cannot form says why instead."""

    def self_extend() -> str:
        extend = choose("self-extend", context, target)
        distance = extend.largest_distance(target)
        return f"self-extend window {extend.window}, group {extend.group} (largest distance {distance})"

    def dca() -> str:
        chunks = choose("dca", context, target)
        return f"dca chunk_size {chunks.chunk_size}, local {chunks.local} (chunks of {chunks.chunk_length})"

    def string() -> str:
        shifted = choose("string", context, min(target, context))
        reach = context + shifted.offset - shifted.window  # the longest input STRING keeps inside the context
        settings = f"string offset {shifted.offset}, window {shifted.window}"
        if target <= reach:
            return f"{settings} (largest distance {shifted.largest_distance(target)})"
        return f"{settings} (at most {reach} tokens without scaling; beyond, with one: string+yarn)"

    parts = []
    for describe in (self_extend, dca, string):
        try:
            parts.append(describe())
        except CtxextError as exc:
            parts.append(f"{describe.__name__.replace('_', '-')}: {exc}")
    return (
        f"run-time attention at {target} (ctxext eval --methods, ctxext.decoders.long_attention; no file carries it): "
        + "; ".join(parts)
    )


def rotate(x: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """RoPE by ``delta`` positions (b, n) in transformers' rotate_half layout, on the first 2 len(inv_freq) dims;
    ``delta`` and ``inv_freq`` are host tensors."""
    if not bool(delta.any()):
        return x
    cos, sin = _cos_sin(delta, inv_freq, x.device)
    return _turn(x, cos.unsqueeze(1), sin.unsqueeze(1))  # (b, 1, n, rot) against (b, heads, n, d)


def _cos_sin(delta: torch.Tensor, inv_freq: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (..., 2 len(inv_freq)) of the angles ``delta`` x frequency, formed in float64 on the host
    (positions and frequencies live there; Apple's MPS has no float64), float32 on ``device``."""
    angles = delta.double().unsqueeze(-1) * inv_freq.double()
    angles = torch.cat([angles, angles], dim=-1)
    return tuple(part.float().to(device, non_blocking=True) for part in (angles.cos(), angles.sin()))


def _turn(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x cos + rotate_half(x) sin in three passes over x (no rotate_half copy): a decoding step turns every key."""
    rot = cos.shape[-1]
    half = rot // 2
    part = x[..., :rot].float()
    rotated = part * cos
    rotated[..., :half].addcmul_(part[..., half:], sin[..., :half], value=-1)
    rotated[..., half:].addcmul_(part[..., :half], sin[..., half:])
    rotated = rotated.to(x.dtype)
    return torch.cat([rotated, x[..., rot:]], dim=-1) if rot < x.shape[-1] else rotated


class KeyShifts:
    """Each region's key shift ``key_at(j) - j``, a function of the key position j alone, with its cos and sin at
    every position up to the longest seen: computed once and shared by all layers of a model, and grown (doubling)
    as a cache grows, so a decoding step rotates its keys with no trigonometry. Regions whose shifts agree share one
    rotated copy of the keys, and a region with no shift uses the keys as they are."""

    def __init__(self, scheme, inv_freq: torch.Tensor):
        self.scheme, self.inv_freq = scheme, inv_freq
        self.tables: dict = {}  # (region index, device) -> (shift (n,), cos (n, rot), sin (n, rot))

    def rotated_keys(self, key: torch.Tensor, k_pos: torch.Tensor) -> list[torch.Tensor]:
        """``key`` (1, kv_heads, m, d) at the contiguous non-negative positions ``k_pos``, rotated for each region."""
        first, last = int(k_pos[0]), int(k_pos[-1]) + 1
        done: list[tuple[torch.Tensor, torch.Tensor]] = []  # (shift over k_pos, rotated keys)
        for index, region in enumerate(self.scheme.regions()):
            shift, cos, sin = self._table(index, region, last, key.device)
            shift = shift[first:last]
            same = next((keys for earlier, keys in done if torch.equal(earlier, shift)), None)
            if same is None:
                same = _turn(key, cos[first:last], sin[first:last]) if bool(shift.any()) else key
            done.append((shift, same))
        return [keys for _, keys in done]

    def _table(self, index: int, region: Region, length: int, device) -> tuple[torch.Tensor, ...]:
        table = self.tables.get((index, str(device)))
        if table is None or len(table[0]) < length:
            size = max(length, 2 * len(table[0])) if table is not None else length
            positions = torch.arange(size)
            shift = region.key_at(positions) - positions
            table = (shift, *_cos_sin(shift, self.inv_freq, device))
            self.tables[(index, str(device))] = table
        return table


def _merge(outs: list[torch.Tensor], lses: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """One softmax over several key sets from each set's (output, log-sum-exp): outputs weighted by their share."""
    lse = torch.stack(lses)
    total = torch.logsumexp(lse, dim=0)
    weights = torch.exp(lse - total).nan_to_num(0.0).unsqueeze(-1)
    return (weights * torch.stack(outs).float()).sum(0), total


def _flash(q, k, v, scaling, allowed=None, causal=False):
    """(output, log-sum-exp) of softmax attention over these keys; ``allowed`` (queries, keys) masks pairs, and
    ``causal`` (folded queries at their own keys' positions) keeps each query's keys up to its own.
    On a CPU, PyTorch's flash-attention kernel (no score matrix is held; a causal call skips the masked half);
    elsewhere scores are formed for at most ``KEY_TILE`` keys at a time and the tiles merged by their log-sum-exp,
    so a call holds heads x queries x KEY_TILE scores whatever the length."""
    if causal and q.device.type == "cpu" and not EXPLICIT_SCORES:
        return _causal_flash(q, k, v, scaling)
    if causal:
        n = k.shape[2]
        allowed = torch.ones(n, n, dtype=torch.bool).tril().repeat(q.shape[2] // n, 1)
    if allowed is not None:
        allowed = allowed.to(q.device, non_blocking=True)
    if q.device.type == "cpu" and not EXPLICIT_SCORES:
        mask = None
        if allowed is not None:
            mask = torch.zeros(allowed.shape, dtype=q.dtype).masked_fill(~allowed, float("-inf"))[None, None]
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=mask, scale=scaling
        )
    else:
        outs, lses = [], []
        for lo in range(0, k.shape[2], KEY_TILE):
            tile = slice(lo, lo + KEY_TILE)
            scores = torch.matmul(q, k[:, :, tile].transpose(-1, -2)).float() * scaling
            if allowed is not None:
                scores = scores.masked_fill(~allowed[:, tile], float("-inf"))
            lse = torch.logsumexp(scores, dim=-1)
            probs = torch.exp(scores.sub_(lse.unsqueeze(-1))).nan_to_num_(0.0)
            outs.append(torch.matmul(probs.to(v.dtype), v[:, :, tile])), lses.append(lse)
        out, lse = _merge(outs, lses) if len(outs) > 1 else (outs[0], lses[0])
    if allowed is not None:  # the CPU kernel reports 0, not -inf, for a row with no key
        lse = lse.masked_fill(~allowed.any(-1), float("-inf"))
    return out, lse


def _causal_flash(q, k, v, scaling):
    """The causal kernel on folded queries (1, kv, groups x n, d) over their own n keys: the groups become the batch,
    so each group's rows line up with the keys (which are viewed, not copied, per group)."""
    kv, n, d = k.shape[1], k.shape[2], q.shape[-1]
    groups = q.shape[2] // n
    per_group = q.reshape(kv, groups, n, d).transpose(0, 1)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        per_group, k.expand(groups, -1, -1, -1), v.expand(groups, -1, -1, -1), 0.0, True, scale=scaling
    )[:2]
    return out.transpose(0, 1).reshape(1, kv, groups * n, d), lse.transpose(0, 1).reshape(1, kv, groups * n)


def _is_lower_triangle(allowed: torch.Tensor) -> bool:
    rows, columns = allowed.shape
    return rows == columns and torch.equal(allowed, allowed.new_ones(rows, rows).tril())


def _runs(columns: torch.Tensor) -> list[tuple[int, int]]:
    """[start, end) of each run of True (a CPU tensor: no device synchronisation)."""
    index = columns.nonzero().flatten()
    if not len(index):
        return []
    breaks = ((index[1:] - index[:-1]) > 1).nonzero().flatten()
    starts = [int(index[0])] + [int(index[b + 1]) for b in breaks]
    ends = [int(index[b]) + 1 for b in breaks] + [int(index[-1]) + 1]
    return list(zip(starts, ends, strict=True))


def _fold(q: torch.Tensor, groups: int) -> torch.Tensor:
    """(1, kv_heads x groups, n, d) queries as (1, kv_heads, groups x n, d): each key/value head serves its group's
    queries as extra rows, so K and V are never repeated per query head."""
    _, heads, n, d = q.shape
    return q.reshape(1, heads // groups, groups * n, d)


def _unfold(x: torch.Tensor, groups: int) -> torch.Tensor:
    """The inverse of :func:`_fold` for outputs (1, kv, groups x n, d) and log-sum-exps (1, kv, groups x n)."""
    kv, rows = x.shape[1], x.shape[2] // groups
    return x.reshape(1, kv * groups, rows, *x.shape[3:])


def _blocks(q_pos: torch.Tensor, size: int, period: int | None) -> Iterator[slice]:
    """Query blocks of at most ``size`` rows, none straddling a multiple of ``period`` in position."""
    start = 0
    while start < len(q_pos):
        end = min(start + size, len(q_pos))
        if period:
            end = min(end, start + period - int(q_pos[start]) % period)
        yield slice(start, end)
        start = end


def _one_sequence(scheme, inv_freq, shifts, query, key, value, q_pos, scaling, out):
    """Attention of one unpadded sequence written into ``out`` (1, heads, n, d): queries (1, heads, n, d), keys and
    values (1, kv_heads, m, d), query positions ``q_pos`` (n,) contiguous, on the CPU: every position, region and
    run is computed on the host.

    Per region and query block (blocks end at DCA's chunk edges), a key before the block is scored with no mask
    where the region holds for the block's first and last query (for a fixed key, the queries a region holds for
    form an interval at least as long as a block, so it then holds for every query between), with a mask where it
    holds for one of them; keys inside the block (the diagonal) with the causal kernel where the region holds for
    all of them, else with a mask. A piece no pair of which the region holds for is skipped. The pieces' outputs
    are merged by their log-sum-exp, which is one softmax over all of them."""
    groups = query.shape[1] // key.shape[1]
    k_pos = torch.arange(key.shape[2]) - (key.shape[2] - 1 - q_pos[-1])
    pad = int((k_pos < 0).sum())  # left padding: positions below 0, never attended
    key, value, k_pos = key[:, :, pad:], value[:, :, pad:], k_pos[pad:]
    regions = scheme.regions()
    keys = shifts.rotated_keys(key, k_pos)
    for rows in _blocks(q_pos, min(BLOCK, scheme.block_limit), scheme.period):
        qp = q_pos[rows]
        outs, lses = [], []
        for region, rotated_keys in zip(regions, keys, strict=True):
            at_first = region.applies(qp[0], k_pos) & (k_pos <= qp[0])
            at_last = region.applies(qp[-1], k_pos) & (k_pos <= qp[-1])
            diagonal = (k_pos >= qp[0]) & (k_pos <= qp[-1])
            q = _fold(rotate(query[:, :, rows], (region.query_at(qp) - qp)[None], inv_freq), groups)
            for lo, hi in _runs(at_first & at_last & ~diagonal):
                piece = _flash(q, rotated_keys[:, :, lo:hi], value[:, :, lo:hi], scaling)
                outs.append(piece[0]), lses.append(piece[1])
            for lo, hi in _runs((at_first ^ at_last) & ~diagonal) + _runs(diagonal):
                j, i = k_pos[lo:hi].unsqueeze(0), qp.unsqueeze(1)
                allowed = region.applies(i, j) & (j <= i)
                if not bool(allowed.any()):
                    continue
                piece_keys, piece_values = rotated_keys[:, :, lo:hi], value[:, :, lo:hi]
                if bool(allowed.all()):
                    piece = _flash(q, piece_keys, piece_values, scaling)
                elif _is_lower_triangle(allowed):
                    piece = _flash(q, piece_keys, piece_values, scaling, causal=True)
                else:
                    piece = _flash(q, piece_keys, piece_values, scaling, allowed.repeat(groups, 1))
                outs.append(piece[0]), lses.append(piece[1])
        out[:, :, rows] = _unfold(_merge(outs, lses)[0], groups).to(out.dtype)


def remapped_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """An attention function for transformers' AttentionInterface; the scheme and RoPE frequencies are attributes
    set on each attention module by ``enable``. Positions come from ``position_ids`` (left padding: positions
    below 0 are padding); masks beyond causal and padding (packed sequences) are not supported. Grouped key/value
    heads are used as they are (no copy per query head)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    scheme, inv_freq = module.ctxext_scheme, module.ctxext_inv_freq.cpu()
    shifts = getattr(module, "ctxext_key_shifts", None) or KeyShifts(scheme, inv_freq)
    n_queries, n_keys = query.shape[2], key.shape[2]
    q_pos = kwargs.get("position_ids")
    if q_pos is None or q_pos.shape[-1] != n_queries:
        q_pos = torch.arange(n_keys - n_queries, n_keys).unsqueeze(0)
    q_pos = q_pos.cpu().expand(query.shape[0], -1)  # positions live on the host: one copy per call
    k_pos = torch.arange(n_keys).unsqueeze(0) - (n_keys - 1 - q_pos[:, -1:])
    if scheme.is_plain(q_pos, k_pos):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = query.new_empty(query.shape[0], n_queries, query.shape[1], query.shape[3])  # the layout returned
    for r in range(query.shape[0]):
        rows = out[r : r + 1].transpose(1, 2)  # a view: each sequence is written in place
        one = (query[r : r + 1], key[r : r + 1], value[r : r + 1], q_pos[r], scaling, rows)
        _one_sequence(scheme, inv_freq, shifts, *one)
    return out, None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, remapped_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


def _check_model(model) -> torch.Tensor:
    """The model's RoPE frequencies, or a refusal for models whose attention this does not cover."""
    from .rope_in_memory import rotary_modules

    config = model.config
    family = getattr(config, "model_type", "?")
    if family not in FAMILIES:
        raise CtxextError(f"run-time attention covers {', '.join(FAMILIES)} decoders, not {family!r}")
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        raise CtxextError("run-time attention needs full attention; this model uses a sliding window")
    modules = rotary_modules(model)
    if len(modules) != 1:
        raise CtxextError(f"expected one rotary embedding module, found {len(modules)}")
    rotary = modules[0][2]
    if rotary.rope_type == "dynamic":
        raise CtxextError("run-time attention needs fixed RoPE frequencies; this model uses dynamic scaling")
    return rotary.inv_freq.detach().cpu().clone()  # held on the host, where run-time positions are computed


def enable(model, method: str, to: int, context: int | None = None, **params) -> SelfExtend | DualChunk | String:
    """Switch a loaded transformers decoder to Self-Extend, DCA or STRING for inputs up to ``to`` tokens;
    parameters not given are chosen from ``context`` (default: its trained context; a model whose RoPE was scaled
    to ``to`` passes ``to``). ``disable(model)`` switches it back."""
    from .rope_facts import rope_facts, true_original

    inv_freq = _check_model(model)
    context = context or true_original(rope_facts(model.config.to_dict()))
    scheme = choose(method, context, to, **params)
    _register()
    attention = [m for m in model.modules() if hasattr(m, "layer_idx") and type(m).__name__.endswith("Attention")]
    if not attention:
        raise CtxextError("found no attention modules to switch")
    shifts = KeyShifts(scheme, inv_freq)  # one set of tables for every layer
    for module in attention:
        module.ctxext_scheme, module.ctxext_inv_freq, module.ctxext_key_shifts = scheme, inv_freq, shifts
    model.ctxext_attention_before = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_NAME)
    return scheme


def disable(model) -> None:
    model.set_attn_implementation(getattr(model, "ctxext_attention_before", None) or "sdpa")
    for module in model.modules():
        if hasattr(module, "ctxext_key_shifts"):
            del module.ctxext_key_shifts  # its tables hold cos and sin for every position seen


@contextmanager
def long_attention(model, label: str, to: int) -> Iterator[SelfExtend | DualChunk | String]:
    """``label`` ('dca', 'self-extend+window2048', 'string+yarn', ...) enabled for the block. A label naming a
    RoPE scaling applies it to ``to`` first (frequencies and config restored after) and chooses the method's
    parameters as if ``to`` were the trained context: STRING's offset becomes to / 3, so the shifted distances
    stay among those the scaled model handles well."""
    method, params, scaling = parse_label(label)
    with scaled_rope(model, scaling, to):
        scheme = enable(model, method, to, context=to if scaling else None, **params)
        try:
            yield scheme
        finally:
            disable(model)


@contextmanager
def scaled_rope(model, scaling: str | None, to: int) -> Iterator[None]:
    if scaling is None:
        yield
        return
    from .rope_in_memory import apply_rope_in_memory, restored_rope
    from .rope_plan import plan_rope

    plan = plan_rope(model.config.to_dict(), getattr(model, "name_or_path", ""), to, scaling)
    with restored_rope(model):
        apply_rope_in_memory(model, plan)
        yield
