import argparse, time
import numpy as np, torch
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.tasks.caption import make_batch
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=8000)
p.add_argument("--stages", default="300:1-1,300:1-5,400:2-5")  # steps:min-max
p.add_argument("--bs", type=int, default=64); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--ch", type=int, default=32); p.add_argument("--bn", type=int, default=1)
p.add_argument("--every", type=int, default=100)
a = p.parse_args()
torch.manual_seed(0)
images, labels = load_digit_images()
pools = split_images(len(images), SceneConfig(), 1234)
va = compose_scenes(images, labels, pools["val"], 300, SceneConfig(), 1235)
allcap = [f"{w} digits : 0 1 2 3 4 5 6 7 8 9" for w in ["one", "two", "three", "four", "five"]]
vocab = Vocab.build((c.split() for c in allcap), (PAD, UNK, BOS, EOS))
mcfg = CaptionerConfig(channels=a.ch, conv_layers=3, dropout=0.0, batch_norm=a.bn == 1)
model = Captioner(mcfg, 1, len(vocab), vocab.index(BOS), vocab.index(EOS), vocab.pad_index)
opt = torch.optim.Adam(model.parameters(), lr=a.lr)
rng = np.random.default_rng(0)
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
t0 = time.time(); s = 0; run = None
for stage in a.stages.split(","):
    steps, rg = stage.split(":"); lo, hi = map(int, rg.split("-"))
    tr = compose_scenes(images, labels, pools["train"], a.n, SceneConfig(min_digits=lo, max_digits=hi), 1234 + lo * 10 + hi)
    for _ in range(int(steps)):
        s += 1
        idx = rng.choice(a.n, a.bs, replace=False)
        batch = make_batch(tr.images[idx], [tr.captions[i] for i in idx], vocab)
        opt.zero_grad(); out = model.loss(batch); out.loss.backward(); opt.step()
        l = float(out.loss.detach()); run = l if run is None else 0.95 * run + 0.05 * l
        if s % a.every == 0:
            print(s, rg, "train", round(run, 4), "val loss/exact/digit", [round(float(x), 4) for x in evaluate()], round(time.time() - t0, 1), flush=True)
