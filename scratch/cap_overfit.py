import sys, time
import numpy as np, torch
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
from seqlab.data.vocab import BOS, EOS, PAD, UNK, Vocab
from seqlab.models.captioner import Captioner, CaptionerConfig
from seqlab.tasks.caption import make_batch
torch.manual_seed(0)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
lr = float(sys.argv[2]) if len(sys.argv) > 2 else 2e-3
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 300
images, labels = load_digit_images()
cfg = SceneConfig()
pools = split_images(len(images), cfg, 1234)
sc = compose_scenes(images, labels, pools["train"], n, cfg, 1234)
vocab = Vocab.build((c.split() for c in sc.captions), (PAD, UNK, BOS, EOS))
batch = make_batch(sc.images, sc.captions, vocab)
print(sc.captions[:3], batch.targets.ids[:3])
mcfg = CaptionerConfig(channels=32, conv_layers=3, dropout=0.0)
model = Captioner(mcfg, 1, len(vocab), vocab.index(BOS), vocab.index(EOS), vocab.pad_index)
opt = torch.optim.Adam(model.parameters(), lr=lr)
t0 = time.time()
for s in range(steps):
    opt.zero_grad(); out = model.loss(batch); out.loss.backward(); opt.step()
    if s % 25 == 0 or s == steps - 1:
        print(s, round(float(out.loss), 4), round(time.time() - t0, 1), flush=True)
model.eval()
pred = model.predict(batch)
print("exact", sum(" ".join(vocab.decode(p)) == c for p, c in zip(pred, sc.captions)))
