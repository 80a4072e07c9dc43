"""What ``extend`` prints: rows of what was planned, then notes of what was searched and read back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    """What a command prints: key/value rows, then tables or notes."""

    rows: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    drift: dict | None = None
    pairs: list[dict] | None = None


def search_notes(plan) -> list[str]:
    if not plan.search:
        return []
    search, seed = plan.search, plan.search["candidates"][0]
    notes = [
        f"searched {search['evaluations']} candidates at {search['tokens']} tokens of {search['text']}: "
        f"untuned longrope ({seed['name']}) perplexity {seed['ppl']:.4f}, "
        f"best {search['best']} {search['best_ppl']:.4f}"
    ]
    if "attention_candidates" in search:
        tried = ", ".join(f"{row['attention_factor']:.4f}" for row in search["attention_candidates"])
        notes.append(
            f"attention factor: tried {tried}; chose {search['best_attention_factor']:.4f} (perplexity "
            f"{search['best_attention_ppl']:.4f}; applied at every length, inside the original window too)"
        )
    return notes


def readback_notes(readback: dict | None) -> list[str]:
    if not readback:
        return []
    return runtime_readback_notes(readback) + [
        f"transformers reads back the same frequencies (max relative error {readback['max_relative_error']:.1e}) "
        f"and attention factor {readback['attention_factor']:.4f}"
    ]


def runtime_readback_notes(readback: dict) -> list[str]:
    return [
        f"{runtime} reads it back: perplexity {r['perplexity']:.4f} on a probe past the original window, "
        f"{100 * r['difference']:+.2f}% from transformers"
        for runtime, r in readback.get("runtimes", {}).items()
    ]


def runtime_notes(plan, writes: str) -> list[str]:
    runtimes = {k: v for k, v in plan.spec.runtimes.items() if (k == "llama.cpp") == (writes == "gguf")}
    return ["what each runtime computes from it:\n" + "\n".join(f"  {k}: {v}" for k, v in runtimes.items())]
