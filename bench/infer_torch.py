"""infer_torch.py - PyTorch's side of bench/infer.py: the median seconds of one forward pass of a zoo model
(models/export.py's definition, random init, eval mode, torch.inference_mode) in this process.
It checks no results. Set OPENBLAS_NUM_THREADS and GLIBC_TUNABLES in the environment (infer.py does).

Run: /usr/bin/python3 bench/infer_torch.py MODEL BATCH THREADS [--repeat N] [--warmup W]
Prints: median_s=... min_s=... max_s=... repeat=N
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
import export  # noqa: E402  (the zoo's model definitions)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(export.ZOO))
    ap.add_argument("batch", type=int)
    ap.add_argument("threads", type=int)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    model, make_inputs, _, _ = export.ZOO[args.model]()
    model.eval()
    inputs = make_inputs(args.batch)
    times = []
    # BENCH_CPU_TIME=1: the process's CPU time (1-thread runs on a loaded machine), else wall time
    clock = time.process_time if os.environ.get("BENCH_CPU_TIME", "0") not in ("", "0") else time.perf_counter
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(*inputs)
        for _ in range(args.repeat):
            t0 = clock()
            model(*inputs)
            times.append(clock() - t0)
    times.sort()
    print(f"median_s={times[len(times) // 2]:.6f} min_s={times[0]:.6f} max_s={times[-1]:.6f} "
          f"repeat={args.repeat} torch_threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
