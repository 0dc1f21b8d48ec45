"""Invalid output paths and flag files: one line each (they were FileExistsError, NotADirectoryError
and UnicodeDecodeError tracebacks), by one mechanism: runners.cli maps OSErrors to a line naming
the path, the writers raise WriteError, and flag files are checked before absl reads them."""

import errno
import os

import pytest
from absl import flags
from reliability_helpers import TINY, assert_one_line, run_runner

from runners import cli
from tf_stylegan2.fileio import UserError, os_error_message


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("keep me")
    return path


@pytest.mark.parametrize("program, args", [
    ("train", [*TINY, "--kimg=0.008"]),
    ("generate", ["--seeds=0", "--resolution=8", "--cfg=small"]),
])
def test_an_output_directory_that_is_a_file(a_file, program, args):
    r = run_runner(program, *args, f"--outdir={a_file}")
    assert_one_line(r, program, f"{a_file} is a file, not a directory")
    assert a_file.read_text() == "keep me"


def test_export_tflite_refuses_a_file_as_outdir_before_converting(a_file, tmp_path):
    from tf_stylegan2 import Generator, GeneratorConfig, MappingConfig

    network = tmp_path / "G.keras"
    Generator(GeneratorConfig(img_resolution=8, z_dim=4, w_dim=4, channel_base=32, channel_max=8,
                              mapping=MappingConfig(num_layers=1))).save(network)
    r = run_runner("export_tflite", f"--network={network}", f"--outdir={a_file}")
    assert_one_line(r, "export_tflite", f"output directory {a_file} is a file, not a directory")
    assert a_file.read_text() == "keep me"


def test_a_binary_flagfile_is_one_line(tmp_path):
    binary = tmp_path / "binary.flags"
    binary.write_bytes(bytes([0xFF, 0xFE, 0x00, 0x80]) * 50)
    r = run_runner("train", f"--flagfile={binary}")
    assert_one_line(r, "train", f"--flagfile={binary} is not a text file of flags (byte 0 is not UTF-8)")


def test_flagfiles_are_checked_before_absl_reads_them(tmp_path):
    binary, text, nested = tmp_path / "binary.flags", tmp_path / "text.flags", tmp_path / "nested.flags"
    binary.write_bytes(b"--kimg=1\n\xff\xfe\n")
    text.write_text("# a comment\n--kimg=1\n")
    nested.write_text(f"--cfg=small\n--flagfile={binary}\n")
    cli.check_flagfiles([f"--flagfile={text}", "--kimg=2"])  # a good one passes
    with pytest.raises(UserError, match=rf"^--flagfile={binary} is not a text file of flags \(byte 9 is not"):
        cli.check_flagfiles(["--flagfile", str(nested)])  # the file a flagfile includes is checked too
    with pytest.raises(UserError, match=rf"^cannot read --flagfile={tmp_path / 'missing'}: No such file or directory$"):
        cli.check_flagfiles([f"-flagfile={tmp_path / 'missing'}"])
    big = tmp_path / "big.flags"
    big.write_bytes(b"#" * (cli.MAX_FLAGFILE_BYTES + 1))
    with pytest.raises(UserError, match="is larger than 1 MiB: not a file of flags"):
        cli.check_flagfiles([f"--flagfile={big}"])
    loop = tmp_path / "loop.flags"
    loop.write_text(f"--flagfile={loop}\n")
    cli.check_flagfiles([f"--flagfile={loop}"])  # absl skips a cycle with a warning: so does the check


@pytest.mark.parametrize("args, message", [
    (["--trunc=abc"], "flag --trunc=abc: could not convert string to float: 'abc'"),
    (["--nope=1"], "Unknown command line flag 'nope'"),
    (["--trunc=nan"], "--trunc must be a finite number, got nan"),
    (["--flagfile={dir}"], "Unable to open flagfile"),  # a directory: absl's own error, in one line
    (["--flagfile={dir}/binary.flags"], "is not a text file of flags"),
])
def test_flag_errors_are_one_line_with_status_2(tmp_path, capsys, args, message):
    (tmp_path / "binary.flags").write_bytes(b"\x80\x81")
    flag_values = flags.FlagValues()
    flags.DEFINE_float("trunc", 1.0, "psi", flag_values=flag_values)
    with pytest.raises(SystemExit) as e:
        cli.parse_flags(["prog.py", *[a.format(dir=tmp_path) for a in args]], flag_values)
    assert e.value.code == cli.USAGE_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prog.py: error: ") and message in lines[0], lines


def test_os_errors_become_one_line_naming_the_path(tmp_path, a_file):
    cases = [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y.png"), "no such file or directory: /x/y.png"),
        (PermissionError(errno.EACCES, "Permission denied", "/x/y.png"), "permission denied: /x/y.png"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", f"{a_file}/sub/y.png"),
         f"cannot write {a_file}/sub/y.png: {a_file} is a file, not a directory"),
        (FileExistsError(errno.EEXIST, "File exists", str(a_file)),
         f"cannot write {a_file}: {a_file} is a file, not a directory"),
        (OSError(errno.EROFS, "Read-only file system", str(tmp_path / "z")),
         f"cannot write {tmp_path / 'z'}: {tmp_path} is on a read-only file system"),
        (OSError(errno.EIO, "Input/output error", "/dev/x"), "/dev/x: Input/output error"),
    ]
    for error, message in cases:
        assert os_error_message(error) == message
