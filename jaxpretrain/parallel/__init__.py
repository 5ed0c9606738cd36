"""Parallelism chosen by config: jit over a (data, fsdp, tensor) mesh, or pmap data parallelism."""
