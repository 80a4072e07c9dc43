"""The ``ctxext`` command line: parse, call the library, print. No logic lives here."""

from __future__ import annotations

import logging
import os
import sys

from ..errors import CtxextError
from .args import build_parser


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def run(main, argv=None, prog: str = "ctxext") -> int:
    """Run ``main(argv)``; any CtxextError or OS error becomes one line on stderr and exit code 2."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        main(argv)
    except CtxextError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{prog}: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, lambda signum, frame: _exit_at_once(prog))
    return 0


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that staging outputs are removed on the way out."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _exit_at_once(prog: str = "ctxext") -> None:
    """SIGTERM after the work (or its error message): nothing is staged any more, so end now, in one line."""
    os.write(2, f"{prog}: terminated\n".encode())
    os._exit(143)


def _options(args) -> dict:
    from ..texts import read_texts

    return {
        "table_path": args.table,
        "offset": args.offset,
        "keep_cls": args.keep_cls,
        "keep_first": args.keep_first,
        "from_window": args.from_window,
        "original": args.original,
        "texts": read_texts(args.texts) if args.texts else None,
    }


def _print_rows(rows) -> None:
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def print_drift(results: dict[str, dict]) -> None:
    print("\nshort-text drift (original vs extended embedding of the same text)")
    print("| method | texts | mean cosine | min cosine | nearest neighbour kept |")
    print("|---|---|---|---|---|")
    for label, d in results.items():
        kept = f"{100 * d['neighbour_kept']:.0f}%"
        cells = [label, d["texts"], f"{d['mean_cosine']:.4f}", f"{d['min_cosine']:.4f}", kept]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


def print_pairs(pairs: list[dict]) -> None:
    print("\nfrequency pairs per method (theta' = theta: kept; theta / s: interpolated; else blended)")
    print("| method | pairs | attention factor | rope_theta | max_position_embeddings |")
    print("|---|---|---|---|---|")
    for row in pairs:
        print(
            f"| {row['method']} | {row['pairs']} | {row['attention_factor']:.4f} | {row['rope_theta']:.6g} "
            f"| {row['max_position_embeddings']} |"
        )
    print("\nwhat each runtime computes from what is written")
    print("| method | " + " | ".join(pairs[0]["runtimes"]) + " |")
    print("|---|" + "---|" * len(pairs[0]["runtimes"]))
    for row in pairs:
        print(f"| {row['method']} | " + " | ".join(row["runtimes"].values()) + " |")


def print_report(report) -> None:
    _print_rows(report.rows)
    for note in report.notes:
        print(f"\n{note}")
    if report.drift:
        print_drift(report.drift)
    if report.pairs:
        print_pairs(report.pairs)


def cmd_inspect(args) -> None:
    from .. import inspect_model

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    print_report(inspect_model.inspect(args.model, args.to, methods, **_options(args)))


def _runtimes(text: str | None) -> tuple:
    if not text:
        return ()
    from ..conformance import check_runtimes

    return tuple(check_runtimes([name.strip() for name in text.split(",") if name.strip()]))


def _serving(args):
    """How --tune, --check-runtime and conform compute: placed as the flags say, vLLM in the same dtype."""
    from ..placement import placement
    from ..runtimes import Serving

    place = placement(args.device, args.dtype or "auto", args.device_map, "sdpa", args.max_memory)
    return Serving(place, args.tensor_parallel, args.gpu_memory_utilization)


def cmd_extend(args) -> None:
    from .. import api
    from ..placement import dtype_word

    report = api.extend(
        args.model,
        args.output,
        args.to,
        args.method,
        fmt=args.format,
        dtype=dtype_word(args.dtype) if args.dtype else None,
        runtimes=_runtimes(args.check_runtime),
        overwrite=args.overwrite,
        check=not args.no_check,
        tune=(
            {
                "text": args.tune,
                "evaluations": args.tune_evals,
                "needles": args.tune_needles,
                "attention": args.tune_attention,
            }
            if args.tune
            else None
        ),
        base_class=args.base_class,
        rederive=args.rederive,
        serving=_serving(args) if args.tune or args.check_runtime else None,
        **_options(args),
    )
    print_report(report)
    print(f"\nwrote {args.output}")


def cmd_eval(args) -> None:
    import json
    from pathlib import Path

    from ..eval.report import check_plot_path, markdown, plot, summary_lines
    from ..eval.run import evaluate, write_results
    from ..formats.staging import check_output
    from ..placement import placement

    if args.plot:
        check_plot_path(args.plot)
    resume = None
    if args.resume and Path(args.output).is_file():
        from ..eval.report import load_results

        resume = load_results(args.output)
    for output in filter(None, (None if resume else args.output, args.plot)):
        check_output(Path(output), args.overwrite)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    subtasks = [t.strip() for t in args.retrieval_tasks.split(",")] if args.retrieval_tasks else None
    results = evaluate(
        args.model,
        args.task,
        args.lengths,
        args.data,
        methods,
        args.to,
        stride=args.stride,
        max_tokens=args.max_tokens,
        depths=args.depths,
        trials=args.trials,
        subtasks=subtasks,
        jsonl=args.jsonl,
        place=placement(args.device, args.dtype, args.device_map, args.attn, args.max_memory),
        backend=args.backend,
        engine={**_serving(args).engine(), "batch": args.batch},
        resume=resume,
        save=lambda partial: write_results(json.loads(json.dumps(partial, default=str)), args.output),
        **_given_task_options(args),
    )
    from ..eval.processes import is_main

    if not is_main():  # under accelerate launch, the main process writes the one results file
        return
    results = json.loads(json.dumps(results, default=str))
    write_results(results, args.output)
    print(markdown(results))
    for line in summary_lines(results):
        print(line)
    print(f"\nwrote {args.output}")
    if args.plot:
        print(f"wrote {plot(results, args.plot)}")


def _given_task_options(args) -> dict:
    """The options only some tasks read, where given (a run without them records what it always did)."""
    given = {
        "samples": args.samples,
        "seed": args.seed,
        "chat": args.chat or None,
        "threshold": args.threshold,
        "relative_threshold": args.relative_threshold,
    }
    return {key: value for key, value in given.items() if value is not None}


def cmd_train(args) -> None:
    from ..api import input_kind

    if input_kind(args.model) == "learned":
        return cmd_train_encoder(args)
    if args.distill is not None:
        raise CtxextError("--distill is for encoders; a decoder is trained on its own text")
    from ..train.trainer import train

    given = {"method": args.method, "max_steps": args.max_steps, "learning_rate": args.learning_rate}
    given["batch_size"] = args.batch_size
    result = train(
        args.model,
        args.output,
        args.to,
        args.data,
        accumulation=args.accumulation,
        lora=args.lora,
        gradient_checkpointing=args.gradient_checkpointing,
        resume=args.resume,
        overwrite=args.overwrite,
        save_steps=args.save_steps,
        xpos=args.xpos,
        train_length=args.train_length,
        chunked_loss=not args.plain_loss,
        deepspeed=args.deepspeed,
        context_parallel=args.context_parallel,
        **{key: value for key, value in given.items() if value is not None},
    )
    if not result["main"]:  # under a launcher the main process reports what was written
        return
    losses = [row["loss"] for row in result["history"]]
    print(f"trained {result['steps']} steps; loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "trained")
    speed = f"{result['tokens_per_second']:,.0f} tokens/s"
    if result["peak_gpu_bytes"] is not None:
        speed += f"; peak GPU memory {result['peak_gpu_bytes'] / 2**30:.1f} GiB (this process)"
    print(speed)
    print(f"wrote {args.output} (checkpoints in {result['checkpoints']})")


def cmd_train_encoder(args) -> None:
    from ..train.encoder_rows import EncoderTraining, train_encoder

    decoder_only = (
        "lora",
        "xpos",
        "resume",
        "save_steps",
        "train_length",
        "plain_loss",
        "deepspeed",
        "context_parallel",
    )
    refused = [flag for flag in decoder_only if getattr(args, flag)]
    if refused:
        raise CtxextError(f"--{refused[0].replace('_', '-')} is for decoders; an encoder trains its new rows only")
    given = {"max_steps": args.max_steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate}
    given["distill"] = args.distill
    setup = EncoderTraining(
        args.to,
        gradient_checkpointing=bool(args.gradient_checkpointing),
        **{key: value for key, value in given.items() if value is not None},
    )
    method = {"method": args.method} if args.method else {}
    result = train_encoder(args.model, args.output, args.data, setup, overwrite=args.overwrite, **method)
    losses, readback = result["history"], result["readback"]
    print(f"trained {result['steps']} steps; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    print(
        f"short inputs bit-identical (max difference {readback['short_input_max_difference']}); "
        f"{readback['trained_rows_changed']} new rows trained"
    )
    print(f"wrote {args.output}")


def cmd_conform(args) -> None:
    import json
    from pathlib import Path

    from ..conformance import check_runtimes, conform_text, conformance_table
    from ..formats.staging import atomic_output, check_output

    check_output(Path(args.output), args.overwrite)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    runtimes = check_runtimes([r.strip() for r in args.runtimes.split(",")] if args.runtimes else None)
    record = conform_text(
        args.model, args.to, methods, args.data, args.tokens, args.score_from, runtimes, args.keep, _serving(args)
    )
    with atomic_output(Path(args.output), args.overwrite, folder=False) as staging:  # never half a file
        staging.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(conformance_table(record["rows"]))
    print(f"\nwrote {args.output}")


def cmd_plot(args) -> None:
    from pathlib import Path

    from ..eval.report import check_plot_path, load_results, plot
    from ..formats.staging import check_output

    check_plot_path(args.output)
    check_output(Path(args.output), args.overwrite)
    print(f"wrote {plot(load_results(args.results), args.output)}")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    if getattr(args, "model", None):
        from ..hub import resolve_model

        args.model = resolve_model(args.model, args.revision)
    verbs = {"inspect": cmd_inspect, "extend": cmd_extend, "eval": cmd_eval, "train": cmd_train, "plot": cmd_plot}
    verbs["conform"] = cmd_conform
    verbs[args.verb](args)


def entry() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: _exit_at_once())  # until run() installs the clean-up one
    exit_now(run(main))


def exit_now(code: int) -> None:
    """End the process with ``code`` once the work is done and its outputs are in place. Python's own teardown is
    skipped: it resets signal handlers (a SIGTERM there would end the process with no word) and can take seconds
    of library destructors that have nothing left to do."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
