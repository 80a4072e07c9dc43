"""README's promises: its first screen is the quickstart, every flag it shows exists in the help of the command it
belongs to, and every call of the Python API it shows binds to the function's signature."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from ctxext.cli.args import build_parser
from ctxext.cli.seed import _parser as seed_parser

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
FENCED = re.compile(r"```(\w*)\n(.*?)```", re.S)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
# flags of other tools that README shows beside ctxext's, by tool
FOREIGN = {
    "accelerate launch / torchrun": {
        "--num_processes",
        "--nproc_per_node",
        "--config_file",
        "--num_machines",
        "--machine_rank",
        "--main_process_ip",
        "--main_process_port",
    },
    "llama.cpp's command line": {"--grp-attn-n", "--grp-attn-w"},
    "pip": {"--index-url"},
}


def verb_helps() -> dict[str, str]:
    parser = build_parser()
    verbs = next(action for action in parser._actions if action.choices and "extend" in action.choices)
    helps = {name: sub.format_help() for name, sub in verbs.choices.items()}
    helps[""] = parser.format_help()
    for name, types in (("extend-context-spline", ()), ("extend-context-linear", ()), ("extend-context", ("cubic",))):
        helps[name] = seed_parser(name, "", True, types).format_help()
    return helps


def command_lines() -> list[str]:
    """Each shell command of README's bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for language, body in FENCED.findall(README):
        if language == "bash":
            joined = body.replace("\\\n", " ")
            lines += [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip()]
    return lines


def test_the_first_screen_is_the_quickstart():
    first_screen = README.splitlines()[:40]
    assert any(line.startswith("## Quickstart") for line in first_screen)
    text = "\n".join(first_screen)
    for step in ("pip install", "ctxext inspect", "ctxext extend", "--task ppl", "--task passkey"):
        assert step in text, step
    for runtime in ("AutoModelForCausalLM", "SentenceTransformer", "LLM(", "llama-cli"):
        assert runtime in text, runtime
    assert "CUDA" in text


def test_every_flag_of_a_command_exists_in_its_help():
    helps, checked = verb_helps(), 0
    for line in command_lines():
        words = line.split()
        starts = ("ctxext", "$(which", "extend-context-spline", "extend-context-linear", "extend-context")
        start = next((i for i, word in enumerate(words) if word in starts), None)
        if start is None:
            continue
        command = words[start]
        if command in ("ctxext", "$(which"):
            verb = next((w for w in words[start + 1 :] if w in helps), None)
            assert verb, line
        else:
            verb = command
        for flag in FLAG.findall(" ".join(words[start:])):
            flag = flag.split("=")[0]
            if any(flag in flags for flags in FOREIGN.values()):
                continue
            assert flag in helps[verb], f"{flag} is not in `{verb} --help`: {line}"
            checked += 1
    assert checked > 50


def test_every_flag_named_in_the_prose_exists_somewhere():
    helps = "\n".join(verb_helps().values())
    foreign = set().union(*FOREIGN.values())
    unknown = sorted({f for f in FLAG.findall(README) if f not in helps and f not in foreign})
    assert unknown == []


def python_api_calls():
    block = README.split("## Python API", 1)[1]
    code = FENCED.search(block).group(2)
    tree = ast.parse(code)
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                found = getattr(module, alias.name, None)  # a function, or else a submodule (from ctxext import api)
                names[alias.asname or alias.name] = found or importlib.import_module(f"{node.module}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = node.func
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in names:
                yield ast.unparse(node), getattr(names[target.value.id], target.attr), node
            elif isinstance(target, ast.Name) and target.id in names:
                yield ast.unparse(node), names[target.id], node


CALLS = list(python_api_calls())


@pytest.mark.parametrize("shown, function, node", CALLS, ids=[c[0][:40] for c in CALLS])
def test_each_python_api_call_binds_to_its_function(shown, function, node):
    signature = inspect.signature(function)
    signature.bind(*[None] * len(node.args), **{k.arg: None for k in node.keywords})


def test_the_python_api_section_shows_the_verbs():
    shown = {function.__qualname__ for _, function, _ in CALLS}
    assert {"extend", "evaluate", "enable", "train", "resample_table"} <= shown
