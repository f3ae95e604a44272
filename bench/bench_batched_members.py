"""Benchmark: K small heads on cached features trained as ONE batched model against a loop of K.

The fair-trial protocol trains seeds x folds of one configuration. Here K members (member ``k``:
seed ``k // folds``, fold ``k % folds``) of a realistic head on cached image features
(``--dim`` 1280, the EfficientNet-Lite0 pooled vector; one hidden layer of ``--hidden`` 256 with
ReLU and ``--dropout``; ``--classes`` 30) each train on their fold's training rows (~1,000 of
``--rows-per-fold`` x (folds - 1)) for ``--steps`` 300 Adam steps of batch ``--batch`` 64,
with the validation accuracy on the fold's own held-out rows every ``--eval-every`` 25 steps
and the best weights restored (no member stops early: patience is larger than the run, so
both ways do the same number of steps). Measured in ONE process, one after the other:

* ``loop``    -- K single models trained one after another with a plain PyTorch loop (the same
  init, the same per-member batch stream, Adam on each model's parameters, snapshot of the
  best state at each evaluation): the least per-model overhead a loop can have;
* ``batched`` -- :func:`clickvision.train.batched.fit_members` on a
  :class:`~clickvision.train.batched.MemberStack` of the K members (vmap over stacked
  parameters, one Adam on the stacked tensors, per-member early-stopping bookkeeping).

Wall (``perf_counter``) and CPU (``process_time``, all threads) seconds of each and the ratio
loop / batched are printed, after a short warm-up of both (first-call costs excluded). Same
results, with ``--dropout 0`` (the default): the timed float32 runs' max |parameter
difference| and best steps are printed (float32 rounding differs between a batched and a
single matrix product, and Adam's division by sqrt(v) magnifies it on near-zero gradients),
and all K members are retrained both ways in float64 for ``--check-steps`` steps, their max
|parameter difference| printed and asserted <= ``--atol``. With dropout the masks come from
one generator, so only the times (and best validation accuracies) are compared.
The features are SIMULATED (class-centred Gaussians): only the sizes matter for the time.
``--ks`` runs several K in turn (a line each). Not run by the tests::

    .venv/bin/python bench/bench_batched_members.py
    .venv/bin/python bench/bench_batched_members.py --threads 1
    .venv/bin/python bench/bench_batched_members.py --ks 1,3,5,15,30
    .venv/bin/python bench/bench_batched_members.py --ks 1,3,5,15,30 --threads 1
    .venv/bin/python bench/bench_batched_members.py --fused
    .venv/bin/python bench/bench_batched_members.py --threads 1 --fused
    .venv/bin/python bench/bench_batched_members.py --ks 1,3,5,15,30 --threads 1 --steps 100 --check-steps 0
    .venv/bin/python bench/bench_batched_members.py --steps 100 --check-steps 0 [--fused]
    .venv/bin/python bench/bench_batched_members.py --ks 1,3,5,15,30 --threads 1 --dim 64 --hidden 32 --classes 10
    .venv/bin/python bench/bench_batched_members.py --dropout 0.2
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _data(n_folds: int, rows_per_fold: int, dim: int, classes: int, seed: int = 0):
    """SIMULATED cached features: ``n_folds * rows_per_fold`` rows, fold ids cycling."""
    g = torch.Generator().manual_seed(seed)
    n = n_folds * rows_per_fold
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randn(classes, dim, generator=g)[y] * 0.15 + torch.randn(n, dim, generator=g)
    return x, y, torch.arange(n) % n_folds


def _members(k: int, n_folds: int, x, y, fold):
    """Member ``i``: (seed, batch-stream seed, train rows, val rows) of seed ``i // folds``, fold ``i % folds``."""
    out = []
    for i in range(k):
        seed, f = i // n_folds, i % n_folds
        out.append((seed, 1000 * seed + f, (x[fold != f], y[fold != f]), (x[fold == f], y[fold == f])))
    return out


def _loop(members, build, args) -> tuple[list, list[dict]]:
    """K single models, one after another: plain loop, same optimizer, best state restored."""
    import torch.nn.functional as F

    from clickvision import runtime
    from clickvision.train.batched import batch_stream

    nets, records = [], []
    for seed, stream_seed, (xt, yt), (xv, yv) in members:
        runtime.seed_everything(seed)
        net = build()
        opt = torch.optim.Adam(net.parameters(), lr=args.lr, **({"fused": True} if args.fused else {}))
        stream, best = batch_stream(xt, yt, batch_size=args.batch, seed=stream_seed), None
        for step in range(1, args.steps + 1):
            xb, yb = next(stream)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % args.eval_every == 0 or step == args.steps:
                rng = torch.get_rng_state()
                net.eval()
                with torch.no_grad():
                    acc = float((net(xv).argmax(1) == yv).float().mean())
                net.train()
                torch.set_rng_state(rng)
                if best is None or acc > best[0]:
                    best = (acc, step, {n: t.detach().clone() for n, t in net.state_dict().items()})
        net.load_state_dict(best[2])
        nets.append(net.eval())
        records.append({"best_step": best[1], "best_val": best[0]})
    return nets, records


