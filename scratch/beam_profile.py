import sys, time, torch
from seqlab.bench.decode import _fresh
from seqlab.data.batching import pad_batch
from seqlab.decode import beam_search_batch, max_lengths
torch.set_num_threads(1)
cfg, model, sources = _fresh(100)
src = pad_batch(sorted(sources, key=len, reverse=True), 0)
with torch.no_grad():
    memory, mask, state = model.encode(src)
    limits = max_lengths(src.lengths, 1.5, 10)
    with torch.profiler.profile() as prof:
        beam_search_batch(model, state, memory, mask, bos=2, eos=3, max_lengths=limits, beam_size=5)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
