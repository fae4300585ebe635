"""The robust-training epoch against PyTorch and the machine's GEMM floor (issue 23, point 5).

Driven by scripts/bench_robust_epoch.sh; three subcommands, each printing one JSON line:

  gemm    OpenBLAS's best f32 GEMM rate through numpy (`a @ b`, square sizes 1024–4096, best of 5 each)
  torch   one PGD-k adversarial-training epoch of NSL's tutorial CNN in PyTorch (CPU), the same recipe as
          `nsl train --adv-reg multiplier=M,norm=inf,pgd-iterations=K,epsilon=E,step-size=S,random-init=true,clip=0:1`
          (`--objective madry`: the adversarial loss only; `--objective trades`: TRADES as nsl's
          `objective=trades`, inner PGD on the KL from a 0.001·N(0, I) start, no random-init)
  flops   the recipe's GEMM FLOPs per epoch, counted pass by pass (see `recipe_flops`)

The CNN (CnnSpec's default): conv 3×3 1→32, ReLU, max-pool 2, conv 3×3 32→64, ReLU, max-pool 2, conv 3×3 64→64,
ReLU, flatten 576, dense 64 (ReLU), dense 10; `--dense U` widens the dense layer (the robust recipe's
`cnn:32,64,64,dense=256`: `--dense 256`).
"""

import argparse
import gzip
import json
import sys
import time

import numpy as np

def layers(dense=64):
    """(kind, in, out, output positions per image, inner size K) of NSL's MNIST CNN on 28×28 images, its dense
    layer `dense` units wide."""
    return [
        ("conv", 1, 32, 26 * 26, 1 * 9),
        # 11×11 outputs pooled by 2: only the 10×10 that a pool window reads are needed (and all nsl computes).
        ("conv", 32, 64, 10 * 10, 32 * 9),
        ("conv", 64, 64, 3 * 3, 64 * 9),
        ("dense", 576, dense, 1, 576),
        ("dense", dense, 10, 1, dense),
    ]


def layer_flops(dense=64):
    """Per image, per layer: 2·M·N·K of the layer's product (forward = weight gradient = input gradient)."""
    return [2 * out * n * k for (_, _, out, n, k) in layers(dense)]


def recipe_flops(samples, k, objective, dense=64):
    """GEMM FLOPs of one epoch. Per layer one product costs F (forward), the same for the weight gradient (W)
    and for the input gradient (I). A PGD step is a forward and the input gradients down to the image:
    ΣF + ΣI. The training passes need the weight gradients and the input gradients of every layer but the
    first: ΣF + ΣW + Σ_{l>0} I. `objective` nsl: clean and adversarial loss (two training passes); madry: the
    adversarial loss only (one); trades: one forward for the clean prediction the inner PGD holds fixed, then
    the two training passes (CE on the clean pass + β·KL between the two). Elementwise work (bias, ReLU, pool,
    loss) is not counted."""
    f = layer_flops(dense)
    pgd = sum(f) * 2
    train = sum(f) * 2 + sum(f[1:])
    passes = {"nsl": 2, "madry": 1, "trades": 2}[objective]
    per_image = k * pgd + passes * train + (sum(f) if objective == "trades" else 0)
    return {
        "forward_per_image": sum(f),
        "pgd_step_per_image": pgd,
        "train_pass_per_image": train,
        "per_image": per_image,
        "epoch": per_image * samples,
    }


def gemm(args):
    rates = {}
    for n in (1024, 2048, 3072, 4096):
        rng = np.random.default_rng(n)
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        a @ b
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        rates[n] = 2 * n**3 / best / 1e9
    info = {}
    try:
        import threadpoolctl

        blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            info = {k: blas[0].get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
    except ImportError:
        pass
    print(json.dumps({"gflops": max(rates.values()), "by_size": rates, "blas": info}))


def read_idx(images, labels, limit):
    with gzip.open(images) as f:
        data = f.read()
    n, rows, cols = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
    x = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, 1, rows, cols).astype(np.float32) / 255.0
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x[:limit], y[:limit]


def torch_epoch(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x_all, y_all = read_idx(args.images, args.labels, args.samples)
    x_all, y_all = torch.from_numpy(x_all.copy()), torch.from_numpy(y_all.copy())
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(576, args.dense), nn.ReLU(), nn.Linear(args.dense, 10),
    )
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    eps, step, k = args.epsilon, args.step_size, args.pgd_iterations

    def pgd(x, y):
        # L∞ PGD-k from a uniform random start in the ε-ball, clipped to [0, 1]: only ∂/∂x is taken.
        x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(k):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y)
            (g,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv + step * g.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        return x_adv.detach()

    def trades_pgd(x, p_clean):
        # TRADES' inner maximization (Zhang et al. 2019, their reference code; as nsl's objective=trades):
        # L∞ PGD-k on KL(p_clean ‖ f(x′)) from x + 0.001·N(0, I), the clean prediction computed once and
        # held fixed, clipped to [0, 1]; only ∂/∂x is taken.
        x_adv = x + 0.001 * torch.randn_like(x)
        for _ in range(k):
            x_adv.requires_grad_(True)
            loss = F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="sum")
            (g,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv + step * g.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        return x_adv.detach()

    times, correct = [], 0
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(epoch))
        start = time.perf_counter()
        for i in range(0, len(x_all), args.batch_size):
            idx = perm[i : i + args.batch_size]
            x, y = x_all[idx], y_all[idx]
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if args.objective == "trades":
                with torch.no_grad():
                    p_clean = F.softmax(model(x), dim=1)
                x_adv = trades_pgd(x, p_clean)
                logits, adv_logits = model(x), model(x_adv)
                kl = F.kl_div(F.log_softmax(adv_logits, dim=1), F.softmax(logits, dim=1), reduction="batchmean")
                loss = F.cross_entropy(logits, y) + args.multiplier * kl
            else:
                x_adv = pgd(x, y)
                adv_logits = model(x_adv)
                loss = F.cross_entropy(adv_logits, y)
                if args.objective == "nsl":
                    loss = F.cross_entropy(model(x), y) + args.multiplier * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch == args.epochs - 1:
                correct += int((adv_logits.argmax(1) == y).sum())
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "epoch_seconds": times,
        "best_epoch_seconds": min(times),
        "last_epoch_adv_train_accuracy": correct / len(x_all),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "channels_last": args.channels_last,
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("gemm")
    t = sub.add_parser("torch")
    t.add_argument("--images", required=True)
    t.add_argument("--labels", required=True)
    t.add_argument("--samples", type=int, default=10000)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--channels-last", action="store_true")
    for q in (t, sub.add_parser("flops")):
        q.add_argument("--batch-size", type=int, default=32)
        q.add_argument("--pgd-iterations", type=int, default=10)
        q.add_argument("--epsilon", type=float, default=0.3)
        q.add_argument("--step-size", type=float, default=0.04)
        q.add_argument("--multiplier", type=float, default=1.0)
        q.add_argument("--objective", choices=["nsl", "madry", "trades"], default="nsl")
        q.add_argument("--flop-samples", type=int, default=10000)
        q.add_argument("--dense", type=int, default=64, help="units of the dense layer (default 64)")
    args = p.parse_args()
    if args.cmd == "gemm":
        gemm(args)
    elif args.cmd == "torch":
        torch_epoch(args)
    else:
        print(json.dumps(recipe_flops(args.flop_samples, args.pgd_iterations, args.objective, args.dense)))


if __name__ == "__main__":
    sys.exit(main())
