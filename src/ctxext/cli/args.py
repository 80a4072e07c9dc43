"""The ``ctxext`` command line's arguments: verbs, flags and their types; errors are one line, exit code 2."""

from __future__ import annotations

import argparse
import math

from ..errors import CtxextError

DTYPE_NAMES = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16")  # placement.DTYPES's names

METHOD_HELP = (
    "how new positions are made: learned tables tile (default), {ape_methods}; RoPE yarn (default), "
    "{rope_methods} (linear for NeMo / Cerebras YAML)"
)


class RegistryHelpFormatter(argparse.HelpFormatter):
    """Help whose method lists come from the method registries, read only when help is printed (the registries
    import torch and scipy, which no other parse needs)."""

    def _get_help_string(self, action):
        text = super()._get_help_string(action) or ""
        if "{rope_methods}" in text or "{ape_methods}" in text:
            from ..methods.ape import APE_REGISTRY
            from ..methods.rope import ROPE_REGISTRY

            text = text.replace("{rope_methods}", ", ".join(name for name in ROPE_REGISTRY if name != "yarn"))
            text = text.replace("{ape_methods}", ", ".join(name for name in APE_REGISTRY if name != "tile"))
        if "{formats}" in text:
            from ..api import OUTPUT_FORMATS

            shown = [f"{name}: {f.title}, read by {', '.join(f.runtimes)}" for name, f in OUTPUT_FORMATS.items()]
            text = text.replace("{formats}", "; ".join(shown))
        return text


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", RegistryHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise CtxextError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None


def positive_float(text: str) -> float:
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text}")
    return value


def finite_float(text: str) -> float:
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a name, not an empty string")
    return text.strip()


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, not {value}")
    return value


def add_table_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("learned position tables (encoders, GPT-2)")
    group.add_argument(
        "--table",
        "--embeddings_attr_name",
        dest="table",
        metavar="PATH",
        help="module path of the position table (found automatically for known families)",
    )
    group.add_argument("--offset", type=int, help="rows before position 0 (found automatically: 2 for RoBERTa-like)")
    group.add_argument("--keep-cls", action="store_true", help="keep BERT's [CLS] row (position 0) out of the curve")
    group.add_argument(
        "--keep-first",
        default=0,
        metavar="K",
        help="keep positions 0..K-1 exactly as trained ('auto': the trained window)",
    )
    group.add_argument(
        "--from-window",
        metavar="W",
        help="draw the curve from positions 0..W-1 only, the part training reached ('auto': the trained window)",
    )
    rope = parser.add_argument_group("rotary positions (decoders)")
    rope.add_argument(
        "--original",
        type=positive_int,
        metavar="L",
        help="the context the model was trained at, when its config does not say (default: read)",
    )


