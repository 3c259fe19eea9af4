"""`salesbot models add`: verified installs, and archives that try to escape are refused."""

import io
import tarfile
import zipfile

import pytest
from click.testing import CliRunner

from edge.asr.install import add
from edge.cli import cli
from edge.errors import ArchiveError, InputError, ModelDirError

pytest.importorskip("onnx")
from tests.helpers.fake_models import fake_ctc_dir  # noqa: E402


@pytest.fixture
def model_dir(tmp_path):
    return fake_ctc_dir(tmp_path / "src" / "my-ctc")


def _tar(path, entries, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _model_entries(model_dir, prefix="my-ctc/"):
    return [(prefix + p.name, p.read_bytes(), "file") for p in sorted(model_dir.iterdir())]


def test_add_directory(tmp_path, model_dir):
    target, model = add(model_dir, tmp_path / "models")
    assert target == tmp_path / "models" / "my-ctc" and model.kind == "zipformer_ctc"
    assert (target / "model.onnx").is_file()
    with pytest.raises(InputError, match="already exists; pass --force"):
        add(model_dir, tmp_path / "models")
    add(model_dir, tmp_path / "models", force=True)


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".tar", "w")])
def test_add_tar_archive(tmp_path, model_dir, suffix, mode):
    archive = _tar(tmp_path / f"my-ctc{suffix}", _model_entries(model_dir), mode)
    target, model = add(archive, tmp_path / "models")
    assert target.name == "my-ctc" and (target / "tokens.txt").is_file()


def test_add_zip_archive(tmp_path, model_dir):
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data, _ in _model_entries(model_dir, prefix=""):
            zf.writestr(name, data)
    target, _ = add(archive, tmp_path / "models")
    assert target.name == "m" and (target / "model.onnx").is_file()


@pytest.mark.parametrize("entry, message", [
    (("../evil.txt", b"x", "file"), "climbs out"),
    (("my-ctc/../../evil.txt", b"x", "file"), "climbs out"),
    (("/tmp/evil.txt", b"x", "file"), "absolute path"),
    (("my-ctc/link", "/etc/passwd", "sym"), "is a link"),
    (("my-ctc/hard", "my-ctc/tokens.txt", "hard"), "is a link"),
])
def test_escaping_tar_entries_are_refused(tmp_path, model_dir, entry, message):
    archive = _tar(tmp_path / "bad.tar.gz", _model_entries(model_dir) + [entry])
    models = tmp_path / "models"
    with pytest.raises(ArchiveError, match=message):
        add(archive, models)
    assert not (tmp_path / "evil.txt").exists()
    assert not any(p.name != "." and not p.name.startswith(".") for p in models.iterdir())


@pytest.mark.parametrize("name, message", [("../evil.txt", "climbs out"), ("/abs.txt", "absolute path")])
def test_escaping_zip_entries_are_refused(tmp_path, model_dir, name, message):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for entry, data, _ in _model_entries(model_dir):
            zf.writestr(entry, data)
        zf.writestr(name, b"x")
    with pytest.raises(ArchiveError, match=message):
        add(archive, tmp_path / "models")


def test_zip_symlink_is_refused(tmp_path, model_dir):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("my-ctc/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        add(archive, tmp_path / "models")


def test_broken_model_is_not_installed(tmp_path, model_dir):
    (model_dir / "tokens.txt").unlink()
    archive = _tar(tmp_path / "broken.tar.gz", _model_entries(model_dir))
    with pytest.raises(ModelDirError, match="missing tokens.txt"):
        add(archive, tmp_path / "models")
    assert [p for p in (tmp_path / "models").iterdir()] == []
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    with pytest.raises(ArchiveError, match="unreadable archive"):
        add(junk, tmp_path / "models")
    with pytest.raises(ArchiveError, match="not a directory or a supported archive"):
        add(tmp_path / "src" / "my-ctc" / "model.onnx", tmp_path / "models")


def test_cli_models_add_and_check(tmp_path, model_dir):
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "add", str(model_dir), "--models-dir", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "sherpa-onnx zipformer_ctc" in result.output and "[asr] model" in result.output
    result = runner.invoke(cli, ["models", "check", str(tmp_path / "m" / "my-ctc")])
    assert result.exit_code == 0 and "zipformer_ctc" in result.output
    result = runner.invoke(cli, ["models", "check", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "not found" in result.output and "Traceback" not in result.output