def _batched(members, build, args):
    import torch.nn.functional as F

    from clickvision.models.crossmodal_deep import StopRule
    from clickvision.train.batched import MemberBatches, MemberStack, fit_members

    stack = MemberStack.from_seeds(build, [m[0] for m in members])
    batches = MemberBatches([m[2] for m in members], args.batch, [m[1] for m in members])
    xv = torch.stack([m[3][0] for m in members])  # every fold holds rows_per_fold rows: stackable
    yv = torch.stack([m[3][1] for m in members])

    def loss_fn(model, batch):  # the single model's loss, vmapped over the members
        xb, yb = batch
        return F.cross_entropy(model(xb), yb)

    def val_fn(work):
        idx = torch.as_tensor(work.ids)
        return (work(xv[idx], per_member=True).argmax(-1) == yv[idx]).float().mean(1)

    rule = StopRule(max_steps=args.steps, eval_every=args.eval_every, patience=args.steps + 1, min_delta=0.0,
                    min_steps=0)
    solver = {"fused": True} if args.fused else {}
    _, stops = fit_members(stack, loss_fn, batches, val_fn, rule, lr=args.lr, **solver)
    return stack, stops


def _max_param_diff(nets, stack) -> float:
    diff = 0.0
    for i, net in enumerate(nets):
        a, b = net.state_dict(), stack.member(i).state_dict()
        diff = max(diff, max(float((a[n] - b[n]).abs().max()) for n in a))
    return diff


def run(k: int, args) -> dict:
    from clickvision.models.mlp import MLP

    def build(dtype=torch.float32):
        return MLP(args.dim, [args.hidden], args.classes, dropout=args.dropout).to(dtype)

    x, y, fold = _data(args.folds, args.rows_per_fold, args.dim, args.classes)
    members = _members(k, args.folds, x, y, fold)
    warm = argparse.Namespace(**{**vars(args), "steps": 2 * args.eval_every})
    _loop(members[:2], build, warm)
    _batched(members[:2], build, warm)
    times = {}
    for name, fn in (("loop", _loop), ("batched", _batched)):
        w, c = time.perf_counter(), time.process_time()
        out = fn(members, build, args)
        times[name] = (time.perf_counter() - w, time.process_time() - c, out)
    nets, loop_rec = times["loop"][2]
    stack, stops = times["batched"][2]
    r = {"K": k, "threads": torch.get_num_threads(), "fused_adam": args.fused, "steps": args.steps,
         "train_rows": len(members[0][2][0]),
         "loop_wall_s": round(times["loop"][0], 2), "batched_wall_s": round(times["batched"][0], 2),
         "loop_cpu_s": round(times["loop"][1], 2), "batched_cpu_s": round(times["batched"][1], 2),
         "ratio_wall": round(times["loop"][0] / times["batched"][0], 2),
         "ratio_cpu": round(times["loop"][1] / times["batched"][1], 2)}
    r["max_abs_best_val_diff"] = max(abs(s["best_val"] - q["best_val"]) for s, q in zip(stops, loop_rec))
    if args.dropout == 0:  # float32: Adam divides by sqrt(v), so rounding noise on near-zero gradients grows
        r["max_abs_param_diff_float32"] = _max_param_diff(nets, stack)
        r["same_best_steps"] = [s["best_step"] for s in stops] == [s["best_step"] for s in loop_rec]
        if args.check_steps:  # the same arithmetic, shown in float64 on all K members
            members64 = [(s, ss, (xt.double(), yt), (xv.double(), yv)) for s, ss, (xt, yt), (xv, yv) in members]
            check = argparse.Namespace(**{**vars(args), "steps": args.check_steps})
            nets64, _ = _loop(members64, lambda: build(torch.float64), check)
            stack64, _ = _batched(members64, lambda: build(torch.float64), check)
            r["check_steps"] = args.check_steps
            r["max_abs_param_diff_float64"] = _max_param_diff(nets64, stack64)
            r["same_results"] = bool(r["max_abs_param_diff_float64"] <= args.atol)
    return r


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=15, help="members (seeds x folds), member i = seed i // folds")
    ap.add_argument("--ks", type=str, default=None, help="comma-separated K values to run in turn (e.g. 1,3,5,15,30)")
    ap.add_argument("--folds", type=int, default=5, help="folds per seed")
    ap.add_argument("--rows-per-fold", type=int, default=250, help="rows per fold (train = rest of the folds)")
    ap.add_argument("--dim", type=int, default=1280, help="feature size (EfficientNet-Lite0 pooled: 1280)")
    ap.add_argument("--hidden", type=int, default=256, help="hidden units")
    ap.add_argument("--classes", type=int, default=30, help="classes")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout after the hidden layer (0: results compared)")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps per member")
    ap.add_argument("--eval-every", type=int, default=25, help="steps between validations")
    ap.add_argument("--batch", type=int, default=64, help="batch size per member")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument("--fused", action="store_true", help="fused Adam (one kernel per tensor) in both ways")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--check-steps", type=int, default=100, help="steps of the float64 same-results check (0: none)")
    ap.add_argument("--atol", type=float, default=1e-9, help="max float64 |parameter difference| accepted")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ks = [int(v) for v in args.ks.split(",")] if args.ks else [args.k]
    results = []
    for k in ks:
        r = run(k, args)
        results.append(r)
        print(json.dumps(r), flush=True)
    for r in results:
        print(f"K={r['K']:>3} threads={r['threads']} fused={r['fused_adam']}: loop {r['loop_wall_s']:.1f} s wall / "
              f"{r['loop_cpu_s']:.1f} s CPU, "
              f"batched {r['batched_wall_s']:.1f} s / {r['batched_cpu_s']:.1f} s -> {r['ratio_wall']:.2f}x wall, "
              f"{r['ratio_cpu']:.2f}x CPU" + (f"; max |param diff| float64 {r['max_abs_param_diff_float64']:.2g} "
                                             f"(float32 {r['max_abs_param_diff_float32']:.2g}), same results: "
                                             f"{r['same_results']}" if "same_results" in r else ""))
    return results


if __name__ == "__main__":
    sys.exit(0 if all(r.get("same_results", True) for r in main()) else 1)
