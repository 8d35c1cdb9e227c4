import json

import pytest

from livereader.cli import main
from livereader.symbol import encode


def _write(path, grid):
    path.write_text("\n".join("".join("#" if v else "." for v in row) for row in grid) + "\n")
    return str(path)


def test_grid_files_give_json_lines(tmp_path, capsys):
    good = _write(tmp_path / "good.txt", encode("004217"))
    foreign = _write(tmp_path / "foreign.txt", encode("HELLO", "M"))
    assert main(["--grid", good, foreign]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["source"], d["text"]) for d in lines] == [(good, "004217"), (foreign, None)]


def test_bad_grid_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("0101\n")
    assert main(["--grid", str(bad)]) == 1
    assert main(["--grid", str(tmp_path / "missing.txt")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("livereader: error:") for line in err)


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
