"""Tests of nasplat.ml.training: the plain PyTorch training loop."""

from __future__ import annotations

import dataclasses
import random
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nasplat.errors import ConfigError, TrialPruned
from nasplat.evaluator import Reporter
from nasplat.ml.data import DataSplits, load_dataset
from nasplat.ml.training import (
    TrainConfig,
    augment_batch,
    evaluate_model,
    resolve_device,
    seed_everything,
    train_model,
)


def small_cnn(in_channels: int = 1, classes: int = 10, size: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * (size // 2) ** 2, classes),
    )


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny() -> DataSplits:
    """Small synthetic data for the tests that only need some training to happen."""
    return load_dataset("synthetic", n=400, channels=1, size=8, classes=4, noise=1.0)


def cpu_config(**changes: object) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "device": "cpu", **changes})


class Counting(nn.Module):
    """Wraps a model and counts the training-mode forward passes."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train_batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.train_batches += int(self.training)
        return self.inner(x)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# --------------------------------------------------------------------------- training


def test_small_cnn_learns_digits(digits: DataSplits) -> None:
    model = small_cnn()
    result = train_model(model, digits, cpu_config(epochs=3))
    assert result.val_acc > 0.7 and result.test_acc is not None and result.test_acc > 0.7
    assert result.epochs_run == 3 and len(result.history) == 3
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "val_acc",
        "val_loss",
        "seconds",
    }
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.val_acc == result.history[-1]["val_acc"]
    assert (result.val_acc, result.val_loss) == pytest.approx(evaluate_model(model, digits.val))
    assert 0 <= result.train_acc <= 1 and result.seconds > 0
    assert not model.training


def test_training_is_deterministic_for_a_seed(tiny: DataSplits) -> None:
    runs = []
    for _ in range(2):
        model = small_cnn(classes=4)
        runs.append((model, train_model(model, tiny, cpu_config(seed=5))))
    (m1, r1), (m2, r2) = runs
    assert_same_weights(m1, m2)
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in r1.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in r2.history]
    other = small_cnn(classes=4)
    train_model(other, tiny, cpu_config(seed=6))
    w1, w_other = weights(m1), weights(other)
    assert not all(torch.equal(w1[k], w_other[k]) for k in w1)


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "adam", "lr": 1e-2},
        {"optimizer": "adamw", "lr": 1e-2, "schedule": "constant"},
        {"nesterov": True, "grad_clip": None, "label_smoothing": 0.1},
    ],
)
def test_optimizer_and_schedule_variants_train(
    tiny: DataSplits, changes: dict[str, object]
) -> None:
    result = train_model(small_cnn(classes=4), tiny, cpu_config(**changes))
    assert result.val_acc > 0.5  # chance is 0.25


def test_nan_loss_raises_and_leaves_model_in_eval_mode(tiny: DataSplits) -> None:
    class NaNOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn(classes=4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) * float("nan")

    model = NaNOut()
    with pytest.raises(FloatingPointError, match="non-finite loss at epoch 1"):
        train_model(model, tiny, cpu_config())
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_reporter_receives_each_epochs_val_acc(tiny: DataSplits) -> None:
    reporter = Reporter()
    result = train_model(small_cnn(classes=4), tiny, cpu_config(epochs=3), reporter=reporter)
    assert reporter.history == [(r["epoch"], r["val_acc"]) for r in result.history]
    assert [step for step, _ in reporter.history] == [1, 2, 3]


def test_pruning_reporter_stops_training(tiny: DataSplits) -> None:
    model = Counting(small_cnn(classes=4))
    reporter = Reporter(should_prune=lambda step, value: step >= 2)
    with pytest.raises(TrialPruned):
        # no BatchNorm re-estimation: its forward passes also run in training mode
        config = cpu_config(epochs=5, batch_size=40, bn_recalibration=0)
        train_model(model, tiny, config, reporter=reporter)
    batches_per_epoch = len(tiny.train) // 40
    assert model.train_batches == 2 * batches_per_epoch
    assert len(reporter.history) == 2
    assert not model.training


def _anti_splits(splits: DataSplits) -> DataSplits:
    """Train labels shifted by one class: learning makes validation accuracy worse."""
    x, y = splits.train.tensors
    shifted = TensorDataset(x, (y + 1) % splits.num_classes)
    return dataclasses.replace(splits, train=shifted)


def test_restore_best_keeps_best_epoch_weights(tiny: DataSplits) -> None:
    splits = _anti_splits(tiny)
    config = cpu_config(epochs=4, schedule="constant", lr=0.02)
    last = train_model(small_cnn(classes=4), splits, config)
    assert last.val_acc == last.history[-1]["val_acc"]

    model = small_cnn(classes=4)
    result = train_model(model, splits, config, restore_best=True)
    first, final = result.history[0], result.history[-1]
    assert result.best_epoch == 1 and result.epochs_run == 4
    assert (first["val_acc"], first["val_loss"]) != (final["val_acc"], final["val_loss"])
    assert (result.val_acc, result.val_loss) == (first["val_acc"], first["val_loss"])
    assert evaluate_model(model, splits.val) == pytest.approx((first["val_acc"], first["val_loss"]))
    one_epoch = small_cnn(classes=4)  # a constant schedule makes epoch 1 the same in both runs
    train_model(one_epoch, splits, dataclasses.replace(config, epochs=1))
    assert_same_weights(model, one_epoch)


def test_time_limit_cuts_the_epochs(tiny: DataSplits) -> None:
    """1,000 epochs of about 10 ms each would take seconds; the limit stops them early, after
    at least one."""
    config = cpu_config(epochs=1000, time_limit=0.3)
    plans: list[int] = []
    reporter = Reporter(on_replan=plans.append)
    result = train_model(small_cnn(classes=4), tiny, config, reporter=reporter)
    assert 1 <= result.epochs_run < 1000 and len(result.history) == result.epochs_run
    assert result.test_acc is not None
    # the reporter hears each new plan (e.g. a progress bar's total), the last being the
    # epochs run
    assert plans and plans[-1] == result.epochs_run and max(plans) < 1000


def test_a_replan_stretches_or_squeezes_the_rest_of_the_schedule_without_a_jump() -> None:
    from nasplat.ml.training import _constant, _cosine, _StepSchedule

    schedule = _StepSchedule(_cosine, 100)
    assert schedule(0) == pytest.approx(1.0) and schedule(50) == pytest.approx(0.5)
    schedule.replan(50, 200)  # longer: the second half of the cosine over 150 steps
    assert schedule(50) == pytest.approx(0.5) and schedule(200) == pytest.approx(0.0)
    assert schedule(125) == pytest.approx(_cosine(0.75))
    schedule.replan(125, 135)  # shorter again: the last quarter over 10 steps
    assert schedule(125) == pytest.approx(_cosine(0.75)) and schedule(130) == pytest.approx(
        _cosine(0.875)
    )
    assert schedule(135) == pytest.approx(0.0) and schedule(500) == pytest.approx(0.0)
    flat = _StepSchedule(_constant, 10)
    flat.replan(5, 30)
    assert flat(0) == flat(29) == 1.0


def test_a_time_limit_plans_the_epochs_that_fit_at_the_pace_after_the_first() -> None:
    from nasplat.ml.training import _cosine, _plan_to_time_limit, _StepSchedule

    config = TrainConfig(epochs=10, batch_size=10, time_limit=100.0)
    run = SimpleNamespace(config=config, y=torch.zeros(50), schedule=_StepSchedule(_cosine, 50))
    first = [{"seconds": 30.0}]
    started = time.perf_counter() - 30.0  # 70 s left at the first epoch's 30 s: two more
    assert _plan_to_time_limit(run, first, 10, started) == 3  # type: ignore[arg-type]
    assert run.schedule.total == 3 * 5 and run.schedule.start == 5  # five batches per epoch
    assert run.schedule(5) == pytest.approx(_cosine(0.1))  # goes on from where it was
    assert run.schedule(15) == pytest.approx(0.0)
    # later epochs of 10 s: the plan grows again, paced without the slow first epoch
    history = [*first, {"seconds": 10.0}, {"seconds": 10.0}]
    run.schedule = _StepSchedule(_cosine, 20)  # a plan of 4 epochs, 3 run
    started = time.perf_counter() - 45.0  # 55 s left: five more at 10 s
    assert _plan_to_time_limit(run, history, 4, started) == 8  # type: ignore[arg-type]
    assert run.schedule.total == 8 * 5 and run.schedule.start == 15
    assert run.schedule(15) == pytest.approx(_cosine(0.75)) and run.schedule(40) == 0.0
    # never beyond the configured epochs; the plan unchanged leaves the schedule as it is
    assert _plan_to_time_limit(run, history, 8, time.perf_counter()) == 10  # type: ignore[arg-type]
    assert run.schedule.total == 10 * 5 and run.schedule.start == 15
    assert _plan_to_time_limit(run, history, 10, time.perf_counter()) == 10  # type: ignore[arg-type]
    assert run.schedule.total == 10 * 5 and run.schedule.start == 15
    late = time.perf_counter() - 200.0  # past the limit: no further epoch
    assert _plan_to_time_limit(run, history, 10, late) == 3  # type: ignore[arg-type]
    # a plan that has run out is not extended: its learning rate has reached zero
    assert _plan_to_time_limit(run, history, 3, time.perf_counter()) == 3  # type: ignore[arg-type]


def test_zero_epochs_only_evaluates(tiny: DataSplits) -> None:
    model = small_cnn(classes=4)
    before = weights(model)
    result = train_model(model, tiny, cpu_config(epochs=0))
    assert result.epochs_run == 0 and result.history == [] and result.best_epoch == 0
    assert (result.val_acc, result.val_loss) == pytest.approx(evaluate_model(model, tiny.val))
    assert result.train_acc == pytest.approx(evaluate_model(model, tiny.train)[0])
    assert all(torch.equal(before[k], v) for k, v in weights(model).items())


def test_evaluate_test_false_skips_test(tiny: DataSplits) -> None:
    result = train_model(small_cnn(classes=4), tiny, cpu_config(epochs=1), evaluate_test=False)
    assert result.test_acc is None


def test_auxiliary_head_outputs_use_the_first_logits(tiny: DataSplits) -> None:
    class WithAux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = small_cnn(classes=4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.net(x)
            return logits, torch.zeros_like(logits)

    assert train_model(WithAux(), tiny, cpu_config()).val_acc > 0.5


def test_num_threads_is_restored(tiny: DataSplits) -> None:
    before = torch.get_num_threads()
    train_model(small_cnn(classes=4), tiny, cpu_config(epochs=1, num_threads=1))
    assert torch.get_num_threads() == before


def test_single_sample_last_batch_does_not_break_batchnorm(tiny: DataSplits) -> None:
    x, y = tiny.train.tensors
    odd = dataclasses.replace(tiny, train=TensorDataset(x[:65], y[:65]))
    assert train_model(small_cnn(classes=4), odd, cpu_config(epochs=1)).epochs_run == 1


# --------------------------------------------------------------------------- evaluation + config


def test_evaluate_model_matches_manual_computation_and_keeps_mode(tiny: DataSplits) -> None:
    model = small_cnn(classes=4).train()
    acc, loss = evaluate_model(model, tiny.val, batch_size=7)
    assert model.training
    model.eval()
    with torch.no_grad():
        x, y = tiny.val.tensors
        out = model(x)
    assert acc == pytest.approx((out.argmax(1) == y).double().mean().item())
    assert loss == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; known: adam, adamw, sgd"),
        ({"schedule": "step"}, "unknown schedule"),
        ({"epochs": -1}, "epochs must be >= 0"),
        ({"batch_size": 0, "lr": 0.0}, "batch_size must be >= 1; lr must be > 0"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"augment": "crop+rotate"}, "augment must be none or a '\\+' list of crop, flip"),
        ({"tta": "rotate"}, "tta must be one of none, flip, got 'rotate'"),
        ({"lr": "fast"}, "a value of the wrong type"),
        ({"time_limit": 0}, "time_limit must be > 0 or None"),
    ],
)
def test_train_config_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_the_config_names_what_the_loop_builds() -> None:
    from nasplat.ml import train_config, training

    assert sorted(train_config.OPTIMIZERS) == sorted(training._OPTIMIZERS)
    assert sorted(train_config.SCHEDULES) == sorted(training._SCHEDULES)


# --------------------------------------------------------------------------- devices + seeds


def test_resolve_device_auto_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device() == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_resolve_device_cuda_indices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="only 2 CUDA"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["banana", "cuda:x", "meta", ""])
def test_resolve_device_rejects_bad_strings(bad: str) -> None:
    with pytest.raises(ConfigError):
        resolve_device(bad)


def test_seed_everything_seeds_all_generators() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    seed_everything(11)
    first = draw()
    seed_everything(11)
    assert draw() == first
    seed_everything(12)
    assert draw() != first


def test_channels_last_trains_the_same_network_in_another_memory_order(digits: DataSplits) -> None:
    """``channels_last``: the conv weights are stored NHWC, and training computes the same
    function (equal up to float rounding) as the default order."""

    def two_convs() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 10),
        )

    plain, nhwc = two_convs(), two_convs()
    first = train_model(plain, digits, cpu_config())
    second = train_model(nhwc, digits, cpu_config(channels_last=True))
    conv = nhwc[2].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain[2].weight.is_contiguous()
    assert torch.allclose(plain[2].weight, conv, atol=1e-3)
    assert first.val_acc == pytest.approx(second.val_acc, abs=0.01)


def test_channels_last_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="channels_last"):
        TrainConfig(channels_last="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- augmentation


def test_training_with_flip_tta_reports_the_tta_accuracies(digits: DataSplits) -> None:
    model = small_cnn()
    result = train_model(model, digits, cpu_config(epochs=1, tta="flip"))
    val = evaluate_model(model, digits.val, tta="flip")
    assert (result.val_acc, result.val_loss) == pytest.approx(val)
    assert result.history[-1]["val_acc"] == pytest.approx(val[0])  # each epoch's too
    assert result.test_acc == pytest.approx(evaluate_model(model, digits.test, tta="flip")[0])


def test_flip_tta_classifies_by_the_mean_of_image_and_mirror() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3))  # not mirror-symmetric
    x, y = torch.randn(40, 2, 4, 4), torch.randint(0, 3, (40,))
    data = TensorDataset(x, y)
    with torch.no_grad():
        mean = (model(x).softmax(1) + model(x.flip(3)).softmax(1)) / 2
    expected_acc = float((mean.argmax(1) == y).float().mean())
    expected_loss = float(nn.functional.nll_loss(mean.log(), y))
    acc, loss = evaluate_model(model, data, batch_size=16, tta="flip")
    assert acc == pytest.approx(expected_acc) and loss == pytest.approx(expected_loss, rel=1e-5)
    assert evaluate_model(model, data, tta="none") != (acc, loss)  # the mirror changed answers


def test_augment_batch_shifts_and_mirrors_each_image() -> None:
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16) + 1
    many = x.repeat(32, 1, 1, 1)
    generator = torch.Generator().manual_seed(0)
    flipped = augment_batch(many, "flip", generator)
    mirrored = [bool(torch.equal(f, o.flip(2))) for f, o in zip(flipped, many, strict=True)]
    kept = [bool(torch.equal(f, o)) for f, o in zip(flipped, many, strict=True)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True))  # each one or the other
    assert 10 < sum(mirrored) < 54  # about half of 64
    cropped = augment_batch(many, "crop", generator)
    assert cropped.shape == many.shape
    shifts = set()
    for out, image in zip(cropped, many, strict=True):
        # a shift by (dy, dx) within 16 // 8 = 2 pixels, zeros where the image left the frame
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out, _shifted(image, dy, dx))
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 10  # different shifts for different images
    assert augment_batch(many, "none", generator) is many
    flat = torch.ones(4, 10)
    assert augment_batch(flat, "crop+flip", generator) is flat  # not images: unchanged


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = image[
        :, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def test_augmented_training_sees_changed_images_in_the_same_order(tiny: DataSplits) -> None:
    seen: dict[str, list[torch.Tensor]] = {"none": [], "flip": []}

    class Recording(nn.Module):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key, self.inner = key, small_cnn(classes=4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:
                seen[self.key].append(x.clone())
            return self.inner(x)

    for key in seen:
        train_model(Recording(key), tiny, cpu_config(epochs=1, augment=key, bn_recalibration=0))
    plain, changed = seen["none"], seen["flip"]
    assert len(plain) == len(changed) > 3
    pairs = [
        (a, b) for pa, pb in zip(plain, changed, strict=True) for a, b in zip(pa, pb, strict=True)
    ]
    # each image is the one the plain run saw at that place, as it was or mirrored
    assert all(torch.equal(b, a) or torch.equal(b, a.flip(2)) for a, b in pairs)
    mirrored = sum(not torch.equal(b, a) for a, b in pairs)
    assert 0.3 < mirrored / len(pairs) < 0.7
