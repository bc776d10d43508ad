import sys, time
import numpy as np, torch
from torch import nn
from seqlab.data.digit_scenes import SceneConfig, compose_scenes, load_digit_images, split_images
torch.manual_seed(0)
variant = sys.argv[1]; lr = float(sys.argv[2])
images, labels = load_digit_images()
cfg = SceneConfig(min_digits=1, max_digits=1)
pools = split_images(len(images), cfg, 1234)
tr = compose_scenes(images, labels, pools["train"], 3000, cfg, 1234)
X = torch.from_numpy(tr.images); y = torch.tensor([d[0] for d in tr.digits])
coords = "nocoord" not in variant
ch = 32
layers = []
cin = 3 if coords else 1
for l in range(3):
    layers.append(nn.Conv2d(cin if l == 0 else ch, ch, 3, padding=1))
    if "bn" in variant: layers.append(nn.BatchNorm2d(ch))
    layers.append(nn.ReLU())
    if l < 2: layers.append(nn.MaxPool2d(2))
enc = nn.Sequential(*layers); head = nn.Linear(ch, 10)
def feats(img):
    B, H, W = img.shape
    x = img.unsqueeze(1)
    if "center" in variant: x = (x - 0.1) / 0.3
    if coords:
        ys = torch.linspace(-1, 1, H); xs = torch.linspace(-1, 1, W)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        x = torch.cat([x, torch.stack([gx, gy]).expand(B, 2, H, W)], 1)
    return enc(x).flatten(2).transpose(1, 2)
opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=lr)
rng = np.random.default_rng(0); run = None
for s in range(1, 301):
    idx = torch.from_numpy(rng.choice(len(X), 32, replace=False))
    f = feats(X[idx]).mean(1)
    loss = nn.functional.cross_entropy(head(f), y[idx])
    opt.zero_grad(); loss.backward(); opt.step()
    run = float(loss) if run is None else 0.95 * run + 0.05 * float(loss)
    if s % 100 == 0:
        print(variant, lr, s, round(run, 3), flush=True)
