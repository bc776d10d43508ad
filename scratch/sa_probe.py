import argparse, time, dataclasses
import torch, numpy as np
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.seq_autoencode import make_batch, reconstruction_table
from seqlab.models.seq_autoencoder import SeqAutoencoder, SeqAutoencoderConfig
from seqlab.data.batching import bucket_batches
from seqlab.data.vocab import BOS, EOS
p = argparse.ArgumentParser()
p.add_argument("--hidden", type=int, default=128); p.add_argument("--emb", type=int, default=64)
p.add_argument("--rev", type=int, default=0); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--drop", type=float, default=0.1); p.add_argument("--steps", type=int, default=400)
p.add_argument("--n", type=int, default=0); p.add_argument("--bs", type=int, default=64)
p.add_argument("--every", type=int, default=100); p.add_argument("--embinit", type=float, default=0); p.add_argument("--feed", type=int, default=0)
a = p.parse_args()
torch.manual_seed(0)
cfg = load_config("configs/mr_seq_autoencoder.yaml")
import tempfile; tmp = tempfile.mkdtemp()
task = TASKS.get("seq_autoencode"); data = task.setup(cfg, __import__("pathlib").Path(tmp), train=True)
train = data.splits["train"][: a.n] if a.n else data.splits["train"]
val = data.splits["val"][:500]
v = data.vocab
m = SeqAutoencoder(SeqAutoencoderConfig(embedding_size=a.emb, hidden_size=a.hidden, dropout=a.drop, reverse_source=a.rev == 1, feed_code=a.feed == 1), len(v), v.pad_index, v.index(BOS), v.index(EOS))
if a.embinit: torch.nn.init.uniform_(m.embedding.weight, -a.embinit, a.embinit)
opt = torch.optim.Adam(m.parameters(), lr=a.lr)
def ev(sents):
    m.eval()
    with torch.no_grad():
        b = make_batch(v, sents); out = m.predict(b); l = float(m.loss(b).loss)
        src = [[i for i in r[:n]] for r, n in zip(b.source.ids.tolist(), b.source.lengths.tolist())]
    m.train()
    [row] = reconstruction_table(src, out, [30])
    return round(l, 3), round(row["exact"], 1), round(row["token_acc"], 1)
s = 0; t0 = time.time(); ep = 0
while s < a.steps:
    for chosen in bucket_batches([len(x) for x in train], a.bs, shuffle=True, seed=ep):
        b = make_batch(v, [train[i] for i in chosen])
        opt.zero_grad(); out = m.loss(b); out.loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0); opt.step(); s += 1
        if s % a.every == 0:
            print(s, "ep", ep, "train(first500)", ev(train[:500]), "val", ev(val), round(time.time() - t0), flush=True)
        if s >= a.steps: break
    ep += 1
