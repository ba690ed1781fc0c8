"""The options of the strategies whose modules import torch, Optuna or NumPy, declared here so
that ``nasplat list options`` reads them without importing those; each class declares the same
tuple as its ``OPTIONS``. Defaults are the constructors' (a test compares them)."""

from __future__ import annotations

from nasplat.options import Option, merged

SUPERNET = (
    Option("epochs", "int", 10, "supernet training epochs"),
    Option("batch_size", "int", 64, "minibatch size of the weight and architecture steps"),
    Option("max_batches", "int", None, "cap on weight steps per epoch (default: none)"),
    Option("net", "dict", None, "supernet network options (default: the space's smaller ones)"),
    Option("retrain_epochs", "int", None, "epochs to retrain the result (default: --epochs)"),
    Option(
        "search_data_fraction",
        "float",
        None,
        "training data the supernet sees (default: --data-fraction)",
    ),
    Option("search_resolution", "int", None, "supernet input size (default: --resolution)"),
)
"""What every supernet strategy (DARTS, ENAS) takes."""

LOCAL_SEARCH = (
    Option("n_init", "int", None, "random genotypes first (default 10; budget < 50: budget / 5)"),
    Option("first_improvement", "bool", True, "move on the first better neighbour"),
    Option("order", "str", "predicted", "neighbour order: predicted (ridge model) or random"),
    Option("ridge", "float", 1.0, "ridge strength of the neighbour predictor"),
    Option("restart_pool", "int", 0, "restart from the best-predicted of N random (0: one)"),
)

BAYESOPT = (
    Option("n_init", "int", None, "random genotypes first (default 10; budget < 100: / 10, >= 2)"),
    Option("parents", "int", 10, "best results whose one-decision neighbours are candidates"),
    Option("neighbours", "int", 50, "most neighbours of a parent (a random subset beyond)"),
    Option("n_random", "int", 100, "random candidates besides the neighbours"),
    Option("acquisition", "str", "ei", "ei (expected improvement) or ucb (mean + beta * sd)"),
    Option("beta", "float", 1.0, "the sd's weight in ucb"),
    Option("max_points", "int", 300, "most results the Gaussian process is fitted to"),
)

RL = (
    Option("lr", "float", 0.01, "controller Adam learning rate"),
    Option("batch_size", "int", None, "samples per update (default 4; budget < 40: budget / 10)"),
    Option("baseline_decay", "float", 0.9, "decay of the moving-average reward baseline"),
    Option("entropy_weight", "float", 1e-4, "weight of the entropy bonus"),
    Option("normalize", "bool", True, "divide advantages by a running reward deviation"),
    Option("hidden", "int", 32, "LSTM size"),
    Option("temperature", "float", None, "logit temperature (default: none)"),
    Option("tanh_constant", "float", 2.5, "logits squashed to c * tanh(logits)"),
)

TPE = (
    Option("n_startup_trials", "int", None, "random trials first (default 10; budget < 50: /5)"),
    Option("multivariate", "bool", True, "model the decisions jointly"),
    Option("constant_liar", "bool", True, "outstanding asks count as bad (parallel workers)"),
)

NSGA2 = (
    Option("population_size", "int", None, "children per generation (50; budget / 10, >= 4)"),
    Option("mutation_prob", "float", None, "per decision (default: one decision per child)"),
    Option("crossover_prob", "float", 0.9, "probability of uniform crossover"),
    Option("swapping_prob", "float", 0.5, "per decision, in a crossover"),
)

DARTS = merged(
    (
        Option("order", "int", 1, "1: first order; 2: the unrolled second-order step"),
        Option("lr", "float", 0.025, "weight learning rate, cosine-annealed to lr_min"),
        Option("lr_min", "float", 0.001, "final weight learning rate"),
        Option("momentum", "float", 0.9, "SGD momentum"),
        Option("weight_decay", "float", 3e-4, "weight decay"),
        Option("grad_clip", "float", 5.0, "gradient norm clip (null: none)"),
        Option("arch_lr", "float", 3e-3, "architecture Adam learning rate"),
        Option("arch_betas", "list[float]", (0.5, 0.999), "architecture Adam betas"),
        Option("arch_weight_decay", "float", 1e-3, "architecture weight decay"),
        Option("epsilon", "float", 0.01, "finite-difference step of the second-order step"),
        Option("partial_channels", "int", 1, "PC-DARTS: ops see 1/K of the channels (1: off)"),
        Option(
            "edge_normalization",
            "bool",
            None,
            "PC-DARTS edge weights per node (default: on when partial_channels > 1)",
        ),
        Option("regularizer", "str", "none", "none, or beta-decay (beta-DARTS)"),
        Option("regularizer_weight", "float", 25.0, "final beta-decay weight (grows from 0)"),
        Option("channels_last", "bool", False, "supernet weights in channels-last memory order"),
    ),
    SUPERNET,
)

ENAS = merged(
    (
        Option("lr", "float", 0.05, "weight learning rate (Nesterov), cosine-annealed to lr_min"),
        Option("lr_min", "float", 0.001, "final weight learning rate"),
        Option("momentum", "float", 0.9, "SGD momentum"),
        Option("weight_decay", "float", 1e-4, "weight decay"),
        Option("grad_clip", "float", 5.0, "gradient norm clip (null: none)"),
        Option("controller_lr", "float", 3.5e-3, "controller Adam learning rate"),
        Option("controller_steps", "int", 20, "controller steps per epoch"),
        Option("entropy_weight", "float", 1e-4, "weight of the entropy bonus"),
        Option("baseline_decay", "float", 0.99, "decay of the reward baseline"),
        Option("hidden", "int", 64, "controller LSTM size"),
        Option("temperature", "float", 5.0, "logit temperature"),
        Option("tanh_constant", "float", 2.5, "logits squashed to c * tanh(logits)"),
        Option("final_samples", "int", 10, "children sampled to pick the final genotype"),
        Option("bn_recalibration", "int", 10, "BatchNorm re-estimation batches per child"),
    ),
    SUPERNET,
)

OPTIONS = {
    "local-search": LOCAL_SEARCH,
    "bayesopt": BAYESOPT,
    "rl": RL,
    "tpe": TPE,
    "nsga2": NSGA2,
    "darts": DARTS,
    "enas": ENAS,
}
"""Declared strategy name -> its options."""
