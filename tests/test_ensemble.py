"""Ensembles (issue 16): stacked models, each member the run its seed gives alone, independent members,
the sweep's grouping, and the throughput benchmark's rows."""
from __future__ import annotations

import math

import numpy as np
import pytest

from qgan_widgets.models import Critic, build_generator, stack_models
from qgan_widgets.study import runner
from qgan_widgets.study.sweep import SweepConfig
from qgan_widgets.training import EnsembleTrainer, TrainConfig, WGANGPTrainer, run_ensemble, run_training

Q4 = {"kind": "quantum", "num_qubits": 4, "num_layers": 2}
C8 = {"kind": "classical", "noise_dim": 4, "latent_dim": 4, "hidden": [8]}


def real_latents(n=512, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.standard_normal((n, d)) * 0.6 + np.array([0.3, -0.2, 0.1, 0.0][:d])).astype(np.float32)


# ------------------------------------------------------------------------------- stacked models


@pytest.mark.parametrize("gen", [Q4, C8, {**Q4, "backend": "tfq"}], ids=["quantum", "classical", "quantum-tfq"])
def test_a_stacked_model_computes_each_members_model(gen):
    gens = [build_generator(**gen, seed=s) for s in range(3)]
    critics = [Critic(4, 16, seed=s) for s in range(3)]
    noise = np.random.default_rng(1).standard_normal((3, 40, 4)).astype(np.float32)
    G, D = stack_models(gens), stack_models(critics)
    out = G(noise).numpy()
    for s in range(3):
        np.testing.assert_allclose(out[s], gens[s](noise[s]).numpy(), atol=2e-6)
        np.testing.assert_allclose(D(out).numpy()[s], critics[s](out[s]).numpy(), atol=2e-5)
    assert G.count_parameters() == gens[0].count_parameters() and D.count_parameters() == critics[0].count_parameters()
    # trained weights go back into a plain model
    G.weights[0].assign_add(np.ones(G.weights[0].shape, np.float32))
    G.copy_member_to(1, gens[1])
    np.testing.assert_array_equal(gens[1].trainable_variables[0].numpy(), G.member_weights(1)[0])


def test_only_models_of_one_shape_stack():
    with pytest.raises(ValueError, match="critic 1 has another shape than critic 0"):
        stack_models([Critic(4, 16, seed=0), Critic(4, 32, seed=1)])
    with pytest.raises(ValueError, match="generator 1 has another shape"):
        stack_models([build_generator(**Q4, seed=0), build_generator(kind="quantum", num_qubits=4, num_layers=3)])
    with pytest.raises(ValueError, match="of one kind"):
        stack_models([Critic(4, 16), build_generator(**C8)])
    with pytest.raises(ValueError, match="the seeds of an ensemble must differ"):
        EnsembleTrainer([build_generator(**C8)] * 2, [Critic(4, 8)] * 2, real_latents(), TrainConfig(steps=1), [3, 3])


# ------------------------------------------------------------------------------- member == solo


