"""Train the bundled U-Net: data/models/unet_pt_ceo2_workshop/ (weights, config.json, model_card.json).

    python data/make_pretrained_unet.py [--dataset DIR] [--epochs 30] [--device auto] [--threads 1]

The notebook-05 workshop recipe, trained longer: a bias-free 4-scale U-Net with 16 base
channels on the workshop simulated data set (temnb.simulation.training_data, 16 structures x 5 defoci,
158 px at 0.244 A/px, the paper's 0.061 A pixels binned 4 x 4; built into --dataset if it is not
there yet), Poisson noise at the paper's 121 e-/A^2 per frame (7.2 e-/px) drawn on the fly.  Structures are split as in notebook 05 (seed 0): the held-out
ones never enter training or validation.  Notebook 06 uses these weights so that it runs in
seconds on Binder.  Same seed and library versions, same weights.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from temnb.nets import registry, train
from temnb.nets.config import TrainConfig, UNetConfig
from temnb.simulation import training_data

OUT = Path(__file__).resolve().parent / "models" / "unet_pt_ceo2_workshop"
SEED = 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("runs/interactive/dataset_workshop"))
    parser.add_argument("--work", type=Path, default=Path("runs/pretrained_unet_121"),
                        help="training folder (checkpoints; resumable)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a busy 2-core machine)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    spec = training_data.DatasetSpec.preset("workshop", seed=SEED)
    training_data.build_dataset(spec, args.dataset)
    clean, _, table = training_data.load_dataset(args.dataset, noisy=False)
    train_idx, test_idx = training_data.split_by_structure(table, test_fraction=0.25, seed=SEED)
    model = registry.build_model(UNetConfig(n_scales=4, base_channels=16, bias_free=True), seed=SEED)
    config = TrainConfig(patch_size=64, batch_size=8, epochs=args.epochs, steps_per_epoch=args.steps,
                               plateau_patience=3, early_stopping_patience=8, seed=SEED)
    # A signal, not an array: the model card then records the pixel size and the dose per Å².
    result = train.train(model, training_data.take_images(clean, train_idx), config=config, out_dir=args.work,
                         device=args.device)
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.work / "best", args.out)
    print(f"best validation PSNR {result.best_val_psnr:.2f} dB (noisy {result.noisy_val_psnr:.2f} dB), "
          f"{len(result.history)} epochs, {time.perf_counter() - start:.0f} s on {result.device}")
    print(f"held-out structures: {sorted({table[i]['structure'] for i in test_idx})}")
    print("written", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
