"""`genimg-fast translate`: a folder of images through a CycleGAN or pix2pix generator, written
as <name>_real.png / <name>_fake.png under <out>/images plus an index.html that shows each
input beside its output (and the target, for A|B images), like the reference's results page.
Every input keeps its own outputs: names that differ only by extension or case get distinct
stems (output_names.unique_stems), and the page's links are URL-encoded.

As junyanz's test script does by default, the generator stays in training mode (pix2pix's batch
norm uses the image's own statistics and its dropout stays on); --eval switches to eval mode.
On a CPU the generator is genimg_fast.optimize_for_inference's copy in the same mode (the same
outputs to rounding; dropout masks, random anyway, are drawn in the optimized layout's order);
optimize=False runs it as loaded. compile=True runs it through torch.compile (any device)."""
from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

import torch

from genimg_fast.data.folders import image_files, load_image
from genimg_fast.data.image_pairs import ResizeCropFlip, split_aligned
from genimg_fast.extras import require
from genimg_fast.inference import checkpoints
from genimg_fast.inference.output_names import unique_stems
from genimg_fast.inference.optimize import optimize_for_inference
from genimg_fast.train.checkpoint import atomic_write_text


def _to_tensor(image, size: int, channels: int = 3) -> torch.Tensor:
    """As junyanz's test script preprocesses: resized to size x size (the crop is the whole image), no flip."""
    return ResizeCropFlip(size, size, flip=False, channels=channels)(image, (0, 0, False))


def _save(image: torch.Tensor, path: Path) -> None:
    from torchvision.utils import save_image
    save_image(image.float().cpu() * 0.5 + 0.5, path)


def _link(name: str) -> str:
    """images/<name> as an attribute value: URL-encoded ('#', '?', '%' and spaces would otherwise
    cut or change the link), then HTML-escaped."""
    return html.escape("images/" + quote(name))


def translate(checkpoint: str | Path, input_dir: str | Path, out: str | Path, size: int = 256, aligned: bool = False,
              eval_mode: bool = False, dropout: bool = True, device: str | torch.device = "cpu", seed: int = 0,
              optimize: bool = True, compile: bool = False) -> Path:
    require("translate")  # before the work: reading and writing images needs torchvision
    torch.manual_seed(seed)  # dropout at test time, as the reference keeps it
    net, name = checkpoints.image_generator(checkpoint, dropout=dropout)
    net = net.to(device).train(not eval_mode)
    channels = next(net.parameters()).shape[1]  # the first convolution's input channels
    if optimize and torch.device(device).type == "cpu":
        net = optimize_for_inference(net, train_mode=not eval_mode, compile=compile)
    elif compile:
        net = torch.compile(net)
    files = image_files(Path(input_dir))
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    with torch.no_grad():
        for path, stem in zip(files, unique_stems(files)):
            image = load_image(str(path))
            target = None
            if aligned:  # A | B side by side: translate A, show B
                image, target = split_aligned(image, str(path))
            real = _to_tensor(image, size, channels).unsqueeze(0).to(device)
            fake = net(real)
            names = {"real": f"{stem}_real.png", "fake": f"{stem}_fake.png"}
            _save(real[0], out / "images" / names["real"])
            _save(fake[0], out / "images" / names["fake"])
            if target is not None:
                names["target"] = f"{stem}_target.png"
                _save(_to_tensor(target, size, 3), out / "images" / names["target"])
            rows.append((path.name, names))
    columns = ["real", "fake"] + (["target"] if aligned else [])
    cells = "\n".join(
        "<tr><td>" + html.escape(label) + "</td>" + "".join(
            f'<td><img src="{_link(names[c])}" width="{min(size, 256)}"></td>' for c in columns) + "</tr>"
        for label, names in rows)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(str(checkpoint))}</title></head>"
            f"<body><h3>{html.escape(name)} from {html.escape(str(checkpoint))}</h3>\n<table>\n<tr><th>image</th>"
            + "".join(f"<th>{c}</th>" for c in columns) + f"</tr>\n{cells}\n</table></body></html>\n")
    atomic_write_text(page, out / "index.html")
    return out / "index.html"
