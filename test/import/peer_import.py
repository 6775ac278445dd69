#!/usr/bin/python3
"""Published-weight files for the import tests, written by PyTorch from random weights:
  vgg16 DIR                 torchvision's VGG-16: a state dict in safetensors, ONNX at opsets 11 and 17
  alexnet DIR WIDTH SIZE    BVLC AlexNet (Caffe's definition): ONNX (opset 11), .caffemodel in both layer formats,
                            and, with the onnx package, ONNX as the model zoo's Caffe2 conversions are written
                            (opset 8, LRN nodes, ceil pooling as extra end padding), with typed and external weights
  caffenet DIR WIDTH SIZE   BVLC CaffeNet (AlexNet with each norm after its pool): .caffemodel
  googlenet DIR WIDTH SIZE  BVLC GoogLeNet (Caffe's definition): ONNX (opset 17), .caffemodel (with an auxiliary head)
  tv DIR NAME SIZE [FORMS]  torchvision's NAME (alexnet, googlenet, vgg11_bn, vgg16_bn …) with random weights and running
                            statistics: FORMS (comma-separated) of st (state dict), onnx11, onnx17 (batch norms folded
                            by the exporter, its default), bn11, bn17 (batch norms kept: TrainingMode.PRESERVE), and for
                            googlenet aux (a state dict with the auxiliary heads), ti (ONNX, opset 17, transform_input)
Each writes DIR/io.safetensors with "input" and PyTorch's "logits" for it. The Caffe networks are
tables of Caffe layers (name, type, bottoms, tops, parameters) run by one small module, so that the
.caffemodel and the ONNX file come from the same definition and the same weights."""
import json, math, os, struct, sys
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'scripts'))
from peer_torch import widen  # noqa: E402  ilsvrc's width multiplier, one definition


def save_safetensors(path, tensors):
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        whole = t.dtype == torch.int64  # num_batches_tracked, as safetensors.torch writes it
        data = t.detach().contiguous().numpy().tobytes() if whole else t.detach().contiguous().float().numpy().tobytes()
        header[name] = {'dtype': 'I64' if whole else 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(chunks))


# ---- Caffe networks as tables ------------------------------------------------------------------

def caffe_alexnet(width, classes=1000, caffenet=False):
    c = lambda n: widen(n, width, 2)
    f = widen(4096, width)
    lrn = {'local_size': 5, 'alpha': 1e-4, 'beta': 0.75, 'k': 1.0}
    L = []
    def conv(name, bottom, out, k, s=1, p=0, g=1):
        L.append((name, 'Convolution', [bottom], [name], dict(num_output=out, kernel_size=k, stride=s, pad=p, group=g)))
        L.append((name.replace('conv', 'relu'), 'ReLU', [name], [name], {}))
    def norm_pool(i, bottom):
        n, p = f'norm{i}', f'pool{i}'
        first, second = (p, n) if caffenet else (n, p)
        L.append((first, 'LRN' if first == n else 'Pooling', [bottom], [first], lrn if first == n else dict(pool=0, kernel_size=3, stride=2)))
        L.append((second, 'LRN' if second == n else 'Pooling', [first], [second], lrn if second == n else dict(pool=0, kernel_size=3, stride=2)))
        return second
    conv('conv1', 'data', c(96), 11, 4)
    conv('conv2', norm_pool(1, 'conv1'), c(256), 5, p=2, g=2)
    conv('conv3', norm_pool(2, 'conv2'), c(384), 3, p=1)
    conv('conv4', 'conv3', c(384), 3, p=1, g=2)
    conv('conv5', 'conv4', c(256), 3, p=1, g=2)
    L.append(('pool5', 'Pooling', ['conv5'], ['pool5'], dict(pool=0, kernel_size=3, stride=2)))
    L.append(('fc6', 'InnerProduct', ['pool5'], ['fc6'], dict(num_output=f)))
    L.append(('relu6', 'ReLU', ['fc6'], ['fc6'], {}))
    L.append(('drop6', 'Dropout', ['fc6'], ['fc6'], {}))
    L.append(('fc7', 'InnerProduct', ['fc6'], ['fc7'], dict(num_output=f)))
    L.append(('relu7', 'ReLU', ['fc7'], ['fc7'], {}))
    L.append(('drop7', 'Dropout', ['fc7'], ['fc7'], {}))
    L.append(('fc8', 'InnerProduct', ['fc7'], ['fc8'], dict(num_output=classes)))
    return L


