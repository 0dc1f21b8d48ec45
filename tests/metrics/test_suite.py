"""Metric names and their meaning, evaluation records, and the checks before any work."""

import json

import numpy as np
import pytest

from tf_stylegan2.fileio import UserError
from tf_stylegan2.metrics import MetricOptions, evaluate, fid_from_features, parse_metric, report_metric
from tf_stylegan2.metrics.suite import FeatureNetworks, load_networks
from metric_helpers import StandInInception, StandInVGG16, random_dataset, tiny_generator

# stylegan2-ada-pytorch's metric_main: generated images, real images at most, neighbourhood, PPL options.
NVIDIA = {
    "fid50k_full": ("fid", 50000, None, True),
    "kid50k_full": ("kid", 50000, 1000000, True),
    "pr50k3_full": ("pr", 50000, 200000, True),
    "is50k": ("is", 50000, None, False),
    "fid50k": ("fid", 50000, 50000, False),
    "kid50k": ("kid", 50000, 50000, False),
    "pr50k3": ("pr", 50000, 50000, False),
}
PPL = {"ppl2_wend": ("w", "end", False), "ppl_zfull": ("z", "full", True), "ppl_wfull": ("w", "full", True),
       "ppl_zend": ("z", "end", True), "ppl_wend": ("w", "end", True)}


def test_names_mean_what_nvidia_defines():
    for name, (kind, num_gen, max_real, full) in NVIDIA.items():
        spec = parse_metric(name)
        assert (spec.kind, spec.num_gen, spec.max_real, spec.full) == (kind, num_gen, max_real, full), name
    assert parse_metric("pr50k3_full").nhood_size == 3
    for name, (space, sampling, crop) in PPL.items():
        spec = parse_metric(name)
        assert (spec.kind, spec.num_gen, spec.space, spec.sampling, spec.crop) == ("ppl", 50000, space, sampling, crop)
    # The quick variants follow the same rules with their count.
    assert parse_metric("fid2k_full").num_gen == 2000 and parse_metric("fid2k_full").max_real is None
    assert (parse_metric("pr2k5").num_gen, parse_metric("pr2k5").max_real, parse_metric("pr2k5").nhood_size) == \
        (2000, 2000, 5)
    assert (parse_metric("ppl2k_wend").num_gen, parse_metric("ppl2k_wend").crop) == (2000, False)
    assert parse_metric("fd2k_clf").kind == "fd_clf"
    acc = parse_metric("acc2k_clf")
    assert (acc.kind, acc.num_gen, acc.network, acc.uses_reals) == ("acc_clf", 2000, "classifier", False)
    for bad in ("fid", "fid0k_full", "ppl2_xend", "FID50K_full", "fid50k_ful", "pr50k"):
        with pytest.raises(UserError, match="unknown metric"):
            parse_metric(bad)


def options(dataset, **kw):
    networks = FeatureNetworks(inception=StandInInception(), vgg16=StandInVGG16())
    return MetricOptions(dataset, networks, cache_dir=None, log=lambda line: None, **kw)


def test_records_have_nvidia_fields_and_shared_features_give_the_same_numbers(tmp_path):
    G, ds = tiny_generator(), random_dataset(40)
    records = evaluate(G, ["fid1k_full", "kid1k_full", "pr1k3_full", "is1k", "ppl1k_wend"], options(ds))
    assert [r["metric"] for r in records] == ["fid1k_full", "kid1k_full", "pr1k3_full", "is1k", "ppl1k_wend"]
    assert set(records[2]["results"]) == {"pr1k3_full_precision", "pr1k3_full_recall"}
    assert set(records[3]["results"]) == {"is1k_mean", "is1k_std"}
    for r in records:
        assert {"results", "metric", "total_time", "total_time_str", "num_gpus", "detector"} <= set(r)
        assert r["num_gpus"] == 1 and r["detector"]["sha256"]
    assert records[0]["detector"]["network"] == "stand-in inception"
    assert records[4]["detector"]["network"] == "stand-in vgg16"
    # FID alone (its own generator pass) equals FID evaluated together with KID, and equals the
    # formula on the features the library computes.
    alone = evaluate(G, ["fid1k_full"], options(ds))[0]["results"]["fid1k_full"]
    assert alone == pytest.approx(records[0]["results"]["fid1k_full"], rel=1e-9)
    from tf_stylegan2.metrics.stats import generator_stats, dataset_stats

    detector = FeatureNetworks(inception=StandInInception()).detector("pool3")
    fake = generator_stats(G, detector, num_items=1000, capture_all=True, log=lambda line: None).features()
    real = dataset_stats(ds, detector, capture_all=True, log=lambda line: None).features()
    assert alone == pytest.approx(fid_from_features(real, fake), rel=1e-6)

    line = report_metric(records[0], run_dir=str(tmp_path), snapshot=str(tmp_path / "network-snapshot-1.keras"))
    stored = json.loads((tmp_path / "metric-fid1k_full.jsonl").read_text())
    assert stored == json.loads(line) and stored["snapshot_pkl"] == "network-snapshot-1.keras"
    assert stored["timestamp"] > 1e9 and stored["results"] == records[0]["results"]


