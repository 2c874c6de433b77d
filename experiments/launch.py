"""What every experiment launcher shares: its flags and its start-up.

Each launcher (``python -m experiments.<system>.<job>``) takes ``--config`` (an
``ml_collections`` config file, ``path.py[:mode]``, overridable with ``--config.<field>=...``)
and ``--workdir``; re-running with the same work directory resumes. :func:`start` quiets the
libraries' INFO logging unless ``--verbosity`` is given and joins JAX's multi-controller runtime
when configured (:func:`jaxface.sharding.initialize_distributed`).

Mistakes and faults end a launcher with one line on stderr rather than a traceback: an override
of a field the config does not have (``--config.optim.num_epoch=3``) names the close matches
(exit status 2); the library's own errors (a changed config on a resumed run, a busy or full
work directory, a damaged checkpoint, NaN, Ctrl-C: "stopped at step N, checkpoint M kept") are
printed as their one-line message. ``--verbosity`` brings the tracebacks back.
"""

import difflib
import os
import sys
import traceback

import jax
from absl import flags, logging
from ml_collections import config_flags

import jaxface
from jaxface.files import DiskFullError
from jaxface.mesh.errors import MeshError
from jaxface.sharding import initialize_distributed
from jaxface.train import (
    CheckpointError,
    ConfigMismatchError,
    NonFiniteError,
    TrainingInterrupted,
    WorkdirBusyError,
)

FLAGS = flags.FLAGS

#: Errors printed as their one-line message (no traceback) when they end a launcher; so are
#: the ``ValueError``/``OSError`` the library raises itself (bad input, named file and field).
ONE_LINE_ERRORS = (CheckpointError, ConfigMismatchError, DiskFullError, MeshError,
                   NonFiniteError, TrainingInterrupted, WorkdirBusyError)

_LIBRARY = os.path.dirname(os.path.abspath(jaxface.__file__))


def _prog() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0])


def _raised_by_the_library(err: BaseException, tb) -> bool:
    frames = traceback.extract_tb(tb)
    return (isinstance(err, (ValueError, OSError)) and bool(frames)
            and os.path.abspath(frames[-1].filename).startswith(_LIBRARY + os.sep))


def config_fields(config, prefix: str = "") -> list[str]:
    """Every dotted field name of a (nested) config, e.g. ``["optim", "optim.num_epochs"]``."""
    names = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        names.append(name)
        if hasattr(value, "items"):
            names += config_fields(value, f"{name}.")
    return names


def unknown_field_message(config, field: str, flag: str = "config") -> str:
    """One line for an override of a field the config lacks, naming the close matches."""
    matches = difflib.get_close_matches(field, config_fields(config), n=3, cutoff=0.6)
    hint = (f"; close matches: {', '.join(f'--{flag}.{m}' for m in matches)}" if matches
            else f"; the fields are those of --{flag}'s file")
    return f"--{flag}.{field}: the config has no field {field!r}{hint}"


def _has_field(config, field: str) -> bool:
    node = config
    for part in field.split("."):
        if not hasattr(node, "items") or part not in node:
            return False
        node = node[part]
    return True


def _explain_unknown_fields(flag) -> None:
    """Makes the config flag report an override of a missing field in one line (exit 2)."""
    parse = flag._parse

    def _parse(argument):
        try:
            return parse(argument)
        except (AttributeError, KeyError):
            config = flag.parser.parse(argument)  # the file alone, without the overrides
            unknown = [f for f in flag._GetOverrides(flag._GetArgv())
                       if not _has_field(config, f)]
            if not unknown:
                raise
            print(f"{_prog()}: error: {unknown_field_message(config, unknown[0], flag.name)}",
                  file=sys.stderr)
            raise SystemExit(2) from None

    flag._parse = _parse


def _one_line_errors(default):
    def hook(kind, err, tb):
        verbose = FLAGS.is_parsed() and FLAGS["verbosity"].present
        if not verbose and (isinstance(err, ONE_LINE_ERRORS) or _raised_by_the_library(err, tb)):
            print(f"{_prog()}: error: {err}", file=sys.stderr)
            return
        default(kind, err, tb)

    return hook


def define_flags(workdir_help: str) -> None:
    """Defines the required ``--config`` and ``--workdir`` flags."""
    holder = config_flags.DEFINE_config_file(
        "config", None, "Experiment configuration file.", lock_config=True
    )
    _explain_unknown_fields(FLAGS[holder.name])
    flags.DEFINE_string("workdir", None, workdir_help)
    flags.mark_flags_as_required(["config", "workdir"])


def start() -> None:
    """Sets the log level (orbax is chatty at INFO), prints the library's errors as one line
    and joins the multi-controller runtime."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    sys.excepthook = _one_line_errors(sys.__excepthook__)
    initialize_distributed()
    logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
                 jax.device_count())