def _solo(gen, seed, steps, nudge=False):
    g, c = build_generator(**gen, seed=seed), Critic(4, 16, seed=seed + 1)
    if nudge:  # one float32 ulp on every critic weight: the size of a rounding difference
        for v in c.trainable_variables:
            v.assign(np.nextafter(v.numpy(), np.float32(np.inf)))
    cfg = TrainConfig(steps=steps, eval_every=steps // 3, eval_samples=300, checkpoint_every=0, seed=seed)
    trainer = WGANGPTrainer(g, c, real_latents(), cfg)
    return trainer.train(), [v.numpy() for v in (*g.trainable_variables, *c.trainable_variables)]


@pytest.mark.parametrize("gen", [Q4, C8], ids=["quantum", "classical"])
def test_an_ensemble_member_is_its_solo_run(gen):
    """Member s of an ensemble = WGANGPTrainer alone with seed s, to float tolerance over 240 steps.

    Not bit for bit: a batched matrix product rounds some shapes differently from a plain one, and a GAN
    amplifies any rounding difference. The tolerance is measured, not guessed: the member may differ
    from its solo run by no more than a few times what one ulp on the solo run's weights makes."""
    steps, seeds = 240, [4, 7, 9]
    cfg = TrainConfig(steps=steps, eval_every=steps // 3, eval_samples=300, checkpoint_every=0)
    ens = EnsembleTrainer([build_generator(**gen, seed=s) for s in seeds], [Critic(4, 16, seed=s + 1) for s in seeds],
                          real_latents(), cfg, seeds)
    results = ens.train()
    s = 1
    solo, solo_w = _solo(gen, seeds[s], steps)
    _, nudged_w = _solo(gen, seeds[s], steps, nudge=True)
    member = results[s]
    assert member.status == "completed" and member.steps == steps and len(member.evals) == 3
    # the first steps agree to rounding
    for key in ("d_loss", "w_estimate", "gp"):
        a = np.array([r[key] for r in member.history[:3]])
        b = np.array([r[key] for r in solo.history[:3]])
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=key)
    g, c = ens.member_models(s)
    member_w = [v.numpy() for v in (*g.trainable_variables, *c.trainable_variables)]
    dist = max(float(np.max(np.abs(a - b))) for a, b in zip(member_w, solo_w))
    rounding = max(float(np.max(np.abs(a - b))) for a, b in zip(nudged_w, solo_w))
    assert dist <= max(5 * rounding, 1e-4), (dist, rounding)  # measured: about 1x; another member: ~100x
    assert member.final_fd_latent == pytest.approx(solo.final_fd_latent, rel=0.05, abs=1e-3)
    # and the other members are other runs
    other = [v.numpy() for v in ens.member_models(0)[1].trainable_variables]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(other, member_w[len(g.trainable_variables):])) > 0.01


def test_a_diverging_member_does_not_touch_the_others():
    seeds = [0, 1]
    cfg = TrainConfig(steps=30, eval_every=10, eval_samples=200, checkpoint_every=0)

    def ensemble(poison: bool):
        critics = [Critic(4, 8, seed=s + 1) for s in seeds]
        if poison:
            critics[1].trainable_variables[0].assign(np.full(critics[1].trainable_variables[0].shape, np.nan, np.float32))
        return EnsembleTrainer([build_generator(**C8, seed=s) for s in seeds], critics, real_latents(), cfg, seeds).train()

    clean, poisoned = ensemble(False), ensemble(True)
    assert poisoned[1].status == "diverged" and poisoned[1].steps == 1
    assert "became NaN or infinite at step 1" in poisoned[1].message and "smaller learning rate" in poisoned[1].message
    assert poisoned[0].status == "completed" and poisoned[0].steps == 30
    for key in ("d_loss", "g_loss", "gp"):
        np.testing.assert_array_equal([r[key] for r in poisoned[0].history], [r[key] for r in clean[0].history])


@pytest.mark.slow
def test_run_ensemble_gives_run_trainings_summaries_with_batched_evaluation():
    from qgan_widgets.pipeline import Workspace

    ws = Workspace.prepare(latent_dim=4, fast=True, n_train=600, n_test=200, vae_epochs=2, extractor_epochs=1,
                           verbose=False)
    cfg = TrainConfig(steps=20, eval_every=5, eval_samples=200, checkpoint_every=0)
    summaries = run_ensemble(C8, {"width": 8}, cfg, seeds=[0, 1, 2], workspace=ws, stability_options={"window": 3})
    solo = run_training(C8, {"width": 8}, {**cfg.__dict__, "seed": 1}, workspace=ws, stability_options={"window": 3})
    assert [s["seed"] for s in summaries] == [0, 1, 2]
    assert set(solo) <= set(summaries[1]) and summaries[1]["ensemble_size"] == 3
    for key in ("generator_params", "critic_params", "critic_width", "latent_dim", "steps", "status"):
        assert summaries[1][key] == solo[key], key
    assert summaries[1]["final_fd"] == pytest.approx(solo["final_fd"], rel=0.02)
    assert summaries[1]["fd_reconstruction_floor"] == solo["fd_reconstruction_floor"]
    assert all(s["eval_s"] > 0 and s["steps_s"] > 0 and s["first_step_s"] > 0 for s in summaries)
    assert summaries[0]["final_fd"] != summaries[2]["final_fd"]
    # The ensemble's scoring decodes and classifies each member as a solo evaluation does: for the
    # same latents, the same image FD to the bit (one pass over all members' tiles rounded differently).
    z = np.random.default_rng(3).uniform(-1, 1, (3, 200, 4)).astype(np.float32)
    together = ws._score_members(z, 200, 16, 0, "x")
    for s in range(3):
        alone = ws._score_members(z[s:s + 1], 200, 16, 0, "x")[0]
        assert together[s][0]["fd"] == alone[0]["fd"] and together[s][0]["fd_latent"] == alone[0]["fd_latent"]
        np.testing.assert_array_equal(together[s][1], alone[1])


