#!/usr/bin/python3
"""PyTorch peer for scripts/bench-train: the same architectures as ilsvrc's zoo (paper versions:
AlexNet two towers with LRN, GoogLeNet with LRN and no batch norm, NIN ImageNet, VGG-A; and VGG-A with
batch norm as torchvision's vgg11_bn), timed
for training (SGD momentum step) and inference on the CPU. Prints one JSON object."""
import argparse, json, resource, time
import torch
import torch.nn as nn


def widen(n, width, multiple=1):
    """ilsvrc's width multiplier: a positive multiple of `multiple` nearest to n·width."""
    return max(multiple, int(round(n * width / multiple)) * multiple)


def alexnet(classes, width=1.0, size=227, dropout=0.5):
    c = lambda n: widen(n, width, 2)
    lrn = lambda: nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
    feats = nn.Sequential(
        nn.Conv2d(3, c(96), 11, 4), nn.ReLU(True), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c(96), c(256), 5, padding=2, groups=2), nn.ReLU(True), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c(256), c(384), 3, padding=1), nn.ReLU(True),
        nn.Conv2d(c(384), c(384), 3, padding=1, groups=2), nn.ReLU(True),
        nn.Conv2d(c(384), c(256), 3, padding=1, groups=2), nn.ReLU(True), nn.MaxPool2d(3, 2), nn.Flatten())
    flat = feats(torch.zeros(1, 3, size, size)).shape[1]
    f = widen(4096, width)
    return nn.Sequential(*feats, nn.Dropout(dropout), nn.Linear(flat, f), nn.ReLU(True),
                         nn.Dropout(dropout), nn.Linear(f, f), nn.ReLU(True), nn.Linear(f, classes))


def nin(classes, width=1.0, size=224, dropout=0.5):
    c = lambda n: widen(n, width)
    def block(cin, cout, k, s, p):
        return [nn.Conv2d(cin, cout, k, s, p), nn.ReLU(True), nn.Conv2d(cout, cout, 1), nn.ReLU(True),
                nn.Conv2d(cout, cout, 1), nn.ReLU(True)]
    return nn.Sequential(
        *block(3, c(96), 11, 4, 0), nn.MaxPool2d(3, 2, ceil_mode=True),
        *block(c(96), c(256), 5, 1, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
        *block(c(256), c(384), 3, 1, 1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(dropout),
        nn.Conv2d(c(384), c(1024), 3, padding=1), nn.ReLU(True), nn.Conv2d(c(1024), c(1024), 1), nn.ReLU(True),
        nn.Conv2d(c(1024), classes, 1), nn.ReLU(True), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def conv(cin, cout, k, p=0, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.ReLU(True))


class Inception(nn.Module):
    def __init__(self, cin, a, b1, b, c1, c, d):
        super().__init__()
        self.b1 = conv(cin, a, 1)
        self.b2 = nn.Sequential(conv(cin, b1, 1), conv(b1, b, 3, 1))
        self.b3 = nn.Sequential(conv(cin, c1, 1), conv(c1, c, 5, 2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, d, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=1.0)
        self.stem = nn.Sequential(conv(3, 64, 7, 3, 2), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
                                  conv(64, 64, 1), conv(64, 192, 3, 1), lrn(), nn.MaxPool2d(3, 2, ceil_mode=True))
        rows = [(192, 64, 96, 128, 16, 32, 32), (256, 128, 128, 192, 32, 96, 64), 'M',
                (480, 192, 96, 208, 16, 48, 64), (512, 160, 112, 224, 24, 64, 64), (512, 128, 128, 256, 24, 64, 64),
                (512, 112, 144, 288, 32, 64, 64), (528, 256, 160, 320, 32, 128, 128), 'M',
                (832, 256, 160, 320, 32, 128, 128), (832, 384, 192, 384, 48, 128, 128)]
        self.body = nn.Sequential(*[nn.MaxPool2d(3, 2, ceil_mode=True) if r == 'M' else Inception(*r) for r in rows])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(1024, classes))

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def vgg_a(classes):
    layers, cin = [], 3
    for v in [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(True)]
            cin = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(25088, 4096), nn.ReLU(True), nn.Dropout(0.5),
                         nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(4096, classes))


def vgg_a_bn(classes, width=1.0, size=224, dropout=0.5):
    """torchvision's vgg11_bn (conv, BatchNorm2d, ReLU) at ilsvrc's width, without the adaptive pool
    (ilsvrc's classifier reads the last feature map as it is)."""
    c = lambda n: widen(n, width)
    layers, cin = [], 3
    for v in [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, c(v), 3, padding=1), nn.BatchNorm2d(c(v)), nn.ReLU(True)]
            cin = c(v)
    feats = nn.Sequential(*layers, nn.Flatten())
    flat = feats(torch.zeros(2, 3, size, size)).shape[1]
    f = widen(4096, width)
    return nn.Sequential(*feats, nn.Linear(flat, f), nn.ReLU(True), nn.Dropout(dropout),
                         nn.Linear(f, f), nn.ReLU(True), nn.Dropout(dropout), nn.Linear(f, classes))


MODELS = {'alexnet': (alexnet, 227), 'nin': (nin, 224), 'googlenet': (GoogLeNet, 224), 'vgg-a': (vgg_a, 224),
          'vgg-a-bn': (vgg_a_bn, 224)}


def conv_peak():
    """FP32 rate of one large convolution (16x192x27x27 -> 256, 5x5): close to what this CPU can do."""
    x = torch.randn(16, 192, 27, 27)
    w = torch.randn(256, 192, 5, 5)
    flop = 2 * 16 * 256 * 192 * 25 * 27 * 27
    best = 0.0
    with torch.no_grad():
        for i in range(7):
            t = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=2)
            dt = time.perf_counter() - t
            if i > 0:
                best = max(best, flop / dt / 1e9)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model')
    ap.add_argument('--batch', type=int)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--mode', choices=['train', 'infer', 'peak'], required=True)
    ap.add_argument('--device', default='cpu', help='cpu or cuda (scripts/gpu-check)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.mode == 'peak':
        print(json.dumps({'gflop_s': conv_peak()}))
        return
    if a.model is None or a.batch is None:
        ap.error('--model and --batch are required for train and infer')
    make, size = MODELS[a.model]
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    net = make(1000).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    batches = [(torch.randn(a.batch, 3, size, size, device=dev), torch.randint(0, 1000, (a.batch,), device=dev)) for _ in range(2)]
    times = []
    if a.mode == 'train':
        net.train()
        for i in range(a.steps + 1):
            x, y = batches[i % 2]
            t = time.perf_counter()
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
            sync()
            times.append(time.perf_counter() - t)
    else:
        net.eval()
        with torch.no_grad():
            for i in range(a.steps + 1):
                t = time.perf_counter()
                net(batches[i % 2][0])
                sync()
                times.append(time.perf_counter() - t)
    per = sum(times[1:]) / len(times[1:])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'img_s': a.batch / per, 'peak_rss_mb': rss}))


if __name__ == '__main__':
    main()