INCEPTION = [('3a', 64, 96, 128, 16, 32, 32), ('3b', 128, 128, 192, 32, 96, 64), 'pool3',
             ('4a', 192, 96, 208, 16, 48, 64), ('4b', 160, 112, 224, 24, 64, 64), ('4c', 128, 128, 256, 24, 64, 64),
             ('4d', 112, 144, 288, 32, 64, 64), ('4e', 256, 160, 320, 32, 128, 128), 'pool4',
             ('5a', 256, 160, 320, 32, 128, 128), ('5b', 384, 192, 384, 48, 128, 128)]


def caffe_googlenet(width, classes=1000):
    c = lambda n: widen(n, width)
    lrn = {'local_size': 5, 'alpha': 1e-4, 'beta': 0.75, 'k': 1.0}
    L = []
    def conv(name, bottom, out, k, s=1, p=0):
        L.append((name, 'Convolution', [bottom], [name], dict(num_output=out, kernel_size=k, stride=s, pad=p, group=1)))
        L.append((name + '_relu', 'ReLU', [name], [name], {}))
        return name
    def pool(name, bottom, k, s, p=0):
        L.append((name, 'Pooling', [bottom], [name], dict(pool=0, kernel_size=k, stride=s, pad=p)))
        return name
    h = conv('conv1/7x7_s2', 'data', c(64), 7, 2, 3)
    h = pool('pool1/3x3_s2', h, 3, 2)
    L.append(('pool1/norm1', 'LRN', [h], ['pool1/norm1'], lrn)); h = 'pool1/norm1'
    h = conv('conv2/3x3_reduce', h, c(64), 1)
    h = conv('conv2/3x3', h, c(192), 3, p=1)
    L.append(('conv2/norm2', 'LRN', [h], ['conv2/norm2'], lrn)); h = 'conv2/norm2'
    h = pool('pool2/3x3_s2', h, 3, 2)
    for row in INCEPTION:
        if isinstance(row, str):
            h = pool(row + '/3x3_s2', h, 3, 2)
            continue
        n, a, b1, b, c1, cc, d = row
        p = 'inception_' + n
        x1 = conv(p + '/1x1', h, c(a), 1)
        x3 = conv(p + '/3x3', conv(p + '/3x3_reduce', h, c(b1), 1), c(b), 3, p=1)
        x5 = conv(p + '/5x5', conv(p + '/5x5_reduce', h, c(c1), 1), c(cc), 5, p=2)
        xp = conv(p + '/pool_proj', pool(p + '/pool', h, 3, 1, 1), c(d), 1)
        L.append((p + '/output', 'Concat', [x1, x3, x5, xp], [p + '/output'], {}))
        h = p + '/output'
        if n == '4a':  # an auxiliary head, as in the released model: trained, not on the path to the output
            L.append(('loss1/ave_pool', 'Pooling', [h], ['loss1/ave_pool'], dict(pool=1, kernel_size=5, stride=3)))
            conv('loss1/conv', 'loss1/ave_pool', c(128), 1)
            L.append(('loss1/fc', 'InnerProduct', ['loss1/conv'], ['loss1/fc'], dict(num_output=c(1024))))
            L.append(('loss1/classifier', 'InnerProduct', ['loss1/fc'], ['loss1/classifier'], dict(num_output=classes)))
    L.append(('pool5/7x7_s1', 'Pooling', [h], ['pool5/7x7_s1'], dict(pool=1, global_pooling=True)))
    L.append(('pool5/drop_7x7_s1', 'Dropout', ['pool5/7x7_s1'], ['pool5/7x7_s1'], {}))
    L.append(('loss3/classifier', 'InnerProduct', ['pool5/7x7_s1'], ['loss3/classifier'], dict(num_output=classes)))
    return L


