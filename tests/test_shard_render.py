"""`longtail render --shards`: the shard set `export --format webdataset` makes of the same render,
resumed after an interruption, refused (before rendering) where another dataset lives."""

from pathlib import Path

import pytest
import webdataset as wds

from longtail.cli import main
from longtail.pipeline import process_pool
from longtail.shard_render import render_shards, staging_dir
from longtail.worlds.scenario import load_scenario

SMALL = ["--width", "160", "--height", "96"]
FRAMES, SIZE = 7, 3


def render(out, *extra, seed=4):
    return main(["render", "--scenario", "fallen_cargo", "--frames", str(FRAMES), "--out", str(out), "--seed",
                 str(seed), "--quiet", *SMALL, *extra])


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The reference: a folder render exported as shards."""
    tmp = tmp_path_factory.mktemp("ref")
    assert render(tmp / "folder") == 0
    assert main(["export", str(tmp / "folder"), "--format", "webdataset", "--out", str(tmp / "wds"),
                 "--shard-size", str(SIZE)]) == 0
    return tree_bytes(tmp / "wds")


def test_render_shards_equals_the_export_of_a_folder_render(exported, tmp_path, capsys):
    out = tmp_path / "wds"
    assert render(out, "--shards", "--shard-size", str(SIZE)) == 0
    assert tree_bytes(out) == exported
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tar") == [f"shard-00000{k}.tar" for k in range(3)]
    assert not staging_dir(out).exists(), "the staging folder is removed once packed"
    keys = [s["__key__"] for s in wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False)]
    assert keys == [f"{i:06d}" for i in range(FRAMES)]
    capsys.readouterr()
    assert render(out, "--shards", "--shard-size", str(SIZE)) == 0  # complete: renders nothing
    assert f"{FRAMES} frames (0 rendered, {FRAMES} already done)" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0


def test_an_interrupted_sharded_render_resumes_to_the_same_bytes(exported, tmp_path):
    scenario = load_scenario("fallen_cargo").with_resolution(160, 96)
    out = tmp_path / "wds"

    def stops_after_three(job, todo):  # a backend killed after three frames
        for n, res in enumerate(process_pool(1)(job, todo)):
            if n == 3:
                raise KeyboardInterrupt
            yield res

    with pytest.raises(KeyboardInterrupt):
        render_shards(scenario, out, FRAMES, 4, SIZE, backend=stops_after_three)
    assert staging_dir(out).is_dir() and not out.exists()
    summary = render_shards(scenario, out, FRAMES, 4, SIZE)
    assert summary.rendered == FRAMES - 3
    assert tree_bytes(out) == exported and not staging_dir(out).exists()


def test_another_dataset_at_the_output_is_refused_before_rendering(exported, tmp_path, capsys):
    out = tmp_path / "wds"
    assert render(out, "--shards", "--shard-size", str(SIZE)) == 0
    for extra, words in (((), "holds the shards of another render (seed 4, not 5)"),
                         (("--shard-size", "2"), "shard_size 3, not 2")):
        capsys.readouterr()
        assert render(out, "--shards", *(extra or ("--shard-size", str(SIZE))), seed=5 if not extra else 4) == 2
        assert words in capsys.readouterr().err
        assert not staging_dir(out).exists()
    assert tree_bytes(out) == exported
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert render(folder, "--shards") == 2
    assert "holds no longtail shards" in capsys.readouterr().err
    assert render(tmp_path / "x", "--shard-size", "3") == 2  # --shard-size without --shards
    assert "--shards" in capsys.readouterr().err
