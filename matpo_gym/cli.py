"""``matpo-bench``: the one command-line entry point, with a subcommand per job."""

from __future__ import annotations

import os
import sys

import tyro

from matpo_gym.bench.ablate import AblateConfig, ablate
from matpo_gym.bench.leaderboard import LeaderboardBuildConfig, leaderboard_build
from matpo_gym.bench.reproduce import ReproduceConfig, reproduce
from matpo_gym.bench.run import RunConfig, run
from matpo_gym.bench.verify import LeaderboardVerifyConfig, leaderboard_verify
from matpo_gym.catalogue import CatalogueError
from matpo_gym.config import ConfigError
from matpo_gym.data.benchmarks import DatasetUnavailable
from matpo_gym.extras import install_hint
from matpo_gym.policies.base import PolicyFailure, PolicyUnavailable
from matpo_gym.policies.registry import PolicyError
from matpo_gym.policies.serve import ServeConfig, serve
from matpo_gym.trainers.config import TrainConfig, load_recipe

COMMANDS = {
    "run": RunConfig,
    "ablate": AblateConfig,
    "leaderboard-build": LeaderboardBuildConfig,
    "leaderboard-verify": LeaderboardVerifyConfig,
    "serve": ServeConfig,
    "train": TrainConfig,
    "reproduce": ReproduceConfig,
}

USER_ERRORS = (
    CatalogueError, ConfigError, DatasetUnavailable, PolicyError, PolicyFailure, PolicyUnavailable, ValueError,
    KeyError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
)


def _recipe_argument(args: list[str]) -> tuple[str | None, list[str]]:
    """Split ``--recipe PATH`` (or ``--recipe=PATH``) out of the train arguments."""
    for index, arg in enumerate(args):
        if arg == "--recipe" and index + 1 < len(args):
            return args[index + 1], args[:index] + args[index + 2 :]
        if arg.startswith("--recipe="):
            return arg.split("=", 1)[1], args[:index] + args[index + 1 :]
    return None, args


def parse(argv: list[str] | None) -> object:
    """The command object; a train recipe's values become the defaults that flags override."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["leaderboard"] and args[1:2] in (["build"], ["verify"]):
        args = [f"leaderboard-{args[1]}", *args[2:]]  # `matpo-bench leaderboard build` reads naturally
    if args[:1] == ["train"]:
        recipe, rest = _recipe_argument(args[1:])
        if recipe is not None:
            default = load_recipe(recipe)
            default.recipe = recipe
            return tyro.cli(TrainConfig, args=rest, default=default, prog="matpo-bench train")
    return tyro.extras.subcommand_cli_from_dict(COMMANDS, args=args, prog="matpo-bench", description=__doc__)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen job; user errors print one clear line."""
    try:
        command = parse(argv)
        if isinstance(command, RunConfig):
            run(command)
        elif isinstance(command, AblateConfig):
            ablate(command)
        elif isinstance(command, LeaderboardBuildConfig):
            leaderboard_build(command)
        elif isinstance(command, LeaderboardVerifyConfig):
            return leaderboard_verify(command)
        elif isinstance(command, ServeConfig):
            serve(command)
        elif isinstance(command, ReproduceConfig):
            reproduce(command)
        elif isinstance(command, TrainConfig):
            from matpo_gym.trainers import main as train

            train(command)
    except USER_ERRORS as exc:
        if os.environ.get("MATPO_TRACEBACK") == "1":
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        hint = " (MATPO_TRACEBACK=1 shows the whole traceback)" if isinstance(exc, PolicyFailure) else ""
        if isinstance(exc, (PolicyFailure, PolicyUnavailable)):
            hint += "\nmatpo-bench: finished results are saved; rerun the same command to resume."
        print(f"matpo-bench: error: {message}{hint}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        hint = install_hint(exc)
        if hint is None:
            raise
        print(f"matpo-bench: error: this needs {exc.name!r}: {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nmatpo-bench: interrupted; finished results are saved, rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
