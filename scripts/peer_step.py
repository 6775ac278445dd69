#!/usr/bin/python3
"""One SGD step in PyTorch from the weights and batch in a safetensors file, for the equivalence
test: reads <in>.safetensors (parameters and batch norm's running statistics in ilsvrc's order and
names, "input", "labels") and writes the updated ones to <out>.safetensors, in training mode. Usage: peer_step.py MODEL WIDTH SIZE CLASSES LR IN OUT [float32|float64]: float64 runs the step in double precision
(the reference a float32 step is measured against) and writes float32."""
import json, struct, sys
import torch
from peer_torch import alexnet, nin, vgg_a_bn

DT = {'F32': torch.float32, 'I64': torch.int64, 'I32': torch.int32}


def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {'__order__': json.loads(header.get('__metadata__', {}).get('order', '[]'))}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        b, e = t['data_offsets']
        out[name] = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=DT[t['dtype']]).reshape(t['shape'])
    return out


def save(path, tensors):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().float().contiguous().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(chunks))


def googlenet_tv(classes, width, size, dropout):
    """torchvision's own GoogLeNet (ilsvrc's googlenet-tv), without its auxiliary heads; it has no width multiplier."""
    import torchvision
    assert width == 1.0, width
    return torchvision.models.GoogLeNet(num_classes=classes, aux_logits=False, transform_input=False, init_weights=False,
                                        dropout=dropout)


def main():
    model, width, size, classes, lr, src, dst = sys.argv[1:8]
    double = sys.argv[8:9] == ['float64']
    torch.set_num_threads(1)
    make = {'alexnet': alexnet, 'nin': nin, 'vgg-a-bn': vgg_a_bn, 'googlenet-tv': googlenet_tv}[model]
    net = make(int(classes), float(width), int(size), 0.0)
    net.train()
    t = load(src)
    if double:
        net.double()
        t = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in t.items()}
    is_stat = lambda name: name.endswith('.running_mean') or name.endswith('.running_var')
    names = [n for n in t['__order__'] if not is_stat(n)]
    stat_names = [n for n in t['__order__'] if is_stat(n)]
    params = list(net.parameters())
    stats = [b for n, b in net.named_buffers() if n.endswith('running_mean') or n.endswith('running_var')]
    assert len(params) == len(names), (len(params), len(names))
    assert len(stats) == len(stat_names), (len(stats), len(stat_names))
    with torch.no_grad():
        for p, name in zip(params + stats, names + stat_names):
            p.copy_(t[name].reshape(p.shape))
    opt = torch.optim.SGD(net.parameters(), lr=float(lr), momentum=0.9, weight_decay=5e-4)
    loss = torch.nn.functional.cross_entropy(net(t['input']), t['labels'].long())
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = zip(names + stat_names, params + stats)
    save(dst, {name: p.reshape(-1) for name, p in moved} | {'loss': loss.detach().reshape(1)})


if __name__ == '__main__':
    main()
