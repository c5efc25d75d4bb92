"""CPU throughput of the two default networks on one 128×128 tile (printed, not asserted).

    .venv/bin/python benchmarks/model_throughput.py

HybridSTU over 200 bands with P = 5, one ResUNet2D step on 5 abundance maps, and
what HybridSTU plus 4 DDIM steps would give per pixel. Best of 3 after a warm-up.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)

from core.deep.models import HybridSTU, ResUNet2D  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    stu = HybridSTU(200, 5).eval()
    unet = ResUNet2D(5, 5).eval()
    x = torch.rand(1, 200, 128, 128)
    a = torch.softmax(torch.randn(1, 5, 128, 128), 1)
    t = torch.tensor([200])
    with torch.inference_mode():
        t_stu = best_of(lambda: stu(x), 3)
        t_unet = best_of(lambda: unet(a, t, a), 3)
    px = 128 * 128
    print(f"[{torch.get_num_threads()} threads] HybridSTU default (1,200,128,128): {t_stu * 1e3:.1f} ms = "
          f"{px / t_stu:,.0f} px/s; ResUNet2D default step (1,5,128,128): {t_unet * 1e3:.1f} ms = "
          f"{px / t_unet:,.0f} px/s; STU + 4 DDIM steps: {px / (t_stu + 4 * t_unet):,.0f} px/s")


if __name__ == "__main__":
    main()
