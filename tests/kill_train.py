"""Run a small training and SIGKILL it at a chosen point (used by test_train_faults.py).

    python kill_train.py DATA OUTPUT POINT [--resume]

POINT is ``step:N`` (kill after the N-th optimizer step: mid-epoch), ``publish:N`` (at the
N-th atomic file publication — checkpoints, then the final model — with the temp file cut to
half its size, as a kill during the write leaves it), or ``none``. The kill is SIGKILL from the
process itself, so nothing gets to clean up.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgecnn.core import fileio
from edgecnn.formats import modelfile  # noqa: E402
from edgecnn.train import checkpoint
from edgecnn.train import loop as train
from testutil import small_d_model  # noqa: E402

RECIPE = train.RECIPES["default"].override(epochs=2, batch_size=16, lr=0.05, workers=0,
                                           schedule="constant", crop_scale_min=0.6, hue=0.0,
                                           saturation=1.0, exposure=1.0)


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    kind, _, n = point.partition(":")
    count = {"n": 0}
    if kind == "step":
        real_step = train._Step.__call__

        def step(self, batch, lr):
            out = real_step(self, batch, lr)
            count["n"] += 1
            if count["n"] == int(n):
                die()
            return out

        train._Step.__call__ = step
    elif kind == "publish":
        real_publish = fileio.publish

        def publish(tmp, path):
            count["n"] += 1
            if count["n"] == int(n):
                os.truncate(tmp, os.path.getsize(tmp) // 2)
                die()
            real_publish(tmp, path)

        checkpoint.publish = modelfile.publish = publish


def main():
    data, output, point = sys.argv[1:4]
    arm(point)
    train.train(small_d_model(), data, output, RECIPE, resume="--resume" in sys.argv)


if __name__ == "__main__":
    main()