class CaffeNet(nn.Module):
    """Runs a table of Caffe layers (ceil-mode pooling, Caffe's LRN) with PyTorch modules."""

    def __init__(self, table, channels, size):
        super().__init__()
        self.table = table
        self.mods = nn.ModuleDict()
        self.shapes = shapes = {'data': (channels, size, size)}
        for name, typ, bottoms, tops, p in table:
            key = name.replace('/', '__')
            if typ == 'Convolution':
                cin = shapes[bottoms[0]][0]
                self.mods[key] = nn.Conv2d(cin, p['num_output'], p['kernel_size'], p['stride'], p['pad'], groups=p['group'])
            elif typ == 'InnerProduct':
                self.mods[key] = nn.Linear(math.prod(shapes[bottoms[0]]), p['num_output'])
            shapes[tops[0]] = self._run(name, typ, p, [torch.zeros(1, *shapes[b]) for b in bottoms]).shape[1:]

    def _run(self, name, typ, p, xs):
        x = xs[0]
        key = name.replace('/', '__')
        if typ in ('Convolution',):
            return self.mods[key](x)
        if typ == 'InnerProduct':
            return self.mods[key](x.flatten(1))
        if typ == 'ReLU':
            return F.relu(x)
        if typ == 'LRN':
            return F.local_response_norm(x, p['local_size'], p['alpha'], p['beta'], p['k'])
        if typ == 'Pooling':
            if p.get('global_pooling'):
                return F.adaptive_avg_pool2d(x, 1)
            if p['pool'] == 0:
                return F.max_pool2d(x, p['kernel_size'], p['stride'], p.get('pad', 0), ceil_mode=True)
            return F.avg_pool2d(x, p['kernel_size'], p['stride'], p.get('pad', 0), ceil_mode=True)
        if typ == 'Concat':
            return torch.cat(xs, 1)
        if typ == 'Dropout':
            return x
        raise ValueError(typ)

    def forward(self, data):
        blobs = {'data': data}
        for name, typ, bottoms, tops, p in self.table:
            blobs[tops[0]] = self._run(name, typ, p, [blobs[b] for b in bottoms])
        return blobs[self.table[-1][3][0]]


# ---- protobuf wire format, with caffe.proto's field numbers ----------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def f_int(field, v):
    return key(field, 0) + varint(int(v))


def f_float(field, v):
    return key(field, 5) + struct.pack('<f', v)


def f_bytes(field, b):
    return key(field, 2) + varint(len(b)) + b


def f_str(field, s):
    return f_bytes(field, s.encode())


def blob(t, legacy, double=False):
    t = t.detach().contiguous()
    data = t.double().numpy().tobytes() if double else t.float().numpy().tobytes()
    out = f_bytes(8 if double else 5, data)  # double_data = 8, data = 5 (packed)
    if legacy:
        dims = list(t.shape)
        dims = [1] * (4 - len(dims)) + dims
        for i, d in enumerate(dims):  # num = 1, channels = 2, height = 3, width = 4
            out += f_int(i + 1, d)
    else:
        out += f_bytes(7, f_bytes(1, b''.join(varint(d) for d in t.shape)))  # shape { dim (packed) }
    return out


V1_TYPE = {'Convolution': 4, 'InnerProduct': 14, 'LRN': 15, 'Pooling': 17, 'ReLU': 18, 'Dropout': 6, 'Concat': 3, 'SoftmaxWithLoss': 21}


def caffemodel(net, table, size, v1):
    """NetParameter: `layer` (LayerParameter) or, with v1, `layers` (V1LayerParameter)."""
    F_ = dict(name=4, type=5, bottom=2, top=3, blobs=6, conv=10, ip=17, lrn=18, pool=19) if v1 else \
        dict(name=1, type=2, bottom=3, top=4, blobs=7, conv=106, ip=117, lrn=118, pool=121)
    layers = []
    for name, typ, bottoms, tops, p in table + [('loss', 'SoftmaxWithLoss', [table[-1][3][0], 'label'], ['loss'], {})]:
        m = f_str(F_['name'], name) + (f_int(F_['type'], V1_TYPE[typ]) if v1 else f_str(F_['type'], typ))
        m += b''.join(f_str(F_['bottom'], b) for b in bottoms) + b''.join(f_str(F_['top'], t) for t in tops)
        mod = net.mods[name.replace('/', '__')] if name.replace('/', '__') in net.mods else None
        if typ == 'Convolution':
            m += f_bytes(F_['conv'], f_int(1, p['num_output']) + f_int(3, p['pad']) + f_int(4, p['kernel_size']) + f_int(5, p['group']) + f_int(6, p['stride']))
        if typ == 'InnerProduct':
            m += f_bytes(F_['ip'], f_int(1, p['num_output']))
        if typ == 'LRN':
            m += f_bytes(F_['lrn'], f_int(1, p['local_size']) + f_float(2, p['alpha']) + f_float(3, p['beta']) + f_float(5, p['k']))
        if typ == 'Pooling':
            q = f_int(1, p['pool'])
            q += f_int(12, 1) if p.get('global_pooling') else f_int(2, p['kernel_size']) + f_int(3, p['stride']) + f_int(4, p.get('pad', 0))
            m += f_bytes(F_['pool'], q)
        if mod is not None:
            w = mod.weight
            m += f_bytes(F_['blobs'], blob(w, v1)) + f_bytes(F_['blobs'], blob(mod.bias, v1, double=v1))
        layers.append(f_bytes(2 if v1 else 100, m))
    head = f_str(1, 'test')
    if v1:  # input "data" with input_dim N, C, H, W
        head += f_str(3, 'data') + b''.join(f_int(4, d) for d in (1, 3, size, size))
    else:  # an Input layer with input_param { shape { dim … } }
        shape = f_bytes(1, f_bytes(1, b''.join(varint(d) for d in (1, 3, size, size))))
        head += f_bytes(100, f_str(1, 'data') + f_str(2, 'Input') + f_str(4, 'data') + f_bytes(143, shape))
    return head + b''.join(layers)


