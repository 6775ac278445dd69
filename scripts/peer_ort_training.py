#!/usr/bin/env python3
"""ONNX Runtime's own training stack as a peer for scripts/bench-train --peer ort-training: training
artifacts generated (onnxruntime.training.artifacts.generate_artifacts) from the same ONNX model
ilsvrc exports, cross-entropy loss, ORT's SGD, the same batch and threads; timed like
peer_torch.py. Every float initializer is trained. ORT's artifacts offer AdamW and plain SGD only
(SGDOptimizerV2: no momentum, no weight decay), so the update is lighter than ilsvrc's SGD
momentum. The inference export has no dropout. Prints one JSON object."""
import argparse, json, os, resource, tempfile, time
import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.training import artifacts
from onnxruntime.training.api import CheckpointState, Module, Optimizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--onnx', required=True)
    ap.add_argument('--batch', type=int, required=True)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    model = onnx.load(a.onnx)
    params = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) > 0]
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    classes = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    # The exported graph has a fixed batch; make it the benchmark's.
    shape[0] = a.batch
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = a.batch
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        artifacts.generate_artifacts(model, requires_grad=params, loss=artifacts.LossType.CrossEntropyLoss,
                                     optimizer=artifacts.OptimType.SGD, artifact_directory=out)
        gen_s = time.perf_counter() - t
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        state = CheckpointState.load_checkpoint(os.path.join(out, 'checkpoint'))
        module = Module(os.path.join(out, 'training_model.onnx'), state, os.path.join(out, 'eval_model.onnx'), device='cpu', session_options=so)
        opt = Optimizer(os.path.join(out, 'optimizer_model.onnx'), module)
        opt.set_learning_rate(0.01)
        module.train()
        rng = np.random.default_rng(0)
        batches = [(rng.standard_normal(shape, dtype=np.float32), rng.integers(0, classes, a.batch).astype(np.int64)) for _ in range(2)]
        times = []
        for i in range(a.steps + 1):
            x, y = batches[i % 2]
            t = time.perf_counter()
            module(x, y)
            opt.step()
            module.lazy_reset_grad()
            times.append(time.perf_counter() - t)
    per = sum(times[1:]) / len(times[1:])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'img_s': a.batch / per, 'peak_rss_mb': rss, 'generate_s': gen_s, 'ort': ort.__version__, 'optimizer': 'SGD (no momentum)'}))


if __name__ == '__main__':
    main()