def build_parser() -> Parser:
    parser = Parser(prog="ctxext", description="Extend the context window of pretrained transformers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)

    inspect = verbs.add_parser("inspect", help="show a model's positions and what --to N would change")
    inspect.add_argument("model", help="hub id (org/name) or model folder, .gguf file or NeMo / Cerebras .yaml config")
    inspect.add_argument("--revision", help="a hub id's branch, tag or commit")
    inspect.add_argument("--to", help="target length in tokens: also compare what each method changes")
    inspect.add_argument("--methods", help="methods to compare, comma-separated (default: all for the model's kind)")
    inspect.add_argument("--texts", help="file of short texts, one per line, for encoder drift (default: shipped)")
    add_table_options(inspect)

    extend = verbs.add_parser("extend", help="write a model with a longer context")
    extend.add_argument("model", help="hub id (org/name) or model folder, .gguf file or NeMo / Cerebras .yaml config")
    extend.add_argument("--revision", help="a hub id's branch, tag or commit")
    extend.add_argument("--to", help="target length in tokens")
    extend.add_argument("--method", type=name, help=METHOD_HELP)
    extend.add_argument("-o", "--output", required=True, help="output (must not exist unless --overwrite)")
    extend.add_argument(
        "--format",
        default="same",
        help="same (default: the input's own form), or one of: {formats}",
    )
    extend.add_argument(
        "--dtype",
        choices=DTYPE_NAMES,
        help="weights of a GGUF converted with --format hf (default fp32); what --tune and --check-runtime compute "
        "in (default bf16 on a GPU, else fp32)",
    )
    extend.add_argument("--overwrite", action="store_true", help="replace an existing output")
    extend.add_argument("--no-check", action="store_true", help="skip loading the output to verify it")
    extend.add_argument(
        "--rederive",
        action="store_true",
        help="a model that already carries scaling: re-derive it from the original context even when --to is at "
        "or below the window it handles now",
    )
    extend.add_argument(
        "--base-class",
        action="store_true",
        help="extend a folder that maps to code of its own (auto_map, *.py) as transformers' class for its model "
        "type; the code and auto_map are left out of the output and ctxext.json says so",
    )
    extend.add_argument(
        "--check-runtime",
        help="also read the output back in these runtimes (comma-separated: vllm for folders, llama.cpp for GGUF; "
        "minutes for a real model: a probe past the original window is scored there and in transformers)",
    )
    extend.add_argument("--texts", help="file of short texts for the encoder drift check, one per line")
    extend.add_argument(
        "--tune",
        metavar="TEXT",
        help="search longrope's per-pair divisors for this model on a calibration text of at least --to tokens "
        "(implies --method longrope; each candidate costs one forward pass of --to tokens)",
    )
    extend.add_argument(
        "--tune-evals", type=positive_int, default=8, help="candidates --tune scores, 3 seeds included (default 8)"
    )
    extend.add_argument(
        "--tune-needles",
        type=int,
        default=2,
        metavar="N",
        help="passkey prompts of --to tokens each --tune candidate is also scored on (LongRoPE2's needle-driven "
        "perplexity of the answer tokens; 0: the text's perplexity alone; default 2)",
    )
    extend.add_argument(
        "--tune-attention",
        type=int,
        default=5,
        metavar="N",
        help="attention factors --tune tries on the best divisors: 1, LongRoPE's, YaRN's, then midpoints around "
        "the best (every runtime applies it at every length, inside the original window too; 0: keep 1; default 5)",
    )
    add_placement(extend, dtype=False, attn=False, what="--tune and --check-runtime")
    add_vllm_options(extend)
    add_table_options(extend)

    evaluate = verbs.add_parser("eval", help="measure a model, or methods applied in memory, across lengths")
    evaluate.add_argument("model", help="hub id (org/name) or model folder or .gguf file")
    evaluate.add_argument("--revision", help="a hub id's branch, tag or commit")
    evaluate.add_argument(
        "--task", required=True, help="ppl, passkey, ruler (decoders), retrieval (encoders), drift (both)"
    )
    evaluate.add_argument("--lengths", type=positive_int, nargs="+", required=True, help="context lengths in tokens")
    evaluate.add_argument("--data", nargs="+", help="text files or folders (ppl, drift, retrieval's chapters)")
    evaluate.add_argument(
        "--methods",
        help="comma-separated: native / none; encoder baselines truncate, chunk, maxsim (best chunk); "
        "or extension methods applied in memory (tile, cubic+keep, yarn, ...; encoders: +late for late chunking)",
    )
    evaluate.add_argument(
        "--to", type=positive_int, help="target length the methods extend to (default: the longest length)"
    )
    evaluate.add_argument(
        "--stride", type=positive_int, help="ppl: tokens scored per window (default: the shortest length)"
    )
    evaluate.add_argument("--max-tokens", type=positive_int, help="ppl, drift: use only the first N tokens of --data")
    evaluate.add_argument("--depths", type=fraction, nargs="+", help="passkey: depths of the key (default 0.1 0.5 0.9)")
    evaluate.add_argument("--trials", type=positive_int, default=2, help="passkey: trials per cell")
    evaluate.add_argument(
        "--subtasks",
        "--retrieval-tasks",
        dest="retrieval_tasks",
        help="comma-separated: retrieval's passkey, needle, chapters; ruler's niah_single_1 ... vt, cwe, fwe, "
        "qa_1, qa_2",
    )
    evaluate.add_argument("--samples", type=positive_int, help="ruler: prompts per subtask and length (default 8)")
    evaluate.add_argument("--seed", type=int, help="ruler: the seed the prompts are drawn from (default 0)")
    evaluate.add_argument("--chat", action="store_true", help="ruler: wrap prompts in the model's chat template")
    evaluate.add_argument(
        "--threshold", type=float, help="ruler: the average (percent) a length must keep to count (default 85.6)"
    )
    evaluate.add_argument(
        "--relative-threshold",
        type=float,
        help="ruler: the share of native's average at its window a length must keep (default 0.9)",
    )
    evaluate.add_argument(
        "--jsonl",
        help="retrieval: your own documents and queries; ruler: qa_1 / qa_2 questions with their documents (RULER's "
        "QA form); one JSON object per line",
    )
    evaluate.add_argument("-o", "--output", required=True, help="results JSON to write")
    evaluate.add_argument("--plot", help="also write this PNG")
    evaluate.add_argument("--overwrite", action="store_true", help="replace existing results and plot files")
    evaluate.add_argument(
        "--resume", action="store_true", help="keep the methods an earlier, cut-off run already wrote to -o"
    )
    add_placement(evaluate)
    evaluate.add_argument(
        "--backend",
        default="transformers",
        choices=["transformers", "vllm"],
        help="vllm: ppl and passkey measured in vLLM (its own environment, scripts/setup-runtimes.sh) on the same "
        "tokens and prompts, each method written to a folder first",
    )
    add_vllm_options(evaluate)
    evaluate.add_argument(
        "--batch",
        type=positive_int,
        default=8,
        help="passkey and ruler prompts decoded together at most (fewer where free device memory holds fewer); "
        "vLLM: sequences in flight",
    )

    training = verbs.add_parser(
        "train",
        help="continue training a decoder on text packed at the new length, or train only the new position rows "
        "of an encoder (short inputs stay bit-identical)",
    )
    training.add_argument(
        "model", help="hub id (org/name) or model folder (a decoder, usually written by ctxext extend; or an encoder)"
    )
    training.add_argument("--revision", help="a hub id's branch, tag or commit")
    training.add_argument("--to", type=positive_int, required=True, help="sequence length to train at")
    training.add_argument("--data", nargs="+", required=True, help="text files or folders")
    training.add_argument(
        "--method",
        type=name,
        help="decoders: RoPE scaling applied first if shorter (yarn; linear is the PI paper's); encoders: table "
        "resampling (tile)",
    )
    training.add_argument(
        "--max-steps", type=positive_int, help="optimizer steps (decoders 200, the PI paper: 200-1000; encoders 40)"
    )
    training.add_argument(
        "--learning-rate", type=positive_float, help="decoders 2e-5; encoders 2e-3 (the new rows only)"
    )
    training.add_argument(
        "--batch-size", type=positive_int, help="decoders 1; encoders 8 (documents contrasted in a batch)"
    )
    training.add_argument("--accumulation", type=positive_int, default=1, help="gradient accumulation steps")
    training.add_argument(
        "--lora",
        action="store_true",
        help="LongLoRA: LoRA on attention, embeddings and norms trainable, merged into a plain model at the end",
    )
    training.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        help="recompute activations in the backward pass (decoders: on by default for sequences of 8,192 tokens or "
        "more, where one step of SmolLM2 needs 3.2x less memory for 12%% more time)",
    )
    training.add_argument(
        "--xpos",
        action="store_true",
        help="train with xPos decay (Llama family); only ctxext loads the result correctly",
    )
    training.add_argument(
        "--train-length",
        type=positive_int,
        help="decoders: train on sequences of N tokens whose positions skip across --to (PoSE; default: --to)",
    )
    training.add_argument(
        "--distill",
        type=finite_float,
        help="encoders: weight of the pull towards the original model's chunk-and-mean embedding (default 0)",
    )
    training.add_argument(
        "--plain-loss",
        action="store_true",
        help="decoders: the model's own loss over full-vocabulary logits (default: the same loss in chunks of "
        "1,024 positions, never holding a sequence's full logits)",
    )
    training.add_argument(
        "--deepspeed",
        metavar="FILE",
        help="decoders: a DeepSpeed JSON config (ZeRO); launch with accelerate or torchrun",
    )
    training.add_argument(
        "--context-parallel",
        type=positive_int,
        metavar="N",
        help="decoders: split each sequence over N GPUs (accelerate's context parallelism with FSDP2 and sdpa); N "
        "divides the sequence length and the number of processes",
    )
    training.add_argument("--save-steps", type=positive_int, help="checkpoint every N steps (beside the output)")
    training.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    training.add_argument("-o", "--output", required=True, help="output folder")
    training.add_argument("--overwrite", action="store_true")

    conform = verbs.add_parser(
        "conform", help="write each method's output and score it on the same tokens in every runtime that reads it"
    )
    conform.add_argument("model", help="hub id (org/name) or RoPE model folder or .gguf file")
    conform.add_argument("--revision", help="a hub id's branch, tag or commit")
    conform.add_argument("--to", type=positive_int, required=True, help="target length the outputs are written for")
    conform.add_argument(
        "--methods",
        default="none,yarn",
        help="comma-separated RoPE methods; none: the model unchanged (default: none,yarn)",
    )
    conform.add_argument("--data", nargs="+", required=True, help="text files or folders to take the tokens from")
    conform.add_argument("--tokens", type=positive_int, help="tokens in the scored window (default: --to - 1)")
    conform.add_argument(
        "--score-from", type=positive_int, help="first scored target position (default: half the window)"
    )
    conform.add_argument("--runtimes", help="comma-separated: transformers, vllm, llama.cpp (default: all)")
    conform.add_argument("--keep", help="write the outputs into this folder and keep them (default: a temporary one)")
    conform.add_argument("-o", "--output", required=True, help="results JSON to write")
    conform.add_argument("--overwrite", action="store_true")
    add_placement(conform, attn=False, what="transformers' reference")
    add_vllm_options(conform)

    plot = verbs.add_parser("plot", help="draw a PNG from a results JSON")
    plot.add_argument("results", help="results JSON written by ctxext eval")
    plot.add_argument("-o", "--output", required=True, help="PNG to write")
    plot.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    return parser


