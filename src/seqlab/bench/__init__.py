"""Benchmarks: each module has run(quick) -> dict; `seqlab bench NAME` runs one."""
