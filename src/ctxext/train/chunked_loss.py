"""A causal-LM training loss that never holds a sequence's full-vocabulary logits.

For training, the model's output head is replaced by :class:`LossHead`, which keeps the real head as a child
(so DDP, FSDP and PEFT see its weights used inside the model's own forward) and returns, where logits were, the
summed negative log-likelihood of targets given to it before the forward:

    loss_sum = sum over t with y_t != -100 of  -log softmax(cap(W h_t))[y_t],   y_t = x_{t+1}

computed ``rows`` positions at a time, each chunk's logits recomputed in the backward pass (activation
checkpointing). At most rows x vocabulary logits exist at once, instead of n x vocabulary (16k tokens and a
49k vocabulary: 3.2 GB in fp32 for one sequence). ``cap`` is the model's final-logit softcapping
(c tanh(z / c)), taken over from its config while the head is installed. The Trainer divides the sum as it
divides its own loss.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100
ROWS = 1024


def chunk_nll(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Summed NLL (fp32) of ``targets`` (b, r) under the logits of ``hidden`` (b, r, d)."""
    logits = head(hidden).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")


class LossHead(torch.nn.Module):
    """The output head, computing the summed loss of ``self.targets`` (b, n: the token each position predicts)
    ``rows`` positions at a time; its forward returns that sum shaped (1, 1, 1), where the logits were."""

    def __init__(self, head: torch.nn.Module, cap: float | None, rows: int = ROWS):
        super().__init__()
        self.head, self.cap, self.rows = head, cap, rows
        self.targets: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:  # what code that asks for the output embedding's weight finds
        return self.head.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        targets, total = self.targets.to(hidden.device), hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[1], self.rows):
            piece = slice(start, start + self.rows)
            if not bool((targets[:, piece] != IGNORE).any()):
                continue
            total = total + checkpoint(
                chunk_nll, self.head, hidden[:, piece], targets[:, piece], self.cap, use_reentrant=False
            )
        return total.reshape(1, 1, 1).clone()  # not a view: FSDP2 hooks the output for its backward pass


def shifted_targets(inputs: dict) -> torch.Tensor:
    """The token each position predicts: ``shift_labels`` where the Trainer made them (context parallelism shifts
    before it splits the sequence), else ``labels`` moved one to the left with -100 at the end."""
    if "shift_labels" in inputs:
        return inputs.pop("shift_labels")
    return F.pad(inputs["labels"][:, 1:], (0, 1), value=IGNORE)


@contextmanager
def loss_head(model, rows: int = ROWS):
    """Install a :class:`LossHead` on ``model`` (a transformers causal LM) and yield it; the head and the config's
    softcapping are put back afterwards, so the model saves as it was."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, "final_logit_softcapping", None)
    head = model.get_output_embeddings()
    installed = LossHead(head, cap, rows)
    model.set_output_embeddings(installed)
    if cap is not None:
        config.final_logit_softcapping = None
    try:
        yield installed
    finally:
        model.set_output_embeddings(head)
        if cap is not None:
            config.final_logit_softcapping = cap


def chunked_loss_trainer():
    """transformers' Trainer with :class:`LossHead`'s loss: the same number the model's own loss gives, normalised
    the same way (by the tokens of the whole accumulated batch across processes where the Trainer counts them)."""
    from transformers import Trainer

    class ChunkedLossTrainer(Trainer):
        head: LossHead

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            self.head.targets = shifted_targets(inputs)
            inputs.pop("labels", None)
            outputs = model(**inputs)
            total = outputs.logits.sum()
            if num_items_in_batch is None:
                return _returned(total / (self.head.targets != IGNORE).sum().clamp(min=1), outputs, return_outputs)
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs:
                loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # DDP averages the gradients
            return _returned(loss, outputs, return_outputs)

    return ChunkedLossTrainer


def _returned(loss, outputs, return_outputs: bool):
    return (loss, outputs) if return_outputs else loss
