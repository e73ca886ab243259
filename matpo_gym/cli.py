"""``matpo-bench``: the one command-line entry point, with a subcommand per job."""

from __future__ import annotations

import sys
import tyro

from matpo_gym.bench.run import RunConfig, run
from matpo_gym.catalogue import CatalogueError
from matpo_gym.config import ConfigError
from matpo_gym.data.benchmarks import DatasetUnavailable
from matpo_gym.policies.registry import PolicyError

COMMANDS = {
    "run": RunConfig,
}

USER_ERRORS = (CatalogueError, ConfigError, DatasetUnavailable, PolicyError, ValueError, KeyError)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen job; user errors print one clear line."""
    command = tyro.extras.subcommand_cli_from_dict(COMMANDS, args=argv, prog="matpo-bench", description=__doc__)
    try:
        if isinstance(command, RunConfig):
            run(command)
    except USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"matpo-bench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmatpo-bench: interrupted; finished results are saved, rerun the same command to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
