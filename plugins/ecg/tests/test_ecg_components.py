import numpy as np
import pytest
import torch

from polyjepa import testing
from polyjepa_ecg.evaluators import time_split


def _batch(b=3, leads=12, n=40, patch=10, missing=(2, 3)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, leads, n * patch, generator=g)
    lead_ok = torch.ones(b, leads, dtype=torch.bool)
    for i in range(b):
        lead_ok[i, missing[i % len(missing)]] = False
    lead_ok[0, 5] = False
    valid = lead_ok[:, :, None].expand(b, leads, n).reshape(b, -1).clone()
    x[~lead_ok] = 0
    return {"x": x, "valid": valid}


def test_encoder_contract():
    batch = _batch()
    enc = testing.check_encoder("ecg.vit", batch, num_leads=12, patch_size=10, embed_dim=32,
                                depth=1, num_heads=2)
    assert enc.grid(batch) == (12, 40)
    # a lead's identity matters: swapping two leads' data changes their tokens
    tok = enc.tokenize(batch)
    assert tok.shape == (3, 480, 32)


def test_encoder_rejects_mismatched_valid():
    batch = _batch()
    batch["valid"] = batch["valid"][:, :100]
    enc = testing.check_encoder("ecg.vit", _batch(), num_leads=12, patch_size=10,
                                embed_dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="valid mask"):
        enc(batch)


@pytest.mark.parametrize("name,kw", [("ecg.time_blocks", {}),
                                     ("ecg.time_blocks", {"num_blocks": 3, "num_targets": 2}),
                                     ("ecg.leads", {}),
                                     ("ecg.leads", {"time_scale": 0.2, "num_targets": 2})])
def test_masker_contract(name, kw):
    batch = _batch(b=6)
    testing.check_masker(name, (12, 40), batch_size=6, valid=batch["valid"], **kw)
    testing.check_masker(name, (2, 30), batch_size=4, **kw)
    testing.check_masker(name, (1, 30), batch_size=4, **kw)  # single lead


def test_time_blocks_span_all_valid_leads():
    from polyjepa import create_masker

    batch = _batch(b=4)
    m = create_masker("ecg.time_blocks", num_blocks=1)((12, 40), 4, torch.Generator()
                                                       .manual_seed(1), batch["valid"])
    for b in range(4):
        t = m.targets[0][b]
        leads, times = t // 40, t % 40
        valid_leads = batch["valid"][b].view(12, 40).all(dim=1).sum()
        assert len(torch.unique(leads)) == valid_leads  # every valid lead, same columns
        cols = torch.unique(times)
        assert int(cols.max() - cols.min()) + 1 == len(cols)  # contiguous in time
    # different samples get different block positions
    starts = {int((m.targets[0][b] % 40).min()) for b in range(4)}
    assert len(starts) > 1


def test_lead_masker_hides_whole_valid_leads():
    from polyjepa import create_masker

    batch = _batch(b=4)
    m = create_masker("ecg.leads", lead_ratio=0.25)((12, 40), 4,
                                                    torch.Generator().manual_seed(3),
                                                    batch["valid"])
    for b in range(4):
        t = m.targets[0][b]
        leads = torch.unique(t // 40)
        assert len(t) == len(leads) * 40  # whole leads
        assert bool(batch["valid"][b].view(12, 40)[leads].all())
        ctx_leads = torch.unique(m.context[b] // 40)
        assert not set(leads.tolist()) & set(ctx_leads.tolist())


def test_dataset_contract(synth):
    testing.check_dataset("ecg.wfdb", synth.hea("r01"), min_items=10, window=5)
    testing.check_dataset("ecg.wfdb", synth.mitdb, mode="beats", window=2, patch_size=20,
                          leads="record")


def test_factories_take_no_catch_all_and_reject_misspelt_keys():
    import inspect

    from polyjepa import ConfigError, resolve_config
    from polyjepa_ecg.datasets import ptbxl_dataset, wfdb_dataset
    from polyjepa_ecg.encoders import ECGEncoder

    for factory in (wfdb_dataset, ptbxl_dataset, ECGEncoder):
        kinds = {p.kind for p in inspect.signature(factory).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, factory
    for key in ("dataset.windw", "encoder.depht"):
        with pytest.raises(ConfigError, match=key.split(".")[1]):
            resolve_config("ecg", overrides={key: 3})
    for recipe in ("ecg", "ecg.ptbxl", "ecg.beats", "ecg.rhythm"):
        resolve_config(recipe, data="x")  # every recipe key is an argument


def test_ptbxl_dataset_contract(ptbxl_dir):
    ds = testing.check_dataset("ecg.ptbxl", ptbxl_dir)
    assert ds[0]["y"].dtype == torch.float32


def test_multilabel_auc_uses_folds_and_separates():
    from polyjepa import EvalContext, create_evaluator

    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < 0.4).astype(np.float32)
    x = np.concatenate([y * 2.0 + rng.normal(size=y.shape), rng.normal(size=(300, 5))], 1)

    class DS:
        folds = np.tile(np.arange(1, 11), 30)

    ev = create_evaluator("ecg.multilabel_auc")
    good = ev(EvalContext(x, y, dataset=DS()))
    assert good["multilabel_macro_auc"] > 0.85 and good["multilabel_labels_scored"] == 3
    noise = ev(EvalContext(rng.normal(size=x.shape), y, dataset=DS()))
    assert 0.3 < noise["multilabel_macro_auc"] < 0.7
    testing.check_evaluator("ecg.multilabel_auc", x, y)


def test_beat_evaluator_time_split():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(np.int64)
    x = np.stack([y * 3.0 + rng.normal(size=400), rng.normal(size=400)], 1)
    out = testing.check_evaluator("ecg.beats", x, y)
    assert out["beat_auc"] > 0.95 and out["beat_f1_macro"] > 0.8
    testing.check_evaluator("ecg.beats", x, y, split="random")
    rhythm = testing.check_evaluator("ecg.rhythm", x, y)
    assert rhythm == {k.replace("beat_", "rhythm_"): v for k, v in out.items()}
    _, te = time_split(np.repeat([0, 1], 200), np.tile(np.arange(200.0), 2), 0.25)
    assert len(te) == 100 and set(te % 200) == set(range(150, 200))


def test_recipes():
    for name in ("ecg", "ecg.ptbxl", "ecg.beats", "ecg.rhythm"):
        testing.check_recipe(name)
    assert testing.check_recipe("ecg")["demo"]["kind"] == "real"


def test_untrained_tokens_carry_the_beat_not_only_its_position(tmp_path):
    """Beat windows of simulated patients, read as the beats recipe reads them: a
    20-sample patch's content must not drown under the sin-cos time positions."""
    import polyjepa as pj
    from polyjepa_ecg.simulate import write_pvc_records

    write_pvc_records(tmp_path, patients=1, seconds=30.0, seed=0)
    ds = pj.create_dataset("ecg.wfdb", str(tmp_path), mode="beats", fs=250.0, window=2.4,
                           patch_size=20, leads="record")
    batch = pj.collate([ds[i] for i in range(min(len(ds), 24))])
    ratio = testing.check_token_scale("ecg.vit", batch, num_leads=batch["x"].shape[1],
                                      patch_size=20, embed_dim=64, depth=1, num_heads=4)
    assert ratio > 0.5
