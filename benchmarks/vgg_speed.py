"""Issue 17: the VGG MSD backbone's CPU time per 3-s patch on one thread, beside musicnn MSD's.

Both backbones are exported to ONNX (the TorchScript exporter, as ``genrekit.onnx_export`` does) into a
temporary folder and run on onnxruntime with one intra-op thread, and in torch with one thread, on
batches of 10 patches (a 30-s song) of real GTZAN log-mel patches; the median of the repeats, per
patch. The ONNX export's outputs are checked against torch's. What shipping the VGG backbone beside
musicnn would add to ``predict_latency_ms_30s`` is about 10 patches times its time per patch.

Writes results/vgg_speed.{json,md} and ``vgg_msd_onnx_ms_per_patch_1thread`` (and musicnn's, measured
the same way, ``musicnn_msd_onnx_ms_per_patch_1thread_vgg_run``) into summary.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import parser
from _results import cpu, md_table, update_summary, write_results

PATCHES = 10  # a 30-s song


def gtzan_patches(root: str) -> np.ndarray:
    """The log-mel patches ``(10, 1, 96, 187)`` of the first 30 s of GTZAN's metal.00000."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import musicnn_reference as ref

    rep = ref.stock_frontend(ref.load_gtzan(root, "metal.00000"))
    return np.ascontiguousarray(ref.stock_patches(rep)[:PATCHES].transpose(0, 2, 1)[:, None])


class _Outputs(torch.nn.Module):
    """A backbone giving its penultimate and tags as a tuple (ONNX outputs are named, not attributes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(patches)
        return out.penultimate, out.tags


def timed(fn, *, repeats: int) -> float:
    """The median seconds of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--repeats", type=int, default=15)
    a = p.parse_args()
    import onnxruntime as ort

    from genrekit.models.musicnn import load_pretrained
    from genrekit.models.vgg import load_vgg

    torch.set_num_threads(1)
    x = gtzan_patches(a.data)
    models = {"vgg_msd": load_vgg("vgg_msd"), "musicnn_msd": load_pretrained("msd")}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            if name == "musicnn_msd":
                model.frontend_chunk = None  # the export runs the whole batch at once
            path = Path(tmp) / f"{name}.onnx"
            torch.onnx.export(
                _Outputs(model).eval(),
                (torch.from_numpy(x),),
                str(path),
                input_names=["patches"],
                output_names=["penultimate", "tags"],
                dynamic_axes={"patches": {0: "n"}, "penultimate": {0: "n"}, "tags": {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            if name == "musicnn_msd":
                model.frontend_chunk = 2  # torch's CPU default
            with torch.inference_mode():
                want = model(torch.from_numpy(x)).tags.numpy()
            got = sess.run(["tags"], {"patches": x})[0]
            onnx_s = timed(lambda s=sess: s.run(None, {"patches": x}), repeats=a.repeats)
            with torch.inference_mode():
                torch_s = timed(lambda m=model: m(torch.from_numpy(x)), repeats=a.repeats)
            rows[name] = {
                "onnx_ms_per_patch": round(1000 * onnx_s / PATCHES, 2),
                "torch_ms_per_patch": round(1000 * torch_s / PATCHES, 2),
                "onnx_vs_torch_max_tag_diff": float(np.abs(got - want).max()),
                "onnx_mb": round(path.stat().st_size / 1e6, 2),
            }
            print(name, rows[name], flush=True)
    data = {"cpu": cpu(), "patches_per_run": PATCHES, "repeats": a.repeats, "threads": 1, "backbones": rows}
    md = (
        "# The VGG MSD backbone's CPU time per patch (one thread), beside musicnn MSD\n\n"
        f"CPU: {data['cpu']['cpu_model']} ({', '.join(data['cpu']['vector_extensions'])}). Batches of {PATCHES} "
        "real GTZAN patches (metal.00000, a 30-s song), one thread, median of "
        f"{a.repeats} runs; the machine's 2 cores are shared, so these are rough.\n\n"
        + md_table(
            ["backbone", "ONNX ms/patch", "torch ms/patch", "ONNX vs torch max tag diff", "ONNX MB"],
            [
                [
                    k,
                    r["onnx_ms_per_patch"],
                    r["torch_ms_per_patch"],
                    f"{r['onnx_vs_torch_max_tag_diff']:.1e}",
                    r["onnx_mb"],
                ]
                for k, r in rows.items()
            ],
        )
    )
    write_results("vgg_speed", data, md)
    update_summary(
        {
            "vgg_msd_onnx_ms_per_patch_1thread": rows["vgg_msd"]["onnx_ms_per_patch"],
            "musicnn_msd_onnx_ms_per_patch_1thread_vgg_run": rows["musicnn_msd"]["onnx_ms_per_patch"],
        }
    )
    print(md)


if __name__ == "__main__":
    main()
