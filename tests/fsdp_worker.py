"""Three steps of AdamW on a tiny decoder, written to ``argv[2]`` as a full state dict.

``python fsdp_worker.py plain MODEL OUT``: one process, the model's own loss over a batch of 4 sequences.
``torchrun --nproc_per_node 2 fsdp_worker.py fsdp MODEL OUT``: torch's FSDP2 (fully_shard on every decoder layer
and the root, gloo) with ctxext's chunked loss head installed before sharding, as ``ctxext train`` installs it,
each process taking every other sequence of the same batch."""

import sys

import torch
import torch.distributed as dist
import transformers
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard

from ctxext.train import chunked_loss

mode, source, out = sys.argv[1:4]
model = transformers.AutoModelForCausalLM.from_pretrained(source).train()
batch = torch.randint(0, model.config.vocab_size, (4, 64), generator=torch.Generator().manual_seed(0))
tokens = batch.shape[0] * (batch.shape[1] - 1)

if mode == "plain":
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    torch.save(model.state_dict(), out)
    sys.exit(0)

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
with chunked_loss.loss_head(model, rows=16) as head:
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    mine = batch[rank::world]
    for _ in range(3):
        head.targets = chunked_loss.shifted_targets({"labels": mine})
        (model(input_ids=mine).logits.sum() / tokens * world).backward()  # FSDP averages gradients over processes
        optimizer.step()
        optimizer.zero_grad()
state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
if rank == 0:
    torch.save(state, out)
dist.barrier()  # a process that tears gloo down while the other still uses it aborts ("terminate called ...")
dist.destroy_process_group()
