"""Writes feature-network weights files with random weights, in the accepted formats, for trying
the metrics end to end without the real files (e.g. the timings in docs/METRICS.md):

  python tests/metrics/write_random_weights.py <dir>
  -> <dir>/inception-random.pth (pytorch-fid layout, torch.save zip, ~95 MB),
     <dir>/vgg16-random.pth (torchvision layout, ~530 MB), <dir>/lpips-random.pth (legacy stream)

Numbers computed with these files mean nothing; their speed and memory are those of the real ones.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "official")]
import random_weights  # noqa: E402
import torch_writer as tw  # noqa: E402


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for name, state, write in (("inception-random.pth", random_weights.inception_state, tw.zip_bytes),
                               ("vgg16-random.pth", random_weights.vgg16_state, tw.zip_bytes),
                               ("lpips-random.pth", random_weights.lpips_state, tw.legacy_bytes)):
        data = write(tw.state_dict({k: tw.array_tensor(v) for k, v in state().items()}))
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print(os.path.join(out, name), len(data))


if __name__ == "__main__":
    main(sys.argv[1])
