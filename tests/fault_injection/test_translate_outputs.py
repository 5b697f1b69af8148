"""`translate` keeps every input's outputs: names that differ only by extension or case do not
overwrite each other, each input is one row of index.html, the page's links are URL-encoded; and
`--aligned` refuses an image too narrow for A | B as the trainer does."""
from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

pytest.importorskip("torchvision")

from genimg_fast.cli import main  # noqa: E402
from genimg_fast.inference.output_names import unique_stems  # noqa: E402
from genimg_fast.inference.translate import translate  # noqa: E402
from genimg_fast.models import define_G  # noqa: E402

SIZE = 32


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "G.pth"
    torch.save(define_G(3, 3, 4, "resnet_6blocks", "instance", fused=False).state_dict(), path)
    return path


def _write(folder: Path, names: list[str], width: int = 24) -> None:
    from torchvision.utils import save_image
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        save_image(torch.full((3, 20, width), i / len(names)), folder / name)  # each input its own colour


def _links(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page.read_text())


def _assert_every_link_resolves(page: Path) -> list[Path]:
    files = [page.parent / unquote(html.unescape(link)) for link in _links(page)]
    assert all(f.is_file() for f in files), files
    return files


def test_unique_stems():
    paths = [Path(n) for n in ["x.jpg", "x.png", "x_png.gif", "A.png", "a.jpg", "b.png"]]
    assert unique_stems(paths) == ["x_jpg", "x_png", "x_png_2", "A_png", "a_jpg", "b"]
    assert unique_stems([Path("X.png"), Path("x.png")]) == ["X_png", "x_png_2"]  # case-insensitive disks


def test_names_differing_only_by_extension_keep_their_outputs(tmp_path, checkpoint):
    _write(tmp_path / "in", ["x.png", "x.jpg", "y.png"])
    page = translate(checkpoint, tmp_path / "in", tmp_path / "out", size=SIZE, optimize=False)
    text = page.read_text()
    for name in ("x.png", "x.jpg", "y.png"):
        assert text.count(f"<td>{name}</td>") == 1, name
    files = _assert_every_link_resolves(page)
    assert len(set(files)) == len(files) == 6  # real and fake of each input, none shared
    reals = sorted(p.name for p in (tmp_path / "out" / "images").glob("*_real.png"))
    assert reals == ["x_jpg_real.png", "x_png_real.png", "y_real.png"]
    from PIL import Image
    assert Image.open(files[0]).tobytes() != Image.open(files[2]).tobytes()  # x.jpg's and x.png's reals


def test_links_are_url_encoded(tmp_path, checkpoint):
    names = ["a #1.png", "50% off.png", "what?.png", "&amp.png"]
    _write(tmp_path / "in", names)
    page = translate(checkpoint, tmp_path / "in", tmp_path / "out", size=SIZE, optimize=False)
    links = _links(page)
    assert "images/a%20%231_real.png" in links and "images/50%25%20off_fake.png" in links
    assert "images/what%3F_real.png" in links and "images/%26amp_real.png" in links
    assert not any(c in link for link in links for c in " #?"), links
    assert len(_assert_every_link_resolves(page)) == 2 * len(names)
    assert html.escape("&amp.png") in page.read_text()  # the row's label, escaped


def test_aligned_refuses_an_image_too_narrow_to_split(tmp_path, checkpoint, capsys):
    _write(tmp_path / "in", ["wide.png"], width=48)
    _write(tmp_path / "in", ["thin.png"], width=1)
    code = main(["translate", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "out"), "--size", str(SIZE), "--aligned", "--device", "cpu", "--no-optimize"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "in" / "thin.png") in err and "too narrow" in err, err
    assert not (tmp_path / "out" / "index.html").exists()


def test_the_trainer_refuses_the_same_image_alike(tmp_path):
    from genimg_fast.data import AlignedFolder
    _write(tmp_path / "train", ["thin.png"], width=1)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "train" / "thin.png")) + ": too narrow"):
        AlignedFolder(tmp_path, load_size=36, crop_size=32)[0]