def onnx_variants(path):
    """The same ONNX file with weights in typed fields (float_data) and in an external data file, as
    published models store them; skipped without the onnx package (Debian python3-onnx)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return
    m = onnx.load(path)
    typed = onnx.ModelProto()
    typed.CopyFrom(m)
    for t in typed.graph.initializer:
        a = numpy_helper.to_array(t)
        if t.data_type == onnx.TensorProto.FLOAT:
            t.ClearField('raw_data')
            t.float_data.extend(a.flatten().tolist())
    onnx.save(typed, path.replace('.onnx', '-typed.onnx'))
    onnx.save_model(m, path.replace('.onnx', '-external.onnx'), save_as_external_data=True,
                    all_tensors_to_one_file=True, location='external.data', size_threshold=0)


def zoo_onnx(net, table, path):
    """The network as the ONNX model zoo's Caffe2 conversions are written: opset 8, IR 3 with the
    weights also listed as graph inputs, LRN nodes, ceil-mode pools as floor pools with extra end
    padding, Reshape or Flatten before Gemm (transB = 1)."""
    try:
        import onnx
        from onnx import helper, numpy_helper, TensorProto
    except ImportError:
        return
    nodes, inits = [], []
    def init(name, t):
        inits.append(numpy_helper.from_array(t.detach().numpy() if hasattr(t, 'detach') else t, name))
        return name
    names = {'data': 'data_0'}
    for name, typ, bottoms, tops, p in table:
        ins = [names[b] for b in bottoms]
        out = name + '_' + str(len(nodes))
        key = name.replace('/', '__')
        if typ == 'Convolution':
            m = net.mods[key]
            k, pd = p['kernel_size'], p['pad']
            nodes.append(helper.make_node('Conv', ins + [init(name + '_w_0', m.weight), init(name + '_b_0', m.bias)], [out],
                                          kernel_shape=[k, k], strides=[p['stride']] * 2, pads=[pd] * 4, group=p['group']))
        elif typ == 'InnerProduct':
            m = net.mods[key]
            flat = out + '_flat'
            if len(net.shapes[bottoms[0]]) > 1 and name.endswith('6'):
                import numpy as np
                nodes.append(helper.make_node('Reshape', [ins[0], init(name + '_shape', np.array([0, -1], dtype=np.int64))], [flat]))
            else:
                nodes.append(helper.make_node('Flatten', ins, [flat], axis=1))
            nodes.append(helper.make_node('Gemm', [flat, init(name + '_w_0', m.weight), init(name + '_b_0', m.bias)], [out], transB=1))
        elif typ == 'ReLU':
            nodes.append(helper.make_node('Relu', ins, [out]))
        elif typ == 'Dropout':
            nodes.append(helper.make_node('Dropout', ins, [out], ratio=0.5))
        elif typ == 'LRN':
            nodes.append(helper.make_node('LRN', ins, [out], size=p['local_size'], alpha=p['alpha'], beta=p['beta'], bias=p['k']))
        elif typ == 'Pooling':
            n = net.shapes[bottoms[0]][1]
            o = net.shapes[tops[0]][1]
            k, st, pd = p['kernel_size'], p['stride'], p.get('pad', 0)
            extra = max(0, (o - 1) * st + k - (n + 2 * pd))
            nodes.append(helper.make_node('MaxPool', ins, [out], kernel_shape=[k, k], strides=[st, st], pads=[pd, pd, pd + extra, pd + extra]))
        else:
            raise ValueError(typ)
        names[tops[0]] = out
    nodes.append(helper.make_node('Softmax', [out], ['prob_1']))
    c, h, w = net.shapes['data']
    inputs = [helper.make_tensor_value_info('data_0', TensorProto.FLOAT, [1, c, h, w])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, 'caffe2_converted', inputs, [helper.make_tensor_value_info('prob_1', TensorProto.FLOAT, [1, *net.shapes[table[-1][3][0]]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 8)], producer_name='test')
    model.ir_version = 3
    onnx.checker.check_model(model)
    onnx.save(model, path)


def randomize(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            fan = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(fan) if p.dim() > 1 else 0.1))


def torchvision_net(name, seed, **kw):
    """torchvision's NAME, every parameter and running statistic random (variances in [0.5, 2])."""
    import torchvision
    if name == 'googlenet':
        kw = {'aux_logits': False, 'init_weights': True, **kw}
    net = getattr(torchvision.models, name)(**kw)
    randomize(net, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(1234)
    return net.eval()


def tv(out, name, size, forms):
    x = torch.randn(2, 3, size, size)
    net = torchvision_net(name, 2)
    for form in forms:
        path = os.path.join(out, f'{name}-{form}')
        if form == 'st':
            save_safetensors(path + '.safetensors', net.state_dict())
        elif form == 'aux':
            with_aux = torchvision_net(name, 3, aux_logits=True)
            with_aux.load_state_dict(net.state_dict(), strict=False)  # the same network, its heads besides
            save_safetensors(path + '.safetensors', with_aux.state_dict())
        elif form == 'ti':
            ti = torchvision_net(name, 2, transform_input=True)
            torch.onnx.export(ti, x[:1], path + '.onnx', opset_version=17, input_names=['data'], output_names=['prob'])
            with torch.no_grad():
                save_safetensors(os.path.join(out, 'io-ti.safetensors'), {'input': x, 'logits': ti(x)})
        else:
            mode = torch.onnx.TrainingMode.PRESERVE if form.startswith('bn') else torch.onnx.TrainingMode.EVAL
            torch.onnx.export(net, x[:1], path + '.onnx', opset_version=int(form[-2:]), training=mode,
                              do_constant_folding=not form.startswith('bn'),
                              input_names=['data'], output_names=['prob'], dynamic_axes={'data': {0: 'N'}})
    with torch.no_grad():
        save_safetensors(os.path.join(out, 'io.safetensors'), {'input': x, 'logits': net(x)})


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    what, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    if what == 'tv':
        return tv(out, sys.argv[3], int(sys.argv[4]), sys.argv[5].split(',') if len(sys.argv) > 5 else ['st', 'onnx11', 'onnx17'])
    if what == 'vgg16':
        import torchvision
        net = torchvision.models.vgg16().eval()
        x = torch.randn(2, 3, 224, 224)
        save_safetensors(os.path.join(out, 'vgg16.safetensors'), net.state_dict())
        for opset in (11, 17):
            torch.onnx.export(net, x[:1], os.path.join(out, f'vgg16-opset{opset}.onnx'), opset_version=opset,
                              input_names=['data'], output_names=['prob'], dynamic_axes={'data': {0: 'N'}})
    else:
        width, size = float(sys.argv[3]), int(sys.argv[4])
        table = caffe_googlenet(width) if what == 'googlenet' else caffe_alexnet(width, caffenet=what == 'caffenet')
        net = CaffeNet(table, 3, size).eval()
        randomize(net, 1)
        # Large enough activations that LRN changes the result visibly.
        x = torch.randn(2, 3, size, size) * 60
        opset = 11 if what == 'alexnet' else 17
        if what != 'caffenet':
            torch.onnx.export(net, x[:1], os.path.join(out, f'{what}.onnx'), opset_version=opset,
                              input_names=['data'], output_names=['prob'])
        with open(os.path.join(out, f'{what}.caffemodel'), 'wb') as f:
            f.write(caffemodel(net, table, size, v1=False))
        if what == 'alexnet':
            with open(os.path.join(out, f'{what}-v1.caffemodel'), 'wb') as f:
                f.write(caffemodel(net, table, size, v1=True))
            onnx_variants(os.path.join(out, f'{what}.onnx'))
            zoo_onnx(net, table, os.path.join(out, f'{what}-zoo.onnx'))
    with torch.no_grad():
        logits = net(x)
    save_safetensors(os.path.join(out, 'io.safetensors'), {'input': x, 'logits': logits})


if __name__ == '__main__':
    main()
