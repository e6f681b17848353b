"""Write ``fixtures/weights/lightning_tiny.ckpt``: a real PyTorch Lightning checkpoint of the
``--weights`` tests' fine-tuned network, and ``lightning_tiny_io.npz``: an input and what the
Lightning module computes on it (the test's independent reference).

Needs ``pytorch-lightning`` (not a dependency: CI reads the committed files):

    pip install pytorch-lightning && python -m tools.make_lightning_checkpoint
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from tests.weights_nets import fine_tuned

FOLDER = Path(__file__).resolve().parent.parent / "fixtures" / "weights"


class FineTuning(pl.LightningModule):
    """The network under ``self.model`` (so its keys are ``model.*``), a weighted loss beside it."""

    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = fine_tuned()
        self.loss_fn = torch.nn.MSELoss()
        self.register_buffer("target", torch.ones(16))

    def training_step(self, batch, _index):
        (x,) = batch
        return self.loss_fn(self.model(x).mean(dim=(2, 3)), self.target.expand(len(x), -1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def main() -> None:
    pl.seed_everything(0, verbose=False)
    data = DataLoader(TensorDataset(torch.randn(12, 3, 32, 32)), batch_size=4)
    module = FineTuning()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)
    FOLDER.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(FOLDER / "lightning_tiny.ckpt")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = module.model.eval()(torch.from_numpy(x)).numpy()
    np.savez(FOLDER / "lightning_tiny_io.npz", input=x, output=y)
    print(f"wrote {FOLDER / 'lightning_tiny.ckpt'} (pytorch-lightning {pl.__version__})")


if __name__ == "__main__":
    main()
