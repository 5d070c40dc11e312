"""Training modes beyond one Input and one Target: GAN, VAE, triplet, and supervised graphs with several
Inputs (seq2seq). Tiny networks and few epochs; the template-sized runs are in docs/training/."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image

import engine
from engine import templates
from engine.compiler import build
from engine.training import Callback, DataError, Dataset, SetupError, Trainer, TrainingConfig
from engine.training import config as config_module
from engine.training.images import image_grid, png_bytes
from engine.training.modes import MODES, GANMode, SupervisedMode, TensorTuple, TripletMode, select_mode


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Collect(Callback):
    def __init__(self):
        self.samples, self.epochs = [], []

    def on_samples(self, trainer, event):
        self.samples.append(event)

    def on_epoch_end(self, trainer, event):
        self.epochs += event.epochs


def config(**over) -> TrainingConfig:
    base = {"data.dataset": "digits", "epochs": 2, "batch_size": 64, "sample_count": 16}
    base.update(over)
    return TrainingConfig().with_overrides(base)


# --------------------------------------------------------------------------- tiny graphs
def tiny_gan(objective: str = "bce") -> engine.Graph:
    """A GAN of two small MLPs over the 8x8 digits flattened, drawn like the DCGAN template: generator and
    discriminator composites, the discriminator applied to real samples through a twin sharing its weights."""
    g = engine.Graph("tiny GAN")
    gen = engine.Graph("generator")
    gen.composites = g.composites
    g.composites["generator"] = gen
    nodes = [gen.add_node("Input", "z", {"shape": [8]}), gen.add_node("Linear", "fc1", {"out_features": 32}),
             gen.add_node("ReLU", "relu"), gen.add_node("Linear", "fc2", {"out_features": 64}),
             gen.add_node("Tanh", "tanh"), gen.add_node("Output", "image")]
    for a, b in zip(nodes, nodes[1:]):
        gen.connect(a.id, "out", b.id, "in")
    disc = engine.Graph("discriminator")
    disc.composites = g.composites
    g.composites["discriminator"] = disc
    nodes = [disc.add_node("Input", "image", {"shape": [64]}), disc.add_node("Linear", "fc1", {"out_features": 32}),
             disc.add_node("LeakyReLU", "lrelu", {"negative_slope": 0.2}),
             disc.add_node("Linear", "fc2", {"out_features": 1}), disc.add_node("Output", "score")]
    for a, b in zip(nodes, nodes[1:]):
        disc.connect(a.id, "out", b.id, "in")
    z = g.add_node("Input", "z", {"shape": [8]})
    real = g.add_node("Input", "real", {"shape": [64]})
    G = g.add_node("Composite", "generator", {"definition": "generator"})
    D = g.add_node("Composite", "discriminator", {"definition": "discriminator"})
    D2 = g.add_node("Composite", "discriminator_real", {"definition": "discriminator"})
    g.set_shares(D2.id, D.id)
    fake, s_fake, s_real = g.add_node("Output", "fake"), g.add_node("Output", "score_fake"), g.add_node(
        "Output", "score_real")
    d_loss = g.add_node("GANLoss", "d_loss", {"side": "discriminator", "objective": objective})
    g_loss = g.add_node("GANLoss", "g_loss", {"side": "generator", "objective": objective})
    for src, sp, dst, dp in [(z, "out", G, "z"), (G, "image", fake, "in"), (G, "image", D, "image"),
                             (real, "out", D2, "image"), (D, "score", s_fake, "in"), (D2, "score", s_real, "in"),
                             (s_fake, "out", d_loss, "fake"), (s_real, "out", d_loss, "real"),
                             (s_fake, "out", g_loss, "fake")]:
        g.connect(src.id, sp, dst.id, dp)
    return g


def tiny_triplet() -> engine.Graph:
    g = engine.Graph("tiny triplet")
    emb = engine.Graph("embedding")
    emb.composites = g.composites
    g.composites["embedding"] = emb
    nodes = [emb.add_node("Input", "image", {"shape": [64]}), emb.add_node("Linear", "fc1", {"out_features": 32}),
             emb.add_node("ReLU", "relu"), emb.add_node("Linear", "fc2", {"out_features": 8}),
             emb.add_node("Output", "embedding")]
    for a, b in zip(nodes, nodes[1:]):
        emb.connect(a.id, "out", b.id, "in")
    loss = g.add_node("TripletMarginLoss", "triplet_loss")
    owner = None
    for role in ("anchor", "positive", "negative"):
        x = g.add_node("Input", role, {"shape": [64]})
        net = g.add_node("Composite", "embedding" if owner is None else f"embedding_{role}",
                         {"definition": "embedding"})
        if owner is None:
            owner = net
        else:
            g.set_shares(net.id, owner.id)
        out = g.add_node("Output", f"{role}_embedding")
        g.connect(x.id, "out", net.id, "image")
        g.connect(net.id, "embedding", out.id, "in")
        g.connect(out.id, "out", loss.id, role)
    return g


# --------------------------------------------------------------------------- choosing a mode
def test_auto_picks_the_mode_from_the_loss_nodes_of_each_template():
    expected = {"dcgan": "gan", "vae": "vae", "siamese_triplet": "triplet", "seq2seq_attention": "supervised",
                "lstm_classifier": "supervised", "lenet5": "supervised"}
    for name, mode in expected.items():
        assert select_mode(build(templates.load_template(name))).name == mode, name
    assert set(config_module.MODES) == {"auto", *MODES}  # every mode can be named in the settings


def test_gan_networks_are_found_from_the_wiring():
    mode = select_mode(build(templates.load_template("dcgan")))
    assert isinstance(mode, GANMode)
    assert mode.d_attrs == ["discriminator"] and mode.g_attrs == ["generator"]
    assert [mode.compiled.inference.graph.nodes[n].label for n in mode.noise_ids] == ["z"]
    assert mode.out_range == (-1.0, 1.0)  # the generator ends in a Tanh (inside its composite)
    assert set(mode.d_terms) == {"d_loss"} and set(mode.g_terms) == {"g_loss"}


def test_graphs_a_mode_cannot_train_are_refused_with_the_reason():
    g = tiny_gan()
    g.remove_node(next(n.id for n in g.nodes.values() if n.label == "g_loss"))
    with pytest.raises(SetupError, match="in gan mode: a GAN needs a GANLoss with side 'generator'"):
        select_mode(build(g))
    vae = templates.load_template("vae")
    target = next(n for n in vae.nodes.values() if n.type == "Target")
    vae.set_param(target.id, "shape", [784])
    vae.add_node("Reshape", "flat_recon", {"shape": [784]})  # keeps the graph valid: recon reshaped below
    recon = next(n for n in vae.nodes.values() if n.label == "reconstruction")
    flat = next(n for n in vae.nodes.values() if n.label == "flat_recon")
    dec = next(e for e in vae.edges if e.dst == recon.id)
    vae.disconnect(dec)
    vae.connect(dec.src, dec.src_port, flat.id, "in")
    vae.connect(flat.id, "out", recon.id, "in")
    assert engine.infer_shapes(vae).ok, engine.infer_shapes(vae).problems
    with pytest.raises(SetupError, match=r"in vae mode: Target 'target_image' is .*fed the input itself"):
        select_mode(build(vae))
    with pytest.raises(SetupError, match="in triplet mode: triplet training optimises one TripletMarginLoss"):
        select_mode(build(templates.load_template("lenet5")), "triplet")


# --------------------------------------------------------------------------- GAN
def test_gan_steps_equal_two_hand_written_optimizers():
    """Each step updates the discriminator on its terms with the generator frozen, then the generator on
    its own: the same weights as a hand-written loop with two Adam optimizers."""
    tr = Trainer(tiny_gan(), config(**{"optimizer.lr": 0.01, "optimizer.beta1": 0.5}))
    G = copy.deepcopy(tr.compiled.networks["generator"])
    D = copy.deepcopy(tr.compiled.networks["discriminator"])
    opt_g = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    real = tr.splits["train"].x[:32]
    for seed in range(3):
        torch.manual_seed(seed)
        loss, _ = tr.mode.train_step(tr, real, tr.splits["train"].y[:32])
        torch.manual_seed(seed)
        z = torch.randn(32, 8, device=real.device)  # (the trainer's device: CPU here, CUDA on a GPU)
        s_real, s_fake = D(real), D(G(z).detach())
        d_loss = bce(s_real, torch.ones_like(s_real)) + bce(s_fake, torch.zeros_like(s_fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        s_fake = D(G(z))
        g_loss = bce(s_fake, torch.ones_like(s_fake))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert float(loss) == pytest.approx(d_loss.item() + g_loss.item(), rel=1e-4)
    for mine, ref in [(tr.compiled.networks["generator"], G), (tr.compiled.networks["discriminator"], D)]:
        for (name, a), b in zip(mine.named_parameters(), ref.parameters()):
            assert torch.allclose(a, b, atol=1e-5), name
    assert all(p.requires_grad for p in tr.model.parameters())  # frozen only inside a step


def test_gan_run_emits_sample_grids_saves_pngs_and_resumes(tmp_path):
    rec = Collect()
    tr = Trainer(tiny_gan(), config(epochs=2, sample_every=10), callbacks=[rec], run_dir=tmp_path)
    result = tr.fit()
    assert result.status == "finished" and result.steps == 34
    assert "real images scaled from [0, 1] to [-1, 1]" in " ".join(tr.notes)
    steps = [s.step for s in rec.samples]
    assert steps == [10, 20, 30, 34] and {s.kind for s in rec.samples} == {"generated"}
    last = rec.samples[-1]
    assert last.predictions.shape == (16, 64)
    assert 0 <= float(last.predictions.min()) <= float(last.predictions.max()) <= 1
    assert last.grid.shape == (1, 4 * 10 + 2, 4 * 10 + 2)  # 16 8x8 images, 4 a row, 2 pixels apart
    with Image.open(last.path) as img:
        assert img.mode == "L" and min(img.size) >= 400
    assert (tmp_path / "samples" / "generated_latest.png").read_bytes() == (tmp_path / "samples" /
                                                                           "generated_000034.png").read_bytes()
    epoch = rec.epochs[-1]
    assert set(epoch.train_terms) == {"d_loss", "g_loss"} and set(epoch.dev_terms) == {"d_loss", "g_loss"}
    assert 0.0 <= epoch.dev_metrics["discriminator_accuracy"] <= 1.0
    assert epoch.dev_loss == pytest.approx(sum(epoch.dev_terms.values()), rel=1e-6)
    report = tr.report()
    assert report["mode"] == "gan" and set(report["test_terms"]) == {"d_loss", "g_loss"} and "doctor" not in report
    again = Trainer(tiny_gan(), config(epochs=3, sample_every=10, **{"early_stopping.enabled": True,
                                                                     "early_stopping.patience": 1}),
                    run_dir=tmp_path / "more")
    assert again.fit(resume_from=tmp_path / "final.pt").status == "finished" and again.step == 51
    assert "early stopping is off in gan mode" in " ".join(again.notes)


# --------------------------------------------------------------------------- VAE
def test_vae_reconstruction_loss_falls_and_samples_come_from_the_prior(tmp_path):
    rec = Collect()
    tr = Trainer(templates.load_template("vae"), config(epochs=8, batch_size=128, sample_count=16), callbacks=[rec],
                 run_dir=tmp_path)
    assert tr.fit().status == "finished"
    recon = [m.dev_terms["reconstruction_loss"] for m in tr.history]
    # falls every epoch, give or take 1% (a GPU's arithmetic order differs), and by 15% overall
    assert all(b < a * 1.01 for a, b in zip(recon, recon[1:])) and recon[-1] < recon[0] * 0.85, recon
    assert set(tr.history[-1].train_terms) == {"reconstruction_loss", "kl_loss"}
    # losses summed over the batch in the graph are reported per example: same number at any batch size
    xb = tr.splits["dev"].x[:50]
    tr.model.eval()
    with torch.no_grad():
        total, _ = tr.mode.eval_step(tr, xb, None)
        assert float(total) == pytest.approx(float(tr.loss_fn(*tr.model(xb), xb)) / 50, rel=1e-5)
    last = [s for s in rec.samples if s.epoch == 8]
    assert [s.kind for s in last] == ["generated", "reconstructions"]
    gen, recs = last
    assert recs.samples is gen.predictions  # the prior's samples travel with the reconstructions too
    assert gen.inputs.shape == (16, 20) and gen.predictions.shape == (16, 1, 28, 28)
    assert 0 <= float(gen.predictions.min()) and float(gen.predictions.max()) <= 1  # sigmoid of the logits
    assert recs.predictions.shape == recs.inputs.shape == (8, 1, 28, 28)
    assert recs.grid.shape == (1, 2 * 30 + 2, 8 * 30 + 2)  # a row of originals over their reconstructions
    assert sorted(p.name for p in (tmp_path / "samples").glob("*_latest.png")) == [
        "generated_latest.png", "reconstructions_latest.png"]


# --------------------------------------------------------------------------- triplet
def test_triplets_are_drawn_from_the_labels():
    labels = torch.tensor([3, 3, 3, 0, 0, 7, 7, 7, 7, 3])
    index = TripletMode._index(labels)
    anchors = labels.repeat(50)
    pos, neg = TripletMode._draw(index, anchors, torch.Generator().manual_seed(0))
    assert torch.equal(labels[pos], anchors)
    assert (labels[neg] != anchors).all()
    assert set(labels[neg].tolist()) == {0, 3, 7}  # every other class is drawn


def test_triplet_training_learns_an_embedding_with_nearest_neighbour_accuracy():
    rec = Collect()
    tr = Trainer(tiny_triplet(), config(epochs=4, **{"optimizer.lr": 0.003}), callbacks=[rec])
    assert tr.fit().status == "finished"
    first, last = tr.history[0], tr.history[-1]
    assert last.train_accuracy is not None and last.dev_accuracy > 0.85
    assert last.dev_metrics["nearest_neighbour_accuracy"] > 0.85
    assert last.dev_loss < first.dev_loss
    report = tr.report()
    assert report["mode"] == "triplet" and report["test_nearest_neighbour_accuracy"] > 0.85
    sample = rec.samples[-1]
    assert sample.kind == "nearest-neighbour" and sample.predictions.shape == (8,)
    with pytest.raises(DataError, match="draws anchor, positive and negative from class labels"):
        Trainer(tiny_triplet(), config(**{"data.dataset": "curve"}))


# --------------------------------------------------------------------------- several inputs
def test_inputs_take_the_data_sets_arrays_by_name_then_in_order():
    mode = select_mode(build(templates.load_template("seq2seq_attention")))
    x = np.zeros((12, 30), np.int64)
    y = np.ones((12, 10), np.int64)
    named = Dataset("named", x, y, "classification", kind="tokens", inputs={"decoder_input": y + 2})
    arrays, _, notes = mode.prepare_data(named)
    assert isinstance(arrays, tuple) and (arrays[1] == 3).all() and (arrays[0] == 0).all()
    assert "Input 'decoder_input' reads the data set's 'decoder_input'" in notes
    ordered = Dataset("ordered", x, y, "classification", kind="tokens", inputs={"shifted": y + 5})
    arrays, _, _ = mode.prepare_data(ordered)
    assert (arrays[1] == 6).all()
    with pytest.raises(DataError, match=r"reads 2 Inputs \(source, decoder_input\) but data set 'one' gives 1"):
        mode.prepare_data(Dataset("one", x, y, "classification", kind="tokens"))
    tt = TensorTuple([torch.arange(6), torch.arange(12).reshape(6, 2)])
    assert len(tt) == 6 and [t.tolist() for t in tt[1:3].tensors] == [[1, 2], [[2, 3], [4, 5]]]


def test_seq2seq_trains_on_dates_with_teacher_forcing():
    from engine.training import load_dataset

    dates = load_dataset("dates", {"samples": 50})
    start = dates.meta["start_token"]
    assert (dates.inputs["decoder_input"][:, 0] == start).all()
    assert (dates.inputs["decoder_input"][:, 1:] == dates.y[:, :-1]).all()
    tr = Trainer(templates.load_template("seq2seq_attention"),
                 config(**{"data.dataset": "dates", "data.options": {"samples": 1500}, "epochs": 3,
                           "optimizer.lr": 0.005}))
    assert isinstance(tr.mode, SupervisedMode) and isinstance(tr.splits["train"].x, TensorTuple)
    assert tr.fit().status == "finished"
    last = tr.history[-1]
    assert last.dev_accuracy > 0.6  # per character; chance is 1/11
    assert 0.0 <= last.dev_metrics["sequence_accuracy"] <= last.dev_accuracy


def test_lstm_classifier_learns_the_next_character():
    tr = Trainer(templates.load_template("lstm_classifier"),
                 config(**{"data.dataset": "shakespeare", "data.options": {"window": 32, "stride": 8}, "epochs": 3}))
    assert tr.fit().status == "finished"
    losses = [m.train_loss for m in tr.history]
    assert losses[-1] < losses[0] < np.log(58)  # below a uniform guess over 58 characters, and falling
    assert tr.history[-1].dev_accuracy > 0.2  # above the share of the commonest character (a space: 15%)


# --------------------------------------------------------------------------- images
def test_image_grid_and_png():
    images = torch.zeros(5, 1, 3, 3)
    images[2] = 1.0
    grid = image_grid(images, columns=3, padding=1, pad_value=0.5)
    assert grid.shape == (1, 2 * 4 + 1, 3 * 4 + 1)
    assert float(grid[0, 1:4, 9:12].min()) == 1.0 and float(grid[0, 0, 0]) == 0.5
    import io

    with Image.open(io.BytesIO(png_bytes(grid, min_size=26))) as img:
        assert img.size == (13 * 2, 9 * 2) and img.getpixel((18, 2)) == 255


def test_batch_statistics_leave_the_running_statistics_alone():
    from engine.training.modes import batch_statistics

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(32, 3) * 5 + 2
    with torch.no_grad(), batch_statistics(net):
        y = net(x)
    assert torch.allclose(y.mean(0), torch.zeros(4), atol=1e-4)  # normalised by this batch's statistics
    assert not net[1].training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_a_generative_runs_headline_names_the_split_it_comes_from():
    from engine.training.modes import split_headline

    dev = {"loss": 1.5, "terms": {"d_loss": 1.0, "g_loss": 0.5}, "metrics": {"discriminator_accuracy": 0.75}}
    assert split_headline({"dev": dev}) == {"dev_loss": 1.5, "dev_terms": dev["terms"],
                                            "dev_discriminator_accuracy": 0.75}
    assert set(split_headline({"dev": dev, "test": dict(dev, loss=2.0)})) == {
        "test_loss", "test_terms", "test_discriminator_accuracy"}
    assert split_headline({}) == {}


def test_standardize_is_ignored_in_the_generative_modes():
    """A GAN's real images are scaled to its generator's range, a VAE's are its own targets: standardizing
    them would break both (and the export of a GAN's two Inputs could not say which it applied to)."""
    from pathlib import Path

    g = engine.load_graph(Path(__file__).resolve().parent.parent / "templates" / "dcgan.dcnet")
    cfg = TrainingConfig.from_graph(g).with_overrides({"data.standardize": True, "epochs": 1})
    tr = Trainer(g, cfg)
    assert tr.input_norm == {} and "standardize applies to supervised training; ignored in gan mode" in tr.notes
