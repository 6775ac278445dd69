"""The peer pipeline for scripts/bench-data: PIL decode + torchvision RandomResizedCrop(224),
RandomHorizontalFlip, ToTensor, AlexNet PCA lighting, Normalize; one torch thread per process.
Prints images/s as the last line."""
import os, sys, time
import torch
import torchvision.transforms as T
from PIL import Image

torch.set_num_threads(1)
root, workers, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith('.jpg'))

class Lighting:
    """AlexNet PCA lighting, as in fb.resnet.torch / the ImageNet reference scripts."""
    eigval = torch.tensor([0.2175, 0.0188, 0.0045])
    eigvec = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
    def __call__(self, img):
        alpha = img.new_empty(3).normal_(0, 0.1)
        rgb = (self.eigvec * alpha.view(1, 3) * self.eigval.view(1, 3)).sum(1)
        return img + rgb.view(3, 1, 1)

tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), Lighting(),
                T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

class Files(torch.utils.data.Dataset):
    def __len__(self): return len(files)
    def __getitem__(self, i):
        with open(files[i], 'rb') as f:
            return tf(Image.open(f).convert('RGB')), 0

def init(_): torch.set_num_threads(1)
dl = torch.utils.data.DataLoader(Files(), batch_size=32, shuffle=True, num_workers=workers, worker_init_fn=init,
                                 persistent_workers=workers > 0)
for x, _ in dl: break  # warm up (and start the workers)
t = time.time(); n = 0
for _ in range(epochs):
    for x, _ in dl: n += x.shape[0]
print(n / (time.time() - t))