def test_legacy_metrics_mirror_the_reals_full_ones_do_not():
    G, ds = tiny_generator(), random_dataset(30)
    # The fixed-count variants need their count of real images; with --mirror the flips count.
    with pytest.raises(UserError, match=r"fid1k needs 1000 real images, but dataset random has 30 images"):
        evaluate(G, ["fid1k"], options(ds))
    ds_big = random_dataset(600)
    with pytest.raises(UserError, match=r"has 600 images \(1200 with their x-flips, --mirror\)"):
        evaluate(G, ["kid2k"], options(ds_big, mirror=True))
    mirrored = evaluate(G, ["fid1k"], options(ds_big, mirror=True))[0]["results"]["fid1k"]
    plain = evaluate(G, ["fid1k_full"], options(ds_big, mirror=True))[0]["results"]["fid1k_full"]
    assert mirrored != plain  # different real sets: 600 + 400 flips against the 600 originals
    assert plain == evaluate(G, ["fid1k_full"], options(ds_big))[0]["results"]["fid1k_full"]


def test_checks_before_any_work():
    G = tiny_generator()
    with pytest.raises(UserError, match="makes 8x8x3 images but dataset random holds 16x16x3"):
        evaluate(G, ["fid1k_full"], options(random_dataset(10, resolution=16)))
    with pytest.raises(UserError, match="c_dim 3 but dataset random has c_dim 0"):
        evaluate(tiny_generator(c_dim=3), ["fid1k_full"], options(random_dataset(10)))
    with pytest.raises(UserError, match="pr1k3_full needs 4 real images"):
        evaluate(G, ["pr1k3_full"], options(random_dataset(3)))
    with pytest.raises(UserError, match="unknown metric 'fid'"):
        evaluate(G, ["fid"], options(random_dataset(10)))
    with pytest.raises(UserError, match=r"fid50k_full, is50k need the inception weights: pass --inception"):
        load_networks([parse_metric("fid50k_full"), parse_metric("is50k")])
    with pytest.raises(UserError, match=r"ppl2_wend needs the vgg16 weights: pass --vgg16"):
        load_networks([parse_metric("ppl2_wend")], inception="x")


def test_conditional_generators_draw_dataset_labels():
    G, ds = tiny_generator(c_dim=3), random_dataset(40, c_dim=3)
    a = evaluate(G, ["fid1k_full", "ppl1k_zend"], options(ds))
    b = evaluate(G, ["fid1k_full", "ppl1k_zend"], options(ds, seed=1))
    assert all(np.isfinite(r["results"][r["metric"]]) for r in a)
    assert a[0]["results"] != b[0]["results"]


def test_real_statistics_kept_across_evaluations(monkeypatch):
    """The training loop's MetricSuite passes one `reals` dict to every snapshot's evaluation: the
    real images are read once even without a cache directory."""
    G, ds = tiny_generator(), random_dataset(20)
    reals = {}
    first = evaluate(G, ["kid1k_full"], options(ds), reals=reals)

    def no_images(*_):
        raise AssertionError("real images were read again")

    monkeypatch.setattr(type(ds), "images", no_images)
    assert evaluate(G, ["kid1k_full"], options(ds), reals=reals)[0]["results"] == first[0]["results"]
