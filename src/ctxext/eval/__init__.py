"""Evaluation tasks: what an extension buys at long lengths and what it costs at short ones."""
