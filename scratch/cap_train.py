import argparse, time, dataclasses
import numpy as np, torch
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.tasks.caption import make_batch
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=3000); p.add_argument("--mind", type=int, default=1)
p.add_argument("--maxd", type=int, default=1); p.add_argument("--steps", type=int, default=400)
p.add_argument("--bs", type=int, default=32); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--ch", type=int, default=32); p.add_argument("--layers", type=int, default=3)
p.add_argument("--seed", type=int, default=0); p.add_argument("--bn", type=int, default=1)
a = p.parse_args()
torch.manual_seed(a.seed)
images, labels = load_digit_images()
cfg = SceneConfig(min_digits=a.mind, max_digits=a.maxd)
pools = split_images(len(images), cfg, 1234)
tr = compose_scenes(images, labels, pools["train"], a.n, cfg, 1234)
va = compose_scenes(images, labels, pools["val"], 300, cfg, 1235)
vocab = Vocab.build((c.split() for c in tr.captions), (PAD, UNK, BOS, EOS))
mcfg = CaptionerConfig(channels=a.ch, conv_layers=a.layers, dropout=0.0, batch_norm=a.bn == 1)
model = Captioner(mcfg, 1, len(vocab), vocab.index(BOS), vocab.index(EOS), vocab.pad_index)
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
rng = np.random.default_rng(0)
t0 = time.time(); run = 0.0
def evaluate():
    model.eval()
    with torch.no_grad():
        vb = make_batch(va.images, va.captions, vocab)
        vl = float(model.loss(vb).loss)
        pred = [" ".join(vocab.decode(p)) for p in model.predict(vb)]
    model.train()
    exact = np.mean([p == c for p, c in zip(pred, va.captions)])
    dig = []
    for p_, d in zip(pred, va.digits):
        pd = p_.split(":")[-1].split()
        dig += [i < len(pd) and pd[i] == str(x) for i, x in enumerate(d)]
    return vl, exact, np.mean(dig)
for s in range(1, a.steps + 1):
    idx = rng.choice(a.n, a.bs, replace=False)
    batch = make_batch(tr.images[idx], [tr.captions[i] for i in idx], vocab)
    opt.zero_grad(); out = model.loss(batch); out.loss.backward(); opt.step()
    run = 0.95 * run + 0.05 * float(out.loss.detach()) if s > 1 else float(out.loss.detach())
    if s % 100 == 0:
        print(s, "train", round(run, 4), "val loss/exact/digit", [round(float(x), 4) for x in evaluate()], round(time.time() - t0, 1), flush=True)
