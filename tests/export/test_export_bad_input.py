"""Bad input to the export runners: one line on stderr, exit status 2, existing outputs untouched."""

import os

from export_helpers import run_runner, tiny_generator


def assert_one_line_error(r, program, message):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{program}.py: error:") and message in lines[0], r.stderr


def test_missing_checkpoint(tmp_path):
    r = run_runner("export_savedmodel", f"--network={tmp_path / 'missing.keras'}", f"--model_base={tmp_path / 'm'}")
    assert_one_line_error(r, "export_savedmodel", "no such file")
    assert not (tmp_path / "m").exists()


def test_existing_version_is_refused_without_overwrite(served, tiny):
    pb = os.path.join(served, "1", "saved_model.pb")
    before = (os.path.getmtime(pb), open(pb, "rb").read())
    r = run_runner("export_savedmodel", f"--network={tiny[1]}", f"--model_base={served}", "--version=1")
    assert_one_line_error(r, "export_savedmodel", "version 1 is taken (use --overwrite to replace it)")
    assert (os.path.getmtime(pb), open(pb, "rb").read()) == before
    assert sorted(os.listdir(served)) == ["1"]


def test_existing_tflite_files_and_unknown_quantization_are_refused(tflite_dir, tiny):
    path = os.path.join(tflite_dir, "generator_fp16.tflite")
    before = open(path, "rb").read()
    r = run_runner("export_tflite", f"--network={tiny[1]}", f"--outdir={tflite_dir}", "--models=generator",
                   "--quantize=fp16")
    assert_one_line_error(r, "export_tflite", "generator_fp16.tflite already exists (use --overwrite")
    assert open(path, "rb").read() == before
    r = run_runner("export_tflite", f"--network={tiny[1]}", f"--outdir={tflite_dir}", "--quantize=int4")
    assert_one_line_error(r, "export_tflite", "bad model or quantization ['int4']")


def test_preview_with_a_generator_of_another_resolution(tflite_dir, tmp_path):
    other = tmp_path / "G8.keras"
    tiny_generator(res=8).save(other)
    out = tmp_path / "p.png"
    r = run_runner("preview_tflite", f"--model={os.path.join(tflite_dir, 'generator_fp32.tflite')}",
                   f"--network={other}", f"--out={out}")
    message = "makes 16x16x3 images from inputs truncation_psi [], z [1, 8], but the generator makes 8x8x3"
    assert_one_line_error(r, "preview_tflite", message)
    assert not out.exists()


def test_preview_with_bad_seeds(tflite_dir, tmp_path):
    out = tmp_path / "p.png"
    r = run_runner("preview_tflite", f"--model={os.path.join(tflite_dir, 'generator_fp32.tflite')}",
                   "--seeds=3-1", f"--out={out}")
    assert_one_line_error(r, "preview_tflite", "bad seed range '3-1'")
    assert not out.exists()
