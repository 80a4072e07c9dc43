"""A causal-LM training loss that never holds a sequence's full-vocabulary logits.

For training, the output head's class is swapped for a subclass (:class:`LossHead`) whose forward returns,
where logits were, the summed negative log-likelihood of targets given to it before the forward:

    loss_sum = sum over t with y_t != -100 of  -log softmax(cap(W h_t))[y_t],   y_t = x_{t+1}

computed ``rows`` positions at a time, each chunk's logits recomputed in the backward pass (activation
checkpointing). At most rows x vocabulary logits exist at once, instead of n x vocabulary (16k tokens and a
49k vocabulary: 3.2 GB in fp32 for one sequence). ``cap`` is the model's final-logit softcapping
(c tanh(z / c)), taken over from its config while the head is installed. The head stays the same module under
the same name, so checkpoints, tied embeddings, DDP, FSDP and PEFT see the model as it is. The Trainer divides
the sum as it divides its own loss.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100
ROWS = 1024


def chunk_nll(logits_of, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Summed NLL (fp32) of ``targets`` (b, r) under the logits ``logits_of`` gives for ``hidden`` (b, r, d)."""
    logits = logits_of(hidden).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum")


class LossHead(torch.nn.Module):
    """Mixed into the output head's own class while training: with ``targets`` (b, n: the token each position
    predicts) set, the forward returns their summed loss shaped (1, 1, 1), computed ``rows`` positions at a time;
    without, the head's own logits."""

    targets: torch.Tensor | None
    cap: float | None
    rows: int

    def head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.targets is None:
            return self.head_logits(hidden)
        targets, total = self.targets.to(hidden.device), hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[1], self.rows):
            piece = slice(start, start + self.rows)
            if not bool((targets[:, piece] != IGNORE).any()):
                continue
            total = total + checkpoint(
                chunk_nll, self.head_logits, hidden[:, piece], targets[:, piece], self.cap, use_reentrant=False
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
    """Make ``model``'s output head (a transformers causal LM's) a :class:`LossHead` and yield it; its class and
    the config's softcapping are put back afterwards, so the model saves as it was."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(config, "final_logit_softcapping", None)
    head = model.get_output_embeddings()
    plain = type(head)
    head.__class__ = type(f"LossHead{plain.__name__}", (LossHead, plain), {})
    head.targets, head.cap, head.rows = None, cap, rows
    if cap is not None:
        config.final_logit_softcapping = None
    try:
        yield head
    finally:
        head.targets = None
        if type(head).__bases__ == (LossHead, plain):  # FSDP may have made it a subclass of its own: leave that
            head.__class__ = plain
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