def add_placement(parser, dtype=True, attn=True, what="the model under test") -> None:
    """--device, --dtype, --device-map, --max-memory, --attn: where and how ``what`` runs."""
    group = parser.add_argument_group(f"placement ({what})")
    group.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    if dtype:
        group.add_argument(
            "--dtype", default="auto", choices=["auto", *DTYPE_NAMES], help="auto: bf16 on a GPU, else fp32"
        )
    group.add_argument(
        "--device-map",
        choices=["auto"],
        help="let accelerate split a model larger than one device over every GPU, then CPU memory",
    )
    group.add_argument(
        "--max-memory", help="per-device budget for --device-map, e.g. 0=70GiB,1=70GiB,cpu=200GiB (beyond it: disk)"
    )
    if attn:
        group.add_argument(
            "--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"], help="attention implementation"
        )


def add_vllm_options(parser) -> None:
    """vLLM's engine: GPUs to shard over and the share of each it takes; its dtype is --dtype's."""
    group = parser.add_argument_group("vLLM engine (in the --dtype resolved above)")
    group.add_argument("--tensor-parallel", type=positive_int, default=1, help="GPUs to shard the model over")
    group.add_argument(
        "--gpu-memory-utilization",
        type=fraction,
        help="share of each GPU's memory vLLM may take (default: vLLM's own, 0.9)",
    )
