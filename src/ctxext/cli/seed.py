"""Drop-in commands with the names and flags of the ``context-extension`` package.

``extend-context-spline`` (cubic spline), ``extend-context-linear`` (doubling, or linear to
``--max_seq_length``) and ``extend-context --interpolation_type {linear,quadratic,cubic}`` take the
seed's flags; ``--max_seq_length`` counts usable tokens, as there. Differences, all deliberate: the
offset and the table are found automatically unless given, every encoder family works, the dtype is
kept, an existing ``--output_dir`` is refused unless ``--overwrite``, and bad input ends in one line.
"""

from __future__ import annotations

import argparse
import json
import logging

from ..errors import CtxextError
from ..hub import resolve_model
from .args import Parser
from .main import exit_now, quiet_libraries, run


def _parser(prog: str, description: str, need_length: bool, types: tuple[str, ...] = ()) -> Parser:
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--model_name_or_path", required=True, help="model folder or hub id (org/name) to extend")
    parser.add_argument(
        "--max_seq_length", required=need_length, help="target length in usable tokens (excluding the offset rows)"
    )
    parser.add_argument("--output_dir", required=True, help="folder to write (must not exist unless --overwrite)")
    parser.add_argument(
        "--embeddings_attr_name",
        default=None,
        help="module path of the position table (default: found from the model family)",
    )
    parser.add_argument(
        "--offset", type=int, default=None, help="rows kept before position 0 (default: found from the model family)"
    )
    if types:
        parser.add_argument("--interpolation_type", default="cubic", choices=types)
    parser.add_argument("--model_kwargs", default="{}", help="accepted for compatibility; only 'device' is read")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output_dir")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser


def _extend(args: argparse.Namespace, method: str) -> None:
    from ..extend.encoder_folder import extend_encoder

    try:
        kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError:
        raise CtxextError(f"--model_kwargs is not JSON: {args.model_kwargs!r}") from None
    unused = set(kwargs) - {"device"} if isinstance(kwargs, dict) else {"?"}
    if unused:
        raise CtxextError(f"--model_kwargs keys {sorted(unused)} are not supported")
    logging.basicConfig(level=logging.WARNING)
    quiet_libraries()
    plan, result = extend_encoder(
        resolve_model(args.model_name_or_path),
        args.output_dir,
        args.max_seq_length,
        method,
        table_path=args.embeddings_attr_name,
        offset=args.offset,
        overwrite=args.overwrite,
    )
    if not args.quiet:
        print(
            f"{plan.family}: {plan.positions} -> {plan.target} positions ({plan.method}, offset {plan.offset}); "
            f"short-text mean cosine {result.short_text_drift['mean_cosine']:.4f}; wrote {args.output_dir}"
        )


def spline_main(argv=None) -> None:
    _extend(
        _parser("extend-context-spline", "Cubic-spline interpolation of a position table.", True).parse_args(argv),
        "cubic",
    )


def linear_main(argv=None) -> None:
    args = _parser("extend-context-linear", "Double a position table by linear interpolation.", False).parse_args(argv)
    _extend(args, "double" if args.max_seq_length is None else "linear")


def generic_main(argv=None) -> None:
    args = _parser(
        "extend-context", "Positional embeddings interpolation.", True, ("linear", "quadratic", "cubic")
    ).parse_args(argv)
    _extend(args, args.interpolation_type)


def spline() -> None:
    exit_now(run(spline_main, prog="extend-context-spline"))


def linear() -> None:
    exit_now(run(linear_main, prog="extend-context-linear"))


def generic() -> None:
    exit_now(run(generic_main, prog="extend-context"))