# ------------------------------------------------------------------------------- the sweep


def test_the_sweep_groups_seeds_of_one_grid_point_and_keeps_trial_ids():
    cfg = SweepConfig.from_file("quick")
    specs = cfg.trials()
    groups = runner.ensembles(specs, 3)
    assert len(groups) == len(specs) // 3
    assert sorted(s["trial_id"] for g in groups for s in g) == sorted(s["trial_id"] for s in specs)
    for g in groups:
        assert len({runner.ensemble_key(s) for s in g}) == 1 and [s["seed"] for s in g] == [0, 1, 2]
    assert all(len(g) <= 2 for g in runner.ensembles(specs, 2)) and len(runner.ensembles(specs, 1)) == len(specs)
    ids = [s["trial_id"] for s in SweepConfig.from_dict({**cfg.to_dict(), "ensemble": 1}).trials()]
    assert ids == [s["trial_id"] for s in specs]  # the ensemble size is not part of a trial's identity
    with pytest.raises(ValueError, match="differ in more than their seed"):
        runner.run_trials([specs[0], specs[3]])


@pytest.mark.slow
def test_a_sweep_trains_ensembles_on_ray_and_records_one_row_per_trial(tmp_path):
    import pandas as pd

    config = SweepConfig.from_dict({
        "name": "ens", "workspace": {"latent_dim": 2, "fast": True, "n_train": 400, "n_test": 100, "vae_epochs": 1,
                                     "extractor_epochs": 1},
        "generators": {"quantum": {"qubits": [2], "layers": [1]}, "classical": {"hidden": [[4]]}},
        "critic": {"widths": [4]}, "seeds": [0, 1, 2], "ensemble": 2,
        "train": {"steps": 6, "batch_size": 16, "n_critic": 2, "eval_every": 2, "eval_samples": 100},
        "stability": {"window": 3}, "analysis": {"n_boot": 20}})
    out = tmp_path / "ens"
    df = runner.run_sweep(config, out, num_cpus=2, progress=False)
    assert len(df) == 6 and set(df["status"]) == {"done"}, df[["status", "error"]]
    assert sorted(df["ensemble_size"].fillna(1).astype(int)) == [1, 1, 2, 2, 2, 2]  # seeds 0+1 together, 2 alone
    assert df["final_fd"].map(math.isfinite).all() and (df["tf_threads"] == 1).all()
    assert set(df["trial_id"]) == {s["trial_id"] for s in config.trials()}
    again = runner.run_sweep(config, out, num_cpus=2, progress=False)  # nothing left to run
    assert list(again["finished_at"]) == list(pd.read_csv(out / "trials.csv")["finished_at"])


# ------------------------------------------------------------------------------- the benchmark


