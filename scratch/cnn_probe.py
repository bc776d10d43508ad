import sys, time
import numpy as np, torch
from torch import nn
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
from seqlab.nn.image_encoder import ConvEncoder
torch.manual_seed(0)
pool = sys.argv[1]; lr = float(sys.argv[2]); scene = sys.argv[3] == "scene"
images, labels = load_digit_images()
cfg = SceneConfig(min_digits=1, max_digits=1)
pools = split_images(len(images), cfg, 1234)
tr = compose_scenes(images, labels, pools["train"], 3000, cfg, 1234)
X = torch.from_numpy(tr.images) if scene else torch.from_numpy(images[pools["train"]])
y = torch.tensor([d[0] for d in tr.digits]) if scene else torch.from_numpy(labels[pools["train"]])
enc = ConvEncoder(32, 3); head = nn.Linear(32, 10)
opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=lr)
rng = np.random.default_rng(0); run = None
for s in range(1, 301):
    idx = torch.from_numpy(rng.choice(len(X), 32, replace=False))
    a = enc(X[idx])
    f = a.mean(1) if pool == "mean" else a.max(1).values
    loss = nn.functional.cross_entropy(head(f), y[idx])
    opt.zero_grad(); loss.backward(); opt.step()
    run = float(loss) if run is None else 0.95 * run + 0.05 * float(loss)
    if s % 50 == 0:
        print(pool, lr, scene, s, round(run, 3), flush=True)
