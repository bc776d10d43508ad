import argparse, time
import numpy as np, torch
from torch import nn
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.tasks.caption import make_batch
p = argparse.ArgumentParser()
p.add_argument("--pre", type=int, default=300); p.add_argument("--steps", type=int, default=600)
p.add_argument("--bs", type=int, default=64); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--every", type=int, default=100); p.add_argument("--pool", default="mean"); p.add_argument("--wl", type=float, default=0.0)
a = p.parse_args()
torch.manual_seed(0)
images, labels = load_digit_images()
pools = split_images(len(images), SceneConfig(), 1234)
va = compose_scenes(images, labels, pools["val"], 300, SceneConfig(), 1235)
tr = compose_scenes(images, labels, pools["train"], 8000, SceneConfig(), 1234)
one = compose_scenes(images, labels, pools["train"], 4000, SceneConfig(min_digits=1, max_digits=1), 99)
vocab = Vocab.build((c.split() for c in tr.captions), (PAD, UNK, BOS, EOS))
mcfg = CaptionerConfig(channels=32, conv_layers=3, dropout=0.0, word_loss=a.wl)
model = Captioner(mcfg, 1, len(vocab), vocab.index(BOS), vocab.index(EOS), vocab.pad_index)
rng = np.random.default_rng(0); t0 = time.time()
head = nn.Linear(32, 10)
opt = torch.optim.Adam(list(model.encoder.parameters()) + list(head.parameters()), lr=a.lr)
X1 = torch.from_numpy(one.images); y1 = torch.tensor([d[0] for d in one.digits]); run = None
for s in range(1, a.pre + 1):
    idx = torch.from_numpy(rng.choice(len(X1), 32, replace=False))
    f = model.encoder(X1[idx]); f = f.mean(1) if a.pool == "mean" else f.max(1).values
    loss = nn.functional.cross_entropy(head(f), y1[idx])
    opt.zero_grad(); loss.backward(); opt.step()
    run = float(loss) if run is None else 0.95 * run + 0.05 * float(loss)
    if s % 100 == 0: print("pre", s, round(run, 3), round(time.time() - t0, 1), flush=True)
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
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
run = None
for s in range(1, a.steps + 1):
    idx = rng.choice(len(tr.captions), a.bs, replace=False)
    batch = make_batch(tr.images[idx], [tr.captions[i] for i in idx], vocab)
    opt.zero_grad(); out = model.loss(batch); out.loss.backward(); opt.step()
    l = float(out.loss.detach()); run = l if run is None else 0.95 * run + 0.05 * l
    if s % a.every == 0:
        print(s, "train", round(run, 4), "val loss/exact/digit", [round(float(x), 4) for x in evaluate()], round(time.time() - t0, 1), flush=True)