def test_the_throughput_bench_rows_have_the_promised_keys(monkeypatch):
    from qgan_widgets.apps import throughput

    def fake_run_trials(specs):
        return [{"first_step_s": 0.1, "steps_s": 0.2, "eval_s": 0.3, "final_fd": 1.0} for _ in specs]

    monkeypatch.setattr(runner, "run_trials", fake_run_trials)
    monkeypatch.setattr(runner, "limit_threads", lambda n=1: None)
    rows = throughput.run_throughput_bench(("q4", "classical"), (1, 3), solo_trials=2, steps=2, say=lambda *a: None)
    assert [(r["generator"], r["ensemble_size"]) for r in rows] == [
        ("q4", 0), ("q4", 0), ("q4", 1), ("q4", 3), ("classical", 0), ("classical", 0), ("classical", 1), ("classical", 3)]
    assert [r["images_at_every_evaluation"] for r in rows[:3]] == [True, False, False]
    for r in rows:
        assert {"generator_kind", "num_qubits", "ensemble_size", "trials_per_hour", "speedup"} <= set(r)
        assert r["trials_per_hour"] > 0 and math.isfinite(r["speedup"])
    assert rows[1]["num_qubits"] == 4 and rows[4]["num_qubits"] is None and rows[1]["speedup"] == 1.0
    assert rows[0]["speedup_vs_before"] == 1.0 and "speedup_vs_before" in rows[-1]
    solo_s = 3600.0 / rows[1]["trials_per_hour"]  # one by one's seconds per trial over steps + eval (0.2 + 0.3)
    assert rows[3]["speedup_without_startup"] == pytest.approx(solo_s / 0.5)
    assert rows[1]["speedup_without_startup"] == pytest.approx(solo_s / 0.5)
    assert "| q4" in throughput.format_table(rows)
    with pytest.raises(ValueError, match="--generators: unknown q5"):
        throughput.throughput_main(type("A", (), {"generators": "q5", "sizes": "1", "solo_trials": 1,
                                                  "critic_width": 8, "steps": None, "json": None})())


# ------------------------------------------------------------------------------- image scores where judged


def test_the_first_judged_step_is_that_of_the_stability_window():
    assert runner.first_judged_step(TrainConfig(steps=800, eval_every=40), 5) == 640
    assert runner.first_judged_step(TrainConfig(steps=810, eval_every=40), 3) == 760  # 760, 800, 810
    assert runner.first_judged_step(TrainConfig(steps=100, eval_every=40), 5) == 0  # fewer evaluations than the window
    assert runner.first_judged_step(TrainConfig(steps=800, eval_every=40)) == 640  # the judge's default window


@pytest.mark.slow
def test_skipping_early_image_scores_leaves_a_trials_record_unchanged(monkeypatch):
    monkeypatch.setattr(runner, "limit_threads", lambda n=1: None)  # not this test process's thread settings
    cfg = SweepConfig.from_dict({
        "name": "skip", "workspace": {"latent_dim": 4, "fast": True, "n_train": 400, "n_test": 100, "vae_epochs": 1,
                                      "extractor_epochs": 1},
        "generators": {"classical": {"hidden": [[4]]}}, "critic": {"widths": [4]}, "seeds": [0, 1],
        "train": {"steps": 24, "batch_size": 16, "n_critic": 2, "eval_every": 3, "eval_samples": 100},
        "stability": {"window": 3}})
    specs = cfg.trials()
    judged = runner.run_trials(specs[:1])[0]
    every = runner.run_trials([{**specs[0], "evaluation": {"images_from_step": 0}}])[0]
    for key in ("final_fd", "final_fd_latent", "rel_spread", "stable", "d_loss", "w_estimate"):
        assert judged[key] == every[key], key
    assert judged["eval_s"] < every["eval_s"]  # 3 image evaluations instead of 8
    ws = runner.workspace_for(specs[0]["workspace"])
    evaluate = ws.evaluator(images_from_step=18)
    gen = build_generator(**C8, seed=0)
    early, samples = evaluate(gen, 15)
    assert "fd" not in early and samples is None and math.isfinite(early["fd_latent"])
    late, samples = evaluate(gen, 18)
    assert math.isfinite(late["fd"]) and samples.shape == (16, 28, 28, 4) and late["fd_latent"] == early["fd_latent"]
    # ensembles: the same schedule
    pair = runner.run_trials(specs)
    assert pair[0]["final_fd"] == pytest.approx(judged["final_fd"], rel=0.05)
