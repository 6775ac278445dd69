#!/usr/bin/python3
"""PyTorch peer for scripts/bench-fmnist: the recipe `ilsvrc train` runs there, written the way a
PyTorch user would on a CPU. VGG-A at a width multiplier (1 input channel, 10 classes, Caffe's
xavier init as ilsvrc's zoo), images resized to --size once up front (bilinear), normalised with
ilsvrc's gray mean/std, a random horizontal flip per image per epoch, SGD momentum with weight
decay, mean cross-entropy; validation on the test split after each epoch. Prints one line of JSON
per epoch, then a summary line."""
import argparse, gzip, json, math, os, time
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.449, 0.226  # ilsvrc's defaults for one channel (src/data/transforms.ts)


def widen(n, width, multiple=1):
    """ilsvrc's width multiplier: a positive multiple of `multiple` nearest to n·width."""
    return max(multiple, int(round(n * width / multiple)) * multiple)


def vgg_a(width, classes, size, dropout=0.5):
    layers, cin = [], 1
    for v in [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            c = widen(v, width)
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(True)]
            cin = c
    feats = nn.Sequential(*layers, nn.Flatten())
    flat = feats(torch.zeros(1, 1, size, size)).shape[1]
    f = widen(4096, width)
    net = nn.Sequential(*feats, nn.Linear(flat, f), nn.ReLU(True), nn.Dropout(dropout),
                        nn.Linear(f, f), nn.ReLU(True), nn.Dropout(dropout), nn.Linear(f, classes))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.uniform_(m.weight, -math.sqrt(3 / fan_in), math.sqrt(3 / fan_in))
            nn.init.zeros_(m.bias)
    return net


def read_idx(path):
    with open(path, 'rb') as f:
        b = f.read()
    if b[:2] == b'\x1f\x8b':
        b = gzip.decompress(b)
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return torch.frombuffer(bytearray(b[4 + 4 * nd:]), dtype=torch.uint8).reshape(dims)


def load(dir, prefix, size):
    def find(stem):
        for name in (stem, stem + '.gz'):
            if os.path.exists(os.path.join(dir, name)):
                return os.path.join(dir, name)
        raise SystemExit(f'Expected {stem}[.gz] in {dir} but it is missing')
    x = read_idx(find(f'{prefix}-images-idx3-ubyte')).float().unsqueeze(1) / 255
    y = read_idx(find(f'{prefix}-labels-idx1-ubyte')).long()
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    return (x - MEAN) / STD, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dir', required=True)
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--width', type=float, default=0.25)
    ap.add_argument('--size', type=int, default=32)
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--momentum', type=float, default=0.9)
    ap.add_argument('--weight-decay', type=float, default=5e-4)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    xtr, ytr = load(a.dir, 'train', a.size)
    xte, yte = load(a.dir, 't10k', a.size)
    net = vgg_a(a.width, 10, a.size)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    setup_s = time.perf_counter() - t0
    n = xtr.shape[0] // a.batch * a.batch  # whole batches, as ilsvrc (dropLast)
    epochs = []
    for e in range(a.epochs):
        t = time.perf_counter()
        net.train()
        order = torch.randperm(xtr.shape[0])[:n]
        loss_sum = hits = 0.0
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            x = xtr[idx]
            flip = torch.rand(x.shape[0]) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            y = ytr[idx]
            opt.zero_grad(set_to_none=True)
            out = net(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * x.shape[0]
            hits += (out.argmax(1) == y).sum().item()
        train_s = time.perf_counter() - t
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xte.shape[0], a.batch):
                correct += (net(xte[i:i + a.batch]).argmax(1) == yte[i:i + a.batch]).sum().item()
        epoch_s = time.perf_counter() - t
        row = {'epoch': e + 1, 'epoch_s': epoch_s, 'train_s': train_s, 'val_s': epoch_s - train_s,
               'train_loss': loss_sum / n, 'train_top1': hits / n, 'top1': correct / xte.shape[0]}
        epochs.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({'torch': torch.__version__, 'setup_s': setup_s, 'train_images': n, 'epochs': epochs}))


if __name__ == '__main__':
    main()
